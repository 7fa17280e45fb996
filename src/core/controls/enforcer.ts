import { lineageOf } from '../records.js'
import type { KeyStore, StoredKey } from '../store.js'
import type { ApiKeyRecord, VerifiedKey } from '../types.js'
import type { UsageBuffer } from '../usage/buffer.js'
import {
  type CreditsRefill,
  creditsRetryAfterMs,
  effectiveCredits,
  nextPeriodStart,
  periodStart,
  type StoredCredits,
  storedCreditEpoch,
} from './credits.js'
import { compileAllowlist } from './ip.js'
import type { Limiter } from './limiter.js'
import { type CreditCharge, type LimitResult, type LimitSubject, limitSubjects, NO_SUBJECTS, type RateLimit } from './rate-limit.js'

/**
 * Per-key controls on the verification path: IP allowlist, named rate limits and credits.
 *
 * A key's controls are compiled once per cache fill (`compileControls`); a key without any gets
 * `null`, and verification then costs nothing more than that check. For a key with controls, each
 * request: the client address against the allowlist, then one `consume` of the limiter — in
 * process (synchronous) or in Redis (one round trip) — that checks every limit and the credits and
 * spends all or nothing.
 *
 * Every counter belongs to the key's lineage (`lineageOf`: the key its chain of rotations began
 * with), not to its row: rate-limit subjects are `key:<lineage>`, credit counters, leases and the
 * maps below are keyed by it, and the database's credit operations reach the lineage's current
 * head. A rotation therefore keeps the window's count and the credits spent, and a rotated-out key
 * in its grace period shares them with its successor (which copied its credit epoch).
 *
 * Where credits live:
 * - With Redis: in a Redis counter per lineage and credit epoch (exact across instances). Each
 *   instance adds up what it spent and subtracts it in the database on its usage flush
 *   (`settleCredits`). A missing counter (first use, or Redis lost its data) is seeded from the
 *   database, read fresh, so at most one flush interval of spending can be forgotten.
 * - Without Redis: in the database, leased in blocks by each process (`leaseCredits`, one atomic
 *   step) and spent from memory; what a process did not spend goes back on its flush and on
 *   close (`returnCredits`). The database never hands out more than it holds, so processes never
 *   overspend together; a crash loses at most the unspent part of one lease (never grants more).
 */

/** A key's controls, compiled once per cache fill. */
export interface KeyControls {
  /**
   * Whose limits and credits a request spends: the key's lineage (shared by a rotated-out key in
   * its grace period and its successor), so a rotation neither resets nor doubles them.
   */
  lineageId: string
  /** The verified key's own hash, to evict it when its cached credit setting turns out stale. */
  keyHash: string
  subjects: readonly LimitSubject[]
  allowIp: ((address: string) => boolean) | null
  /** The owner's credits as stored when the key was loaded; null: no credits. */
  credits: StoredCredits | null
  refill: CreditsRefill | null
  /** The owner's own limits and ranges (not its tenant's), as the no-escalation rule compares them. */
  rateLimits: readonly RateLimit[]
  allowedIps: readonly string[]
}

/** What the `RateLimit` headers of a limited key's response report (see src/http/ratelimit-headers.ts). */
export interface LimitReport {
  result: LimitResult
  subjects: readonly LimitSubject[]
  refill: CreditsRefill | null
  /** Ms until the credits come back (next refill), null without a refill. */
  creditsResetMs: number | null
  /** The business clock's instant of the check: a monthly refill's window is that month's length. */
  nowMs: number
}

/**
 * What verification may ask of the request it verifies, only when the key has controls. Built
 * once per middleware, so a request costs no allocation for it.
 */
export interface RequestFacts<R> {
  /** The client's address (after the host's trusted proxies), for IP allowlists. */
  clientAddress(request: R): string | undefined
  /** How many units of its limits and credits this request spends. @default 1 */
  cost?(request: R): number
}

