/**
 * The wavekv web console, in the browser. Bundled by scripts/build-console.mjs (esbuild)
 * into src/app/console-assets.ts; served by src/app/console.ts at GET / of a `serve` node.
 *
 * Data flow: every POLL_MS it fetches the public `/status` (locked) or the signed
 * `/console/api/state` plus one page of `/kv` (unlocked), and re-renders. The change feed
 * is not polled: once unlocked the page holds the signed stream `/console/api/feed`
 * (frames of src/transport/push-frames.ts, each MAC-checked before it is read) and renders
 * each batch as it arrives; while that stream is down (reconnecting with jittered, capped
 * backoff) the state poll carries the feed as before. Requests are
 * signed with `RequestSigner` from the browser entry (src/transport/fetch.ts: WebCrypto
 * HMAC, pure-TS fallback outside secure contexts), exactly as `serve --secret-file` checks.
 *
 * Invariants:
 * - Store contents (keys, values, addresses, the feed) come only from signed answers,
 *   and leave the DOM when the secret is forgotten. Nothing is written with innerHTML:
 *   keys and values are arbitrary bytes from anyone who may write, so only textContent.
 * - The secret lives in sessionStorage (this tab) and in the signer; never in a URL,
 *   cookie or localStorage.
 * - Signatures carry the server's clock (offset learned from its answers), so a browser
 *   whose clock is off by more than the server's 30 s window still gets in.
 * - The signed path is the route as the server sees it: the page may sit behind a proxy
 *   that mounts the node under a prefix (the page's own directory), as FetchTransport allows.
 */
import { RequestSigner, kvPath } from "../src/transport/fetch.js";
import { FRAME, readPushStream } from "../src/transport/push-frames.js";
import type { ChangeRecord, ClusterMember, ConsoleSnapshot } from "../src/app/console.js";
import type { NodeStatus } from "../src/core/types.js";
import { ChartHistory, renderCharts } from "./charts.js";

const POLL_MS = 1_000;
const SECRET_KEY = "wavekv.console.secret";
/** The client credential's name the secret belongs to ("" or absent: the cluster secret). */
const CREDENTIAL_KEY = "wavekv.console.credential";
/** Feed items kept in the DOM (the server keeps more; this bounds layout work). */
const FEED_SHOWN = 60;
/** Characters of a value shown in the key table; the rest is summarised. */
const VALUE_SHOWN = 160;
/** The node's own bookkeeping (address book): hidden in the key browser unless asked for. */
const INTERNAL_PREFIX = "__wavekv/";

interface KvEntry { key: string; value?: string; valueBase64?: string; timestamp: number; node: number; seq: number; expiresAt?: number }

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const utf8 = new TextEncoder();
const authRequired = document.body.dataset.auth === "hmac";
/** The node this page belongs to: every signature names it. */
const nodeId = Number(document.body.dataset.node);
/** "" when the page is at "/", "/wavekv" when a proxy mounts the node at "/wavekv/". */
const mount = location.pathname.replace(/\/[^/]*$/, "");

let signer: RequestSigner | null = null;
/**
 * What the signer may do (GET /whoami): the cluster secret sees everything; a client
 * credential may be read-only and limited to key prefixes. Such a one gets no feed stream
 * (its frames are MACed with the cluster secret), and a prefix-limited one no changes at all
 * (they show every key's value): the server refuses both, the page does not ask.
 */
interface Scope { credential: string | null; mode: "ro" | "rw" | "cluster"; prefixes: string[] }
let scope: Scope | null = null;
let clockOffset = 0;
let feedCursor = 0;
let lastOk = 0;
let pollTimer: ReturnType<typeof setTimeout> | undefined;
let polling = false;
/** Bumped when the secret is set or forgotten: a poll that started before drops its answer. */
let epoch = 0;
/** Key paging: the `after` cursor of each page visited, so Previous can go back. */
const pages: (string | null)[] = [null];
let hasMore = false;
let lastSnapshot: ConsoleSnapshot | null = null;
/** The feed stream: its controller while one is wanted, and whether it is up now. */
let feedStream: AbortController | null = null;
let feedLive = false;
/** The charts' samples (console/charts.ts): each poll asks only for the ones after the latest held. */
const charts = new ChartHistory();

class Unauthorized extends Error {}

// ------------------------------------------------------------------ requests

