import { Batcher } from '../batcher.js'
import { effectiveCredits } from '../controls/credits.js'
import { compileControls, type KeyControls, type LimitReport, type RequestFacts } from '../controls/enforcer.js'
import { tenantRateLimitsOf } from '../controls/schemas.js'
import { hashKey, keyChecker } from '../key-format.js'
import type { Clock } from '../options.js'
import type { Runtime } from '../runtime.js'
import type { KeyStore, StoredKey } from '../store.js'
import type { Actor, VerifiedKey } from '../types.js'
import type { VerificationCache } from './cache.js'
import { type Decision, decide, type KeyVerdictInput, verdictInput } from './decide.js'
import type { ChangeSync } from './sync.js'

const INVALID: Decision = Object.freeze({ ok: false, code: 'invalid_api_key' }) as Decision
const UNAVAILABLE: Decision = Object.freeze({ ok: false, code: 'store_unavailable' }) as Decision
/** Keys looked up in one store query at most. */
const MAX_LOOKUP_BATCH = 100
/** How many successors a rotated-out key's controls are looked up through (see `#compileControls`). */
const MAX_HOPS = 8

/**
 * How to charge more credits to a key that verification handed out, by the key object itself (set
 * once per cache fill, for keys with controls), so metering after a handler needs no instance.
 */
const meters = new WeakMap<
  VerifiedKey,
  { controls: KeyControls; clock: Clock; charge: (amount: number) => Promise<{ charged: number; remaining: number } | null> }
>()

/**
 * Spends up to `amount` more credits of a verified key (metering after the work was done): never
 * below 0, never refused. Null when the key has no credits.
 */
export function spendCredits(key: VerifiedKey, amount: number): Promise<{ charged: number; remaining: number } | null> {
  if (!Number.isInteger(amount) || amount < 0) throw new Error(`keyward: spendCredits needs a whole number >= 0, got ${amount}`)
  return meters.get(key)?.charge(amount) ?? Promise.resolve(null)
}

/**
 * The caller a verified key makes of a management call: its tenant, project, scopes and
 * environment, and its own controls (what it has left of its credits after this request), so it can
 * grant nothing looser than it has.
 */
export function keyActor(decision: { key: VerifiedKey; limits?: LimitReport }): Actor {
  const { key } = decision
  const actor: Actor = {
    tenantId: key.tenantId,
    projectId: key.projectId,
    scopes: key.scopes,
    environment: key.environment,
    keyId: key.id,
    type: 'api_key',
  }
  const meter = meters.get(key)
  if (meter !== undefined) {
    const { controls } = meter
    const result = decision.limits?.result
    const left = result !== undefined && 'credits' in result ? result.credits?.remaining : undefined
    const stored = controls.credits === null ? null : effectiveCredits(controls.credits, meter.clock.now())
    actor.controls = {
      rateLimits: controls.rateLimits,
      credits: stored === null ? null : { remaining: left ?? stored.remaining, refill: controls.refill },
      allowedIps: controls.allowedIps,
    }
  }
  return actor
}

/** A store read for one hash that later misses of the same hash may share. */
interface PendingRead {
  /** The cache generation when the read began: a miss may join it only if nothing was evicted since. */
  fence: number
  verdict: Promise<KeyVerdictInput | null>
}

/**
 * The hot path: parse and checksum → hash → cache → `decide(key, now)` → count usage. A malformed
 * key and a cache hit are answered synchronously; only a miss reads the store, and concurrent
 * misses for one key share one read (a cold cache after a restart is not a thundering herd).
 */