/** Compiles what a key's requests are checked against; null when there is nothing to check. */
export function compileControls(keyHash: string, owner: StoredKey, tenantLimits: readonly RateLimit[]): KeyControls | null {
  const lineageId = lineageOf(owner)
  const subjects = limitSubjects({ id: lineageId, tenantId: owner.tenantId, rateLimits: owner.rateLimits }, tenantLimits)
  const hasCredits = owner.creditsRemaining !== null
  if (subjects === NO_SUBJECTS && !hasCredits && owner.allowedIps.length === 0) return null
  return {
    lineageId,
    keyHash,
    subjects,
    allowIp: owner.allowedIps.length === 0 ? null : compileAllowlist(owner.allowedIps),
    credits: hasCredits ? owner : null,
    refill:
      owner.creditsRefillAmount !== null && owner.creditsRefillInterval !== null
        ? { amount: owner.creditsRefillAmount, interval: owner.creditsRefillInterval }
        : null,
    rateLimits: owner.rateLimits,
    allowedIps: owner.allowedIps,
  }
}

type Refusal = Extract<Decision, { ok: false }>
type Decision =
  | { ok: true; key: VerifiedKey; limits?: LimitReport }
  | { ok: false; code: RefusalCode; limits?: LimitReport; detail?: string }
type RefusalCode = 'ip_not_allowed' | 'rate_limited' | 'credits_exhausted' | 'limiter_unavailable' | 'store_unavailable' | 'internal_error'

const IP_NOT_ALLOWED: Refusal = Object.freeze({ ok: false, code: 'ip_not_allowed' })
/**
 * A lease asks for at most this many credits at once. Blocks are sized by what the key spent in
 * the last flush interval (about a second's worth), so a busy key leases about once a second; the
 * bound keeps one process from holding a large share of a key with a large balance.
 */
const MAX_LEASE = 100_000
/** Keys whose blocks have grown to this size are busy: their next block is leased ahead of need. */
const TOP_UP_FROM = 16

export interface ControlEnforcerOptions {
  limiter: Limiter
  store: () => KeyStore | undefined
  usage: () => UsageBuffer | undefined
  evict: (keyHash: string) => void
  onError: (error: unknown, context: string) => void
}

export class ControlEnforcer {
  readonly limiter: Limiter
  readonly #options: ControlEnforcerOptions
  readonly #redis: boolean
  /** One lease at a time per lineage: concurrent requests that ran out share it. */
  readonly #leasing = new Map<string, Promise<void>>()
  /** Lineages whose last lease got less than it asked: no lease ahead of need until the next flush. */
  readonly #dry = new Set<string>()
  /** How much the next lease of a lineage asks for: what it spent in the last flush interval. */
  readonly #leaseSize = new Map<string, number>()
  /** Without Redis: what the database had left after this process's last lease, per lineage. */
  readonly #stored = new Map<string, { epoch: string; remaining: number }>()
  /** With Redis: what this process spent per lineage and credit epoch since its last flush. */
  #spent = new Map<string, { lineageId: string; epoch: string; amount: number }>()
  /** Per compiled controls: the credit charge of the current refill period (see `#charge`). */
  readonly #charges = new WeakMap<KeyControls, { charge: CreditCharge; fromMs: number; untilMs: number }>()

  constructor(options: ControlEnforcerOptions) {
    this.#options = options
    this.limiter = options.limiter
    this.#redis = options.limiter.redis !== undefined
  }

  /** Checks one request of a key that passed `decide` and has controls. Never throws. */
  enforce<R>(key: VerifiedKey, controls: KeyControls, nowMs: number, request: R | undefined, facts: RequestFacts<R> | undefined) {
    if (controls.allowIp !== null) {
      const address = request === undefined ? undefined : facts?.clientAddress(request)
      if (address === undefined || !controls.allowIp(address)) return IP_NOT_ALLOWED
    }
    const cost = request === undefined || facts?.cost === undefined ? 1 : facts.cost(request)
    if (!Number.isInteger(cost) || cost < 0) {
      // The host's `cost` is wrong, not the limiter: a 500, never a 503 that invites retrying.
      this.#options.onError(new Error(`the cost of a request must be a whole number >= 0, got ${cost}`), 'cost')
      return this.#refuse('internal_error', undefined, controls)
    }
    const charge = this.#charge(controls, nowMs)
    const result = this.limiter.consume(controls.subjects, cost, nowMs, charge)
    if (result instanceof Promise) {
      return result.then(
        (settled) => this.#conclude(key, controls, cost, nowMs, charge, settled, true),
        (error: unknown) => {
          this.#options.onError(error, 'rate limit')
          return this.#refuse('limiter_unavailable', undefined, controls)
        },
      )
    }
    return this.#conclude(key, controls, cost, nowMs, charge, result, true)
  }

