/**
 * The winners of a merged batch, grouped by the batch ranges its envelope named
 * (docs/PROTOCOL.md §2.3): each group with two winners or more is logged behind a batch
 * head (docs/FORMAT.md §3.1: replay takes it whole or not at all, so a crash never brings
 * back part of a peer's batch) and recorded in the node's BatchRanges, so that this node's
 * own pages keep it whole when it forwards it.
 *
 *   const runs = winnerRuns(batch, w, groups);         // after the merge decided
 *   persist(framedWithHeads(batch, w, runs));          // = framedWinners without runs
 */
import { FRAME_HEADER_BYTES, RecordKind, type DecodedBatch, type FramedRecords } from "../core/record.js";
import { encodePicked, encodeRecords } from "../codec/records.js";
import type { MergeGroups } from "./batch-ranges.js";
import { framedWinners } from "./admission.js";

/** The winners of one range: positions of their triples in `w` (in `w` order), their origin and span. */
export interface WinnerRun {
  node: number;
  min: number;
  max: number;
  picks: number[];
}

/** The groups of winners (triples `entry, slot, …` in `w`) with two members or more; none without `groups`. */
export function winnerRuns(batch: DecodedBatch, w: Uint32Array, groups: MergeGroups | undefined): WinnerRun[] {
  if (groups === undefined || w.length === 0) return [];
  const byRange = new Map<number, WinnerRun>();
  for (let j = 0; j < w.length; j += 3) {
    const i = w[j]!, r = groups.member[i]!;
    if (r < 0) continue;
    const seq = batch.seq(i);
    const run = byRange.get(r);
    if (run === undefined) byRange.set(r, { node: batch.node(i), min: seq, max: seq, picks: [j] });
    else {
      run.picks.push(j);
      if (seq < run.min) run.min = seq;
      if (seq > run.max) run.max = seq;
    }
  }
  return [...byRange.values()].filter((run) => run.picks.length >= 2);
}

/**
 * The winners framed for the log with a batch head before each run: the runs' winners
 * side by side (at the place of their first) in one kernel call, the heads (a few bytes
 * each) in one more, spliced in between frames. Without runs: framedWinners.
 */
export function framedWithHeads(batch: DecodedBatch, w: Uint32Array, runs: readonly WinnerRun[]): FramedRecords {
  if (runs.length === 0) return framedWinners(batch, w);
  const records = w.length / 3;
  const runOf = new Int32Array(records).fill(-1);
  runs.forEach((run, r) => { for (const j of run.picks) runOf[j / 3] = r; });
  const picks = new Uint32Array(w.length);
  /** Record index (among the winners) each run's head goes before. */
  const headAt: number[] = [];
  let p = 0;
  const take = (j: number) => { picks[p++] = w[j]!; picks[p++] = w[j + 1]!; picks[p++] = w[j + 2]!; };
  for (let t = 0; t < records; t++) {
    const r = runOf[t]!;
    if (r < 0) take(3 * t);
    else if (headAt[r] === undefined) {
      headAt[r] = p / 3;
      for (const j of runs[r]!.picks) take(j);
    }
  }
  return {
    count: records + runs.length,
    frame: (base) => {
      const body = encodePicked(batch, picks, 3, "framed", base);
      // The heads in the order they go in, framed together.
      const order = runs.map((_, r) => r).sort((a, b) => headAt[a]! - headAt[b]!);
      const heads = encodeRecords(order.map((r) => ({ kind: RecordKind.BatchHead, key: "", value: null, timestamp: base, node: runs[r]!.node, seq: runs[r]!.picks.length })), "framed", base);
      const out = new Uint8Array(body.length + heads.length);
      let from = 0, at = 0, rec = 0, o = 0, h = 0;
      for (const r of order) {
        while (rec < headAt[r]!) { at = nextFrame(body, at); rec++; }
        out.set(body.subarray(from, at), o);
        o += at - from;
        from = at;
        const hEnd = nextFrame(heads, h);
        out.set(heads.subarray(h, hEnd), o);
        o += hEnd - h;
        h = hEnd;
      }
      out.set(body.subarray(from), o);
      return out;
    },
  };
}

/** Where the frame at `at` of `bytes` ends (a frame: u32 LE body length, u32 CRC, body). */
function nextFrame(bytes: Uint8Array, at: number): number {
  return at + FRAME_HEADER_BYTES + ((bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0);
}
