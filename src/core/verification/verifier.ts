import { hashKey, parseKey } from '../key-format.js'
import type { Clock } from '../options.js'
import type { Runtime } from '../runtime.js'
import type { VerificationCache } from './cache.js'
import { type Decision, decide, type KeyVerdictInput, verdictInput } from './decide.js'
import type { ChangeSync } from './sync.js'

const INVALID: Decision = Object.freeze({ ok: false, code: 'invalid_api_key' }) as Decision
const UNAVAILABLE: Decision = Object.freeze({ ok: false, code: 'store_unavailable' }) as Decision

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
  readonly #prefix: string
  readonly #pepper: string | undefined
  readonly #clock: Clock
  readonly #cache: VerificationCache | undefined
  readonly #sync: ChangeSync | undefined
  readonly #pending = new Map<string, PendingRead>()

  constructor(runtime: Runtime) {
    this.#runtime = runtime
    this.#prefix = runtime.options.prefix
    this.#pepper = runtime.options.pepper
    this.#clock = runtime.options.clock
    this.#cache = runtime.cache
    this.#sync = runtime.sync
  }

  /** A decision now for a malformed key or a cache hit; a promise only when the store must be read. */
  verifyFast(candidate: string): Decision | Promise<Decision> {
    // Shape and checksum first: a mistyped or invented key costs no hashing and no I/O.
    if (parseKey(candidate, this.#prefix) === null) return INVALID
    const keyHash = hashKey(candidate, this.#pepper)
    const nowMs = this.#clock.now()
    const cache = this.#cache
    if (cache !== undefined && this.#runtime.store !== undefined) {
      const monotonicMs = this.#clock.monotonic()
      if ((this.#sync as ChangeSync).isFresh(monotonicMs)) {
        const hit = cache.get(keyHash, monotonicMs)
        if (hit !== undefined) return this.#conclude(hit.verdict, nowMs)
      }
    }
    return this.#fromStore(keyHash, nowMs)
  }

  async #fromStore(keyHash: string, nowMs: number): Promise<Decision> {
    try {
      return this.#conclude(await this.#read(keyHash), nowMs)
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
    const record = await store.findKeyByHash(keyHash)
    const verdict = record === null ? null : verdictInput(record)
    // The fence drops the fill if anything was evicted meanwhile (a stale refill, Harsh-2002/Orva#53).
    if (fence !== undefined) this.#cache?.fill(keyHash, { verdict, loadedAtMs: this.#clock.monotonic() }, fence)
    return verdict
  }

  #conclude(verdict: KeyVerdictInput | null, nowMs: number): Decision {
    if (verdict === null) return INVALID
    const decision = decide(verdict, nowMs)
    if (decision.ok) this.#runtime.usage?.record(decision.key.id, nowMs)
    return decision
  }
}