async function call(method: string, route: string, body?: string, using: RequestSigner | null = signer): Promise<Response> {
  const url = new URL(mount + route, location.origin);
  const signedPath = url.pathname.slice(mount.length) + url.search;
  const bytes = body === undefined ? new Uint8Array(0) : utf8.encode(body);
  const headers: Record<string, string> = {};
  if (using) Object.assign(headers, await using.sign(method, signedPath, bytes, nodeId, Date.now() + clockOffset));
  const sent = Date.now();
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : bytes, cache: "no-store", credentials: "omit" });
  // The Date header has 1 s resolution: good enough for a 30 s window, refined by `now` below.
  const date = Date.parse(res.headers.get("date") ?? "");
  if (Number.isFinite(date)) clockOffset = date + 500 - (sent + Date.now()) / 2;
  if (res.status === 401) {
    const j = (await res.json().catch(() => ({}))) as { message?: string };
    throw new Unauthorized(j.message ?? "unauthorized");
  }
  return res;
}

async function getJson<T>(route: string, using: RequestSigner | null = signer): Promise<T> {
  const sent = Date.now();
  const res = await call("GET", route, undefined, using);
  if (!res.ok) throw new Error(`${route}: HTTP ${res.status}`);
  const value = (await res.json()) as T & { now?: number };
  if (typeof value.now === "number") clockOffset = value.now - (sent + Date.now()) / 2;
  return value;
}

// ------------------------------------------------------------------ DOM helpers

type Child = Node | string | null | undefined | false;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") el.className = v;
    else el.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

function badge(kind: "ok" | "bad" | "warn" | "muted", text: string): HTMLElement {
  return h("span", { class: `badge ${kind}` }, text);
}

function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "n/a";
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

