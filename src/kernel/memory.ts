/**
 * Input blocks: file bytes read straight into the kernel's input region and kept there
 * for the values read from them (docs/design/0005-recovery-reads-into-linear-memory.md). A module of its own so that a
 * bundle without files (the browser build) leaves it out.
 *
 *   const block = adoptInput(kernel(), length, holder);   // then fill, decode windows
 *   block.drop(holder);                                     // when done with it
 */
import { R_IN } from "./abi.js";
import type { InputBlockHandle, Kernel } from "./instance.js";

/**
 * A block of linear memory holding file bytes that values are read from: a log or
 * snapshot read straight into the kernel's input region (`adoptInput` below), so a
 * replay keeps no JS copy of the file. While the block is still the input region's, the
 * decoder reads windows of it; before anything reuses that region, the kernel takes the
 * block out of the region table (`detach`, export `pin`) if it still has holders, and
 * it stays where it is until the last one drops it (export `unpin`). Reference-counted:
 * batches decoded from it and the replica state reading values from it each hold one;
 * a holder the GC collects without dropping its reference drops it then (`pinHolders`).
 * Views of it (`view()`) are rebuilt per call: memory growth detaches old ones.
 */
export class PinnedBytes implements InputBlockHandle {
  #refs = 1;
  #inRegion = true;
  /** The input region's block at `ptr`, with `holder` holding the first reference. */
  constructor(readonly kernel: Kernel, readonly ptr: number, readonly length: number, holder: object) {
    kernel.pinnedBytes += length;
    pinHolders?.register(holder, this, holder);
  }

  /** Still the input region's block (the decoder can read it); false once detached. */
  get inRegion(): boolean { return this.#inRegion; }

  /** The bytes now (a view valid until the next call that may grow memory). */
  view(): Uint8Array {
    if (this.#refs === 0) throw new Error("PinnedBytes used after its last drop()");
    return this.kernel.u8.subarray(this.ptr, this.ptr + this.length);
  }

  /** A copy of [off, off + len): what may leave the library (it survives growth). */
  slice(off: number, len: number): Uint8Array {
    if (this.#refs === 0) throw new Error("PinnedBytes used after its last drop()");
    return this.kernel.u8.slice(this.ptr + off, this.ptr + off + len);
  }

  /** One more holder; `holder` drops it if collected first. */
  retain(holder: object): this {
    if (this.#refs === 0) throw new Error("PinnedBytes retained after its last drop()");
    this.#refs++;
    pinHolders?.register(holder, this, holder);
    return this;
  }

  /** `holder` is done with the bytes; the last drop frees the block (or leaves it to its region). */
  drop(holder: object): void {
    pinHolders?.unregister(holder);
    this.#dropRef();
  }

  /** Takes the block out of the input region (the kernel is about to reuse the region). */
  detach(): void {
    if (!this.#inRegion) return;
    this.#inRegion = false;
    if (this.#refs === 0) return;
    const ptr = this.kernel.exports.pin(R_IN) >>> 0;
    // Anything else is a bug in the input-block bookkeeping below: values would be read from the wrong block.
    if (ptr !== this.ptr) throw new Error(`wavekv: pinned block ${ptr} is not the input block ${this.ptr}`);
  }

  #dropRef(): void {
    if (this.#refs === 0) return;
    if (--this.#refs !== 0) return;
    this.kernel.pinnedBytes -= this.length;
    // A block still in its region is the region's again (reused, or freed by trim).
    if (!this.#inRegion) this.kernel.exports.unpin(this.ptr);
  }

  /** For the finalizer only. */
  static finalize(p: PinnedBytes): void {
    p.#dropRef();
  }
}

/** Drops the pin of a holder collected without `drop()` (a batch never released). */
const pinHolders = typeof FinalizationRegistry === "function"
  ? /* @__PURE__ */ new FinalizationRegistry<PinnedBytes>((p) => PinnedBytes.finalize(p))
  : null;

/**
 * `length` bytes of the input region for a file to be read into, as a block that batches
 * decoded from it and values kept from it share. `holder` holds the first reference.
 */
export function adoptInput(kernel: Kernel, length: number, holder: object): PinnedBytes {
  const ptr = kernel.reserve(R_IN, Math.max(length, 16));
  const block = new PinnedBytes(kernel, ptr, length, holder);
  kernel.setInput(block);
  return block;
}
