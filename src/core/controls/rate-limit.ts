import { LRUCache } from 'lru-cache'
import { CreditLedger } from './credits.js'

/**
 * Named rate limits, counted in a bucketed sliding window.
 *
 * The algorithm, and why: each window of `windowMs` is cut into `WINDOW_BUCKETS` buckets of
 * `bucketMs = ceil(windowMs / WINDOW_BUCKETS)`. A request is admitted iff the requests counted in
 * every bucket that overlaps (now − windowMs, now], plus its cost, fit in `limit`. The oldest,
 * partly expired bucket is counted whole, so the ceiling is exact: take the last request admitted
 * in any span of `windowMs`; every earlier admission in that span lies in a bucket it counted, so
 * the span holds at most `limit`. The price is under-admission: capacity comes back up to one
 * bucket (5 % of the window) late. Memory is `WINDOW_BUCKETS + 1` integers per (subject, limit).
 *
 * Not GCRA: GCRA lets a request through every `windowMs / limit` once the burst is spent, so 80
 * requests spread over a few hundred ms against "25 per 10 s" would admit a 26th after 400 ms.
 * The promise here is "never more than `limit` in any window", which a fixed window (2× at the
 * boundary) and GCRA (a burst plus a drip) do not keep, and a log of timestamps keeps only with
 * O(limit) memory.
 *
 * The window is measured from the buckets, never from the last request: a client that keeps
 * sending refused requests is admitted again as soon as old admissions leave the window
 * (better-auth#6035). A refused request consumes nothing: every limit of every subject is checked
 * first, then all are spent (unkeyed/unkey#1995).
 *
 * Time comes from the caller (`nowMs`) and never runs backwards per counter: an earlier reading
 * (clock adjustment, another instance's skew) counts as the latest one seen, so the ceiling holds.
 * The Redis script in `redis.ts` implements the same arithmetic.
 */

/** A named limit: at most `limit` units in any `windowMs`. */
export interface RateLimit {
  name: string
  limit: number
  windowMs: number
}

/** Whose counters a limit spends: e.g. `key:<lineage id>` or `tenant:<id>`. */
export interface LimitSubject {
  id: string
  limits: readonly RateLimit[]
}

/** One limit's standing after a request, for the `RateLimit` headers. */
export interface LimitState {
  name: string
  limit: number
  /** Units left in the window now (after this request's spend, if it was admitted). */
  remaining: number
  /** Milliseconds until `remaining` next grows (the oldest counted request leaves the window). */
  resetMs: number
  windowMs: number
}

/** Which credit counter a request spends from (see `creditEpoch` in credits.ts). */
export interface CreditCharge {
  /**
   * The key's lineage (`lineageOf` in core/records.ts), not its row id: a rotated-out key and its
   * successor spend one counter, and a rotation neither reseeds nor drops it.
   */
  keyId: string
  epoch: string
  /** What the counter starts at if this epoch has none yet: the database's `currentRemaining`. */
  seed: number
}

export interface CreditsLeft {
  remaining: number
}

/** The answer of a limiter. Never thrown; a refusal is a value. */
export type LimitResult =
  | { ok: true; states: readonly LimitState[]; credits?: CreditsLeft }
  | {
      ok: false
      code: 'rate_limited'
      /** The first limit (in subject, then limit order) that had no room. */
      limit: LimitState
      /** When this request would fit (at the earliest), in ms. */
      retryAfterMs: number
      states: readonly LimitState[]
      credits?: CreditsLeft
    }
  | { ok: false; code: 'credits_exhausted'; states: readonly LimitState[]; credits: CreditsLeft }
  /** Redis is unreachable and the limiter fails closed (or credits cannot be checked safely). */
  | { ok: false; code: 'limiter_unavailable'; states: readonly LimitState[] }
  /**
   * Redis has no counter for this credit epoch and the charge gave no seed (`seed < 0`): the
   * caller reads the database and asks again with a seed. Never reaches a client.
   */
  | { ok: false; code: 'credits_unseeded'; states: readonly LimitState[] }

/** How many buckets a window is cut into (see the header comment). */
export const WINDOW_BUCKETS = 20

