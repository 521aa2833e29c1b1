/**
 * Delta-state sync bookkeeping (SPEC section 3, upstream RFC 0001): what this node
 * covers (`acks`), what each peer reported it covers (`peerAcks`), and the three calls
 * a round is made of.
 *
 *   A: req  = node.prepareSync(B)            entries = delta(A, peerAcks[B]); no digest
 *   B: resp = nodeB.handleEnvelope(req)      merge; adopt req.acks if complete (R1, R2)
 *   A: out  = node.applyEnvelope(resp)       merge; adopt resp.acks on the final page
 *
 * Ingress (docs/PROTOCOL.md §4.1): every entry is checked before it merges (seq in
 * 1..MAX_SEQ, exact timestamp, and none of our own origin at or above nextSeq outside the
 * relearning window); a peer's ack of our id is clamped to the seqs we handed out.
 *
 * Invariant (INV): acks[n] never exceeds what this node covers of origin n. Each rule
 * below exists to keep it: adopt only after a whole delta merged (R1), only on a final
 * page (R2), never from a push (R3), and entries + acks of one envelope come from one
 * synchronous read of the state (R4 — JavaScript runs this without interleaving).
 *
 * Divergence check (docs/PROTOCOL.md §5): requests advertise `Feature.SummaryRoot`;
 * responses then carry the range-summary root (kept incrementally in the kernel)
 * instead of the SHA-256 digest. A root mismatch that persists over quiescent rounds
 * starts a bucket repair inside the same sync round:
 *
 *   A → B  normal request + summaryGroups (A's 64 group hashes)
 *   B → A  normal response + summaryBuckets (B's buckets of the groups that differ)
 *   A → B  repair request: repairBuckets = differing buckets, entries = A's entries in them
 *   B → A  repair response: B's entries in them (read before merging A's), B's root
 *
 * Repair envelopes are like pushes (R3): they merge, never move or record acks. After
 * `bucketRepairAttempts` repairs that did not make the roots equal, the full reset
 * (forget coverage, resend everything) remains the last resort.
 */
import type { DecodedBatch } from "../core/record.js";
import { ENVELOPE_VERSION, ENVELOPE_VERSION_DELTA, Feature, MAX_ENVELOPE_ENTRIES, MAX_SEQ, encodedEntriesOf, envelopeWithEncodedEntries, type DeltaCursor, type EncodedEntries, type Envelope } from "./envelope.js";
import { BUCKETS, differingBuckets } from "../index/summary.js";
import { bucketEntries, deltaPage, differingBucketHashes, noteExpiryPeer, withHeldBack, type DeltaPage } from "./delta.js";
import { WaveKVError } from "../core/errors.js";
import type { BatchOutcome } from "../state/replica.js";
import type { PeerStatus } from "../core/types.js";
import { decodeEntries, ingressRefusals, mergeGroupsOf, mergeInSlices, type MergeSlicing, type Merged } from "./ingress.js";
import type { MergeGroups } from "../state/batch-ranges.js";
import { alignHold } from "../state/delta-slots.js";
import type { ProtocolHost, SyncTuning } from "./host.js";
import { HoldBack } from "./hold-back.js";
import { heldFields, minAcks, withHeldAcks } from "./ack-maps.js";
import { resumeAfterAbort, samePeer, type MergeOutcome, type Round } from "./round.js";

export type { MergeSlicing } from "./ingress.js";
export type { MergeOutcome } from "./round.js";
export { DEFAULT_SYNC_TUNING, type ProtocolHost, type SyncTuning } from "./host.js";

/**
 * A bucket repair is worth it while the damage is local: past this many differing
 * buckets (a quarter of them) the full reset costs about the same and is simpler.
 */
const MAX_REPAIR_BUCKETS = BUCKETS / 4;