  /**
   * Spends up to `amount` more credits of a verified key (metering after the work was done):
   * never below 0, never refused. Returns what was charged and what is left; null without credits.
   */
  async charge(controls: KeyControls, amount: number, nowMs: number): Promise<{ charged: number; remaining: number } | null> {
    const charge = this.#charge(controls, nowMs)
    if (charge === undefined || controls.credits === null) return null
    if (this.#redis && this.limiter.redis !== undefined) {
      const seeded = { ...charge, seed: effectiveCredits(controls.credits, nowMs)?.remaining ?? 0 }
      const done = await this.limiter.redis.chargeCredits(seeded, amount)
      this.#count(controls.lineageId, charge.epoch, done.charged)
      return done
    }
    const ledger = this.limiter.local.ledger
    let charged = ledger.charge(charge.keyId, charge.epoch, amount)
    if (charged < amount) {
      const epoch = await this.#lease(controls, amount - charged, nowMs)
      charged += ledger.charge(charge.keyId, epoch, amount - charged)
    }
    const epoch = ledger.epochOf(charge.keyId) ?? charge.epoch
    return { charged, remaining: ledger.peek(charge.keyId, epoch) + this.#storedRemaining(controls, epoch, nowMs) }
  }

  /** What the database had left (as of this process's last lease, or the cached row). */
  #storedRemaining(controls: KeyControls, epoch: string, nowMs: number): number {
    const known = this.#stored.get(controls.lineageId)
    if (known !== undefined && known.epoch === epoch) return known.remaining
    return controls.credits === null ? 0 : (effectiveCredits(controls.credits, nowMs)?.remaining ?? 0)
  }

  /**
   * Credits of a key this process holds and has not spent (leased, without Redis), for display.
   * They were leased from the lineage's head and go back to it, so only the head shows them; a
   * rotated-out key's stored credits are those it had when it was rotated.
   */
  held(record: ApiKeyRecord, nowMs: number): number {
    if (this.#redis || record.replacedByKeyId !== null) return 0
    const epoch = storedCreditEpoch(record, nowMs)
    return epoch === null ? 0 : this.limiter.local.ledger.peek(lineageOf(record), epoch)
  }

  /** Gives back unspent leases (without Redis) or subtracts what was spent (with Redis), in the database. */
  async flush(nowMs: number): Promise<void> {
    const store = this.#options.store()
    if (store === undefined) return
    if (this.#redis) {
      const spent = this.#spent
      this.#spent = new Map()
      const adjustments = [...spent.values()]
        .filter((item) => item.amount > 0)
        .map((item) => adjustment(item.lineageId, item.epoch, item.amount))
      try {
        await store.settleCredits(adjustments, new Date(nowMs))
      } catch (error) {
        // Kept for the next flush: credits are subtracted late rather than never.
        for (const item of spent.values()) this.#count(item.lineageId, item.epoch, item.amount)
        throw error
      }
      return
    }
    const ledger = this.limiter.local.ledger
    this.#dry.clear()
    for (const { keyId, spent } of ledger.drainSpent()) this.#leaseSize.set(keyId, Math.min(MAX_LEASE, Math.max(1, spent)))
    const returns = []
    for (const keyId of ledger.keyIds()) {
      const unused = ledger.takeUnused(keyId)
      if (unused !== undefined && unused.amount > 0) returns.push(adjustment(keyId, unused.epoch, unused.amount))
      this.#stored.delete(keyId)
    }
    await store.returnCredits(returns)
  }

  #charge(controls: KeyControls, nowMs: number): CreditCharge | undefined {
    return controls.credits === null ? undefined : this.#period(controls, nowMs).charge
  }