const NO_STATES: readonly LimitState[] = Object.freeze([])

/** The answer for a request with no limits and no credits: shared, so it costs no allocation. */
export const ADMITTED: LimitResult = Object.freeze({ ok: true, states: NO_STATES }) as LimitResult

/** The answer when Redis is down and the limiter fails closed. */
export const LIMITER_UNAVAILABLE: LimitResult = Object.freeze({ ok: false, code: 'limiter_unavailable', states: NO_STATES }) as LimitResult

/** See `LimitResult`'s `credits_unseeded`. */
export const CREDITS_UNSEEDED: LimitResult = Object.freeze({ ok: false, code: 'credits_unseeded', states: NO_STATES }) as LimitResult

/** The subjects of a key with no limits: shared and empty. */
export const NO_SUBJECTS: readonly LimitSubject[] = Object.freeze([])

export function bucketMsFor(windowMs: number): number {
  return Math.ceil(windowMs / WINDOW_BUCKETS)
}

/**
 * The subjects a key's requests spend, built once per cache fill: the key's own limits (counted
 * under `key:<id>`, where keyward passes the key's lineage id so a rotation keeps the count) and, if
 * `tenantRateLimits` is set, its tenant's. Tenant limits are named `tenant:<name>` in states and
 * headers (a key's own limit names cannot contain `:`), so the two never collide.
 * Subjects without limits are left out; a key with none gets the shared `NO_SUBJECTS`.
 *
 * @param tenantLimits what `tenantRateLimits(tenantId)` returned, already validated
 */
export function limitSubjects(
  key: { id: string; tenantId: string; rateLimits: readonly RateLimit[] },
  tenantLimits: readonly RateLimit[] = [],
): readonly LimitSubject[] {
  const subjects: LimitSubject[] = []
  if (key.rateLimits.length > 0) subjects.push({ id: `key:${key.id}`, limits: Object.freeze([...key.rateLimits]) })
  if (tenantLimits.length > 0) {
    subjects.push({
      id: `tenant:${key.tenantId}`,
      limits: Object.freeze(tenantLimits.map((limit) => ({ ...limit, name: `tenant:${limit.name}` }))),
    })
  }
  return subjects.length === 0 ? NO_SUBJECTS : Object.freeze(subjects)
}

/** One limit's buckets, as a ring indexed by absolute bucket number. */
class WindowCounter {
  readonly name: string
  limit: number
  readonly windowMs: number
  readonly bucketMs: number
  readonly #counts: number[]
  /** Absolute number of the newest bucket the ring holds. */
  #newest = -1
  /**
   * Where bucket `#newest` sits in `#counts`. Bucket numbers (epoch ms / bucket ms) are beyond
   * 2^31, where `%` is a slow floating-point remainder; slots are found from this one instead.
   */
  #newestSlot = 0
  /** The sum of every slot of the ring, kept as buckets are spent and dropped. */
  #total = 0
  /** The latest clock reading seen; earlier readings count as this one. */
  #latestMs = Number.NEGATIVE_INFINITY

  /** The clock the last `advance` used. */
  get latestMs(): number {
    return this.#latestMs
  }

  constructor(limit: RateLimit) {
    this.name = limit.name
    this.limit = limit.limit
    this.windowMs = limit.windowMs
    this.bucketMs = bucketMsFor(limit.windowMs)
    this.#counts = new Array<number>(Math.ceil(limit.windowMs / this.bucketMs) + 1).fill(0)
  }

  /** Moves to `nowMs` (never back), zeroing buckets that left the ring; returns the clock used. */
  advance(nowMs: number): number {
    const clock = nowMs > this.#latestMs ? nowMs : this.#latestMs
    this.#latestMs = clock
    const current = Math.floor(clock / this.bucketMs)
    if (current > this.#newest) {
      const counts = this.#counts
      const steps = current - this.#newest
      if (steps >= counts.length) {
        counts.fill(0)
        this.#total = 0
      } else {
        let slot = this.#newestSlot
        for (let step = 0; step < steps; step++) {
          slot = slot + 1 === counts.length ? 0 : slot + 1
          this.#total -= counts[slot] as number
          counts[slot] = 0
        }
        this.#newestSlot = slot
      }
      this.#newest = current
    }
    return clock
  }

