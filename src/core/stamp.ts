/**
 * The last-writer-wins order: stamps compared as (timestamp, node, seq). This is the one
 * TS definition; assembly/stamp.ts holds its one mirror, and a property test pits the
 * two against each other (test/kernel/lww.ts).
 *
 *   compareStamps(a.timestamp, a.node, a.seq, b.timestamp, b.node, b.seq) > 0  // a wins
 */

/** >0 when a is newer, <0 when b is, 0 for the same stamp. Node ids compare as u32. */
export function compareStamps(aTs: number, aNode: number, aSeq: number, bTs: number, bNode: number, bSeq: number): number {
  if (aTs !== bTs) return aTs > bTs ? 1 : -1;
  if (aNode !== bNode) return aNode >>> 0 > bNode >>> 0 ? 1 : -1;
  if (aSeq !== bSeq) return aSeq > bSeq ? 1 : -1;
  return 0;
}
