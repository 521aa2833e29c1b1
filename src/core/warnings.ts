/**
 * A warning log that says each reason once (then at 10, 100, 1000, … repeats): the HTTP
 * server and `wavekv serve` warn through it, so a client or peer refused on every request
 * does not write a line per request.
 *
 *   const warn = warningLog((m) => console.warn(m));
 *   warn("peer 3 refused: bad signature");   // logged; the same reason again is counted
 */
/** Runs of 4+ digits (timestamps, byte counts) do not make a reason new; at most `maxReasons` are remembered. */
export function warningLog(warn: (message: string) => void, maxReasons = 1000): (message: string) => void {
  const seen = new Map<string, number>();
  return (message) => {
    const reason = message.replace(/\d{4,}/g, "#");
    const n = (seen.get(reason) ?? 0) + 1;
    if (n === 1 && seen.size >= maxReasons) seen.clear();
    seen.set(reason, n);
    if (n === 1) warn(message);
    else if (Number.isInteger(Math.log10(n))) warn(`(repeated ${n} times) ${message}`);
  };
}

