/**
 * One-at-a-time runs (a storage's snapshots): an idle queue runs the call at once, so its
 * synchronous part (a snapshot's `collect`) happens before `run` returns; a busy one
 * runs it after every earlier call settled, whatever their outcome.
 *
 *   readonly #snapshots = new Serial();
 *   snapshot(collect) { return this.#snapshots.run(() => this.#snapshotNow(collect)); }
 *   async close() { await this.#snapshots.idle(); … }
 */
export class Serial {
  /** Settles when the last call has (null: idle). */
  #tail: Promise<void> | null = null;

  run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.#tail;
    const result = prev ? prev.then(fn) : fn();
    const settle = () => { if (this.#tail === tail) this.#tail = null; };
    const tail: Promise<void> = result.then(settle, settle);
    this.#tail = tail;
    return result;
  }

  /** Resolves once every call made so far has settled. */
  idle(): Promise<void> {
    return this.#tail ?? Promise.resolve();
  }
}