  /**
   * The credit charge of the refill period `nowMs` falls in, and that period. The epoch changes
   * only with the period (the setting is frozen per cache fill): one charge per period, not a date
   * calculation and a string per request. For a key with credits only.
   */
  #period(controls: KeyControls, nowMs: number): { charge: CreditCharge; fromMs: number; untilMs: number } {
    const memo = this.#charges.get(controls)
    if (memo !== undefined && nowMs >= memo.fromMs && nowMs < memo.untilMs) return memo
    const { refill } = controls
    const period = {
      // Redis: no seed, so a missing counter is seeded from the database read fresh (see the header).
      charge: {
        keyId: controls.lineageId,
        epoch: storedCreditEpoch(controls.credits as StoredCredits, nowMs) as string,
        seed: this.#redis ? -1 : 0,
      },
      fromMs: refill === null ? Number.NEGATIVE_INFINITY : periodStart(refill.interval, nowMs),
      untilMs: refill === null ? Number.POSITIVE_INFINITY : nextPeriodStart(refill.interval, nowMs),
    }
    this.#charges.set(controls, period)
    return period
  }

  #conclude(
    key: VerifiedKey,
    controls: KeyControls,
    cost: number,
    nowMs: number,
    charge: CreditCharge | undefined,
    result: LimitResult,
    retry: boolean,
  ): Decision | Promise<Decision> {
    // Without Redis the ledger holds this process's lease only; what is left is that plus what
    // the database still had after the lease.
    if (!this.#redis && charge !== undefined && 'credits' in result && result.credits !== undefined) {
      result.credits.remaining += this.#storedRemaining(controls, charge.epoch, nowMs)
    }
    if (result.ok) {
      this.#options.usage()?.record(key.id, nowMs)
      if (charge !== undefined) {
        if (this.#redis) this.#count(charge.keyId, charge.epoch, cost)
        else this.#topUp(controls, charge.epoch, nowMs)
      }
      return { ok: true, key, limits: this.#report(result, controls, nowMs) }
    }
    if (retry && charge !== undefined && (result.code === 'credits_unseeded' || (result.code === 'credits_exhausted' && !this.#redis))) {
      return this.#refill(controls, cost, charge, nowMs).then(
        async (refilled) =>
          this.#conclude(key, controls, cost, nowMs, refilled, await this.limiter.consume(controls.subjects, cost, nowMs, refilled), false),
        (error: unknown) => {
          this.#options.onError(error, 'credits')
          return this.#refuse('store_unavailable', undefined, controls)
        },
      )
    }
    if (result.code === 'credits_unseeded') return this.#refuse('limiter_unavailable', undefined, controls)
    if (result.code === 'rate_limited' || result.code === 'credits_exhausted')
      this.#options.usage()?.recordRefusal(key.id, nowMs, result.code)
    const detail =
      result.code === 'rate_limited'
        ? `The rate limit "${result.limit.name}" (${result.limit.limit} per ${result.limit.windowMs / 1000} s) is exhausted; retry after ${Math.max(1, Math.ceil(result.retryAfterMs / 1000))} s.`
        : undefined
    return this.#refuse(result.code, this.#report(result, controls, nowMs), controls, detail)
  }

  /**
   * Makes credits available for a second try: with Redis, reads the database to seed the missing
   * counter; without, leases a block. The charge to retry with names the database's credit epoch.
   */
  async #refill(controls: KeyControls, cost: number, charge: CreditCharge, nowMs: number): Promise<CreditCharge> {
    if (this.#redis) {
      const store = this.#options.store()
      const lease = await store?.leaseCredits(controls.lineageId, 0, new Date(nowMs))
      if (lease === undefined || lease === null) return { ...charge, seed: 0 }
      return { keyId: controls.lineageId, epoch: epochName(lease.version, lease.refilledAt.getTime()), seed: lease.remaining }
    }
    const epoch = await this.#lease(controls, cost, nowMs)
    return { ...charge, epoch }
  }

  /**
   * Without Redis: leases the next block of a busy key (blocks of `TOP_UP_FROM` or more) in the
   * background once a quarter of the current one is left, so its requests keep spending from
   * memory instead of waiting for the database each time a block runs out. Not again until the
   * next flush once the database could not fill a block (it is running low: requests then lease
   * as they need).
   */
  #topUp(controls: KeyControls, epoch: string, nowMs: number): void {
    const lineage = controls.lineageId
    if (this.#leasing.has(lineage) || this.#dry.has(lineage)) return
    const size = this.#leaseSize.get(lineage) ?? 1
    // Only for busy keys: a quiet one holds no credits ahead of need that another instance could use.
    if (size < TOP_UP_FROM || this.limiter.local.ledger.peek(lineage, epoch) * 4 > size) return
    this.#lease(controls, 1, nowMs).catch((error: unknown) => {
      // The database is unreachable: no more leases ahead of need until the next flush (not one
      // failed attempt, and one report, per request). Requests that run out lease as they need.
      this.#dry.add(lineage)
      this.#options.onError(error, 'credits')
    })
  }

  /** Leases at least `need` credits (more when the key is busy) into the ledger; returns their epoch. */
  async #lease(controls: KeyControls, need: number, nowMs: number): Promise<string> {
    const lineage = controls.lineageId
    const running = this.#leasing.get(lineage)
    if (running !== undefined) {
      await running
      const held = this.limiter.local.ledger.epochOf(lineage)
      if (held !== undefined && this.limiter.local.ledger.peek(lineage, held) >= need) return held
    }
    let epoch = storedCreditEpoch(controls.credits as StoredCredits, nowMs) as string
    const work = (async () => {
      const store = this.#options.store()
      if (store === undefined) return
      const size = this.#leaseSize.get(lineage) ?? 1
      const asked = Math.max(need, size)
      const lease = await store.leaseCredits(lineage, asked, new Date(nowMs))
      // Busy keys lease more each time within a flush interval, so a burst costs few round trips.
      this.#leaseSize.set(lineage, Math.min(MAX_LEASE, size * 2))
      if (lease === null || lease.granted < asked) this.#dry.add(lineage)
      if (lease === null) return
      epoch = epochName(lease.version, lease.refilledAt.getTime())
      // A PATCH (or a refill) the cache has not seen yet: reload the key rather than keep
      // counting under a setting the database no longer has.
      if (epoch !== storedCreditEpoch(controls.credits as StoredCredits, nowMs)) this.#options.evict(controls.keyHash)
      this.limiter.local.ledger.grant(lineage, epoch, lease.granted)
      this.#stored.set(lineage, { epoch, remaining: lease.remaining })
    })().finally(() => this.#leasing.delete(lineage))
    this.#leasing.set(lineage, work)
    await work
    return epoch
  }

  #count(lineageId: string, epoch: string, amount: number): void {
    const id = `${lineageId}\u0000${epoch}`
    const entry = this.#spent.get(id)
    if (entry === undefined) this.#spent.set(id, { lineageId, epoch, amount })
    else entry.amount += amount
  }

  #report(result: LimitResult, controls: KeyControls, nowMs: number): LimitReport {
    // Credits come back at the next refill; a refill without credits (no charge) has no period.
    const creditsResetMs =
      controls.refill === null
        ? null
        : controls.credits === null
          ? creditsRetryAfterMs({ remaining: 0, refill: controls.refill }, nowMs)
          : this.#period(controls, nowMs).untilMs - nowMs
    return { result, subjects: controls.subjects, refill: controls.refill, creditsResetMs, nowMs }
  }

  #refuse(code: RefusalCode, limits: LimitReport | undefined, _controls: KeyControls, detail?: string): Refusal {
    const refusal: Refusal = { ok: false, code }
    if (limits !== undefined) refusal.limits = limits
    if (detail !== undefined) refusal.detail = detail
    return refusal
  }
}

/** A credit epoch's name: the setting (version) and the period start of the credits. */
function epochName(version: number, refilledAtMs: number): string {
  return `${version}:${refilledAtMs}`
}

function adjustment(lineageId: string, epoch: string, amount: number) {
  const [version, refilledAtMs] = epoch.split(':').map(Number) as [number, number]
  return { lineageId, version, refilledAt: new Date(refilledAtMs), amount }
}
