import type { KeyStore, UsageIncrement } from './types.js'

const DAY_MS = 86_400_000

/** `YYYY-MM-DD` of an instant, UTC. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}

/**
 * Request counts and last-used times, buffered in memory and written in bulk.
 *
 * `record` is on the hot path: a Map lookup and two number updates, no I/O and no allocation
 * once a key has an entry for the day. `flush` swaps the buffer out and writes it with the store's
 * bulk statement (additive `count = count + n`, `last_used_at` only moves forward), so several
 * processes flushing the same key add up exactly. A failed flush merges its batch back, so an
 * outage delays counts instead of losing them; only a crash loses the current buffer (at most
 * one flush interval of counts).
 */
export class UsageBuffer {
  /** day → keyId → increment. Usually one day; two around midnight UTC. */
  #pending = new Map<string, Map<string, UsageIncrement>>()
  #today: Map<string, UsageIncrement> = new Map()
  #dayStartsAtMs = 0
  #flushing: Promise<void> = Promise.resolve()

  constructor(private readonly store: KeyStore) {}

  record(keyId: string, nowMs: number): void {
    if (nowMs < this.#dayStartsAtMs || nowMs >= this.#dayStartsAtMs + DAY_MS) this.#selectDay(nowMs)
    const entry = this.#today.get(keyId)
    if (entry === undefined) {
      this.#today.set(keyId, { keyId, day: utcDay(this.#dayStartsAtMs), count: 1, lastUsedAt: new Date(nowMs) })
      return
    }
    entry.count++
    if (nowMs > entry.lastUsedAt.getTime()) entry.lastUsedAt = new Date(nowMs)
  }

  /** Requests recorded but not yet written. */
  get pendingRequests(): number {
    let total = 0
    for (const day of this.#pending.values()) for (const entry of day.values()) total += entry.count
    return total
  }

  /** Writes everything buffered so far. Flushes run one at a time, in order. */
  flush(): Promise<void> {
    const run = this.#flushing.then(() => this.#flushOnce())
    // The chain must survive a failed flush; the caller still sees the failure.
    this.#flushing = run.catch(() => undefined)
    return run
  }

  async #flushOnce(): Promise<void> {
    const batch: UsageIncrement[] = []
    for (const day of this.#pending.values()) for (const entry of day.values()) batch.push(entry)
    if (batch.length === 0) return
    this.#pending = new Map()
    this.#dayStartsAtMs = 0
    try {
      await this.store.recordUsage(batch)
    } catch (error) {
      for (const increment of batch) this.#mergeBack(increment)
      throw error
    }
  }

  #mergeBack(increment: UsageIncrement): void {
    let day = this.#pending.get(increment.day)
    if (day === undefined) {
      day = new Map()
      this.#pending.set(increment.day, day)
    }
    const entry = day.get(increment.keyId)
    if (entry === undefined) {
      day.set(increment.keyId, increment)
      return
    }
    entry.count += increment.count
    if (increment.lastUsedAt > entry.lastUsedAt) entry.lastUsedAt = increment.lastUsedAt
  }

  #selectDay(nowMs: number): void {
    this.#dayStartsAtMs = nowMs - (nowMs % DAY_MS)
    const day = utcDay(this.#dayStartsAtMs)
    let map = this.#pending.get(day)
    if (map === undefined) {
      map = new Map()
      this.#pending.set(day, map)
    }
    this.#today = map
  }
}
