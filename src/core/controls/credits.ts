/**
 * Credits (quotas): a key may spend at most `remaining` units; a refill, if set, puts `remaining`
 * back to `amount` at the start of every UTC day or month.
 *
 * Refill SETS `remaining` to `amount` (Unkey's semantics); it does not add to what was left.
 * A key that had 200 left of a daily 1000 starts the next day with 1000, not 1200, so unused
 * credits never pile up into a burst larger than one period's allowance.
 *
 * Everything here is pure or in memory. Where the counter lives (one process, leased blocks from
 * the database, Redis) is decided by the caller; this module gives it the calendar and the local
 * ledger.
 */

export type RefillInterval = 'day' | 'month'

export interface CreditsRefill {
  /** What `remaining` is set to at the start of each period. */
  amount: number
  interval: RefillInterval
}

export interface Credits {
  /** What is left to spend now (as last persisted). */
  remaining: number
  refill: CreditsRefill | null
}

const DAY_MS = 86_400_000

/**
 * The start (epoch ms) of the UTC day or month containing `nowMs`.
 *
 * @example
 * periodStart('month', Date.parse('2026-03-17T08:00:00Z')) // Date.parse('2026-03-01T00:00:00Z')
 */
export function periodStart(interval: RefillInterval, nowMs: number): number {
  if (interval === 'day') return Math.floor(nowMs / DAY_MS) * DAY_MS
  const now = new Date(nowMs)
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)
}

/** The start (epoch ms) of the UTC day or month after the one containing `nowMs`. */
export function nextPeriodStart(interval: RefillInterval, nowMs: number): number {
  if (interval === 'day') return periodStart('day', nowMs) + DAY_MS
  const now = new Date(nowMs)
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)
}

/**
 * What a key may spend now, given what the database last recorded: if a refill period began
 * after `refilledAtMs` (when `remaining` was last set: at create, PATCH or the last refill),
 * the stored `remaining` belongs to an earlier period and the answer is the refill amount.
 *
 * @example
 * currentRemaining({ remaining: 3, refill: { amount: 100, interval: 'day' } }, yesterdayMs, nowMs) // 100
 */
export function currentRemaining(credits: Credits, refilledAtMs: number, nowMs: number): number {
  if (credits.refill !== null && refilledAtMs < periodStart(credits.refill.interval, nowMs)) return credits.refill.amount
  return credits.remaining
}

/** The credit columns of a key row, as stores read them. */
export interface StoredCredits {
  creditsRemaining: number | null
  creditsRefillAmount: number | null
  creditsRefillInterval: RefillInterval | null
  creditsRefilledAt: Date | null
  creditsVersion: number
}

/**
 * What a key's credits are at `nowMs`, and the start of the period they belong to: a refill due
 * since they were last written counts as done. Stores write this back before they lease or
 * settle, so every process applies a period's refill once, in the same statement as its change.
 */
export function effectiveCredits(stored: StoredCredits, nowMs: number): { remaining: number; refilledAtMs: number } | null {
  if (stored.creditsRemaining === null) return null
  const refilledAtMs = stored.creditsRefilledAt?.getTime() ?? 0
  if (stored.creditsRefillAmount === null || stored.creditsRefillInterval === null)
    return { remaining: stored.creditsRemaining, refilledAtMs }
  const start = periodStart(stored.creditsRefillInterval, nowMs)
  if (refilledAtMs < start) return { remaining: stored.creditsRefillAmount, refilledAtMs: start }
  return { remaining: stored.creditsRemaining, refilledAtMs }
}

/** The counter name of a key's credits as stored at `nowMs`: its setting and its period (see `creditEpoch`). */
export function storedCreditEpoch(stored: StoredCredits, nowMs: number): string | null {
  const effective = effectiveCredits(stored, nowMs)
  return effective === null ? null : `${stored.creditsVersion}:${effective.refilledAtMs}`
}

/**
 * The name of the counter that holds a key's credits right now: `<version>` without refill,
 * `<version>:<period start>` with one. A PATCH of credits (a new version) or a new refill period
 * names a fresh counter, so no counter needs to be found and reset: the old one is abandoned
 * (and expires), the new one is seeded from `currentRemaining`. Every instance computes the same
 * name from the same row and clock, so a refill happens once per period across instances.
 *
 * @param version changes whenever credits are set (create, PATCH); e.g. a counter column.
 */
export function creditEpoch(version: number | string, credits: Credits, nowMs: number): string {
  if (credits.refill === null) return String(version)
  return `${version}:${periodStart(credits.refill.interval, nowMs)}`
}

/**
 * How long until credits come back (the next refill), or `null` when they never will.
 * For `Retry-After` on a `credits_exhausted` answer.
 */
