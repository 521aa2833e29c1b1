/**
 * Headless Chromium for the tests and benchmarks that drive it (console, browser bundle, browser store, live push), found and started one way
 * (Debian's chromium driven by playwright-core; WAVEKV_CHROMIUM picks or disables it),
 * plus checks that run inside the console page.
 *
 *   const chromium = findChromium(); const pw = chromium && await loadPlaywright();
 *   const browser = await pw.chromium.launch({ executablePath: chromium, args: CHROMIUM_ARGS });
 *   const failures = await page.evaluate(CONTRAST_CHECK);
 *
 * Not a test file: the runner skips test/helpers/.
 */
import { existsSync } from "node:fs";

/** Flags that keep Chromium off the (closed) network here: see the machine notes. */
export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"];

/** WAVEKV_CHROMIUM, when set, is the only candidate (set it to a missing path to see the skip). */
export function findChromium(): string | undefined {
  const env = process.env.WAVEKV_CHROMIUM;
  const candidates = env ? [env] : ["/usr/bin/chromium", "/usr/lib/chromium/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];
  return candidates.find((p) => existsSync(p));
}

export async function loadPlaywright(): Promise<typeof import("playwright-core") | undefined> {
  try {
    return await import("playwright-core");
  } catch {
    return undefined;
  }
}

export function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms); });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

// The in-page checks are source strings, not functions: a function passed to
// page.evaluate is serialised from the transpiled test, and tsx adds helpers the page lacks.

/**
 * WCAG 2 contrast of every visible text node against its composited background:
 * [{ text, ratio, need }] for each one under 4.5:1 (3:1 for large text). Disabled
 * controls are exempt, as WCAG allows.
 */
export const CONTRAST_CHECK = `(() => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const blend = (t, b) => ({ r: t.r * t.a + b.r * (1 - t.a), g: t.g * t.a + b.g * (1 - t.a), b: t.b * t.a + b.b * (1 - t.a), a: 1 });
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let bg = parse(getComputedStyle(document.documentElement).backgroundColor);
    if (!bg || bg.a < 1) bg = matchMedia("(prefers-color-scheme: dark)").matches ? { r: 18, g: 18, b: 18, a: 1 } : { r: 255, g: 255, b: 255, a: 1 };
    for (const l of layers.reverse()) bg = blend(l, bg);
    return bg;
  };
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.trim();
    const el = n.parentElement;
    if (!text || !el || el.closest("[hidden], .sr-only, .skip, :disabled")) continue;
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || cs.visibility === "hidden") continue;
    const bg = background(el);
    const fg = blend(parse(cs.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(cs.fontSize);
    const large = size >= 24 || (Number(cs.fontWeight) >= 700 && size >= 18.66);
    const need = large ? 3 : 4.5;
    if (ratio < need) out.push({ text: text.slice(0, 40), ratio: Math.round(ratio * 100) / 100, need, color: cs.color });
  }
  return out;
})()`;

/** Form controls without an accessible label (a <label>, aria-label or aria-labelledby). */
export const UNLABELLED_CONTROLS = `[...document.querySelectorAll("input, select, textarea, button")]
  .filter((el) => !(el.labels && el.labels.length > 0) && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby") && !(el.tagName === "BUTTON" && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 80))`;