function fmtMs(ms: number | null): string {
  if (ms === null) return "n/a";
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(0)} ms`;
}

function fsyncNote(st: NonNullable<ConsoleSnapshot["node"]["storage"]>): string {
  const f = st.fsyncLatency;
  if (f.count === 0) return `policy ${st.fsync} · no fsync yet`;
  const p99 = f.p99Ms === null ? "> 1 s" : `≤ ${f.p99Ms} ms`;
  const window = f.recentMeanMs !== null ? `recent mean of ${f.recentCount}` : "mean";
  return `${window} · p99 ${p99} · ${f.count.toLocaleString("en-US")} fsyncs (${st.fsync})`;
}

function fmtAgo(at: number): string {
  const s = Math.max(0, (Date.now() + clockOffset - at) / 1000);
  if (s < 1) return "just now";
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** When an expiring entry (ttlMs) expires, on the node's clock: "expires in 4 min". */
function fmtExpiry(at: number): string {
  const s = (at - (Date.now() + clockOffset)) / 1000;
  if (s <= 0) return "expired";
  if (s < 90) return `expires in ${Math.ceil(s)} s`;
  if (s < 5400) return `expires in ${Math.round(s / 60)} min`;
  if (s < 172_800) return `expires in ${Math.round(s / 3600)} h`;
  return `expires in ${Math.round(s / 86_400)} d`;
}

function fmtTime(ms: number): string {
  const d = new Date(ms);
  return d.toLocaleTimeString(undefined, { hour12: false });
}

function shortDigest(d: string | undefined): string {
  return d ? `${d.slice(0, 12)}…` : "—";
}

function hexOfBase64(b64: string): string {
  const s = atob(b64);
  let out = "";
  for (let i = 0; i < s.length; i++) out += (i > 0 ? " " : "") + s.charCodeAt(i).toString(16).padStart(2, "0");
  return out;
}

function stat(term: string, value: Child, note?: string): HTMLElement[] {
  const dd = h("dd", {}, value);
  if (note) dd.append(h("span", { class: "note" }, note));
  return [h("div", { class: "stat" }, h("dt", {}, term), dd)];
}

function setConn(kind: "ok" | "bad" | "warn", text: string): void {
  $("conn").dataset.kind = kind;
  $("conn-text").textContent = text;
}

// ------------------------------------------------------------------ rendering

function renderNode(s: NodeStatus, snap: ConsoleSnapshot | null): void {
  $("node-title").textContent = `node ${s.id}`;
  document.title = `wavekv · node ${s.id}`;
  const storage = snap?.node.storage;
  const n = (v: number) => v.toLocaleString("en-US");
  const big = (text: string, id?: string) => h("span", id ? { class: "big", id } : { class: "big" }, text);
  const items: HTMLElement[] = [
    ...stat("Live keys", big(n(s.keys), "stat-keys"), snap ? fmtBytes(snap.node.totalBytes) + " of keys and values" : `internal ${INTERNAL_PREFIX} keys not counted`),
    ...stat("Tombstones", big(n(s.tombstones)), "deletes kept until every peer has them"),
    ...stat("Next seq", big(n(s.nextSeq)), "of this node's next write"),
    ...stat("Merged", big(n(s.entriesMerged)), `remote entries · ${n(s.entriesRejected)} refused`),
  ];
  if (snap) {
    items.push(
      ...stat("WAL size", big(storage ? fmtBytes(storage.walBytes) : "n/a"), storage ? (storage.snapshotBytes === null ? "no snapshot yet" : `snapshot ${fmtBytes(storage.snapshotBytes)}`) : "in-memory node: no WAL"),
      ...stat("Fsync latency", big(storage ? fmtMs(storage.fsyncLatency.recentMeanMs ?? storage.fsyncLatency.meanMs) : "n/a"), storage ? fsyncNote(storage) : "in-memory node: no fsync"),
      ...stat("Sync rounds", big(snap.sync ? n(snap.sync.rounds) : "n/a"), snap.sync ? `${n(snap.sync.roundFailures)} failed · ${n(snap.sync.handled)} served to peers` : undefined),
    );
  }
  $("stats").replaceChildren(...items);
  $("ident").replaceChildren(
    h("dt", {}, "Node id"), h("dd", {}, h("code", {}, String(s.id))),
    h("dt", {}, "UUID"), h("dd", {}, h("code", { class: "wrap" }, s.uuid)),
    h("dt", {}, "Digest"), h("dd", {}, h("code", { class: "wrap", id: "stat-digest", title: "SHA-256 over every entry, tombstones included, in key order" }, s.digest)),
  );
}

/**
 * The duplicate-id warning, from the public /status (so a locked page shows it too): peers
 * refusing this node (another node runs with its id, or it was rebuilt and they have not
 * reached it yet), and ids other nodes claim with a uuid not on record here.
 */
function renderConflicts(s: NodeStatus): void {
  const refusedBy = s.refusedBy ?? [];
  const rows: HTMLElement[] = [];
  if (refusedBy.length > 0) {
    const all = s.peers.length > 0 && s.peers.every((p) => refusedBy.includes(p.id));
    const who = all ? `Every peer (${refusedBy.join(", ")})` : `Peer${refusedBy.length > 1 ? "s" : ""} ${refusedBy.join(", ")}`;
    rows.push(h("p", { "data-refused-by": refusedBy.join(",") }, badge("bad", all ? "isolated" : "refused"), " ",
      `${who} refuse${refusedBy.length > 1 || all ? "" : "s"} this node's requests: they hold another uuid for id ${s.id}. Writes acknowledged here do not reach them. If another node runs with id ${s.id}, stop this one and give it a new id; if this node was rebuilt, this clears once they reach it.`));
  }
  for (const d of s.duplicateIds ?? []) {
    rows.push(h("p", { "data-duplicate-id": String(d.id) }, badge(d.confirmed ? "bad" : "warn", d.confirmed ? "two nodes" : "unconfirmed"), " ",
      `Node id ${d.id} is claimed by a second node (uuid `, h("code", {}, d.seenUuid), `): ${d.refused.toLocaleString("en-US")} of its requests refused since ${fmtTime(d.firstSeenAt)}, the last ${fmtAgo(d.lastSeenAt)}. On record: `, h("code", {}, d.uuid),
      d.confirmed ? " (the node at its address answers with it). Give one of them a new id." : ". Give one of them a new id, unless node " + d.id + " was rebuilt (then this clears once it answers)."));
  }
  $("conflicts-body").replaceChildren(...rows);
  $("conflicts").hidden = rows.length === 0;
}

function renderAgreement(cluster: ClusterMember[] | null): void {
  const el = $("agreement");
  if (!cluster) {
    el.replaceChildren(badge("muted", "agreement: unlock to compare digests"));
    return;
  }
  const self = cluster.find((m) => m.self)!;
  const known = cluster.filter((m) => m.digest !== undefined);
  const differ = known.filter((m) => m.digest !== self.digest);
  const unknown = cluster.length - known.length;
  el.dataset.state = differ.length > 0 ? "differ" : unknown > 0 ? "unknown" : "agree";
  if (differ.length > 0) el.replaceChildren(badge("warn", `${differ.length} of ${cluster.length} nodes differ`));
  else if (unknown > 0) el.replaceChildren(badge("warn", `${known.length} of ${cluster.length} digests known, equal so far`));
  else el.replaceChildren(badge("ok", `all ${cluster.length} nodes agree`));
}

