/**
 * Keys that URL parsers, naive encoders and shells mangle, for round-trip property tests
 * of the HTTP API, KvClient and the CLI (issue 15 item 13).
 *
 *   for (const key of awkwardKeys(200, seed)) ...
 *
 * Not a test file: the runner skips test/helpers/.
 */
import { seededRandom } from "../../src/transport/memory.js";

/** Keys a URL parser or a naive encoder would mangle, plus random ones. */
export function awkwardKeys(count: number, seed: number): string[] {
  const fixed = [".", "..", "...", "%", "%25", "%2e", "/", "//", "a/../b", "./a", "?", "?x=1", "#", "#frag", " ", " lead", "trail ", "+", "a+b", "&=", "\\", "日本語/キー", "emoji 🎉", "é", "\u0000nul", "tab\tkey", "new\nline", "__wavekv", "__wavekvx/y"];
  return [...fixed, ...randomKeys(count - fixed.length, seed)];
}

/** `count` random keys (1-8 characters) drawn mostly from URL and shell metacharacters; never under __wavekv/. */
export function randomKeys(count: number, seed: number): string[] {
  const alphabet = [..."./%?#&=+ -_~!*'();:@$,[]\\\"<>^`{|}", "é", "日", "🎉", "a", "Z", "0"];
  const rnd = seededRandom(seed);
  const out: string[] = [];
  while (out.length < count) {
    const n = 1 + Math.floor(rnd() * 8);
    let k = "";
    for (let i = 0; i < n; i++) k += alphabet[Math.floor(rnd() * alphabet.length)];
    if (!k.startsWith("__wavekv/")) out.push(k);
  }
  return out;
}
