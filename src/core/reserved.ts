/**
 * The reserved key prefix `__wavekv/` (types.ts RESERVED_PREFIX): the nodes' own
 * bookkeeping, kept out of the user's limits and bounded on its own (RESERVED_LIMITS).
 *
 *   isReservedKey("__wavekv/peers/2")                    // true
 *   reservedRefusal("__wavekv/peers/2", 2, 22)           // undefined: node 2 publishes its address
 *   reservedRefusal("__wavekv/peers/2", 1, 22)           // "only node 2 writes ..."
 *
 * Why origin = N: an address-book entry written by anyone else is how one PUT split a
 * cluster (issue 15 §11); only the node itself knows its address. The same rule runs on
 * local writes (node.ts) and on remote merges (state.ts), so no path admits what another refuses.
 */
import { PEER_ADDRESS_PREFIX, RESERVED_LIMITS, RESERVED_PREFIX } from "./types.js";

const PREFIX_BYTES = Uint8Array.from(RESERVED_PREFIX, (c) => c.charCodeAt(0));
/** A uint32 in canonical decimal: no sign, no leading zero, no spaces. */
const CANONICAL_ID = /^(0|[1-9][0-9]{0,9})$/;

export function isReservedKey(key: string): boolean {
  return key.startsWith(RESERVED_PREFIX);
}

/** The same test on a key's UTF-8 bytes `bytes[off, off + len)`: no string is built. */
export function isReservedKeyBytes(bytes: Uint8Array, off: number, len: number): boolean {
  if (len < PREFIX_BYTES.length) return false;
  for (let i = 0; i < PREFIX_BYTES.length; i++) if (bytes[off + i] !== PREFIX_BYTES[i]) return false;
  return true;
}

/**
 * Why an entry of a reserved `key` from `origin` with `valueLen` value bytes is refused,
 * or undefined when it is admitted (the count bound is the caller's: it knows the store).
 */
export function reservedRefusal(key: string, origin: number, valueLen: number): string | undefined {
  const id = key.startsWith(PEER_ADDRESS_PREFIX) ? key.slice(PEER_ADDRESS_PREFIX.length) : "";
  if (!CANONICAL_ID.test(id) || +id > 0xffffffff) return `${JSON.stringify(key)} is reserved (only ${PEER_ADDRESS_PREFIX}<id> exists under ${RESERVED_PREFIX})`;
  if (+id !== origin) return `only node ${id} writes ${JSON.stringify(key)}, not node ${origin}`;
  if (valueLen > RESERVED_LIMITS.maxValueBytes) return `${JSON.stringify(key)} holds at most ${RESERVED_LIMITS.maxValueBytes} bytes`;
  return undefined;
}
