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
  rateLimited: number
  creditsRefused: number
  /** 0 while the bucket holds refusals only. */
  lastUsedAtMs: number
}

/** What a verification counts as: admitted, or refused by a rate limit or for lack of credits. */
export type UsageOutcome = 'admitted' | 'rate_limited' | 'credits_exhausted'

export class UsageBuffer {
  /** day → keyId → bucket. Usually one day; two around midnight UTC. */
  #pending = new Map<string, Map<string, Bucket>>()
  #today: Map<string, Bucket> = new Map()
  #todayName = ''
  #dayStartsAtMs = 0
  #flushing: Promise<void> = Promise.resolve()

  constructor(private readonly store: KeyStore) {}

  /** Counts an admitted request. */
  record(keyId: string, nowMs: number): void {
    const bucket = this.#bucket(keyId, nowMs)
    bucket.count++
    if (nowMs > bucket.lastUsedAtMs) bucket.lastUsedAtMs = nowMs
  }

  /** Counts a request refused by a rate limit or for lack of credits (not a use: last use stays). */
  recordRefusal(keyId: string, nowMs: number, reason: 'rate_limited' | 'credits_exhausted'): void {
    const bucket = this.#bucket(keyId, nowMs)
    if (reason === 'rate_limited') bucket.rateLimited++
    else bucket.creditsRefused++
  }

  #bucket(keyId: string, nowMs: number): Bucket {
    if (nowMs < this.#dayStartsAtMs || nowMs >= this.#dayStartsAtMs + DAY_MS) {
      this.#dayStartsAtMs = nowMs - (nowMs % DAY_MS)
      this.#todayName = utcDay(nowMs)
      this.#today = this.#day(this.#todayName)
    }
    let bucket = this.#today.get(keyId)
    if (bucket === undefined) {
      bucket = { keyId, day: this.#todayName, count: 0, rateLimited: 0, creditsRefused: 0, lastUsedAtMs: 0 }
      this.#today.set(keyId, bucket)
    }
    return bucket
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
        batch.map(
          (bucket): UsageIncrement => ({
            keyId: bucket.keyId,
            day: bucket.day,
            count: bucket.count,
            rateLimited: bucket.rateLimited,
            creditsRefused: bucket.creditsRefused,
            lastUsedAt: bucket.lastUsedAtMs === 0 ? null : new Date(bucket.lastUsedAtMs),
          }),
        ),
      )
    } catch (error) {
      // Counts are additive, so a failed batch merges back into whatever was counted meanwhile.
      for (const failed of batch) {
        const day = this.#day(failed.day)
        const bucket = day.get(failed.keyId)
        if (bucket === undefined) day.set(failed.keyId, failed)
        else {
          bucket.count += failed.count
          bucket.rateLimited += failed.rateLimited
          bucket.creditsRefused += failed.creditsRefused
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
