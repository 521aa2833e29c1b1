/**
 * A replay session: the scope of one open's replay, owned by the storage. It owns what
 * the replay borrows from the kernel, so no caller has to know about it:
 * - the input blocks (`withBlock`): a snapshot body or a long log read straight into
 *   linear memory, held while its windows are decoded and dropped after; a sink that
 *   keeps values keeps the batch's bytes (`DecodedBatch.retain()`: opaque);
 * - every batch handed to a sink, released when `apply` returns;
 * - the restart after a damaged snapshot was partly handed over (`restart`: the sink is
 *   abandoned, a fresh one made) and the abandon when open fails (`fail`);
 * - the kernel's scratch regions the decode grew to the size of the files, given back
 *   at the end (`finish`).
 *
 *   const session = new ReplaySession(uuid, options.replay);
 *   session.withBlock(len, (dst) => readExactly(fd, dst, at), (block) => { … session.apply(batch) … });
 *   const batches = session.finish();   // or session.fail() if open fails
 */
import { decodeWindow, readIntoKernel } from "../codec/windows.js";
import { D_KEY_LEN, DESCRIPTOR_WORDS, type DecodedBatch } from "../core/record.js";
import type { PinnedBytes } from "../kernel/memory.js";
import { kernel } from "../kernel/instance.js";
import type { ReplayExpectation, ReplaySink, ReplayTarget } from "./interface.js";
import { MAX_BATCH_RECORDS, cutAtBatch, cutStop, type BatchCut } from "./wal-batches.js";

/** Records per window when a long file is replayed window by window (descriptors: 48 B each). */
export const REPLAY_WINDOW_RECORDS = 1 << 16;

/** Scratch a kernel region keeps after a replay (Kernel.trim); larger blocks are freed. */
export const SCRATCH_KEEP_BYTES = 4 << 20;

/** What a file of `total` bytes holds, judged by its first window, with 5 % to spare. */
export function expectation(first: DecodedBatch, total: number): ReplayExpectation {
  const span = first.stop.offset;
  const d = first.words;
  let keyBytes = 0;
  for (let i = 0, at = 0; i < first.count; i++, at += DESCRIPTOR_WORDS) keyBytes += d[at + D_KEY_LEN]!;
  const scale = (total / span) * 1.05;
  return { records: Math.ceil(first.count * scale), keyBytes: Math.ceil(keyBytes * scale) };
}

/**
 * A framed log in `block` (stamps relative to `base`) handed to `session` a window of
 * `windowRecords` at a time: the file WAL's long replay and the browser store's. Returns
 * where the last window started (`at`) and where and why it stopped (`stop.offset` from `at`).
 * Windows never cut an atomic batch (src/storage/wal-batches.ts): one that ends inside a
 * batch ends before its head, and a log that ends inside one stops at its head (`stop`,
 * with `cut` saying why and `decoderStop` where the records themselves stopped).
 */
export function applyLogWindows(session: ReplaySession, block: PinnedBytes, base: number, windowRecords: number, totalBytes: number): { at: number; stop: DecodedBatch["stop"]; decoderStop: DecodedBatch["stop"]; cut: BatchCut["kind"] } {
  for (let at = 0; ;) {
    const decode = (max: number) => decodeWindow(block, at, "framed", base, max);
    let cut = cutAtBatch(decode(Math.max(1, windowRecords)), decode);
    if (cut.kind === "incomplete" && cut.decoderStop.reason === "limit" && cut.batch.count === 0) {
      // A batch longer than the window: a window of the longest batch a head may claim.
      cut.batch.release();
      cut = cutAtBatch(decode(MAX_BATCH_RECORDS + 1), decode);
    }
    const batch = cut.batch, more = cut.decoderStop.reason === "limit" && cut.kind !== "malformed";
    const stop = more ? batch.stop : cutStop(cut);
    // With the first of several windows: what the whole log likely holds, extrapolated
    // from it, so the consumer can grow its index once (see ReplicaState.reserve).
    if (batch.count > 0) session.apply(batch, at === 0 && more ? expectation(batch, totalBytes) : undefined);
    else batch.release();
    if (!more) return { at, stop, decoderStop: cut.decoderStop, cut: cut.kind };
    at += stop.offset;
  }
}

export class ReplaySession {
  readonly #uuid: string;
  readonly #target: ReplayTarget | undefined;
  /** The current sink (a target was given), else null. */
  #sink: ReplaySink | null = null;
  /** Without a target: the batches, for `recovered.batches` (the caller owns them then). */
  readonly #collected: DecodedBatch[] = [];
  /** Batches handed over since the current sink was made. */
  #handed = 0;
  /** Batches handed over in all (abandoned ones included). */
  #total = 0;

  constructor(uuid: string, target: ReplayTarget | undefined) {
    this.#uuid = uuid;
    this.#target = target;
    // Made at once, so that after an open without records the caller's last sink exists.
    if (target) this.#sink = target(uuid);
  }

  /** Hands one decoded batch over, in apply order. A sink sees it only during the call. */
  apply(batch: DecodedBatch, expected?: ReplayExpectation): void {
    this.#handed++;
    this.#total++;
    const sink = this.#sink;
    if (sink === null) {
      this.#collected.push(batch);
      return;
    }
    try {
      sink.apply(batch, expected);
    } finally {
      batch.release();
    }
  }

  /** What was handed over is void (a damaged snapshot): drop it and start over with a fresh sink. */
  restart(): void {
    if (this.#handed === 0) return;
    this.#abandon();
    if (this.#target) this.#sink = this.#target(this.#uuid);
  }

  /** Open failed: nothing handed over may be kept. */
  fail(): void {
    this.#abandon();
  }

  /**
   * Open succeeded. With a sink, the kernel's scratch regions the replay grew to the
   * size of the files go back to the heap (the batches are released; values the sink
   * kept sit in their own pinned blocks, which trimming leaves alone). Without one the
   * collected batches still read those regions: they are returned to the caller as is.
   */
  finish(): DecodedBatch[] {
    if (this.#sink !== null && this.#total > 0) kernel().trim(SCRATCH_KEEP_BYTES);
    return this.#collected;
  }

  /**
   * `length` bytes of a file read by `fill` straight into the kernel's input region, held
   * for the duration of `use` (which decodes windows of it and hands them over), then
   * dropped: the block outlives the session only through references sinks took.
   */
  withBlock<T>(length: number, fill: (dst: Uint8Array) => void, use: (block: PinnedBytes) => T): T {
    const holder = {};
    const block = readIntoKernel(length, fill, holder);
    try {
      return use(block);
    } finally {
      block.drop(holder);
    }
  }

  #abandon(): void {
    for (const b of this.#collected) b.release();
    this.#collected.length = 0;
    const sink = this.#sink;
    this.#sink = null;
    this.#handed = 0;
    sink?.abandon();
  }
}