export class SyncProtocol {
  readonly acks = new Map<number, number>();
  readonly peerAcks = new Map<number, Map<number, number>>();
  readonly heardFrom = new Set<number>();
  /** The uuid on record for each node id, learned from requests and responses. */
  readonly uuids = new Map<number, string>();
  /** Peers whose last envelope advertised Feature.Expiry: our requests to them carry expiring entries (src/sync/delta.ts). */
  readonly expiryPeers = new Set<number>();
  readonly #rounds = new Map<number, Round>();
  readonly #mismatches = new Map<number, number>();
  readonly #resetRequested = new Set<number>();
  /** Peers whose next request carries our group hashes (a bucket repair begins). */
  readonly #wantBuckets = new Set<number>();
  /** Peers whose next request is a repair of these buckets. */
  readonly #repairPending = new Map<number, number[]>();
  /** Bucket repairs since the roots were last seen equal, per peer. */
  readonly #repairAttempts = new Map<number, number>();
  readonly #hold: HoldBack;
  #bootstrapping = false;
  /**
   * Set by the node when recovery reported damage (a truncated log tail, a lost snapshot):
   * seqs of ours may be spent that the log no longer shows, so the responses of the next
   * round may teach them (like a bootstrap), until one round has completed.
   */
  relearnUntilRound = false;
  entriesMerged = 0;
  entriesRejected = 0;
  digestResets = 0;
  /** Bucket repairs started, and entries sent / received by repair envelopes (tests, metrics). */
  bucketRepairs = 0;
  repairEntriesSent = 0;
  repairEntriesReceived = 0;

  readonly tuning: SyncTuning;

  constructor(private readonly host: ProtocolHost, tuning: SyncTuning) {
    // Never page past what a receiver accepts (envelope.ts MAX_ENVELOPE_ENTRIES).
    this.tuning = { ...tuning, maxDeltaEntries: Math.max(1, Math.min(tuning.maxDeltaEntries, MAX_ENVELOPE_ENTRIES)) };
    this.#hold = new HoldBack(host.id, this.tuning.holdBack ?? true);
  }