export function creditsRetryAfterMs(credits: Credits, nowMs: number): number | null {
  if (credits.refill === null) return null
  return nextPeriodStart(credits.refill.interval, nowMs) - nowMs
}

interface LedgerEntry {
  epoch: string
  /** What this process may still spend without asking anyone. */
  available: number
  /** Spent since the last `drainSpent()`. */
  spent: number
}

/** One key's spending since the last drain, for the flush that persists it. */
export interface SpentCredits {
  keyId: string
  epoch: string
  spent: number
}

/**
 * The credits a process may spend on its own, per key and per credit epoch. Synchronous, so a
 * check and a spend cannot interleave with another request in the same process.
 *
 * Two ways to feed it, both with the same calls:
 * - one process owns the credits (SQLite): the first spend of an epoch is seeded with what the
 *   database says is left; `drainSpent()` on each usage flush gives what to subtract there. A crash
 *   loses at most the spending since the last flush, never grants more.
 * - several processes share them (PostgreSQL, no Redis): seed 0; when `spend` refuses, lease a
 *   block from the database (one atomic statement) and `grant` it; on flush and close,
 *   `takeUnused` gives back what was not spent. The database never hands out more than it has,
 *   so instances never overspend together.
 *
 * An entry is replaced when the epoch changes (a PATCH or a new refill period): what was left of
 * the old epoch is dropped, not returned, because the database's value for the new epoch was set
 * anew and does not include it.
 *
 * Memory: one small entry per key that spent credits in this process; `takeUnused` removes it.
 */
export class CreditLedger {
  readonly #entries = new Map<string, LedgerEntry>()

  /**
   * Spends `cost` if this process holds at least that much for the key's current epoch.
   * @param seed what the process may spend if it holds nothing yet for this epoch
   * @returns whether it was spent; on `false` nothing changed except the seeding
   */
  spend(keyId: string, epoch: string, cost: number, seed = 0): boolean {
    const entry = this.#entry(keyId, epoch, seed)
    if (entry.available < cost) return false
    entry.available -= cost
    entry.spent += cost
    return true
  }

  /**
   * Spends up to `amount` (metering after the work was done, e.g. tokens): what is held is spent
   * down to 0 and never below.
   * @returns what was actually charged
   */
  charge(keyId: string, epoch: string, amount: number, seed = 0): number {
    const entry = this.#entry(keyId, epoch, seed)
    const charged = Math.min(entry.available, Math.max(0, amount))
    entry.available -= charged
    entry.spent += charged
    return charged
  }

  /** What this process may still spend for the key's epoch (seeding it if new). */
  available(keyId: string, epoch: string, seed = 0): number {
    return this.#entry(keyId, epoch, seed).available
  }

  /** What this process holds for the key's epoch, without seeding or replacing anything (0 if another epoch). */
  peek(keyId: string, epoch: string): number {
    const entry = this.#entries.get(keyId)
    return entry !== undefined && entry.epoch === epoch ? entry.available : 0
  }

  /** The epoch this process holds credits of for the key, if any. */
  epochOf(keyId: string): string | undefined {
    return this.#entries.get(keyId)?.epoch
  }

  /** Adds a leased block to what this process may spend. */
  grant(keyId: string, epoch: string, amount: number): void {
    this.#entry(keyId, epoch, 0).available += amount
  }

  /**
   * Removes the key's entry and returns what was not spent, to give back to the database
   * (guarded there by the same epoch). `undefined` when the process holds nothing for the key.
   */
  takeUnused(keyId: string): { epoch: string; amount: number } | undefined {
    const entry = this.#entries.get(keyId)
    if (entry === undefined) return undefined
    this.#entries.delete(keyId)
    return { epoch: entry.epoch, amount: entry.available }
  }

  /** Every key that spent since the last call, with how much; resets the counts. */
  drainSpent(): SpentCredits[] {
    const drained: SpentCredits[] = []
    for (const [keyId, entry] of this.#entries) {
      if (entry.spent === 0) continue
      drained.push({ keyId, epoch: entry.epoch, spent: entry.spent })
      entry.spent = 0
    }
    return drained
  }

  /** The keys the process holds credits for (for `takeUnused` on close). */
  keyIds(): string[] {
    return [...this.#entries.keys()]
  }

  #entry(keyId: string, epoch: string, seed: number): LedgerEntry {
    let entry = this.#entries.get(keyId)
    if (entry === undefined || entry.epoch !== epoch) {
      entry = { epoch, available: seed, spent: 0 }
      this.#entries.set(keyId, entry)
    }
    return entry
  }
}
