/**
 * `POST /kv/_batch` (docs/design/0027-atomic-batches.md): a JSON array of operations
 * written as one atomic batch (`node.batch`). Each operation is
 * `{ "type": "put", "key": …, "value": "<UTF-8 text>" }`, the same with `valueBase64`
 * for bytes, or `{ "type": "delete", "key": … }`; the answer is `{ "entries": [...] }`,
 * the entries written, as GET /kv/<key> shows one.
 *
 *   const ops = batchOperations(body);          // INVALID_ARGUMENT on any malformed part
 *   const entries = await node.batch(ops);
 *
 * Keys under the reserved prefix are refused (RESERVED_KEY) as PUT/DELETE refuse them;
 * everything else (count, bytes, a key twice, limits) is node.batch's, with its codes;
 * whatever is refused, nothing is written.
 */
import { WaveKVError } from "../core/errors.js";
import { isReservedKey } from "../core/reserved.js";
import { RESERVED_PREFIX } from "../core/types.js";
import type { BatchOperation } from "../node/batch.js";

/** What `valueBase64` may hold: standard alphabet, padded (what Buffer/btoa write). */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function bad(what: string): WaveKVError {
  return new WaveKVError("INVALID_ARGUMENT", `POST /kv/_batch: ${what}; nothing was written`);
}

/** The operations a request body spells, or INVALID_ARGUMENT (one line) naming the first problem. */
export function batchOperations(body: Uint8Array): BatchOperation[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch (e) {
    throw bad(`the body is not UTF-8 JSON (${(e as Error).message.split("\n")[0]})`);
  }
  if (!Array.isArray(parsed)) throw bad(`the body must be a JSON array of operations ({"type":"put","key":…,"value":…} or {"type":"delete","key":…}), got ${parsed === null ? "null" : typeof parsed}`);
  return parsed.map((op: unknown, i): BatchOperation => {
    if (op === null || typeof op !== "object" || Array.isArray(op)) throw bad(`operation ${i} is not an object`);
    const { type, key, value, valueBase64, ...rest } = op as Record<string, unknown>;
    const extra = Object.keys(rest);
    if (extra.length > 0) throw bad(`operation ${i} has unknown field ${JSON.stringify(extra[0]!.slice(0, 40))}`);
    if (typeof key !== "string") throw bad(`operation ${i}: key must be a string`);
    // As PUT/DELETE /kv refuse them: the node's own bookkeeping is not written through the API.
    if (isReservedKey(key)) throw new WaveKVError("RESERVED_KEY", `POST /kv/_batch: operation ${i}: keys under ${RESERVED_PREFIX} are this node's own bookkeeping and cannot be written through the API; nothing was written`);
    if (type === "delete" || type === "del") {
      if (value !== undefined || valueBase64 !== undefined) throw bad(`operation ${i}: a delete carries no value`);
      return { type: "delete", key };
    }
    if (type !== "put") throw bad(`operation ${i}: type must be "put" or "delete", got ${JSON.stringify(type)?.slice(0, 40)}`);
    if (value !== undefined && valueBase64 !== undefined) throw bad(`operation ${i}: give value or valueBase64, not both`);
    if (typeof value === "string") return { type: "put", key, value };
    if (typeof valueBase64 === "string") {
      if (!BASE64.test(valueBase64)) throw bad(`operation ${i}: valueBase64 is not padded standard base64`);
      return { type: "put", key, value: new Uint8Array(Buffer.from(valueBase64, "base64")) };
    }
    throw bad(`operation ${i}: a put needs value (a string) or valueBase64`);
  });
}
