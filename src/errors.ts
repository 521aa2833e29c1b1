/**
 * Every failure wavekv reports is a `WaveKVError` with a stable `code`.
 *
 *   try { await node.put(k, v) } catch (e) { if (isWaveKVError(e, "STORE_FULL")) ... }
 *
 * Codes are part of the public API: append only, never renamed.
 */
export type ErrorCode =
  | "KEY_TOO_LARGE"
  | "VALUE_TOO_LARGE"
  | "STORE_FULL"
  | "REJECTED"
  | "BAD_ENVELOPE"
  | "UUID_MISMATCH"
  | "CORRUPT_WAL"
  | "CORRUPT_SNAPSHOT"
  | "CLOSED"
  | "IO"
  | "LOCKED"
  | "INVALID_ARGUMENT"
  | "MISSING_SNAPSHOT"
  | "MISSING_WAL";

export class WaveKVError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = "WaveKVError";
    this.code = code;
  }
}

export function isWaveKVError(e: unknown, code?: ErrorCode): e is WaveKVError {
  return e instanceof WaveKVError && (code === undefined || e.code === code);
}
