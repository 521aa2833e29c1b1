/**
 * Change feeds: `node.watch(prefix, { signal })` as async iterators.
 *
 *   for await (const e of node.watch("user/", { signal })) console.log(e.key);
 *
 * Each subscriber has its own queue, so a slow consumer never delays writers or other
 * consumers; the cost is memory for the changes it has not read yet (unbounded: a
 * consumer that stops reading should abort its signal).
 */
import type { Entry } from "../core/types.js";

interface Subscriber {
  prefix: string;
  localOnly: boolean;
  queue: Entry[];
  head: number;
  wake: (() => void) | null;
  done: boolean;
}

export class Watchers {
  readonly #subs = new Set<Subscriber>();

  get size(): number {
    return this.#subs.size;
  }

  /** Whether anyone listens to merged (remote) changes: if not, a merge builds no entries. */
  get wantsRemote(): boolean {
    for (const s of this.#subs) if (!s.localOnly) return true;
    return false;
  }

  emit(entry: Entry, local: boolean): void {
    for (const s of this.#subs) {
      if (!local && s.localOnly) continue;
      if (!entry.key.startsWith(s.prefix)) continue;
      s.queue.push(entry);
      const wake = s.wake;
      s.wake = null;
      wake?.();
    }
  }

  closeAll(): void {
    for (const s of this.#subs) this.#end(s);
  }

  #end(s: Subscriber): void {
    s.done = true;
    this.#subs.delete(s);
    const wake = s.wake;
    s.wake = null;
    wake?.();
  }

  subscribe(prefix: string, signal?: AbortSignal, localOnly = false): AsyncIterableIterator<Entry> {
    const sub: Subscriber = { prefix, localOnly, queue: [], head: 0, wake: null, done: false };
    const onAbort = () => this.#end(sub);
    if (signal?.aborted) sub.done = true;
    else {
      this.#subs.add(sub);
      signal?.addEventListener("abort", onAbort, { once: true });
    }
    const finish = (): IteratorResult<Entry> => {
      signal?.removeEventListener("abort", onAbort);
      this.#subs.delete(sub);
      sub.done = true;
      sub.queue.length = 0;
      return { value: undefined, done: true };
    };
    const iterator: AsyncIterableIterator<Entry> = {
      next: async () => {
        for (;;) {
          if (sub.head < sub.queue.length) {
            const value = sub.queue[sub.head++]!;
            // Compact now and then: shift() per item is O(n) on a long backlog.
            if (sub.head > 1024 && sub.head * 2 > sub.queue.length) { sub.queue.splice(0, sub.head); sub.head = 0; }
            return { value, done: false };
          }
          if (sub.done) return finish();
          await new Promise<void>((resolve) => { sub.wake = resolve; });
        }
      },
      return: async () => finish(),
      [Symbol.asyncIterator]() { return iterator; },
    };
    return iterator;
  }
}