  /** While bootstrapping, our own coverage is unknown: never adopt a requester's acks. */
  beginBootstrap(): void { this.#bootstrapping = true; }
  finishBootstrap(): void { this.#bootstrapping = false; }
  get bootstrapping(): boolean { return this.#bootstrapping; }

  /**
   * The explicit, bounded relearning window (docs/PROTOCOL.md "Hostile peers"): only while
   * it is open may a peer's claim about our own origin — an entry of ours at or above
   * nextSeq, or its ack of our id — move nextSeq, and only from a response to our own
   * request, never above MAX_SEQ. Open from bootstrap() until a round succeeded (a node
   * rebuilt after losing its directory), or after a damaged recovery until one round ended.
   */
  get relearning(): boolean { return this.#bootstrapping || this.relearnUntilRound; }

  noteOwnWrite(seq: number): void {
    const id = this.host.id;
    // Capped: an ack above MAX_SEQ could not be encoded (a directory poisoned by an older build).
    if (seq > (this.acks.get(id) ?? 0)) this.acks.set(id, Math.min(seq, MAX_SEQ));
  }

  /**
   * A peer's acks as we record them: its claim about our own origin is capped at the
   * last seq we handed out. A claim to cover writes we never made would otherwise hide
   * our next writes from its delta (and it is not evidence of anything: see `relearning`).
   */
  #clampOwn(acks: ReadonlyMap<number, number>): Map<number, number> {
    const out = new Map(acks);
    const id = this.host.id, own = out.get(id);
    if (own !== undefined && own > this.host.nextSeq() - 1) out.set(id, Math.max(0, this.host.nextSeq() - 1));
    return out;
  }

  forgetPeer(peer: number): void {
    this.uuids.delete(peer);
    this.expiryPeers.delete(peer);
    this.host.conflicts?.forget(peer);
    this.acks.delete(peer);
    this.peerAcks.delete(peer);
    this.heardFrom.delete(peer);
    this.#rounds.delete(peer);
    this.#mismatches.delete(peer);
    this.#resetRequested.delete(peer);
    this.#wantBuckets.delete(peer);
    this.#repairPending.delete(peer);
    this.#repairAttempts.delete(peer);
    this.#hold.forget(peer);
  }

  peerStatus(peer: number): PeerStatus {
    const status: PeerStatus = {
      id: peer,
      ack: this.acks.get(peer) ?? 0,
      peerAck: this.peerAcks.get(peer)?.get(this.host.id) ?? 0,
      heardFrom: this.heardFrom.has(peer),
      discovered: false,
    };
    const uuid = this.uuids.get(peer);
    if (uuid !== undefined) status.uuid = uuid;
    return status;
  }

  #envelope(fields: Omit<Envelope, "entries" | "version" | "senderId" | "senderUuid" | "acks"> & { acks?: Map<number, number> }, withAcks: boolean, page: DeltaPage | null, encoded?: EncodedEntries): Envelope {
    const entries = encoded ?? (page ? page.encoded : { bytes: new Uint8Array(0), count: 0, base: 0 });
    return envelopeWithEncodedEntries(
      // Every envelope says what we read: summary roots, delta-coded bodies (3 bytes; a responder answers with them).
      {
        version: entries.framing === "delta" ? ENVELOPE_VERSION_DELTA : ENVELOPE_VERSION, senderId: this.host.id, senderUuid: this.host.uuid,
        acks: withAcks ? new Map(this.acks) : new Map(), features: Feature.SummaryRoot | Feature.Expiry | (this.tuning.deltaBodies ? Feature.DeltaBodies : 0) | (this.#bootstrapping ? 0 : this.#hold.feature),
        senderClock: this.host.now?.(), ...fields,
      },
      entries,
    );
  }

  /** The request of a round (or of the round's next page). Carries no digest. */
  prepareSync(peer: number): Envelope {
    if (peer === this.host.id) throw new WaveKVError("INVALID_ARGUMENT", "a node does not sync with itself");
    const round = this.#rounds.get(peer);
    const resetAcks = this.#resetRequested.has(peer) || undefined;
    if (round?.cursor) {
      // Continuing a paged response: our entries went with the first request.
      return this.#envelope({ resumeFrom: round.cursor, page: { last: false }, resetAcks }, true, null);
    }
    const repair = this.#repairPending.get(peer);
    if (repair !== undefined) {
      // Bucket repair: no acks (R3: nothing about coverage travels or moves), our entries of those buckets.
      this.#repairPending.delete(peer);
      this.#rounds.delete(peer);
      const { buckets, encoded } = bucketEntries(this.host.state, repair, "bare", this.expiryPeers.has(peer));
      this.repairEntriesSent += encoded.count;
      return this.#envelope({ repairBuckets: buckets }, false, null, encoded);
    }
    const summaryGroups = this.#wantBuckets.has(peer) ? this.host.state.summary().groups : undefined;
    this.#wantBuckets.delete(peer);
    const base = this.peerAcks.get(peer) ?? new Map<number, number>();
    const hold = alignHold(this.#hold.hold(peer), this.host.state.batches);
    const page = deltaPage(this.host.state, base, undefined, this.tuning.maxDeltaEntries, this.tuning.maxDeltaBytes, "bare", hold, this.expiryPeers.has(peer));
    this.#hold.ownRound(peer, page.tops);
    this.#rounds.set(peer, { minAcks: null, clean: true, exchanged: page.encoded.count, version: this.host.state.version, held: (page.held?.length ?? 0) > 0, whole: page.last });
    return withHeldBack(this.#envelope({ page: page.last ? undefined : { last: false }, resetAcks, summaryGroups, ...heldFields(this.acks, page.held, hold) }, true, page), page);
  }

  /**
   * A request's sender must match the uuid on record for its id. A request never
   * replaces that record: only an answer to our own request (applyEnvelope) does — the
   * node at the address we hold for that id is the evidence — so a squatter that only
   * sends requests cannot lock the real node out once it has answered us.
   */
  #checkIdentity(env: Envelope): void {
    if (env.senderId === this.host.id) throw new WaveKVError("BAD_ENVELOPE", `envelope claims to come from this node (${env.senderId})`);
    const known = this.uuids.get(env.senderId);
    if (known !== undefined && known !== env.senderUuid) {
      this.host.conflicts?.refused(env.senderId, known, env.senderUuid);
      throw new WaveKVError("UUID_MISMATCH", `node id ${env.senderId} is on record with uuid ${known}, but this request comes from ${env.senderUuid}: two nodes share an id (give one of them a new id), or the node was rebuilt (it is recognised once it answers one of our requests)`);
    }
  }

  #mergeBatch(batch: DecodedBatch, relearn: boolean, groups: MergeGroups | undefined): BatchOutcome {
    const { refuse, decided } = ingressRefusals(batch, this.host.id, this.host.nextSeq(), relearn);
    const out = this.host.mergeRemote(batch, refuse, decided, relearn, groups);
    this.entriesMerged += out.merged;
    this.entriesRejected += out.rejected;
    return out;
  }

  #merge(env: Envelope, relearn = false): Merged {
    const batch = decodeEntries(env);
    if (batch === null) return { merged: 0, rejected: 0, complete: true, reasons: [], received: 0 };
    try {
      return { ...this.#mergeBatch(batch, relearn, mergeGroupsOf(env, batch)), received: batch.count };
    } finally {
      batch.release(); // merged (or refused whole): its descriptors need not be copied out of the kernel
    }
  }

  /** #merge in slices (src/sync/ingress.ts mergeInSlices); the caller adopts acks only after the last. */
  #mergeSliced(env: Envelope, relearn: boolean, s: MergeSlicing): Promise<Merged> {
    return mergeInSlices(env, s, (slice, groups) => this.#mergeBatch(slice, relearn, groups));
  }

  /** Whether `env` is worth slicing (a bucket repair is not: its reply is read before its merge). */
  #sliced(env: Envelope, s: MergeSlicing | undefined): s is MergeSlicing {
    return s !== undefined && env.repairBuckets === undefined && encodedEntriesOf(env).count > s.sliceEntries;
  }

  /** R1 adoption; our own origin only up to what we handed out (a peer's claim is no proof). */
  #adopt(acks: ReadonlyMap<number, number>): void {
    for (const [origin, seq] of this.#clampOwn(acks)) {
      if (seq > (this.acks.get(origin) ?? 0)) this.acks.set(origin, seq);
    }
  }

  /** Responder: merge a request (or a push) and answer with our delta against its acks. */
  handleEnvelope(env: Envelope): Envelope {
    this.#admit(env);
    return this.#respond(env, null);
  }

  /** handleEnvelope, a large envelope merged in slices (see #mergeSliced). */
  async handleEnvelopeInSlices(env: Envelope, s: MergeSlicing): Promise<Envelope> {
    if (!this.#sliced(env, s)) return this.handleEnvelope(env);
    this.#admit(env);
    return this.#respond(env, await this.#mergeSliced(env, false, s));
  }

  /** Identity and discovery: refused here, nothing of the request is merged or recorded. */
  #admit(env: Envelope): void {
    this.#checkIdentity(env);
    if (env.senderClock !== undefined) this.host.noteClock?.(env.senderId, env.senderClock);
    noteExpiryPeer(this.expiryPeers, env);
    const sender = env.senderId;
    // Discovery first: a sender refused by the peer bound leaves no uuid record either.
    if (!this.host.isPeer(sender)) this.host.discoverPeer(sender);
    this.uuids.set(sender, env.senderUuid);
  }

  #respond(env: Envelope, merged: Merged | null): Envelope {
    const sender = env.senderId;
    // A requester's ack of our id moves nothing (only a response may, while relearning).
    const acks = this.#clampOwn(env.acks);
    // Delta-coded bodies only for a requester that said it reads them (an older one gets bare bodies).
    const framing = this.tuning.deltaBodies && ((env.features ?? 0) & Feature.DeltaBodies) !== 0 ? "delta" : "bare";
    if (env.repairBuckets !== undefined && !env.pushOnly) {
      // Bucket repair (R3-like: no acks move or are recorded). Our entries of those
      // buckets are read before merging the requester's, so its winners are not echoed.
      const { buckets, encoded } = bucketEntries(this.host.state, env.repairBuckets, framing, ((env.features ?? 0) & Feature.Expiry) !== 0);
      this.#merge(env);
      this.repairEntriesSent += encoded.count;
      return this.#envelope({ repairBuckets: buckets, summaryRoot: this.host.state.summaryRoot() }, false, null, encoded);
    }
    const outcome = merged ?? this.#merge(env);
    if (env.pushOnly) {
      // R3: a push merges data and moves no acks, in either direction.
      return this.#envelope({ pushOnly: true }, false, null);
    }
    this.heardFrom.add(sender);
    this.#hold.noteFeatures(sender, env.features);
    const told = this.#clampOwn(withHeldAcks(acks, this.#hold.read(env.heldAcks))); // what it covers; `acks` (capped) is ours to adopt
    if (env.resetAcks) {
      this.peerAcks.delete(sender);
      this.#resetRequested.delete(sender);
    }
    const requestComplete = env.page === undefined || env.page.last;
    if (outcome.complete && requestComplete && !this.#bootstrapping) this.#adopt(acks);
    this.peerAcks.set(sender, told);
    // A reset asks for everything: its acks are what is in doubt.
    const hold = alignHold(this.#hold.hold(sender, this.#rounds.get(sender)?.whole ? told : undefined), this.host.state.batches);
    const page = deltaPage(this.host.state, env.resetAcks ? new Map() : told, env.resumeFrom, this.tuning.maxDeltaEntries, this.tuning.maxDeltaBytes, framing, hold, ((env.features ?? 0) & Feature.Expiry) !== 0);
    if (env.resumeFrom === undefined) this.#hold.answered(sender, page.tops);
    const paged = env.resumeFrom !== undefined || !page.last;
    // A requester that reads summary roots gets ours instead of the SHA-256 digest (which
    // rehashes the whole store after every change); an older one gets the digest.
    const useRoot = ((env.features ?? 0) & Feature.SummaryRoot) !== 0;
    let summaryBuckets: Envelope["summaryBuckets"];
    if (env.summaryGroups !== undefined) {
      summaryBuckets = differingBucketHashes(this.host.state.summary(), env.summaryGroups);
    }
    return withHeldBack(this.#envelope(
      {
        digest: useRoot ? undefined : this.host.state.digest(),
        summaryRoot: useRoot ? this.host.state.summaryRoot() : undefined,
        summaryBuckets,
        page: paged ? { last: page.last } : undefined,
        resumeFrom: page.last ? undefined : page.cursor,
        ...heldFields(this.acks, page.held, hold),
      },
      true,
      page,
    ), page);
  }

  /**
   * Requester: merge a response. Acks are adopted on the final page only, and only if
   * every page merged completely (R1, R2). Pages are computed at different moments, so
   * per origin the round adopts the minimum ack any page reported: an entry written on
   * the responder after the first page may sort before the cursor and never be sent,
   * and only an ack from before it existed is sure not to claim it.
   */
  applyEnvelope(env: Envelope): MergeOutcome {
    const relearn = this.#beginApply(env);
    return this.#afterApply(env, this.#merge(env, relearn));
  }

  /** applyEnvelope, a large envelope merged in slices (see #mergeSliced). */
  async applyEnvelopeInSlices(env: Envelope, s: MergeSlicing): Promise<MergeOutcome> {
    if (!this.#sliced(env, s)) return this.applyEnvelope(env);
    const relearn = this.#beginApply(env);
    return this.#afterApply(env, await this.#mergeSliced(env, relearn, s));
  }

  /** Whether this response may teach our own spent seqs (see `relearning`). */
  #beginApply(env: Envelope): boolean {
    const peer = env.senderId;
    // Responses are not identity-checked: a node whose directory was wiped rejoins with a
    // new uuid and can only announce it in a response — the answer of the node at the
    // address we hold is the evidence. Record it so its requests pass.
    if (peer !== this.host.id) {
      this.uuids.set(peer, env.senderUuid);
      this.host.conflicts?.answered(peer, env.senderUuid);
    }
    if (peer !== this.host.id && env.senderClock !== undefined) this.host.noteClock?.(peer, env.senderClock);
    if (peer !== this.host.id) noteExpiryPeer(this.expiryPeers, env);
    // While relearning, a peer's ack of our own id proves those seqs spent, whatever
    // happens to the rest of this round (a refused entry must not let us reuse them).
    const relearn = this.relearning;
    const ownAck = env.acks.get(this.host.id) ?? 0;
    if (relearn && ownAck > 0) this.host.ensureSeqAbove(ownAck, peer);
    return relearn;
  }

  #afterApply(env: Envelope, merged: Merged): MergeOutcome {
    const peer = env.senderId;
    const base = { received: merged.received, merged: merged.merged, rejected: merged.rejected, complete: merged.complete, reasons: merged.reasons, repaired: false };
    if (env.pushOnly) return { ...base, adopted: false, more: false };
    if (env.repairBuckets !== undefined) {
      // The end of a bucket repair: merged like a push; acks and peerAcks untouched.
      this.repairEntriesReceived += merged.received;
      this.#rounds.delete(peer);
      const digestMatch = env.summaryRoot === undefined ? undefined : env.summaryRoot === this.host.state.summaryRoot();
      if (digestMatch) this.#repairAttempts.delete(peer);
      return { ...base, adopted: false, more: false, digestMatch, repaired: true };
    }
    this.heardFrom.add(peer);
    this.#hold.noteFeatures(peer, env.features);
    const round = this.#rounds.get(peer) ?? { minAcks: null, clean: true, exchanged: 0, version: -1, held: false };
    if (!samePeer(round, env.senderUuid)) {
      // Rebuilt between pages: its pages are not one delta. Merged (always safe), nothing adopted; page 1 again.
      this.#rounds.delete(peer);
      return { ...base, reasons: [...base.reasons, `peer ${peer} answered with a new uuid mid-round: round started over`], adopted: false, more: true };
    }
    const held = this.#hold.read(env.heldAcks);
    round.held ||= (held?.size ?? 0) > 0;
    // Local writes or other peers' merges during the round make unequal digests expected.
    const moved = this.host.state.version !== round.version;
    round.clean &&= merged.complete;
    round.exchanged += merged.received;
    round.minAcks = minAcks(round.minAcks, env.acks);
    round.summaryBuckets ??= env.summaryBuckets;
    if (env.page && !env.page.last && env.resumeFrom) {
      round.cursor = env.resumeFrom;
      this.#rounds.set(peer, round);
      return { ...base, adopted: false, more: true };
    }
    this.#rounds.delete(peer);
    this.relearnUntilRound = false;
    // The reset travelled with this round; an aborted round keeps it armed.
    this.#resetRequested.delete(peer);
    if (env.resetAcks) this.peerAcks.delete(peer);
    else this.peerAcks.set(peer, this.#clampOwn(withHeldAcks(env.acks, held)));
    let adopted = false;
    if (round.clean && round.minAcks) {
      this.#adopt(round.minAcks);
      adopted = true;
    }
    let digestMatch: boolean | undefined;
    let repaired = false;
    const sb = round.summaryBuckets; // this page's, or a paged response's first page's
    if (sb !== undefined && env.summaryRoot !== undefined) {
      // Second step of a bucket repair: which buckets differ, then send ours of them.
      const mine = this.host.state.summary();
      const buckets = differingBuckets(mine.buckets, sb.groups, sb.hashes);
      digestMatch = env.summaryRoot === mine.root;
      if (buckets.length > 0 && buckets.length <= MAX_REPAIR_BUCKETS) {
        this.#repairPending.set(peer, buckets);
        return { ...base, adopted, more: true, digestMatch, repaired: false };
      }
      if (buckets.length > MAX_REPAIR_BUCKETS) this.#repairAttempts.set(peer, this.tuning.bucketRepairAttempts);
      // Nothing local to repair (converged meanwhile) or too much: the checks below decide.
    }
    if (env.summaryRoot !== undefined || env.digest !== undefined) {
      digestMatch = env.summaryRoot !== undefined ? env.summaryRoot === this.host.state.summaryRoot() : env.digest === this.host.state.digest();
      // Only a round that moved nothing either way says anything about divergence:
      // otherwise the digests differ simply because the round is still converging.
      const quiescent = round.exchanged === 0 && round.clean && !moved && !round.held;
      if (digestMatch || !quiescent) {
        if (digestMatch) {
          this.#mismatches.set(peer, 0);
          this.#repairAttempts.delete(peer);
        }
      } else {
        const n = (this.#mismatches.get(peer) ?? 0) + 1;
        this.#mismatches.set(peer, n);
        const attempts = this.#repairAttempts.get(peer) ?? 0;
        if (n >= this.tuning.digestCheckRounds && env.summaryRoot !== undefined && attempts < this.tuning.bucketRepairAttempts) {
          // Localised repair first: continue this round with our group hashes (more: true),
          // so detection, bucket exchange and entry exchange take one syncOnce.
          this.#repairAttempts.set(peer, attempts + 1);
          this.#mismatches.set(peer, 0);
          this.#wantBuckets.add(peer);
          this.bucketRepairs++;
          return { ...base, adopted, more: true, digestMatch, repaired: false };
        } else if (n >= this.tuning.digestCheckRounds) {
          this.#repairAttempts.delete(peer);
          // Repair: send the peer everything next round, and claim no coverage of any
          // other origin so its next response is a full delta — our claim about a third
          // node's entries may be exactly what is wrong (adopted from a round that lost an
          // entry), and waiting for the peer's own request would make repair depend on it
          // initiating. Also ask it to forget what it believes we cover. Lowering coverage
          // is always safe; it costs one full exchange.
          this.peerAcks.delete(peer);
          for (const origin of [...this.acks.keys()]) if (origin !== this.host.id) this.acks.delete(origin);
          this.#resetRequested.add(peer);
          this.#mismatches.set(peer, 0);
          this.digestResets++;
          repaired = true;
        }
      }
    }
    return { ...base, adopted, more: false, digestMatch, repaired };
  }

  /**
   * A round's exchange failed (timeout, peer error): nothing is adopted. A paged round
   * keeps its cursor and minimum acks to resume from (round.ts resumeAfterAbort).
   */
  abortRound(peer: number): void {
    if (!resumeAfterAbort(this.#rounds.get(peer), this.#resetRequested.has(peer))) this.#rounds.delete(peer);
    this.#wantBuckets.delete(peer);
    this.#repairPending.delete(peer);
  }

  /**
   * Tombstones every known peer's reported coverage includes: they can be dropped
   * without resurrecting a key anywhere. No peers: everything is collectable.
   */
  collectable(peers: readonly number[], node: number, seq: number): boolean {
    for (const p of peers) {
      const reported = this.peerAcks.get(p);
      if (!reported || (reported.get(node) ?? 0) < seq) return false;
    }
    return true;
  }
}
