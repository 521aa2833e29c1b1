/**
 * The 48-byte record descriptor the decoder writes and encode/merge read: 12 u32 words,
 * named as in src/core/record.ts (D_*, word indexes; byte offset = D_* << 2, folded into
 * the load's offset immediate). The kernel reports them in its self-description
 * (assembly/abi.ts), so JS fails at instantiation if the two sides disagree.
 */

export const D_TS_LO: u32 = 0;    // timestamp i64 (base added): lo, then hi
export const D_TS_HI: u32 = 1;
export const D_SEQ_LO: u32 = 2;   // seq u64
export const D_SEQ_HI: u32 = 3;
export const D_NODE: u32 = 4;
export const D_KIND: u32 = 5;
export const D_KEY_OFF: u32 = 6;  // key offset (relative to the input) and length
export const D_KEY_LEN: u32 = 7;
export const D_VAL_OFF: u32 = 8;  // value offset and length (0, 0 unless kind 1)
export const D_VAL_LEN: u32 = 9;
export const D_REC_OFF: u32 = 10; // the whole record (framed: the 8-byte header included)
export const D_REC_LEN: u32 = 11;
export const DESC_WORDS: u32 = 12;
export const DESC_BYTES: usize = <usize>DESC_WORDS << 2;
