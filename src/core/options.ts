import type { LimiterOptions } from './controls/limiter.js'
import type { RateLimit } from './controls/rate-limit.js'
import type { RedisClientLike } from './controls/redis.js'
import { assertPrefix } from './key-format.js'
import { DEFAULT_RETRY_SCHEDULE_SECONDS } from './lifecycle/signing.js'
import type { OutboundPolicy } from './lifecycle/ssrf.js'
import type { Lookup } from './lifecycle/transport.js'
import { gracePeriodSecondsSchema } from './schemas.js'
import type { KeyStore } from './store.js'
import type { VerificationCacheOptions } from './verification/cache.js'

/** Every option of a keyward instance. The factory `keyward()` adds `database` and reads the environment. */
export interface KeywardOptions {
  /** The key store, or a promise of one (opened lazily by the `keyward()` factory). */
  store: KeyStore | Promise<KeyStore>
  /**
   * The first part of every key: `<prefix>_<live|test>_<body>`. 1-12 of `[a-z0-9]`.
   * @default 'sk'
   */
  prefix?: string
  /**
   * A server-side secret. When set, key hashes are HMAC-SHA256 under it (a stolen table alone
   * cannot be checked against guesses) and pending rotation webhooks are stored encrypted.
   * Changing it invalidates every existing key. `keyward()` reads `KEYWARD_PEPPER` when it is absent.
   * @default undefined (plain SHA-256)
   */
  pepper?: string
  /**
   * The business clock, as epoch milliseconds: expiry, grace periods, schedules and usage days.
   * Tests inject one to drive them.
   * @default Date.now
   */
  now?: () => number
  /**
   * The monotonic clock, in milliseconds: how old a cached entry is and how long ago the change
   * log was read. Tests inject one to move past the staleness bound without sleeping.
   * @default performance.now
   */
  monotonicNow?: () => number
  /** In-process verification cache, or `false` to read the store on every request. */
  cache?: (VerificationCacheOptions & CacheSyncOptions) | false
  /** Usage buffering, or `false` to stop recording usage. */
  usage?: { /** @default 1000 */ flushIntervalMs?: number } | false
  rotation?: {
    /**
     * Grace period when a rotate call names none (and for scheduled rotations).
     * @default 3600
     */
    defaultGracePeriodSeconds?: number
  }
  webhooks?: WebhookOptions
  /** Where keyward reports background failures (sync, flush, delivery). Never receives secrets. */
  onError?: (error: unknown, context: string) => void
  /**
   * Redis to count rate limits and credits in, shared by every instance: a `redis://` URL or an
   * ioredis client (the `ioredis` package is an optional peer dependency). Without it they are
   * counted in this process (rate limits per instance; credits leased from the database, never
   * overspent). `keyward()` reads `KEYWARD_REDIS_URL` when this is absent.
   * @default undefined (in process)
   */
  redis?: string | RedisClientLike
  /**
   * While Redis cannot be reached: `'fallback-local'` counts rate limits per instance and reports
   * the outage once through `onError`; `'fail-closed'` answers 503 `limiter_unavailable` for every
   * limited key. Keys with credits answer 503 either way (credits are never overspent), keys
   * without controls are never affected.
   * @default 'fallback-local'
   */
  onLimiterUnavailable?: 'fallback-local' | 'fail-closed'
  /**
   * Limits shared by all keys of a tenant, set in code; checked with every key's own limits.
   * Called once per cache fill of a key.
   * @example
   * tenantRateLimits: (tenantId) => (tenantId === 'acme' ? [{ name: 'tenant', limit: 1000, windowMs: 60_000 }] : [])
   * @default none
   */
  tenantRateLimits?: (tenantId: string) => readonly RateLimit[]
  /** Fine-tuning of the limiter: Redis key prefix and timeouts, the in-process subject bound. */
  limiter?: Omit<LimiterOptions, 'redis' | 'onLimiterUnavailable' | 'onError'>
}

export interface WebhookOptions extends Partial<OutboundPolicy> {
  /** @default 10_000 */
  timeoutMs?: number
  /**
   * Delays before each retry, in seconds; the delivery fails for good after the last.
   * @default [5, 30, 120, 600, 1800, 7200, 18000]
   */
  retryScheduleSeconds?: number[]
  /**
   * Resolves a webhook's host name at delivery. Every address it answers is checked against the
   * policy and the connection goes to one of those addresses (no second lookup to rebind).
   * @default the operating system's resolver
   */
  lookup?: Lookup
  /**
   * Trusted certificate authorities (PEM) for receivers behind a private CA (and tests).
   * @default Node's bundled root certificates
   */
  ca?: string | Buffer
}

