/**
 * The WAL file's 32-byte header (docs/FORMAT.md §3): magic, version, node id, the base
 * timestamp of every record body in the file, and the generation, under a CRC.
 *
 *   const bytes = encodeWalHeader({ nodeId: 1, base: Date.now(), generation: 1 });
 *   const h = parseWalHeader(bytes);   // the header, or why it is not one (never throws)
 */
import { crc32 } from "../codec/crc.js";

/** "WKVW" in file order. */
export const WAL_MAGIC = 0x57564b57;
export const WAL_VERSION = 1;
export const WAL_HEADER_BYTES = 32;

export interface WalHeader {
  nodeId: number;
  /** Base timestamp of every record body in this file (FORMAT §1 `timestamp`). */
  base: number;
  /** Bumped each time the log is reset after a snapshot; a snapshot names the generation it covers. */
  generation: number;
}

export function encodeWalHeader(h: WalHeader): Uint8Array {
  const out = new Uint8Array(WAL_HEADER_BYTES);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, WAL_MAGIC, true);
  dv.setUint32(4, WAL_VERSION, true);
  dv.setUint32(8, h.nodeId, true);
  dv.setBigInt64(12, BigInt(h.base), true);
  dv.setBigUint64(20, BigInt(h.generation), true);
  dv.setUint32(28, crc32(out.subarray(0, 28)), true);
  return out;
}

/** The header, or the reason it is not one. Never throws. */
export function parseWalHeader(bytes: Uint8Array): WalHeader | string {
  if (bytes.length < WAL_HEADER_BYTES) return `file is ${bytes.length} bytes, shorter than the ${WAL_HEADER_BYTES}-byte header`;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, WAL_HEADER_BYTES);
  if (dv.getUint32(0, true) !== WAL_MAGIC) return "bad magic (not a wavekv WAL)";
  if (dv.getUint32(28, true) !== crc32(bytes.subarray(0, 28))) return "header CRC mismatch";
  const version = dv.getUint32(4, true);
  if (version !== WAL_VERSION) return `unsupported WAL version ${version} (this build reads ${WAL_VERSION})`;
  const base = Number(dv.getBigInt64(12, true));
  const generation = Number(dv.getBigUint64(20, true));
  if (!Number.isSafeInteger(base) || !Number.isSafeInteger(generation)) return "header fields out of range";
  return { nodeId: dv.getUint32(8, true), base, generation };
}