function lastSyncCell(m: ClusterMember): Child {
  if (m.self) return h("span", { class: "dim" }, "—");
  const r = m.lastRound;
  if (!r) return h("span", { class: "dim" }, m.heardFrom ? "heard from, no round yet" : "no round yet");
  const detail = `${fmtAgo(r.at)} · ${r.durationMs} ms · sent ${r.sentEntries}, got ${r.receivedEntries}`;
  if (r.ok) return h("span", {}, badge("ok", "ok"), " ", h("span", { class: "dim" }, detail));
  return h("span", {}, badge("bad", "failed"), " ", h("span", { class: "err" }, r.error ?? "error"), h("span", { class: "dim" }, ` · ${fmtAgo(r.at)}${m.consecutiveFailures > 1 ? ` · ${m.consecutiveFailures}× in a row` : ""}`));
}

function cell(label: string, ...children: Child[]): HTMLTableCellElement {
  // One wrapper: on narrow screens the cell is a two-column grid (label, content).
  return h("td", { "data-label": label }, h("span", { class: "cv" }, ...children));
}

/**
 * The locked view's lag cells, from /status alone, in words. How far the peer's own writes
 * go needs its digest-side state (signed), so "ack" is said as what is held here; the
 * peer's confirmation of our writes is a real lag (our head is in /status).
 */
function lockedAck(p: NodeStatus["peers"][number]): Child {
  return h("span", { class: "dim" }, p.ack > 0 ? `holds node ${p.id}'s writes up to seq ${p.ack}` : `holds none of node ${p.id}'s writes yet`);
}

function lockedPeerAck(p: NodeStatus["peers"][number], head: number): Child {
  if (!p.heardFrom) return h("span", { class: "dim" }, "not heard from yet");
  const behind = Math.max(0, head - p.peerAck);
  // This node's writes are seqs 1..head: confirming up to seq k is confirming k of them.
  const said = `confirmed ${Math.min(p.peerAck, head)} of this node's ${head} writes`;
  return lagCell(behind, said);
}

/** A cell whose words may wrap (cluster cells otherwise keep to one line). */
function wordy(td: HTMLTableCellElement): HTMLTableCellElement {
  td.classList.add("wordy");
  return td;
}

function lagCell(behind: number, detail: string): Child {
  return h("span", {}, behind === 0 ? badge("ok", "up to date") : badge("warn", `${behind} behind`), h("span", { class: "dim" }, ` · ${detail}`));
}

function renderCluster(snap: ConsoleSnapshot | null, status: NodeStatus): void {
  const tbody = $("cluster").querySelector("tbody")!;
  if (!snap) {
    // Locked: what /status says, nothing more.
    const lock = h("span", { class: "dim" }, "needs secret");
    const rows = [
      h("tr", { "data-node": String(status.id) }, cell("Node", h("strong", {}, `node ${status.id}`), " ", badge("muted", "this node")), cell("Address", lock.cloneNode(true)), cell("Reachable", badge("ok", "yes")), cell("Digest", h("code", {}, shortDigest(status.digest))), cell("Ack lag", "—"), cell("Peer-ack lag", "—"), cell("Last sync", lock.cloneNode(true))),
      ...status.peers.map((p) => h("tr", { "data-node": String(p.id) },
        cell("Node", h("strong", {}, `node ${p.id}`)), cell("Address", lock.cloneNode(true)), cell("Reachable", p.heardFrom ? badge("muted", "heard from") : badge("muted", "unknown")),
        cell("Digest", lock.cloneNode(true)), wordy(cell("Ack lag", lockedAck(p))), wordy(cell("Peer-ack lag", lockedPeerAck(p, status.nextSeq - 1))), cell("Last sync", lock.cloneNode(true)))),
    ];
    tbody.replaceChildren(...rows);
    return;
  }
  const self = snap.cluster.find((m) => m.self)!;
  tbody.replaceChildren(...snap.cluster.map((m) => {
    const reach = m.self ? badge("ok", "this node") : m.reachable === null ? badge("muted", "no address") : m.reachable ? badge("ok", "reachable") : badge("bad", "unreachable");
    const reachCell = cell("Reachable", reach);
    if (!m.self && m.probe) reachCell.firstElementChild!.append(h("span", { class: "dim" }, m.probe.ok ? ` ${m.probe.latencyMs} ms` : ` ${m.probe.error ?? ""}`));
    const digest = m.digest === undefined ? h("span", { class: "dim" }, "unknown") :
      h("span", {}, h("code", { title: m.digest }, shortDigest(m.digest)), " ", m.self ? "" : m.digest === self.digest ? badge("ok", "same") : badge("warn", "differs"));
    const lag = (n: number | null, raw: string) => n === null ? h("span", { class: "dim" }, `unknown · ${raw}`) : lagCell(n, raw);
    return h("tr", { "data-node": String(m.id), "data-reachable": String(m.reachable) },
      cell("Node", h("strong", {}, `node ${m.id}`), m.self ? " (this)" : ""),
      cell("Address", m.address ? h("code", { class: "wrap" }, m.address) : h("span", { class: "dim" }, "unknown")),
      reachCell,
      cell("Digest", digest),
      cell("Ack lag", m.self ? h("span", { class: "dim" }, "—") : lag(m.ackLag, `ack ${m.ack}`)),
      cell("Peer-ack lag", m.self ? h("span", { class: "dim" }, "—") : lag(m.peerAckLag, `peerAck ${m.peerAck}${m.peerAckLag > 0 && m.bytesBehind !== undefined ? ` · ${m.bytesExact ? "" : "≥ "}${fmtBytes(m.bytesBehind)}` : ""}${m.lastContactAt ? ` · heard ${fmtAgo(m.lastContactAt)}` : ""}`)),
      cell("Last sync", lastSyncCell(m)),
    );
  }));
}

