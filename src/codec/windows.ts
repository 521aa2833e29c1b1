/**
 * Windows: decoding a log or snapshot held in kernel memory, window by window. Recovery
 * reads a file straight into the kernel's input region (`readIntoKernel`: no JS copy, no
 * second copy in) and decodes it a window of records at a time (`decodeWindow`), so the
 * descriptors need a few MB, not one per record of the whole file at once.
 *
 *   const block = readIntoKernel(length, (dst) => readExactly(fd, dst, at), holder);
 *   const batch = decodeWindow(block, 0, "framed", base, 1 << 16);   // then from stop.offset
 *   block.drop(holder);
 *
 * A module of its own, not part of ./records.ts, because only the stores replay files: in
 * the browser bundle this code lives in the browser store's chunk, not in the core every
 * page loads (−1.5 KiB of the core, docs/design/0024). The bytes decode exactly as
 * `decodeRecords` of the same bytes (the kernel's one decoder, ./kernel-codec.ts); the TS
 * twin (./reference.ts) is pitted against window decoding in test/codec/codec.ts.
 */
import type { DecodedBatch, Framing } from "../core/record.js";
import { kernel } from "../kernel/instance.js";
import { adoptInput, type PinnedBytes } from "../kernel/memory.js";
import { decodeResident } from "./kernel-codec.js";

/**
 * Reads `length` bytes that `fill` writes straight into the kernel's input region, as a
 * block that batches decoded from it (`decodeWindow`) and values kept from it share. The
 * block stays where it is when the region is reused while anything holds it (PinnedBytes).
 * `holder` holds the first reference: drop it (`block.drop(holder)`) when done decoding.
 * `fill` must write all of `dst` and call nothing that uses the kernel.
 */
export function readIntoKernel(length: number, fill: (dst: Uint8Array) => void, holder: object): PinnedBytes {
  const k = kernel();
  const block = adoptInput(k, length, holder);
  try {
    fill(k.u8.subarray(block.ptr, block.ptr + length));
  } catch (e) {
    block.drop(holder);
    throw e;
  }
  return block;
}

/**
 * Up to `maxRecords` records of `block` from `offset`; offsets and `stop` relative to
 * `offset` (with stop reason "limit", the next window starts at `offset + stop.offset`).
 * Never throws on bad bytes (see `stop`). The block must still be the input region's
 * (nothing has reserved that region since `readIntoKernel`). Decode each window after the
 * previous one is merged or released: a batch still holding descriptors in place has
 * them copied out.
 */
export function decodeWindow(block: PinnedBytes, offset: number, framing: Framing, base: number, maxRecords?: number): DecodedBatch {
  if (!block.inRegion) throw new Error("wavekv: the block left the input region (something reserved it) and can no longer be decoded in place");
  const k = block.kernel;
  // The decoder rewrites the descriptor region: a batch still reading there copies out first.
  k.evictResident();
  k.generation++;
  return decodeResident(k, block.ptr + offset, block.length - offset, framing, base, maxRecords, { block, offset });
}
