// The web console over HTTPS with client credentials, in headless Chromium (playwright-core)
// against a real TLS node on 127.0.0.1 whose CA is made by openssl at test time. The page
// is a secure context (WebCrypto signs); it unlocks with the cluster secret (feed streamed),
// with a read-only credential limited to users/ (its keys only, no feed, no write), with a
// read-write credential limited to app/ (writes inside, refused outside, the node's words
// shown), and refuses an unknown credential. Skipped with a message without openssl or
// Chromium. Not in the Deno subset (there the browser is the runtime).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { X509Certificate, createHash } from "node:crypto";
import { rmSync } from "node:fs";
// @ts-expect-error: a plain .mjs build script, no type declarations
import { writeConsoleAssets } from "../../scripts/build-console.mjs";
import { startServer, type RunningServer } from "../../src/app/serve.js";
import { readTlsFiles } from "../../src/transport/tls.js";
import { parseClientKeys } from "../../src/transport/credentials.js";
import { CHROMIUM_ARGS, findChromium, loadPlaywright } from "../helpers/console-chromium.js";
import { makeTestCerts } from "../helpers/tls-certs.js";

const SECRET = "console-tls-cluster-secret-0123";
const VIEWER = { name: "users-viewer", secret: "users-viewer-secret-0123456789" };
const APP = { name: "app", secret: "app-writer-secret-0123456789" };

await writeConsoleAssets();
const certs = makeTestCerts();
const chromiumPath = findChromium();
const playwright = chromiumPath ? await loadPlaywright() : undefined;
const skip = !certs ? "no openssl on PATH" : !chromiumPath || !playwright ? "no Chromium (or playwright-core)" : undefined;
if (skip) console.warn(`SKIPPED test/app/console-access.ts: ${skip}`);

type Page = import("playwright-core").Page;
const ctx = {} as { node: RunningServer; browser: import("playwright-core").Browser; page: Page; errors: string[] };

test.before(async () => {
  if (skip) return;
  const credentials = parseClientKeys([`${VIEWER.name}:${VIEWER.secret}:ro:users/`, `${APP.name}:${APP.secret}:rw:app/`]);
  ctx.node = await startServer({ id: 1, port: 0, secret: SECRET, credentials, tls: readTlsFiles(certs!.files), log: () => undefined });
  for (const [k, v] of [["users/ada", "Ada Lovelace"], ["users/grace", "Grace Hopper"], ["app/config", "fast"], ["ops/secret-plan", "hidden"]]) await ctx.node.node.put(k!, v!);
  // Trust exactly this certificate's key, as a user who installed the CA would.
  const spki = createHash("sha256").update(new X509Certificate(certs!.cert).publicKey.export({ type: "spki", format: "der" })).digest("base64");
  ctx.browser = await playwright!.chromium.launch({ executablePath: chromiumPath, headless: true, args: [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${spki}`], timeout: 20_000 });
  ctx.page = await ctx.browser.newPage({ ignoreHTTPSErrors: true });
  ctx.page.setDefaultTimeout(10_000);
  ctx.errors = [];
  ctx.page.on("pageerror", (e) => ctx.errors.push(`pageerror: ${e.message}`));
});

test.after(async () => {
  await ctx.browser?.close().catch(() => undefined);
  await ctx.node?.stop().catch(() => undefined);
  if (certs) rmSync(certs.dir, { recursive: true, force: true });
});

async function unlock(name: string, secret: string): Promise<void> {
  await ctx.page.locator("#credential").fill(name);
  await ctx.page.locator("#secret").fill(secret);
  await ctx.page.locator("#secret").press("Enter");
}

async function lock(): Promise<void> {
  await ctx.page.locator("#lock").click();
  await ctx.page.locator("#unlock").waitFor();
}

const keysShown = () => ctx.page.locator("#keys tbody tr[data-key]").evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.key!));

test("over HTTPS the page is a secure context and the cluster secret unlocks everything, feed streamed", async () => {
  if (skip) return;
  await ctx.page.goto(ctx.node.http.url + "/");
  assert.match(ctx.node.http.url, /^https:/);
  assert.equal(await ctx.page.evaluate("[isSecureContext, typeof crypto.subtle]"), [true, "object"]);
  await unlock("", SECRET);
  await ctx.page.locator('#keys tr[data-key="ops/secret-plan"]').waitFor();
  await ctx.page.locator("#conn-text", { hasText: "feed streamed" }).waitFor();
  await lock();
});

test("a read-only credential limited to users/: its keys only, no change feed, no write", async () => {
  if (skip) return;
  await unlock(VIEWER.name, VIEWER.secret);
  await ctx.page.locator('#keys tr[data-key="users/ada"]').waitFor();
  await ctx.page.locator("#conn-text", { hasText: "as users-viewer (ro, users/)" }).waitFor();
  const keys = await keysShown();
  assert.equal(keys, ["users/ada", "users/grace"]);
  assert.not.match(await ctx.page.evaluate("document.body.innerText") as string, "hidden");
  assert.is(await ctx.page.locator("#feed li").count(), 0);
  assert.match(await ctx.page.locator("#feed-locked").innerText(), "users-viewer reads only keys under users/");
  assert.ok(await ctx.page.locator("#w-put").isDisabled());
  assert.is(await ctx.page.evaluate(`sessionStorage.getItem("wavekv.console.credential")`), VIEWER.name);
  await lock();
  assert.is(await ctx.page.evaluate("sessionStorage.length"), 0);
});

test("a read-write credential limited to app/ writes inside its prefix; outside, the node's refusal is shown and nothing changes", async () => {
  if (skip) return;
  await unlock(APP.name, APP.secret);
  await ctx.page.locator('#keys tr[data-key="app/config"]').waitFor();
  await ctx.page.locator("#w-key").fill("app/from-browser");
  await ctx.page.locator("#w-value").fill("written over TLS");
  await ctx.page.locator("#w-put").click();
  await ctx.page.locator("#w-result", { hasText: "Written" }).waitFor();
  assert.is(new TextDecoder().decode(ctx.node.node.get("app/from-browser")!.value!), "written over TLS");
  await ctx.page.locator("#w-key").fill("ops/secret-plan");
  await ctx.page.locator("#w-value").fill("overwritten");
  await ctx.page.locator("#w-put").click();
  await ctx.page.locator("#w-result", { hasText: "Refused" }).waitFor();
  assert.match(await ctx.page.locator("#w-result").innerText(), 'credential app writes only keys under "app/"');
  assert.is(new TextDecoder().decode(ctx.node.node.get("ops/secret-plan")!.value!), "hidden");
  await lock();
});

test("an unknown credential is refused at unlock and not kept", async () => {
  if (skip) return;
  await unlock("nobody", VIEWER.secret);
  await ctx.page.locator("#unlock-error", { hasText: "unknown credential nobody" }).waitFor();
  assert.is(await ctx.page.evaluate("sessionStorage.length"), 0);
  assert.is(await ctx.page.locator("#keys tbody tr").count(), 0);
  assert.equal(ctx.errors, []);
});

test.run();