function renderFeed(changes: ConsoleSnapshot["changes"] | null): void {
  const list = $("feed");
  if (!changes || changes.latest < feedCursor) {
    // Locked, or the node restarted (its feed counts from 0 again): start over.
    list.replaceChildren();
    feedCursor = 0;
    return;
  }
  const fresh = changes.items.filter((c) => c.n > feedCursor);
  if (changes.gap) list.prepend(h("li", { class: "gap" }, "… changes missed while this tab was away …"));
  for (const c of fresh) list.prepend(feedItem(c));
  while (list.children.length > FEED_SHOWN) list.lastElementChild!.remove();
  feedCursor = Math.max(feedCursor, changes.latest);
  $("feed-empty").hidden = list.children.length > 0;
}

function feedItem(c: ChangeRecord): HTMLElement {
  const local = lastSnapshot ? c.node === lastSnapshot.node.id : false;
  const value = c.deleted ? h("span", { class: "dim" }, "deleted") :
    h("span", { class: c.encoding === "hex" ? "val hex" : "val" }, c.encoding === "hex" ? badge("muted", "hex") : null, c.encoding === "hex" ? " " : null, c.encoding === "hex" ? (c.preview ?? "").replace(/(..)(?!$)/g, "$1 ") : c.preview ?? "", c.truncated ? h("span", { class: "dim" }, ` … ${fmtBytes(c.bytes)}`) : null);
  return h("li", { "data-key": c.key },
    h("div", { class: "feed-head" },
      c.deleted ? badge("bad", "del") : badge("ok", "put"),
      h("code", { class: "key" }, c.key),
      h("time", { datetime: new Date(c.at).toISOString(), class: "dim" }, fmtTime(c.at))),
    h("div", { class: "feed-body" }, value, h("span", { class: "dim" }, ` · ${local ? "written here" : `from node ${c.node}`} · seq ${c.seq}`)));
}

