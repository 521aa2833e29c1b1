/**
 * The console's charts (docs/design/0029): small inline SVGs drawn from the history the
 * state endpoint carries (src/app/console-history.ts), no library, nothing fetched. Each
 * chart is a <figure> whose <svg role="img"> has a <title> and a <desc> saying in words
 * what it shows (latest and peak per series), and whose caption lists the latest values
 * as text: a screen reader, or a reader who would rather read, gets the same numbers.
 * Colours come from CSS variables (light and dark schemes); series differ by dash pattern
 * too, not by colour alone. Nothing is written with innerHTML.
 */
import type { ConsoleHistoryView, HistorySample } from "../src/app/console.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 320, H = 110, PAD_L = 34, PAD_B = 16, PAD_T = 8, PAD_R = 6;
/** Dash patterns of series 0..3 (a fifth peer repeats the first). */
const DASH = ["", "5 3", "2 3", "8 3 2 3"];

export interface Series { name: string; values: (number | null)[] }
export interface ChartSpec { id: string; title: string; unit: string; series: Series[] }

/** The samples the page holds: the server's window, merged from each poll's `since` slice. */
export class ChartHistory {
  samples: HistorySample[] = [];
  capacity = 150;
  intervalMs = 2_000;

  /** Adds a poll's samples (those after the latest held); a restarted server starts over. */
  merge(view: ConsoleHistoryView | undefined): void {
    if (!view) return;
    this.capacity = view.capacity;
    this.intervalMs = view.intervalMs;
    const last = this.latestAt();
    if (view.samples.length > 0 && view.samples[0]!.at < last - this.intervalMs * this.capacity) this.samples = [];
    for (const s of view.samples) if (s.at > this.latestAt()) this.samples.push(s);
    if (this.samples.length > this.capacity) this.samples.splice(0, this.samples.length - this.capacity);
  }

  latestAt(): number {
    return this.samples.length > 0 ? this.samples[this.samples.length - 1]!.at : 0;
  }

  clear(): void {
    this.samples = [];
  }

  /** The four charts: throughput, per-peer lag, per-peer round time, fsync latency. */
  specs(): ChartSpec[] {
    const s = this.samples;
    const peers = [...new Set(s.flatMap((x) => x.peers.map((p) => p.id)))].sort((a, b) => a - b);
    const perPeer = (pick: (p: HistorySample["peers"][number]) => number | null) =>
      peers.map((id) => ({ name: `node ${id}`, values: s.map((x) => { const p = x.peers.find((q) => q.id === id); return p ? pick(p) : null; }) }));
    return [
      { id: "chart-rate", title: "Writes and merges per second", unit: "/s", series: [{ name: "writes here", values: s.map((x) => x.writesPerSec) }, { name: "merged from peers", values: s.map((x) => x.mergesPerSec) }] },
      { id: "chart-lag", title: "Writes each peer has not confirmed", unit: "", series: perPeer((p) => p.behind) },
      { id: "chart-round", title: "Sync round time per peer", unit: " ms", series: perPeer((p) => p.roundMs) },
      { id: "chart-fsync", title: "Fsync latency (mean per sample)", unit: " ms", series: [{ name: "fsync", values: s.map((x) => x.fsyncMs) }] },
    ];
  }
}

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v: number): string {
  if (v >= 1000) return `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)}k`;
  return v >= 10 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(v >= 1 ? 1 : 2);
}

/** The smallest of 1, 2, 5 × 10^k at or above `v` (an axis top). */
function niceTop(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((t) => t >= v)!;
}

/** In words: what a screen reader says for the chart, and the caption's numbers. */
function summary(spec: ChartSpec, minutes: number): string {
  if (spec.series.length === 0) return `${spec.title}: no peer yet.`;
  const parts = spec.series.map((sr) => {
    const vals = sr.values.filter((v): v is number => v !== null);
    if (vals.length === 0) return `${sr.name}: no data yet`;
    return `${sr.name}: now ${fmt(vals[vals.length - 1]!)}${spec.unit}, peak ${fmt(Math.max(...vals))}${spec.unit}`;
  });
  return `${spec.title}, last ${minutes < 1 ? `${Math.round(minutes * 60)} s` : `${Math.round(minutes)} min`}: ${parts.join("; ")}.`;
}