export interface CacheSyncOptions {
  /**
   * How often the change log is read, so changes made by other processes evict this cache.
   * @default 250
   */
  syncIntervalMs?: number
  /**
   * The bound on how stale the cache may be: if the change log has not been read successfully
   * for this long, cached entries are not trusted and every request reads the store.
   * @default 1000
   */
  maxStalenessMs?: number
}

/** The two clocks every part of keyward reads time from. */
export interface Clock {
  /** Epoch milliseconds (business time). */
  now(): number
  /** Monotonic milliseconds (ages and bounds). */
  monotonic(): number
}

/** Options with their defaults applied and checked once, when the instance is built. */
export interface ResolvedOptions {
  prefix: string
  pepper: string | undefined
  clock: Clock
  cache: (VerificationCacheOptions & Required<CacheSyncOptions>) | undefined
  flushIntervalMs: number | undefined
  defaultGraceSeconds: number
  webhookTimeoutMs: number
  retryScheduleSeconds: number[]
  /** Where webhooks may go: checked when a URL is saved and again at delivery. */
  outboundPolicy: OutboundPolicy
  webhookLookup: Lookup | undefined
  webhookCa: string | Buffer | undefined
  onError: (error: unknown, context: string) => void
  limiter: LimiterOptions
  tenantRateLimits: ((tenantId: string) => readonly RateLimit[]) | undefined
}

/** Applies defaults and throws an `Error` naming the option for anything invalid (as Hono's factories do). */
export function resolveOptions(options: KeywardOptions): ResolvedOptions {
  if (options === undefined || options.store === undefined) throw new Error('keyward: option "store" is required')
  const prefix = options.prefix ?? 'sk'
  assertPrefix(prefix)
  if (options.pepper === '') throw new Error('keyward: option "pepper" must not be empty')
  const cache =
    options.cache === false
      ? undefined
      : {
          ...options.cache,
          syncIntervalMs: positive(options.cache?.syncIntervalMs ?? 250, 'cache.syncIntervalMs'),
          maxStalenessMs: positive(options.cache?.maxStalenessMs ?? 1000, 'cache.maxStalenessMs'),
        }
  const defaultGraceSeconds = options.rotation?.defaultGracePeriodSeconds ?? 3600
  if (!gracePeriodSecondsSchema.safeParse(defaultGraceSeconds).success) {
    throw new Error('keyward: option "rotation.defaultGracePeriodSeconds" must be a whole number from 0 to 2592000')
  }
  const retryScheduleSeconds = options.webhooks?.retryScheduleSeconds ?? DEFAULT_RETRY_SCHEDULE_SECONDS
  if (!Array.isArray(retryScheduleSeconds) || retryScheduleSeconds.some((delay) => !Number.isFinite(delay) || delay < 0)) {
    throw new Error('keyward: option "webhooks.retryScheduleSeconds" must be a list of non-negative numbers')
  }
  return {
    prefix,
    pepper: options.pepper,
    clock: { now: options.now ?? Date.now, monotonic: options.monotonicNow ?? (() => performance.now()) },
    cache,
    flushIntervalMs: options.usage === false ? undefined : positive(options.usage?.flushIntervalMs ?? 1000, 'usage.flushIntervalMs'),
    defaultGraceSeconds,
    webhookTimeoutMs: positive(options.webhooks?.timeoutMs ?? 10_000, 'webhooks.timeoutMs'),
    retryScheduleSeconds,
    outboundPolicy: {
      allowPrivateNetworks: options.webhooks?.allowPrivateNetworks === true,
      allowInsecureHttp: options.webhooks?.allowInsecureHttp === true,
    },
    webhookLookup: options.webhooks?.lookup,
    webhookCa: options.webhooks?.ca,
    limiter: { ...options.limiter, redis: options.redis, onLimiterUnavailable: options.onLimiterUnavailable },
    tenantRateLimits: options.tenantRateLimits,
    onError: options.onError ?? ((error, context) => console.error(`keyward: ${context}:`, errorMessage(error))),
  }
}

export function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`keyward: option "${name}" must be a positive number`)
  return value
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
