// Type of the module scripts/build-wasm.mjs generates (src/kernel/kernel-bytes.ts, not
// committed), so `tsc --noEmit` passes on a fresh clone before `npm run build:wasm`.
/** The kernel module's bytes. */
export declare function kernelBytes(): Uint8Array;