function renderKeys(entries: KvEntry[] | null): void {
  const tbody = $("keys").querySelector("tbody")!;
  $("keys-locked").hidden = entries !== null;
  $("keys-wrap").hidden = entries === null;
  $("pager").hidden = entries === null;
  $("write").hidden = entries === null;
  $("filter").hidden = entries === null;
  if (!entries) {
    tbody.replaceChildren();
    return;
  }
  if (entries.length === 0) {
    const prefix = ($("prefix") as HTMLInputElement).value;
    // A prefix inside the internal range while those keys are hidden: say why nothing shows.
    const hidden = !showInternal() && (INTERNAL_PREFIX.startsWith(prefix) || prefix.startsWith(INTERNAL_PREFIX));
    const empty = prefix ? `No live key starts with “${prefix}”.` : hidden ? "No key to show." : "The store is empty.";
    tbody.replaceChildren(h("tr", {}, h("td", { colspan: "3", class: "dim" }, hidden ? `${empty} Internal ${INTERNAL_PREFIX} keys are hidden: tick “show internal keys” to list them.` : empty)));
  } else {
    tbody.replaceChildren(...entries.map((e) => {
      let value: Child;
      if (e.valueBase64 !== undefined) {
        const hex = hexOfBase64(e.valueBase64);
        value = h("span", { class: "val hex" }, badge("muted", "hex"), " ", hex.length > VALUE_SHOWN ? `${hex.slice(0, VALUE_SHOWN)}…` : hex);
      } else {
        const text = e.value ?? "";
        value = h("span", { class: "val" }, text.length > VALUE_SHOWN ? `${text.slice(0, VALUE_SHOWN)}…` : text === "" ? h("span", { class: "dim" }, "(empty)") : text);
      }
      const pick = h("button", { type: "button", class: "linkish key", title: "Load into the write form" }, e.key);
      pick.addEventListener("click", () => {
        ($("w-key") as HTMLInputElement).value = e.key;
        ($("w-value") as HTMLTextAreaElement).value = e.value ?? "";
        $("w-value").focus();
      });
      return h("tr", { "data-key": e.key }, cell("Key", pick), cell("Value", value),
        cell("Written", h("span", { class: "dim" }, `${fmtTime(e.timestamp)} · node ${e.node} · seq ${e.seq}`),
          e.expiresAt !== undefined ? h("span", { class: "dim", title: new Date(e.expiresAt).toISOString() }, ` · ${fmtExpiry(e.expiresAt)}`) : null));
    }));
  }
  const page = pages.length;
  $("page-info").textContent = `page ${page}`;
  ($("prev") as HTMLButtonElement).disabled = page <= 1;
  ($("next") as HTMLButtonElement).disabled = !hasMore;
}

/** The charts, from the samples the state answer carried; hidden while locked (they come from signed answers). */
function renderHistory(snap: ConsoleSnapshot | null): void {
  $("charts-card").hidden = snap === null;
  if (!snap) {
    charts.clear();
    $("charts").replaceChildren();
    return;
  }
  charts.merge(snap.history);
  const minutes = Math.round((charts.capacity * charts.intervalMs) / 60_000);
  $("charts-note").textContent = `one sample every ${charts.intervalMs / 1000} s, the last ${minutes > 0 ? `${minutes} min` : `${Math.round((charts.capacity * charts.intervalMs) / 1000)} s`}, kept by the node`;
  renderCharts($("charts"), charts);
}

// ------------------------------------------------------------------ polling

function showInternal(): boolean {
  return ($("show-internal") as HTMLInputElement).checked;
}

/** Inside one of the credential's prefixes (the server refuses a wider listing): its first prefix otherwise. */
function scopedPrefix(typed: string): string {
  const limits = scope?.prefixes ?? [];
  return limits.length === 0 || limits.some((p) => typed.startsWith(p)) ? typed : limits[0]!;
}

function keysRoute(): string {
  const prefix = scopedPrefix(($("prefix") as HTMLInputElement).value);
  const limit = ($("page-size") as HTMLSelectElement).value;
  const after = pages[pages.length - 1];
  const q = new URLSearchParams({ prefix, limit });
  if (after !== null && after !== undefined) q.set("after", after);
  if (!showInternal()) q.set("internal", "0");
  return `/kv?${q}`;
}

async function poll(): Promise<void> {
  if (polling) return;
  polling = true;
  clearTimeout(pollTimer);
  const mine = epoch;
  try {
    if (authRequired && !signer) {
      const status = await getJson<NodeStatus>("/status", null);
      if (mine !== epoch) return;
      lastSnapshot = null;
      renderConflicts(status);
      renderNode(status, null);
      renderAgreement(null);
      renderCluster(null, status);
      renderKeys(null);
      renderFeed(null);
      renderHistory(null);
      setConn("warn", "locked · /status only");
    } else {
      const [snap, kv] = await Promise.all([
        // With the feed streamed, the poll leaves the feed out (feed=0).
        getJson<ConsoleSnapshot>(`/console/api/state?after=${feedCursor}${feedLive || (scope?.prefixes.length ?? 0) > 0 ? "&feed=0" : ""}&since=${charts.latestAt()}`),
        getJson<{ entries: KvEntry[]; more: boolean }>(keysRoute()),
      ]);
      // Answers to a secret forgotten meanwhile must not bring its data back.
      if (mine !== epoch) return;
      lastSnapshot = snap;
      hasMore = kv.more;
      renderConflicts(snap.node);
      renderNode(snap.node, snap);
      renderAgreement(snap.cluster);
      renderCluster(snap, snap.node);
      renderKeys(kv.entries);
      renderHistory(snap);
      if (!feedLive) renderFeed(snap.changes);
      setConn("ok", `${authRequired ? `live · signed${scope?.credential ? ` as ${scope.credential} (${scope.mode}${scope.prefixes.length ? `, ${scope.prefixes.join(" ")}` : ""})` : ""}` : "live · no secret set"}${feedLive ? " · feed streamed" : ""}`);
    }
    lastOk = Date.now();
    $("foot-text").textContent = `updated ${fmtTime(lastOk)} · refreshes every ${POLL_MS / 1000} s`;
  } catch (err) {
    if (mine !== epoch) return;
    if (err instanceof Unauthorized && signer) {
      // The secret was rotated, or never right: drop it and everything it revealed.
      forget(`The node refused the secret (${err.message}).`);
    } else {
      setConn("bad", `offline · ${(err as Error).message}`);
    }
  } finally {
    polling = false;
    // A poll overtaken by a change of secret is redone at once in the new mode.
    if (!document.hidden) pollTimer = setTimeout(() => void poll(), mine !== epoch ? 0 : POLL_MS);
  }
}

