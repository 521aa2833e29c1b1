/**
 * make-style freshness for the build scripts: an output is current when it exists and is
 * newer than every input. Directories count as inputs too (deleting a file changes its
 * directory's mtime), so a removed source also triggers a rebuild. `--force` on the
 * command line always rebuilds.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** Every file under `dir` (recursively) whose name passes `keep`. */
export function filesUnder(dir, keep = () => true) {
  const out = [];
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) out.push(...filesUnder(p, keep));
    else if (keep(p)) out.push(p);
  }
  return out;
}

/** The newest mtime among `paths`; a directory contributes itself and everything under it. */
export function newestMtime(paths) {
  let newest = 0;
  for (const p of paths) {
    const st = statSync(p);
    newest = Math.max(newest, st.mtimeMs);
    if (st.isDirectory()) {
      for (const d of readdirSync(p)) newest = Math.max(newest, newestMtime([join(p, d)]));
    }
  }
  return newest;
}

/** True when nothing needs building: no --force, and each output exists and is newer than every input. */
export function upToDate(outputs, inputs) {
  if (process.argv.includes("--force")) return false;
  const newestInput = newestMtime(inputs);
  return outputs.every((o) => existsSync(o) && statSync(o).mtimeMs > newestInput);
}