/** Draws (or redraws) one chart into `fig`. */
function drawChart(fig: HTMLElement, spec: ChartSpec, capacity: number, intervalMs: number): void {
  const n = Math.max(2, capacity);
  const minutes = (capacity * intervalMs) / 60_000;
  const all = spec.series.flatMap((s) => s.values).filter((v): v is number => v !== null);
  const top = niceTop(all.length > 0 ? Math.max(...all) : 0);
  const x = (i: number, len: number) => PAD_L + ((W - PAD_L - PAD_R) * (n - len + i)) / (n - 1);
  const y = (v: number) => PAD_T + (H - PAD_T - PAD_B) * (1 - v / top);
  const text = summary(spec, minutes);
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${spec.id}-t ${spec.id}-d`, class: "chart-svg" });
  svg.append(el("title", { id: `${spec.id}-t` }, spec.title), el("desc", { id: `${spec.id}-d` }, text));
  // Grid: the top, the middle and zero, labelled.
  for (const v of [top, top / 2, 0]) {
    svg.append(el("line", { x1: PAD_L, x2: W - PAD_R, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(el("text", { x: PAD_L - 4, y: y(v) + 3, "text-anchor": "end", class: "axis" }, fmt(v)));
  }
  svg.append(el("text", { x: PAD_L, y: H - 3, class: "axis" }, `−${minutes < 1 ? `${Math.round(minutes * 60)} s` : `${Math.round(minutes)} min`}`));
  svg.append(el("text", { x: W - PAD_R, y: H - 3, "text-anchor": "end", class: "axis" }, "now"));
  spec.series.forEach((sr, k) => {
    // A gap (null) breaks the line: one polyline per run of values.
    let run: string[] = [];
    const flush = () => {
      if (run.length > 0) svg.append(el("polyline", { points: run.join(" "), class: `line s${k % 4}`, "stroke-dasharray": DASH[k % 4]!, "data-series": sr.name }));
      run = [];
    };
    sr.values.forEach((v, i) => {
      if (v === null) return flush();
      run.push(`${x(i, sr.values.length).toFixed(1)},${y(v).toFixed(1)}`);
    });
    if (run.length === 1) run.push(run[0]!); // one sample: a dot-length line, still visible
    flush();
  });
  const legend = document.createElement("ul");
  legend.className = "legend";
  spec.series.forEach((sr, k) => {
    const li = document.createElement("li");
    const key = el("svg", { viewBox: "0 0 18 6", class: "key-svg", "aria-hidden": "true" });
    key.append(el("line", { x1: 0, x2: 18, y1: 3, y2: 3, class: `line s${k % 4}`, "stroke-dasharray": DASH[k % 4]! }));
    const vals = sr.values.filter((v): v is number => v !== null);
    li.append(key, ` ${sr.name}: ${vals.length > 0 ? `${fmt(vals[vals.length - 1]!)}${spec.unit}` : "no data"}`);
    legend.append(li);
  });
  const caption = document.createElement("figcaption");
  const h = document.createElement("h3");
  h.textContent = spec.title;
  caption.append(h, legend);
  fig.replaceChildren(caption, svg);
  fig.dataset.samples = String(Math.max(0, ...spec.series.map((s) => s.values.length)));
  fig.dataset.summary = text;
}

/** Renders every chart into `host` (one figure each, kept across redraws). */
export function renderCharts(host: HTMLElement, history: ChartHistory): void {
  for (const spec of history.specs()) {
    let fig = host.querySelector<HTMLElement>(`#${spec.id}`);
    if (!fig) {
      fig = document.createElement("figure");
      fig.id = spec.id;
      fig.className = "chart";
      host.append(fig);
    }
    drawChart(fig, spec, history.capacity, history.intervalMs);
  }
}
