import { performance } from 'node:perf_hooks'
import {
  ADMITTED,
  type CreditCharge,
  LIMITER_UNAVAILABLE,
  type LimitResult,
  type LimitSubject,
  LocalRateLimiter,
  type LocalRateLimiterOptions,
} from './rate-limit.js'
import { LimiterUnavailableError, type RedisClientLike, RedisLimiter, type RedisLimiterOptions } from './redis.js'

export interface LimiterOptions extends Omit<RedisLimiterOptions, 'redis'> {
  /**
   * Redis to count in, shared by every instance: a `redis://` URL or an ioredis client.
   * Without it, limits and credits are counted in this process.
   * @default undefined (in process)
   */
  redis?: string | RedisClientLike
  /**
   * What to do while Redis cannot be reached:
   * - `'fallback-local'`: count rate limits in this process (each instance then allows the limit
   *   on its own) and report the outage once through `onError`. Keys with credits are refused
   *   with `limiter_unavailable`: credits spent here could not be subtracted in Redis, so they
   *   would be spent twice.
   * - `'fail-closed'`: refuse every request of a key with limits or credits with
   *   `limiter_unavailable` (503).
   * Keys without limits or credits are never affected. Redis is asked again automatically.
   * @default 'fallback-local'
   */
  onLimiterUnavailable?: 'fallback-local' | 'fail-closed'
  /**
   * Told once when Redis becomes unreachable (not once per request); again after it recovered
   * and failed anew.
   * @default logs to console.error
   */
  onError?: (error: unknown, context: string) => void
  /**
   * After a failure, how long requests skip Redis before one asks it again.
   * @default 1000
   */
  retryRedisAfterMs?: number
  /** Options of the in-process limiter (used without Redis, and as the fallback). */
  local?: LocalRateLimiterOptions
}

/** Counts rate limits and credits, in Redis or in process; see `createLimiter`. */
export interface Limiter {
  /** The in-process limiter: the only one without Redis, the fallback with it. */
  readonly local: LocalRateLimiter
  /** The Redis limiter, when `redis` was given. */
  readonly redis: RedisLimiter | undefined
  /**
   * Admits or refuses one request; see `LocalRateLimiter.consume`. Synchronous without Redis.
   * Never rejects for an outage: that answer is the fallback's or `limiter_unavailable`.
   */
  consume(subjects: readonly LimitSubject[], cost: number, nowMs: number, credits?: CreditCharge): LimitResult | Promise<LimitResult>
  /** Resolves once Redis is connected (at once without Redis); see `RedisLimiter.ready`. */
  ready(): Promise<void>
  close(): Promise<void>
}

/**
 * The limiter keyward uses: Redis when configured (exact across instances, one round trip per
 * request or per batch of concurrent ones), the in-process limiter otherwise and, if Redis fails, as the documented fallback.
 *
 * @example
 * const limiter = createLimiter({ redis: process.env.KEYWARD_REDIS_URL, onLimiterUnavailable: 'fail-closed' })
 * const result = await limiter.consume(subjects, 1, Date.now())
 */
export function createLimiter(options: LimiterOptions = {}): Limiter {
  const mode = options.onLimiterUnavailable ?? 'fallback-local'
  if (mode !== 'fallback-local' && mode !== 'fail-closed') {
    throw new Error(`keyward: onLimiterUnavailable must be 'fallback-local' or 'fail-closed', got ${JSON.stringify(mode)}`)
  }
  const retryAfterMs = options.retryRedisAfterMs ?? 1000
  if (!Number.isFinite(retryAfterMs) || retryAfterMs < 0) {
    throw new Error(`keyward: retryRedisAfterMs must be a number >= 0, got ${retryAfterMs}`)
  }
  const onError =
    options.onError ?? ((error, context) => console.error(`keyward: ${context}:`, error instanceof Error ? error.message : error))
  const local = new LocalRateLimiter(options.local)
  if (options.redis === undefined) {
    return {
      local,
      redis: undefined,
      consume: (subjects, cost, nowMs, credits) => local.consume(subjects, cost, nowMs, credits),
      ready: async () => {},
      close: async () => {},
    }
  }
  const {
    redis: connection,
    onLimiterUnavailable: _mode,
    onError: _onError,
    retryRedisAfterMs: _retry,
    local: _local,
    ...redisOptions
  } = options
  const redis = new RedisLimiter({ ...redisOptions, redis: connection })

  /** Monotonic time (not the business clock) before which requests do not ask Redis. */
  let skipRedisUntil = 0
  /** Whether the current outage was reported; cleared by the first answer from Redis. */
  let reported = false

  const withoutRedis = (subjects: readonly LimitSubject[], cost: number, nowMs: number, credits?: CreditCharge): LimitResult => {
    if (mode === 'fail-closed' || credits !== undefined) return LIMITER_UNAVAILABLE
    return local.consume(subjects, cost, nowMs)
  }

  return {
    local,
    redis,
    consume(subjects, cost, nowMs, credits) {
      if (subjects.length === 0 && credits === undefined) return ADMITTED
      if (skipRedisUntil > 0 && performance.now() < skipRedisUntil) return withoutRedis(subjects, cost, nowMs, credits)
      return redis.consume(subjects, cost, nowMs, credits).then(
        (result) => {
          reported = false
          skipRedisUntil = 0
          return result
        },
        (error: unknown) => {
          if (!(error instanceof LimiterUnavailableError)) throw error
          skipRedisUntil = performance.now() + retryAfterMs
          if (!reported) {
            reported = true
            onError(
              error,
              mode === 'fail-closed'
                ? 'rate limiter (Redis unreachable; failing closed)'
                : 'rate limiter (Redis unreachable; counting per instance)',
            )
          }
          return withoutRedis(subjects, cost, nowMs, credits)
        },
      )
    },
    ready: () => redis.ready(),
    close: () => redis.close(),
  }
}
