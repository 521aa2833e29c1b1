/**
 * SVG bar charts of ratios, written by the suite (no dependency): one chart per group
 * with a bar per case and runtime, on a log scale centred on 1x (the baseline), and one
 * chart of every target as achieved ÷ required.
 *
 *   writeFileSync("bench/results/store.svg", ratioChart("store in memory", series));
 */

export interface Bar {
  label: string;
  /** One ratio per runtime (undefined: not measured there). */
  values: (number | undefined)[];
  /** Printed after the bar, per runtime. */
  captions: string[];
}

const COLORS = ["#2f6db5", "#e08a1e", "#4a9a4a", "#9a4a9a"];
const ROW_H = 18;
const LABEL_W = 420;
const PLOT_W = 420;
const CAPTION_W = 250;

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/**
 * A horizontal bar chart on a log10 axis. Bars start at 1x, so a bar to the right is
 * "more than the baseline" and one to the left "less"; `lowerIsBetter` is printed in the
 * subtitle so a reader knows which side wins.
 */
export function ratioChart(title: string, subtitle: string, runtimes: string[], bars: Bar[], marker?: { at: number; label: string }): string {
  const finite = bars.flatMap((b) => b.values).filter((v): v is number => v !== undefined && Number.isFinite(v) && v > 0);
  let lo = Math.min(1, ...finite, marker?.at ?? 1);
  let hi = Math.max(1, ...finite, marker?.at ?? 1);
  lo = 10 ** Math.floor(Math.log10(lo) - 1e-9);
  hi = 10 ** Math.ceil(Math.log10(hi) + 1e-9);
  if (hi / lo < 10) hi = lo * 10;
  const x = (v: number) => LABEL_W + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * PLOT_W;
  const perBar = runtimes.length * ROW_H + 8;
  const top = 52;
  const height = top + bars.length * perBar + 34;
  const width = LABEL_W + PLOT_W + CAPTION_W;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  out.push(`<text x="8" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="8" y="36" fill="#555">${esc(subtitle)}</text>`);
  runtimes.forEach((r, i) => {
    out.push(`<rect x="${width - 160 + i * 80}" y="8" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${width - 146 + i * 80}" y="17">${esc(r)}</text>`);
  });
  // Decade grid lines.
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    const gx = x(d);
    out.push(`<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${height - 28}" stroke="${d === 1 ? "#333" : "#ddd"}" stroke-width="${d === 1 ? 1.5 : 1}"/>`);
    out.push(`<text x="${gx}" y="${height - 14}" text-anchor="middle" fill="#555">${d >= 1 ? d : d.toPrecision(1)}x</text>`);
  }
  if (marker) {
    const mx = x(marker.at);
    out.push(`<line x1="${mx}" y1="${top - 6}" x2="${mx}" y2="${height - 28}" stroke="#c33" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${mx + 3}" y="${top - 8}" fill="#c33">${esc(marker.label)}</text>`);
  }
  bars.forEach((b, i) => {
    const y0 = top + i * perBar;
    out.push(`<text x="${LABEL_W - 8}" y="${y0 + (runtimes.length * ROW_H) / 2 + 4}" text-anchor="end">${esc(b.label.length > 66 ? b.label.slice(0, 64) + "…" : b.label)}</text>`);
    b.values.forEach((v, r) => {
      const y = y0 + r * ROW_H;
      if (v === undefined || !Number.isFinite(v) || v <= 0) {
        out.push(`<text x="${x(1) + 4}" y="${y + 13}" fill="#999">n/a (no figure or no target on this runtime)</text>`);
        return;
      }
      const a = x(Math.min(Math.max(v, lo), hi));
      const from = Math.min(a, x(1));
      out.push(`<rect x="${from}" y="${y + 2}" width="${Math.max(1, Math.abs(a - x(1)))}" height="${ROW_H - 4}" fill="${COLORS[r % COLORS.length]}"/>`);
      out.push(`<text x="${LABEL_W + PLOT_W + 6}" y="${y + 13}" fill="#333">${esc(b.captions[r] ?? "")}</text>`);
    });
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
