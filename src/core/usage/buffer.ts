import { DAY_MS } from '../records.js'
import type { KeyStore } from '../store.js'
import type { UsageIncrement } from '../types.js'

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
/** One (key, day) count in memory; the instant stays a number so counting allocates nothing. */
interface Bucket {
  keyId: string
  day: string
  count: number
  lastUsedAtMs: number
}

export class UsageBuffer {
  /** day → keyId → bucket. Usually one day; two around midnight UTC. */
  #pending = new Map<string, Map<string, Bucket>>()
  #today: Map<string, Bucket> = new Map()
  #todayName = ''
  #dayStartsAtMs = 0
  #flushing: Promise<void> = Promise.resolve()

  constructor(private readonly store: KeyStore) {}

  record(keyId: string, nowMs: number): void {
    if (nowMs < this.#dayStartsAtMs || nowMs >= this.#dayStartsAtMs + DAY_MS) {
      this.#dayStartsAtMs = nowMs - (nowMs % DAY_MS)
      this.#todayName = utcDay(nowMs)
      this.#today = this.#day(this.#todayName)
    }
    const bucket = this.#today.get(keyId)
    if (bucket === undefined) {
      this.#today.set(keyId, { keyId, day: this.#todayName, count: 1, lastUsedAtMs: nowMs })
      return
    }
    bucket.count++
    if (nowMs > bucket.lastUsedAtMs) bucket.lastUsedAtMs = nowMs
  }

  /** Requests recorded but not yet written. */
  get pendingRequests(): number {
    let total = 0
    for (const day of this.#pending.values()) for (const bucket of day.values()) total += bucket.count
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
    const batch: Bucket[] = []
    for (const day of this.#pending.values()) for (const bucket of day.values()) batch.push(bucket)
    if (batch.length === 0) return
    this.#pending = new Map()
    this.#dayStartsAtMs = 0
    try {
      await this.store.recordUsage(
        batch.map(({ keyId, day, count, lastUsedAtMs }): UsageIncrement => ({ keyId, day, count, lastUsedAt: new Date(lastUsedAtMs) })),
      )
    } catch (error) {
      // Counts are additive, so a failed batch merges back into whatever was counted meanwhile.
      for (const failed of batch) {
        const day = this.#day(failed.day)
        const bucket = day.get(failed.keyId)
        if (bucket === undefined) day.set(failed.keyId, failed)
        else {
          bucket.count += failed.count
          if (failed.lastUsedAtMs > bucket.lastUsedAtMs) bucket.lastUsedAtMs = failed.lastUsedAtMs
        }
      }
      throw error
    }
  }

  /** The buckets of one UTC day, created on first use. */
  #day(day: string): Map<string, Bucket> {
    let buckets = this.#pending.get(day)
    if (buckets === undefined) {
      buckets = new Map()
      this.#pending.set(day, buckets)
    }
    return buckets
  }
}
