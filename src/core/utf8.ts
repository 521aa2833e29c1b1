/**
 * UTF-8 helpers that avoid allocating where the answer is a number.
 *
 *   utf8Length("é") === 2; utf8Encode("é") → Uint8Array [0xc3, 0xa9]
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false });

/** Byte length of `s` in UTF-8; lone surrogates count 3 bytes, as TextEncoder writes U+FFFD. */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) { n += 1; continue; }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { n += 2; i++; continue; }
    }
    n += 2;
  }
  return n;
}

export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s);
}

export function utf8Decode(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Values are bytes; strings are stored as their UTF-8 encoding. */
export function toBytes(value: string | Uint8Array): Uint8Array {
  if (typeof value === "string") return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  throw new TypeError("value must be a string or a Uint8Array");
}
