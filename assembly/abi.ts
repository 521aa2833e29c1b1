/**
 * The kernel's self-description: every constant JS mirrors, as (name, value) pairs, read
 * by scripts/build-wasm.mjs (which generates src/kernel/abi-values.ts from the first part)
 * and by test/kernel/abi.ts (which checks every pair by name against the TS constants).
 *
 * `abi()` returns the address of five u32 words: NAMES and VALUES (the kernel's own
 * constants, generated into TS), OTHER_NAMES and OTHER_VALUES (constants other layers
 * define in TS: descriptor words, stop reasons, modes, merge results; test-checked), and
 * the FNV-1a fingerprint of all four. A names string is an AssemblyScript string (UTF-16,
 * byte length at ptr − 4), white-space separated; a values array a StaticArray<u32> (byte
 * length at ptr − 4); the i-th name goes with the i-th value. Values are in JS units: word
 * indexes for the mailbox (MB_*), handle fields (H_*, from offsetof<Handle>), slots (S_*)
 * and descriptors (D_*); i32 codes as their u32 bits. src/kernel/instance.ts refuses a
 * kernel whose fingerprint is not the generated ABI_FINGERPRINT (a kernel of another version).
 */
import { MAILBOX, MB_COUNT, MB_PREV, MB_STOP_OFFSET, MB_STOP_REASON, MB_U64, REGIONS, REGION_COUNT, REGION_MAX, R_AUX, R_CRC, R_DESC, R_IN, R_OUT, R_REFUSED } from "./layout";
import { DESC_WORDS, D_KEY_LEN, D_KEY_OFF, D_KIND, D_NODE, D_REC_LEN, D_REC_OFF, D_SEQ_HI, D_SEQ_LO, D_TS_HI, D_TS_LO, D_VAL_LEN, D_VAL_OFF } from "./record";
import { DESC_MAX, ENCODE_TOO_LARGE, MODE_BARE, MODE_DELTA, MODE_FRAMED, STOP_CRC, STOP_END, STOP_LIMIT, STOP_MALFORMED, STOP_TORN, STOP_ZERO } from "./codec";
import {
  ARENA_COMPACT_MIN, ERR_PENDING, ERR_SLOT, FLAG_TOMBSTONE, FLAG_USED, Handle, SLOT_WORDS,
  S_FLAGS, S_KEY_LEN, S_KEY_OFF, S_NODE, S_SEQ_HI, S_SEQ_LO, S_TS_HI, S_TS_LO,
} from "./handle";
import { PREV_ABSENT, PREV_TOMBSTONE, PREV_VALUE, REFUSE_CLOCK, REFUSE_KEY, REFUSE_KIND, REFUSE_MASKED, REFUSE_VALUE } from "./merge";
import { BUCKETS, GROUPS } from "./summary";

// The names in the order of VALUES, in the same groups (a backslash continues the literal).
// Append only; a rename or a new constant changes src/kernel/abi-values.ts (npm run build:wasm).
const NAMES = "\
  MAILBOX REGIONS \
  MB_STOP_REASON MB_STOP_OFFSET MB_COUNT MB_PREV MB_U64 \
  R_IN R_DESC R_AUX R_OUT R_REFUSED R_CRC REGION_COUNT \
  REGION_MAX DESC_MAX ENCODE_TOO_LARGE ERR_SLOT ERR_PENDING \
  H_SLOTS H_HIGH H_SIZE \
  H_ARENA H_PENDING H_SUMMARY \
  S_TS_LO S_TS_HI S_SEQ_LO S_SEQ_HI S_NODE S_FLAGS S_KEY_OFF S_KEY_LEN \
  SLOT_WORDS FLAG_USED FLAG_TOMBSTONE \
";

