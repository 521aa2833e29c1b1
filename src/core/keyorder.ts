/**
 * Key order is the order of UTF-8 bytes (SPEC section 1), which is Unicode code point
 * order. JavaScript compares UTF-16 code units, which disagrees only when a surrogate
 * (U+D800–U+DFFF, half of a code point above U+FFFF) meets a unit in U+E000–U+FFFF.
 * Shifting both ranges makes code-unit comparison agree with code-point order without
 * encoding anything: O(common prefix), no allocation.
 *
 *   keys.sort(compareKeys)
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}
