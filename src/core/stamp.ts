/**
 * The last-writer-wins order: stamps compared as (timestamp, node, seq). This is the one
 * TS definition; assembly/stamp.ts holds its one mirror, and a property test pits the
 * two against each other (test/kernel/lww.ts).
 *
 *   compareStamps(a.timestamp, a.node, a.seq, b.timestamp, b.node, b.seq) > 0  // a wins
 *
 * The definition is `compareStampHalves`, on the fields as the index and the kernel keep
 * them (timestamp i64 and seq u64 as 32-bit halves): the merge twin calls it per entry
 * without building numbers. A whole number is a pair whose high part is the number and
 * whose low part is 0, so `compareStamps` is the same function on numbers, at no cost.
 */

/** >0 when a is newer, <0 when b is, 0 for the same stamp. Node ids compare as u32. */
export function compareStamps(aTs: number, aNode: number, aSeq: number, bTs: number, bNode: number, bSeq: number): number {
  return compareStampHalves(0, aTs, aNode >>> 0, 0, aSeq, 0, bTs, bNode >>> 0, 0, bSeq);
}

/**
 * compareStamps on split fields, compared in this order: timestamp high (i32: `| 0`),
 * timestamp low (u32), node (u32), seq high (u32), seq low (u32). Callers normalise
 * (a Uint32Array read is u32; the timestamp's high half needs `| 0`).
 */
export function compareStampHalves(
  aTsLo: number, aTsHi: number, aNode: number, aSeqLo: number, aSeqHi: number,
  bTsLo: number, bTsHi: number, bNode: number, bSeqLo: number, bSeqHi: number,
): number {
  if (aTsHi !== bTsHi) return aTsHi > bTsHi ? 1 : -1;
  if (aTsLo !== bTsLo) return aTsLo > bTsLo ? 1 : -1;
  if (aNode !== bNode) return aNode > bNode ? 1 : -1;
  if (aSeqHi !== bSeqHi) return aSeqHi > bSeqHi ? 1 : -1;
  if (aSeqLo !== bSeqLo) return aSeqLo > bSeqLo ? 1 : -1;
  return 0;
}