const OTHER_NAMES = "\
  D_TS_LO D_TS_HI D_SEQ_LO D_SEQ_HI D_NODE D_KIND \
  D_KEY_OFF D_KEY_LEN D_VAL_OFF D_VAL_LEN D_REC_OFF D_REC_LEN DESCRIPTOR_WORDS \
  STOP_END STOP_TORN STOP_ZERO STOP_CRC STOP_MALFORMED STOP_LIMIT \
  MODE_BARE MODE_FRAMED MODE_DELTA \
  PREV_ABSENT PREV_VALUE PREV_TOMBSTONE \
  REFUSE_KEY REFUSE_VALUE REFUSE_CLOCK REFUSE_MASKED REFUSE_KIND \
  ARENA_COMPACT_MIN BUCKETS GROUPS \
";

const VALUES: StaticArray<u32> = [
  <u32>MAILBOX, <u32>REGIONS,
  MB_STOP_REASON, MB_STOP_OFFSET, MB_COUNT, MB_PREV, MB_U64,
  <u32>R_IN, <u32>R_DESC, <u32>R_AUX, <u32>R_OUT, <u32>R_REFUSED, <u32>R_CRC, <u32>REGION_COUNT,
  <u32>REGION_MAX, DESC_MAX, ENCODE_TOO_LARGE, <u32>ERR_SLOT, <u32>ERR_PENDING,
  <u32>offsetof<Handle>("slots") >> 2, <u32>offsetof<Handle>("high") >> 2, <u32>offsetof<Handle>("size") >> 2,
  <u32>offsetof<Handle>("arena") >> 2, <u32>offsetof<Handle>("pending") >> 2, <u32>offsetof<Handle>("summary") >> 2,
  S_TS_LO, S_TS_HI, S_SEQ_LO, S_SEQ_HI, S_NODE, S_FLAGS, S_KEY_OFF, S_KEY_LEN,
  SLOT_WORDS, FLAG_USED, FLAG_TOMBSTONE,
];

// Checked by name in test/kernel/abi.ts: src/core/record.ts D_* and STOP_REASONS,
// src/codec/kernel-codec.ts modeOf, src/index/merge-index.ts PrevState, RefuseReason and
// ARENA_COMPACT_MIN, src/index/summary.ts BUCKETS and GROUPS.
const OTHER_VALUES: StaticArray<u32> = [
  D_TS_LO, D_TS_HI, D_SEQ_LO, D_SEQ_HI, D_NODE, D_KIND,
  D_KEY_OFF, D_KEY_LEN, D_VAL_OFF, D_VAL_LEN, D_REC_OFF, D_REC_LEN, DESC_WORDS,
  STOP_END, STOP_TORN, STOP_ZERO, STOP_CRC, STOP_MALFORMED, STOP_LIMIT,
  MODE_BARE, MODE_FRAMED, MODE_DELTA,
  PREV_ABSENT, PREV_VALUE, PREV_TOMBSTONE,
  REFUSE_KEY, REFUSE_VALUE, REFUSE_CLOCK, REFUSE_MASKED, REFUSE_KIND,
  ARENA_COMPACT_MIN, BUCKETS, GROUPS,
];

const ABI = memory.data(20);

/** FNV-1a over the u16 units of a string or the u32 words of a StaticArray (their byte length at p − 4). */
function fnv(h: u32, p: usize, unit: usize): u32 {
  const end = p + <usize>load<u32>(p - 4);
  for (; p < end; p += unit) h = (h ^ (unit == 2 ? <u32>load<u16>(p) : load<u32>(p))) * 0x01000193;
  return h;
}

// @ts-ignore: decorator
@inline function part(i: usize, p: usize, unit: usize, h: u32): u32 {
  store<u32>(ABI + (i << 2), <u32>p);
  return fnv(h, p, unit);
}

/** Address of (NAMES, VALUES, OTHER_NAMES, OTHER_VALUES, fingerprint): see above. */
export function abi(): u32 {
  let h: u32 = 0x811c9dc5;
  h = part(0, changetype<usize>(NAMES), 2, h);
  h = part(1, changetype<usize>(VALUES), 4, h);
  h = part(2, changetype<usize>(OTHER_NAMES), 2, h);
  h = part(3, changetype<usize>(OTHER_VALUES), 4, h);
  store<u32>(ABI, h, 16);
  return <u32>ABI;
}