export class Verifier {
  readonly #runtime: Runtime
  readonly #checkKey: (candidate: string) => string | null
  readonly #pepper: string | undefined
  readonly #clock: Clock
  readonly #cache: VerificationCache | undefined
  readonly #sync: ChangeSync | undefined
  readonly #pending = new Map<string, PendingRead>()
  /**
   * Misses of different keys at the same time go to the store together: one query per batch
   * (`findKeysByHash`), not one round trip per miss. A lone miss is one `findKeyByHash`.
   */
  readonly #lookups = new Batcher<string, StoredKey | null>(
    async (keyHashes) => {
      const store = await this.#runtime.openStore()
      if (keyHashes.length === 1) return [await store.findKeyByHash(keyHashes[0] as string)]
      const found = new Map((await store.findKeysByHash(keyHashes)).map((record) => [record.keyHash, record]))
      return keyHashes.map((keyHash) => found.get(keyHash) ?? null)
    },
    { maxBatch: MAX_LOOKUP_BATCH },
  )

  constructor(runtime: Runtime) {
    this.#runtime = runtime
    this.#checkKey = keyChecker(runtime.options.prefix)
    this.#pepper = runtime.options.pepper
    this.#clock = runtime.options.clock
    this.#cache = runtime.cache
    this.#sync = runtime.sync
  }

  /**
   * A decision now for a malformed key or a cache hit; a promise only when the store (or Redis)
   * must be asked. `request` and `facts` are read only for a key with controls (IP allowlist, cost).
   */
  verifyFast<R>(candidate: string, request?: R, facts?: RequestFacts<R>): Decision | Promise<Decision> {
    // Shape and checksum first: a mistyped or invented key costs no hashing and no I/O.
    if (this.#checkKey(candidate) === null) return INVALID
    const keyHash = hashKey(candidate, this.#pepper)
    const nowMs = this.#clock.now()
    const cache = this.#cache
    if (cache !== undefined && this.#runtime.store !== undefined) {
      const monotonicMs = this.#clock.monotonic()
      if ((this.#sync as ChangeSync).isFresh(monotonicMs)) {
        const hit = cache.get(keyHash, monotonicMs)
        if (hit !== undefined) return this.#conclude(hit.verdict, nowMs, request, facts)
      }
    }
    return this.#fromStore(keyHash, nowMs, request, facts)
  }

  async #fromStore<R>(keyHash: string, nowMs: number, request: R | undefined, facts: RequestFacts<R> | undefined): Promise<Decision> {
    try {
      return await this.#conclude(await this.#read(keyHash), nowMs, request, facts)
    } catch (error) {
      // Fail closed: no verdict without the store.
      this.#runtime.options.onError(error, 'verify')
      return UNAVAILABLE
    }
  }

  /** One store read per hash at a time, unless an eviction since it began makes it untrustworthy. */
  #read(keyHash: string): Promise<KeyVerdictInput | null> {
    const cache = this.#cache
    if (cache === undefined) return this.#load(keyHash, undefined)
    const fence = cache.fence()
    const pending = this.#pending.get(keyHash)
    if (pending !== undefined && pending.fence === fence) return pending.verdict
    const verdict = this.#load(keyHash, fence).finally(() => {
      if (this.#pending.get(keyHash)?.verdict === verdict) this.#pending.delete(keyHash)
    })
    this.#pending.set(keyHash, { fence, verdict })
    return verdict
  }

  async #load(keyHash: string, fence: number | undefined): Promise<KeyVerdictInput | null> {
    const store = await this.#runtime.openStore()
    const record = await this.#lookups.add(keyHash)
    const verdict = record === null ? null : verdictInput(record, await this.#compileControls(store, keyHash, record))
    if (verdict?.controls) {
      const { controls } = verdict
      const { clock } = this.#runtime.options
      meters.set(verdict.key, { controls, clock, charge: (amount) => this.#runtime.controls.charge(controls, amount, clock.now()) })
    }
    // The fence drops the fill if anything was evicted meanwhile (a stale refill, Harsh-2002/Orva#53).
    if (fence !== undefined) this.#cache?.fill(keyHash, { verdict, loadedAtMs: this.#clock.monotonic() }, fence)
    return verdict
  }

  /**
   * A key's controls; a rotated-out key gets those of its lineage's head (limits, credits,
   * allowlist), so using both keys during a grace period never doubles what a client may do. The
   * head, not the next key: after A→B→C, A (still in grace) spends what C spends. Counters are the
   * lineage's either way (see `compileControls`); the head holds the setting and the credits.
   */
  async #compileControls(store: KeyStore, keyHash: string, record: StoredKey): Promise<KeyControls | null> {
    let owner = record
    // Bounded: a chain walked within one grace period is short; a gap (a deleted row) stops it.
    for (let hop = 0; hop < MAX_HOPS && owner.replacedByKeyId !== null; hop++) {
      const next = await store.findKey(owner.tenantId, owner.replacedByKeyId)
      if (next === null) break
      owner = next
    }
    return compileControls(keyHash, owner, tenantRateLimitsOf(this.#runtime.options.tenantRateLimits, owner.tenantId))
  }

  #conclude<R>(
    verdict: KeyVerdictInput | null,
    nowMs: number,
    request: R | undefined,
    facts: RequestFacts<R> | undefined,
  ): Decision | Promise<Decision> {
    if (verdict === null) return INVALID
    const decision = decide(verdict, nowMs)
    if (!decision.ok) return decision
    // The common case: a key without controls is done here.
    if (verdict.controls === null) {
      this.#runtime.usage?.record(decision.key.id, nowMs)
      return decision
    }
    return this.#runtime.controls.enforce(decision.key, verdict.controls, nowMs, request, facts)
  }
}
