// Child process of test/storage-faults.ts (never a test file): opens the data directory
// argv[2] as node 1 and prints the outcome as one JSON line, so a test can open a
// directory as another user (a real EACCES, which root in the parent would not get).
import { Node } from "../../src/node.js";

const dir = process.argv[2]!;
try {
  const node = await Node.open({ id: 1, dir, fsync: "never", onWarning: () => {} });
  await node.close();
  console.log(JSON.stringify({ ok: true }));
} catch (e) {
  const err = e as Error & { code?: string };
  console.log(JSON.stringify({ ok: false, name: err.name, code: err.code, message: err.message }));
}
