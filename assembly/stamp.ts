/**
 * The last-writer-wins order in the kernel: stamps compare as (timestamp i64, node u32,
 * seq u64). The mirror of src/core/stamp.ts `compareStamps`; test/kernel/lww.ts pits the
 * two against each other through the `lwwCompare` export and through merge and upsert
 * decisions. Every kernel decision between two stamps goes through this function.
 *
 * The second stamp is read where it is stored, in slot layout (assembly/handle.ts: ts at
 * word S_TS_LO, node at S_NODE, seq at S_SEQ_LO), and only as far as the order needs: a
 * merge's losing entry usually differs in its timestamp and costs one load.
 */
import { S_NODE, S_SEQ_LO, S_TS_LO } from "./handle";

/** >0 when (ts, node, seq) is newer than the stamp stored at `s`, <0 when older, 0 for the same stamp. */
// @ts-ignore: decorator
@inline export function compareStamps(ts: i64, node: u32, seq: u64, s: usize): i32 {
  const ts2 = load<i64>(s, S_TS_LO << 2);
  if (ts != ts2) return ts > ts2 ? 1 : -1;
  const node2 = load<u32>(s, S_NODE << 2);
  if (node != node2) return node > node2 ? 1 : -1;
  const seq2 = load<u64>(s, S_SEQ_LO << 2);
  if (seq != seq2) return seq > seq2 ? 1 : -1;
  return 0;
}