// ------------------------------------------------------------------ feed stream

/** Keeps the feed stream open until `forget()`: reconnects after 0.5, 1, 2 … s (capped at 30 s, jittered). */
async function follow(ctrl: AbortController): Promise<void> {
  let failures = 0;
  while (!ctrl.signal.aborted) {
    const mine = epoch;
    try {
      const using = signer;
      const route = `/console/api/feed?after=${feedCursor}`;
      const headers = using ? await using.sign("GET", route, new Uint8Array(0), nodeId, Date.now() + clockOffset) : {};
      const res = await fetch(new URL(mount + route, location.origin), { headers, signal: ctrl.signal, cache: "no-store", credentials: "omit" });
      if (!res.ok || !res.body) throw new Error(`feed: HTTP ${res.status}`);
      await readPushStream(res.body, {
        server: nodeId,
        nonce: headers["x-wavekv-nonce"] ?? "",
        ...(using ? { mac: (input: Uint8Array) => using.mac(input) } : {}),
        onFrame: (type, payload) => {
          if (mine !== epoch) throw new Error("secret changed");
          if (type === FRAME.hello) { feedLive = true; failures = 0; }
          if (type === FRAME.feed) renderFeed(JSON.parse(new TextDecoder().decode(payload)) as ConsoleSnapshot["changes"]);
        },
      });
    } catch {
      failures++;
    } finally {
      feedLive = false;
    }
    const full = Math.min(30_000, 500 * 2 ** Math.min(failures, 6));
    await new Promise((r) => setTimeout(r, full / 2 + Math.random() * (full / 2)));
  }
}

function startFeed(): void {
  if (feedStream || (authRequired && (!signer || scope?.mode !== "cluster"))) return;
  feedStream = new AbortController();
  void follow(feedStream);
}

function stopFeed(): void {
  feedStream?.abort();
  feedStream = null;
  feedLive = false;
}

function forget(message = ""): void {
  stopFeed();
  signer = null;
  scope = null;
  epoch++;
  sessionStorage.removeItem(SECRET_KEY);
  sessionStorage.removeItem(CREDENTIAL_KEY);
  lastSnapshot = null;
  renderKeys(null);
  renderFeed(null);
  renderHistory(null);
  // Addresses, lags and storage came from signed answers too: gone until /status answers.
  $("cluster").querySelector("tbody")!.replaceChildren();
  $("stats").replaceChildren();
  renderAgreement(null);
  $("feed").hidden = true;
  $("feed-locked").hidden = false;
  showUnlock(message);
  void poll();
}

function showUnlock(message: string): void {
  $("unlock").hidden = !authRequired || signer !== null;
  $("lock").hidden = !authRequired || signer === null;
  $("unlock-error").textContent = message;
}

function unlocked(s: RequestSigner, sc: Scope): void {
  signer = s;
  scope = sc;
  epoch++;
  stopFeed();
  startFeed();
  const noFeed = sc.prefixes.length > 0;
  $("feed").hidden = noFeed;
  $("feed-locked").hidden = !noFeed;
  $("feed-locked").textContent = noFeed ? `Credential ${sc.credential} reads only keys under ${sc.prefixes.join(", ")}: the change feed (every key) is not shown.` : "Enter the secret to see changes.";
  if (sc.prefixes.length > 0 && !($("prefix") as HTMLInputElement).value) ($("prefix") as HTMLInputElement).value = sc.prefixes[0]!;
  ($("w-put") as HTMLButtonElement).disabled = sc.mode === "ro";
  ($("w-del") as HTMLButtonElement).disabled = sc.mode === "ro";
  showUnlock("");
}

