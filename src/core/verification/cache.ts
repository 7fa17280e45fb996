import { LRUCache } from 'lru-cache'
import type { KeyVerdictInput } from './decide.js'

/** A cached lookup: the key's verdict input, or `null` for "no key has this hash". */
export interface CacheEntry {
  verdict: KeyVerdictInput | null
  loadedAtMs: number
}

export interface VerificationCacheOptions {
  /**
   * How many key hashes to hold.
   * @default 100_000
   */
  max?: number
  /**
   * Hard upper bound on how long a found key is served from memory without a database read.
   * Change events normally evict entries long before this; it is the safety net.
   * @default 60_000
   */
  ttlMs?: number
  /**
   * How long "no such key" is remembered, so a flood of unknown keys costs no database reads.
   * A real key's hash is unguessable, so this never hides a key created later.
   * @default 10_000
   */
  negativeTtlMs?: number
  /**
   * How many "no such key" answers to hold. They live in an LRU of their own, so a flood of
   * distinct made-up keys (a valid checksum is easy to compute) cannot push real keys out.
   * @default 10_000
   */
  negativeMax?: number
}

/**
 * The in-process cache of verified keys, bounded (LRU) and fenced against stale refills.
 *
 * The fence: a fill reads the database, then stores what it read. If an eviction for any key
 * happens between the read and the store (a revoke in this process, or a change event from
 * another), the fill may hold a pre-revoke row, so it is dropped (Harsh-2002/Orva#53). A global
 * generation number makes that check one integer comparison.
 *
 * Time here is the process's monotonic clock (`performance.now()`), not the injected business
 * clock: it measures how old a cached row is, not whether the key has expired.
 */
export class VerificationCache {
  /** Keys that exist (whatever their status). */
  readonly #found: LRUCache<string, CacheEntry>
  /** Hashes no key has: bounded apart from `#found`, so they never evict a real key. */
  readonly #missing: LRUCache<string, CacheEntry>
  readonly #ttlMs: number
  readonly #negativeTtlMs: number
  #generation = 0

  constructor(options: VerificationCacheOptions = {}) {
    this.#ttlMs = options.ttlMs ?? 60_000
    this.#negativeTtlMs = options.negativeTtlMs ?? 10_000
    this.#found = new LRUCache({ max: positiveInteger(options.max ?? 100_000, 'cache.max') })
    this.#missing = new LRUCache({ max: positiveInteger(options.negativeMax ?? 10_000, 'cache.negativeMax') })
  }

  /** The entry for a hash if it is young enough to trust, else undefined (a miss). */
  get(keyHash: string, nowMs: number): CacheEntry | undefined {
    const found = this.#found.get(keyHash)
    if (found !== undefined) {
      if (nowMs - found.loadedAtMs < this.#ttlMs) return found
      this.#found.delete(keyHash)
      return undefined
    }
    const missing = this.#missing.get(keyHash)
    if (missing === undefined) return undefined
    if (nowMs - missing.loadedAtMs < this.#negativeTtlMs) return missing
    this.#missing.delete(keyHash)
    return undefined
  }

  /** Call before the database read of a fill; pass the result to `fill`. */
  fence(): number {
    return this.#generation
  }

  /** Stores a fill unless something was evicted since its `fence()`. */
  fill(keyHash: string, entry: CacheEntry, fence: number): boolean {
    if (fence !== this.#generation) return false
    if (entry.verdict === null) {
      this.#found.delete(keyHash)
      this.#missing.set(keyHash, entry)
    } else {
      this.#missing.delete(keyHash)
      this.#found.set(keyHash, entry)
    }
    return true
  }

  invalidate(keyHashes: Iterable<string>): void {
    this.#generation++
    for (const keyHash of keyHashes) {
      this.#found.delete(keyHash)
      this.#missing.delete(keyHash)
    }
  }

  clear(): void {
    this.#generation++
    this.#found.clear()
    this.#missing.clear()
  }

  /** Entries held: keys found, and hashes remembered as missing. */
  get size(): { found: number; missing: number } {
    return { found: this.#found.size, missing: this.#missing.size }
  }
}

function positiveInteger(value: number, option: string): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`keyward: option "${option}" must be a positive integer`)
  return value
}
