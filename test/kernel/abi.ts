// The kernel ABI's one source of truth: the kernel describes every constant JS mirrors
// (assembly/abi.ts). Its own constants are generated into src/kernel/abi-values.ts (not
// stale, checked here); the ones other layers define in TS are checked here by name. The
// instantiation check (src/kernel/instance.ts) refuses a kernel whose self-description
// differs or that lacks an export, naming it.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import * as abi from "../../src/kernel/abi.js";
import * as record from "../../src/core/record.js";
import { Kernel, kernel } from "../../src/kernel/instance.js";
import { kernelBytes } from "../../src/kernel/kernel-bytes.js";
import { encodeRecordsWasm } from "../../src/codec/kernel-codec.js";
import { encodeRecordsReference } from "../../src/codec/records.js";
import { ARENA_COMPACT_MIN, PrevState, RefuseReason } from "../../src/index/merge-index.js";
import { BUCKETS, GROUPS } from "../../src/index/summary.js";
import { isWaveKVError } from "../../src/core/errors.js";
import { abiTable, abiValuesText } from "../../scripts/kernel-abi.mjs";

type Exports = abi.KernelExports;

/** The constants of other layers the kernel mirrors, by the kernel's name for them. */
function otherLayers(): Map<string, number> {
  const m = new Map<string, number>();
  for (const [name, v] of Object.entries(record)) if (typeof v === "number" && (name.startsWith("D_") || name === "DESCRIPTOR_WORDS")) m.set(name, v);
  record.STOP_REASONS.forEach((reason, i) => m.set(`STOP_${reason.toUpperCase()}`, i));
  m.set("PREV_ABSENT", PrevState.Absent).set("PREV_VALUE", PrevState.Value).set("PREV_TOMBSTONE", PrevState.Tombstone);
  m.set("REFUSE_KEY", RefuseReason.KeyTooLarge).set("REFUSE_VALUE", RefuseReason.ValueTooLarge).set("REFUSE_CLOCK", RefuseReason.ClockDrift);
  m.set("REFUSE_MASKED", RefuseReason.Masked).set("REFUSE_KIND", RefuseReason.BadKind);
  m.set("ARENA_COMPACT_MIN", ARENA_COMPACT_MIN).set("BUCKETS", BUCKETS).set("GROUPS", GROUPS);
  return m;
}

test("src/kernel/abi-values.ts is what the kernel's self-description generates (not stale)", () => {
  const committed = readFileSync(new URL("../../src/kernel/abi-values.ts", import.meta.url), "utf8");
  assert.fixture(committed, abiValuesText(kernel().exports), "run `npm run build:wasm` and commit src/kernel/abi-values.ts");
});

test("the kernel's own constants are exactly the numeric constants src/kernel/abi.ts exports", () => {
  const { names, values } = abiTable(kernel().exports);
  const ts = new Map(Object.entries(abi).filter(([name, v]) => typeof v === "number" && name !== "ABI_FINGERPRINT") as [string, number][]);
  assert.equal(new Set(names), new Set(ts.keys()));
  names.forEach((name, i) => assert.is(values[i], ts.get(name)! >>> 0, name));
});

test("every constant other layers mirror equals the kernel's, by name, and the kernel reports no other", () => {
  const { otherNames, otherValues } = abiTable(kernel().exports);
  const ts = otherLayers();
  assert.is(otherNames.length, otherValues.length, "one value per name");
  otherNames.forEach((name, i) => {
    if (name.startsWith("MODE_")) return; // below, by behaviour
    assert.ok(ts.has(name), `the kernel reports ${name}, which no JS constant mirrors`);
    assert.is(otherValues[i], ts.get(name)! >>> 0, `${name}: kernel ${otherValues[i]}, JS ${ts.get(name)}`);
  });
  for (const name of ts.keys()) assert.ok(otherNames.includes(name), `${name} is mirrored in JS but the kernel does not report it`);
  // The TS twin's slot layout is not checked here: src/index/merge-index.ts binds it from the
  // kernel's generated constants, so it cannot differ.
});

test("MODE_*: the kernel encodes each framing as the TS reference does (src/codec/kernel-codec.ts modeOf)", () => {
  const { otherNames } = abiTable(kernel().exports);
  const records = [1, 2, 3].map((i) => ({ kind: record.RecordKind.Value, key: `k${i}`, value: new Uint8Array([i]), timestamp: 1000 + i, node: 7, seq: 40 + i }));
  for (const framing of ["bare", "framed", "delta"] as const) {
    assert.ok(otherNames.includes(`MODE_${framing.toUpperCase()}`));
    assert.equal(encodeRecordsWasm(records, framing, 1000), encodeRecordsReference(records, framing, 1000), framing);
  }
});

test("every KernelExports function is exported, and the kernel exports no other", () => {
  const e = kernel().exports as unknown as Record<string, unknown>;
  const listed = abi.KERNEL_FUNCTIONS.split(" ");
  for (const name of listed) assert.type(e[name], "function", name);
  const exported = WebAssembly.Module.exports(new WebAssembly.Module(kernelBytes() as Uint8Array<ArrayBuffer>)).map((x) => x.name);
  assert.equal(new Set(exported), new Set([...listed, "memory"]));
});

/** A fresh instance (not the process's kernel) to tamper with. */
function freshInstance(): WebAssembly.Instance {
  return new WebAssembly.Instance(new WebAssembly.Module(kernelBytes() as Uint8Array<ArrayBuffer>), { env: { abort() { throw new Error("abort"); } } });
}

function refusal(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    assert.ok(isWaveKVError(err, "INVALID_ARGUMENT"), String(err));
    return err as Error;
  }
  assert.unreachable("expected a WaveKVError");
  throw new Error("unreachable");
}

test("instantiation refuses a kernel whose self-description differs", () => {
  const inst = freshInstance();
  new Kernel(inst); // untouched: accepted
  const e = inst.exports as unknown as Exports;
  const { names } = abiTable(e);
  const w = new Uint32Array(e.memory.buffer);
  const values = w[(e.abi() >>> 2) + 1]! >>> 2;
  w[values + names.indexOf("H_SIZE")]! += 1; // as if Handle's fields had moved
  const err = refusal(() => new Kernel(inst));
  assert.match(err.message, "a kernel from another wavekv version: ABI fingerprint");
  assert.match(err.message, `not ${abi.ABI_FINGERPRINT.toString(16)}`);
});

test("instantiation refuses a kernel that lacks an export, naming it", () => {
  const inst = freshInstance();
  const exports = { ...inst.exports };
  delete exports.lwwCompare;
  delete exports.selectDelta;
  assert.match(refusal(() => new Kernel({ exports } as WebAssembly.Instance)).message, "a kernel from another wavekv version: no export selectDelta");
  const noMemory = { ...inst.exports, memory: new ArrayBuffer(8) };
  assert.match(refusal(() => new Kernel({ exports: noMemory } as unknown as WebAssembly.Instance)).message, "no export memory");
});

test.run();