/** Checks a secret (and credential name) with the node: resolves to what it may do. */
function probe(candidate: RequestSigner): Promise<Scope> {
  return getJson<Scope>("/whoami", candidate);
}

// ------------------------------------------------------------------ events

$("unlock-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("secret") as HTMLInputElement;
  const secret = input.value;
  if (!secret) {
    $("unlock-error").textContent = "Enter the secret first.";
    input.focus();
    return;
  }
  const name = ($("credential") as HTMLInputElement).value.trim();
  const candidate = new RequestSigner(secret, name || undefined);
  $("unlock-error").textContent = "Checking…";
  probe(candidate).then((sc) => {
    sessionStorage.setItem(SECRET_KEY, secret);
    sessionStorage.setItem(CREDENTIAL_KEY, name);
    input.value = "";
    unlocked(candidate, sc);
    void poll();
    $("prefix").focus();
  }, (err: Error) => {
    $("unlock-error").textContent = err instanceof Unauthorized ? `The node refused this secret (${err.message}).` : `Could not reach the node: ${err.message}`;
    input.select();
  });
});

$("lock").addEventListener("click", () => {
  forget("");
  $("secret").focus();
});

let filterTimer: ReturnType<typeof setTimeout> | undefined;
const refilter = () => {
  pages.length = 1;
  pages[0] = null;
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => void poll(), 200);
};
$("prefix").addEventListener("input", refilter);
$("page-size").addEventListener("change", refilter);
$("show-internal").addEventListener("change", refilter);
$("filter").addEventListener("submit", (ev) => { ev.preventDefault(); refilter(); });

$("next").addEventListener("click", () => {
  const rows = $("keys").querySelectorAll<HTMLElement>("tbody tr[data-key]");
  const last = rows[rows.length - 1]?.dataset.key;
  if (!hasMore || last === undefined) return;
  pages.push(last);
  void poll();
});
$("prev").addEventListener("click", () => {
  if (pages.length > 1) pages.pop();
  void poll();
});

async function write(method: "PUT" | "DELETE"): Promise<void> {
  const key = ($("w-key") as HTMLInputElement).value;
  const value = ($("w-value") as HTMLTextAreaElement).value;
  const out = $("w-result");
  if (!key) {
    out.textContent = "A key is needed.";
    $("w-key").focus();
    return;
  }
  out.textContent = method === "PUT" ? "Writing…" : "Deleting…";
  try {
    // An expiring write: the server checks ttlMs (400 with the reason when it is not 1 ms to 10 years).
    const ttl = method === "PUT" ? ($("w-ttl") as HTMLInputElement).value.trim() : "";
    const path = kvPath(key) + (ttl === "" ? "" : `${kvPath(key).includes("?") ? "&" : "?"}ttlMs=${encodeURIComponent(ttl)}`);
    const res = await call(method, path, method === "PUT" ? value : undefined);
    const j = (await res.json().catch(() => ({}))) as { message?: string; seq?: number };
    out.textContent = res.ok ? `${method === "PUT" ? "Written" : "Deleted"} “${key}” (seq ${j.seq}).` : `Refused: ${j.message ?? `HTTP ${res.status}`}`;
    void poll();
  } catch (err) {
    out.textContent = `Failed: ${(err as Error).message}`;
  }
}
$("write").addEventListener("submit", (ev) => { ev.preventDefault(); void write("PUT"); });
$("w-del").addEventListener("click", () => void write("DELETE"));

document.addEventListener("visibilitychange", () => {
  // A hidden tab stops polling (each poll costs the node a digest and peer probes).
  if (!document.hidden) void poll();
  else clearTimeout(pollTimer);
});

// ------------------------------------------------------------------ start

const saved = authRequired ? sessionStorage.getItem(SECRET_KEY) : null;
if (saved) {
  // The scope is asked again (a credential may have changed since a reload); unreachable: the cluster secret's, or read-only.
  const restored = new RequestSigner(saved, sessionStorage.getItem(CREDENTIAL_KEY) || undefined);
  const guess: Scope = { credential: restored.credential ?? null, mode: restored.credential ? "ro" : "cluster", prefixes: [] };
  probe(restored).then((sc) => unlocked(restored, sc), (err: Error) => (err instanceof Unauthorized ? forget(`The node refused the secret (${err.message}).`) : unlocked(restored, guess))).finally(() => void poll());
} else if (!authRequired) {
  $("feed").hidden = false;
  $("feed-locked").hidden = true;
  startFeed();
}
showUnlock("");
void poll();