  /** The slot of bucket `index`, which the ring holds (newest − slots < index ≤ newest). */
  #slotOf(index: number): number {
    const slot = this.#newestSlot - (this.#newest - index)
    return slot < 0 ? slot + this.#counts.length : slot
  }

  /** The first bucket of the ring. */
  #ringStart(): number {
    return this.#newest - this.#counts.length + 1
  }

  /** The first bucket that overlaps (clock − windowMs, clock]. */
  #oldest(clock: number): number {
    return Math.max(0, Math.floor((clock - this.windowMs) / this.bucketMs), this.#ringStart())
  }

  used(clock: number): number {
    // The whole ring, less its buckets older than the window (none or one, as a rule).
    let sum = this.#total
    const oldest = this.#oldest(clock)
    for (let index = this.#ringStart(); index < oldest; index++) sum -= this.#counts[this.#slotOf(index)] as number
    return sum
  }

  /** Ms until the oldest counted unit leaves the window; a full window when nothing is counted. */
  resetMs(clock: number): number {
    for (let index = this.#oldest(clock); index <= this.#newest; index++) {
      if ((this.#counts[this.#slotOf(index)] as number) > 0) return (index + 1) * this.bucketMs + this.windowMs - clock
    }
    return this.windowMs
  }

  /** Ms until `cost` fits, given `used` now; a full window if it never can (cost > limit). */
  retryAfterMs(clock: number, used: number, cost: number): number {
    let left = used
    for (let index = this.#oldest(clock); index <= this.#newest; index++) {
      left -= this.#counts[this.#slotOf(index)] as number
      if (left + cost <= this.limit) return (index + 1) * this.bucketMs + this.windowMs - clock
    }
    return this.windowMs
  }

  spend(cost: number): void {
    const slot = this.#newestSlot
    this.#counts[slot] = (this.#counts[slot] as number) + cost
    this.#total += cost
  }
}

/** `consume`'s counters of the current call (see there). */
const scratch: WindowCounter[] = []

interface SubjectCounters {
  /** The limits these counters were built for; compared by identity on the hot path. */
  limits: readonly RateLimit[]
  counters: WindowCounter[]
}

export interface LocalRateLimiterOptions {
  /**
   * How many subjects (keys, tenants) to keep counters for; the least recently used are dropped.
   * A subject dropped while its window is still open starts again from zero, so keep this above
   * the number of subjects active within your longest window.
   * @default 100_000
   */
  maxSubjects?: number
  /**
   * Where credits are spent from when a request names a `CreditCharge`.
   * @default a new CreditLedger (seeded from each charge's `seed`)
   */
  ledger?: CreditLedger
}

/**
 * Rate limits (and, through its ledger, credits) counted in this process: exact for one process,
 * per instance for several. Synchronous, so concurrent requests in the process cannot interleave
 * between the check and the spend.
 *
 * @example
 * const limiter = new LocalRateLimiter()
 * const result = limiter.consume([{ id: 'key:key_1', limits: [{ name: 'burst', limit: 10, windowMs: 1000 }] }], 1, Date.now())
 * if (!result.ok) // 429, Retry-After: ceil(result.retryAfterMs / 1000)
 */
export class LocalRateLimiter {
  readonly ledger: CreditLedger
  readonly #subjects: LRUCache<string, SubjectCounters>

  constructor(options: LocalRateLimiterOptions = {}) {
    const maxSubjects = options.maxSubjects ?? 100_000
    if (!Number.isInteger(maxSubjects) || maxSubjects < 1) {
      throw new Error(`keyward: rate limiter maxSubjects must be a positive integer, got ${maxSubjects}`)
    }
    this.#subjects = new LRUCache({ max: maxSubjects })
    this.ledger = options.ledger ?? new CreditLedger()
  }

  /** How many subjects hold counters now. */
  get size(): number {
    return this.#subjects.size
  }

  /**
   * Admits the request iff every limit of every subject has room for `cost` and, with `credits`,
   * the key has at least `cost` credits; then spends all of them. A refusal spends nothing.
   * Refused for credits before rate limits: retrying after a rate limit cannot help a key that is
   * out of credits.
   */
  consume(subjects: readonly LimitSubject[], cost: number, nowMs: number, credits?: CreditCharge): LimitResult {
    if (subjects.length === 0 && credits === undefined) return ADMITTED
    // The counters of this call, in state order, in shared scratch (its first `count` entries):
    // consume is synchronous, so no other call can interleave, and a request allocates no array.
    const counters = scratch
    let count = 0
    const states: LimitState[] = []
    let refused = -1
    let refusedUsed = 0
    for (const subject of subjects) {
      for (const counter of this.#countersOf(subject)) {
        const used = counter.used(counter.advance(nowMs))
        if (refused < 0 && used + cost > counter.limit) {
          refused = states.length
          refusedUsed = used
        }
        counters[count++] = counter
        states.push({
          name: counter.name,
          limit: counter.limit,
          remaining: Math.max(0, counter.limit - used),
          resetMs: 0,
          windowMs: counter.windowMs,
        })
      }
    }
    const admitted = refused < 0 && (credits === undefined || this.ledger.available(credits.keyId, credits.epoch, credits.seed) >= cost)
    if (admitted) {
      for (let index = 0; index < count; index++) {
        const state = states[index] as LimitState
        ;(counters[index] as WindowCounter).spend(cost)
        state.remaining = Math.max(0, state.remaining - cost)
      }
    }
    // Reset times after the spend (an admitted request may be the oldest one counted).
    for (let index = 0; index < count; index++) {
      const counter = counters[index] as WindowCounter
      ;(states[index] as LimitState).resetMs = counter.resetMs(counter.latestMs)
    }
    if (credits !== undefined && !admitted) {
      const available = this.ledger.available(credits.keyId, credits.epoch, credits.seed)
      // Refused for credits before rate limits: retrying after a rate limit cannot help a key out of credits.
      if (available < cost) return { ok: false, code: 'credits_exhausted', states, credits: { remaining: available } }
    }
    if (!admitted) {
      const counter = counters[refused] as WindowCounter
      const refusal: LimitResult = {
        ok: false,
        code: 'rate_limited',
        limit: states[refused] as LimitState,
        retryAfterMs: counter.retryAfterMs(counter.latestMs, refusedUsed, cost),
        states,
      }
      if (credits !== undefined) refusal.credits = { remaining: this.ledger.available(credits.keyId, credits.epoch) }
      return refusal
    }
    if (credits === undefined) return { ok: true, states }
    this.ledger.spend(credits.keyId, credits.epoch, cost)
    return { ok: true, states, credits: { remaining: this.ledger.available(credits.keyId, credits.epoch) } }
  }

  /** Forgets every counter (tests, or a host that wants a clean slate). */
  clear(): void {
    this.#subjects.clear()
  }

  #countersOf(subject: LimitSubject): WindowCounter[] {
    const held = this.#subjects.get(subject.id)
    if (held !== undefined) {
      if (held.limits === subject.limits) return held.counters
      // Keys of one tenant each carry their own copy of the tenant's limits: equal, not identical.
      if (sameLimits(held.counters, subject.limits)) {
        held.limits = subject.limits
        return held.counters
      }
    }
    // New subject, or its limits changed (a PATCH refilled the cache): keep the counts of every
    // limit whose name and window are unchanged, so editing one limit does not reset the others.
    const counters = subject.limits.map((limit) => {
      const kept = held?.counters.find((counter) => counter.name === limit.name && counter.windowMs === limit.windowMs)
      if (kept === undefined) return new WindowCounter(limit)
      kept.limit = limit.limit
      return kept
    })
    this.#subjects.set(subject.id, { limits: subject.limits, counters })
    return counters
  }
}

function sameLimits(counters: readonly WindowCounter[], limits: readonly RateLimit[]): boolean {
  if (counters.length !== limits.length) return false
  for (let index = 0; index < limits.length; index++) {
    const counter = counters[index] as WindowCounter
    const limit = limits[index] as RateLimit
    if (counter.name !== limit.name || counter.limit !== limit.limit || counter.windowMs !== limit.windowMs) return false
  }
  return true
}
