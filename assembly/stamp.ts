/**
 * The last-writer-wins order in the kernel: stamps compare as (timestamp i64, node u32,
 * seq u64). The mirror of src/core/stamp.ts `compareStamps`; test/kernel/lww.ts pits the
 * two against each other through the `lwwCompare` export. Every kernel decision between
 * two stamps (merge, upsert) goes through this function.
 */

/** >0 when (ts, node, seq) is newer than (ts2, node2, seq2), <0 when older, 0 for the same stamp. */
// @ts-ignore: decorator
@inline export function compareStamps(ts: i64, node: u32, seq: u64, ts2: i64, node2: u32, seq2: u64): i32 {
  if (ts != ts2) return ts > ts2 ? 1 : -1;
  if (node != node2) return node > node2 ? 1 : -1;
  if (seq != seq2) return seq > seq2 ? 1 : -1;
  return 0;
}
