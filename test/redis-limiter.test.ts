import { afterEach, describe, expect, it } from 'vitest'
import { createLimiter, type Limiter } from '../src/core/controls/limiter.js'
import { type LimitResult, type LimitSubject, LocalRateLimiter, limitSubjects, type RateLimit } from '../src/core/controls/rate-limit.js'
import { LimiterUnavailableError, RedisLimiter } from '../src/core/controls/redis.js'
import { TestClock } from './helpers/clock.js'
import { freshRedisPrefix, hasRedis, inspector, REDIS_URL, throwawayRedis } from './helpers/redis.js'

const opened: { close(): Promise<void> }[] = []
afterEach(async () => {
  await Promise.all(opened.splice(0).map((limiter) => limiter.close()))
})

function redisLimiter(keyPrefix: string, url = REDIS_URL): RedisLimiter {
  const limiter = new RedisLimiter({ redis: url, keyPrefix })
  opened.push(limiter)
  return limiter
}

function limiterWith(options: Parameters<typeof createLimiter>[0]): Limiter {
  const limiter = createLimiter(options)
  opened.push(limiter)
  return limiter
}

const subject = (id: string, ...limits: RateLimit[]): LimitSubject => ({ id, limits: Object.freeze(limits) })

/** The same sequence in [0, 1) every run (a linear congruential generator), so a failure repeats. */
function seededRandom(seed: number): () => number {
  let state = seed
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31
    return state / 2 ** 31
  }
}

/** Two keys of one tenant, each with a limit of its own, sharing the tenant's limit. */
function twoKeysSharingATenantLimit(tag: string, limits: { burst: number; slow: number; minute: number }) {
  const tenantLimits = [{ name: 'minute', limit: limits.minute, windowMs: 60_000 }]
  const key = (suffix: string, own: RateLimit) =>
    limitSubjects({ id: `k${tag}${suffix}`, tenantId: `t${tag}`, rateLimits: [own] }, tenantLimits)
  return [
    key('a', { name: 'burst', limit: limits.burst, windowMs: 1000 }),
    key('b', { name: 'slow', limit: limits.slow, windowMs: 7000 }),
  ] as const
}

/** A limiter's answer as plain data, so two limiters' answers compare field by field. */
const plain = (result: LimitResult): unknown => JSON.parse(JSON.stringify(result))

/** Sum of the bucket fields of one limit's hash: what the limit has counted. */
async function counted(prefix: string, subjectId: string, limit: RateLimit): Promise<number> {
  const fields = await inspector().hgetall(`${prefix}rl:${subjectId}:${limit.name}:${limit.windowMs}`)
  return Object.entries(fields)
    .filter(([field]) => field !== 't')
    .reduce((sum, [, count]) => sum + Number(count), 0)
}

describe.skipIf(!hasRedis)('RedisLimiter', () => {
  it('admits exactly 25 of 80 concurrent requests against 25 per 10 s, across two instances', async () => {
    const prefix = freshRedisPrefix()
    const [first, second] = [redisLimiter(prefix), redisLimiter(prefix)]
    const burst = { name: 'burst', limit: 25, windowMs: 10_000 }
    const subjects = [subject('key:k1', burst)]
    const now = Date.now()
    const results = await Promise.all(
      Array.from({ length: 80 }, (_, index) => (index % 2 === 0 ? first : second).consume(subjects, 1, now + Math.floor(index / 4))),
    )
    expect(results.filter((result) => result.ok)).toHaveLength(25)
    const refused = results.filter((result) => !result.ok)
    expect(refused.every((result) => !result.ok && result.code === 'rate_limited' && result.limit.name === 'burst')).toBe(true)
    expect(await counted(prefix, 'key:k1', burst)).toBe(25)
  })

  it('spends exactly 30 credits of 100 concurrent requests over two instances, then says 0 are left', async () => {
    const prefix = freshRedisPrefix()
    const [first, second] = [redisLimiter(prefix), redisLimiter(prefix)]
    const credits = { keyId: 'key_c', epoch: '1', seed: 30 }
    const now = Date.now()
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, index) => (index % 2 === 0 ? first : second).consume([], 1, now, credits)),
    )
    expect(results.filter((result) => result.ok)).toHaveLength(30)
    expect(results.filter((result) => !result.ok && result.code === 'credits_exhausted')).toHaveLength(70)
    const remainders = results.filter((result) => result.ok).map((result) => result.credits?.remaining)
    expect(new Set(remainders).size).toBe(30)
    expect(Math.min(...(remainders as number[]))).toBe(0)
    expect(await first.peekCredits('key_c', '1')).toBe(0)
  })

  it('sends concurrent requests as one script call each batch, each answered as if alone', async () => {
    // A server of this test's own, so its command statistics count this limiter's calls only.
    const server = await throwawayRedis()
    const limiter = redisLimiter(freshRedisPrefix(), server.url)
    await limiter.ready()
    const stats = inspector(server.url)
    const scriptCalls = async () => {
      const info = await stats.info('commandstats')
      return [...info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)].reduce((sum, match) => sum + Number(match[1]), 0)
    }
    const before = await scriptCalls()
    const burst = { name: 'burst', limit: 3, windowMs: 10_000 }
    const limited = [subject('key:b1', burst)]
    const credits = { keyId: 'key_b2', epoch: '1', seed: 2 }
    const now = Date.now()
    // 20 requests in one event-loop turn: 10 against a limit of 3, 10 against 2 credits, interleaved.
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, index) => (index % 2 === 0 ? limiter.consume(limited, 1, now) : limiter.consume([], 1, now, credits))),
    )
    const limitedResults = results.filter((_, index) => index % 2 === 0)
    const creditResults = results.filter((_, index) => index % 2 === 1)
    expect(limitedResults.map((result) => result.ok)).toEqual([true, true, true, false, false, false, false, false, false, false])
    expect(limitedResults.map((result) => result.states[0]?.remaining)).toEqual([2, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    expect(limitedResults.slice(3).every((result) => !result.ok && result.code === 'rate_limited')).toBe(true)
    expect(creditResults.map((result) => result.ok)).toEqual([true, true, false, false, false, false, false, false, false, false])
    expect(creditResults.map((result) => ('credits' in result ? result.credits?.remaining : undefined))).toEqual([
      1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ])
    // One script call for the twenty (at most two, if the first went out before the rest arrived).
    expect((await scriptCalls()) - before).toBeLessThanOrEqual(2)
    // A batch that Redis cannot answer fails every request in it, as unavailable.
    await server.stop()
    const failed = await Promise.allSettled([limiter.consume(limited, 1, now), limiter.consume([], 1, now, credits)])
    expect(failed.map((outcome) => outcome.status === 'rejected' && outcome.reason instanceof LimiterUnavailableError)).toEqual([
      true,
      true,
    ])
  })

  it('writes nothing to the first limit when the second refuses', async () => {
    const prefix = freshRedisPrefix()
    const limiter = redisLimiter(prefix)
    const hourly = { name: 'hourly', limit: 5, windowMs: 3_600_000 }
    const burst = { name: 'burst', limit: 2, windowMs: 1000 }
    const subjects = [subject('key:k2', hourly, burst)]
    const clock = new TestClock()
    expect((await limiter.consume(subjects, 1, clock.now())).ok).toBe(true)
    expect((await limiter.consume(subjects, 1, clock.now())).ok).toBe(true)
    for (let request = 0; request < 5; request++) {
      const result = await limiter.consume(subjects, 1, clock.now())
      expect(result).toMatchObject({ ok: false, code: 'rate_limited', limit: { name: 'burst' } })
      expect(result.states[0]).toMatchObject({ name: 'hourly', remaining: 3 })
    }
    expect(await counted(prefix, 'key:k2', hourly)).toBe(2)
  })

  it('does not spend credits on a rate-limited request, nor the limits on a credits refusal', async () => {
    const prefix = freshRedisPrefix()
    const limiter = redisLimiter(prefix)
    const hourly = { name: 'hourly', limit: 5, windowMs: 3_600_000 }
    const subjects = [subject('key:k3', hourly, { name: 'burst', limit: 1, windowMs: 1000 })]
    const clock = new TestClock()
    const credits = (epoch: string) => ({ keyId: 'k3', epoch, seed: 1 })
    expect(await limiter.consume(subjects, 1, clock.now(), credits('1'))).toMatchObject({ ok: true, credits: { remaining: 0 } })
    clock.advance(1100)
    expect(await limiter.consume(subjects, 1, clock.now(), credits('1'))).toMatchObject({ ok: false, code: 'credits_exhausted' })
    expect(await counted(prefix, 'key:k3', hourly)).toBe(1)
    expect(await limiter.consume(subjects, 1, clock.now(), credits('2'))).toMatchObject({ ok: true })
    expect(await counted(prefix, 'key:k3', hourly)).toBe(2)
    expect(await limiter.consume(subjects, 1, clock.now(), credits('3'))).toMatchObject({
      ok: false,
      code: 'rate_limited',
      limit: { name: 'burst' },
      credits: { remaining: 1 },
    })
    expect(await limiter.peekCredits('k3', '3')).toBe(1)
    expect(await counted(prefix, 'key:k3', hourly)).toBe(2)
  })

  it('seeds a new credit epoch from the caller, and never reseeds a running one', async () => {
    const prefix = freshRedisPrefix()
    const limiter = redisLimiter(prefix)
    const now = Date.now()
    expect(await limiter.consume([], 2, now, { keyId: 'k4', epoch: '1', seed: 2 })).toMatchObject({ ok: true, credits: { remaining: 0 } })
    // A stale seed (the database has not been flushed yet) does not refill the running counter.
    expect(await limiter.consume([], 1, now, { keyId: 'k4', epoch: '1', seed: 2 })).toMatchObject({ ok: false, code: 'credits_exhausted' })
    expect(await limiter.peekCredits('k4', '2')).toBeNull()
    expect(await limiter.consume([], 1, now, { keyId: 'k4', epoch: '2', seed: 5 })).toMatchObject({ ok: true, credits: { remaining: 4 } })
  })

  it('charges metered usage down to zero and never below', async () => {
    const limiter = redisLimiter(freshRedisPrefix())
    const credits = { keyId: 'k5', epoch: '1', seed: 10 }
    expect(await limiter.chargeCredits(credits, 4)).toEqual({ charged: 4, remaining: 6 })
    expect(await limiter.chargeCredits(credits, 50)).toEqual({ charged: 6, remaining: 0 })
    expect(await limiter.chargeCredits(credits, 1)).toEqual({ charged: 0, remaining: 0 })
  })

  it('slides over the window boundary with the caller’s clock, as the local limiter does', async () => {
    const limiter = redisLimiter(freshRedisPrefix())
    const subjects = [subject('key:k6', { name: 'burst', limit: 2, windowMs: 1000 })]
    const start = new TestClock().now()
    const at = async (offsetMs: number) => (await limiter.consume(subjects, 1, start + offsetMs)).ok
    expect(await at(900)).toBe(true)
    expect(await at(950)).toBe(true)
    expect(await at(1000)).toBe(false)
    expect(await at(1949)).toBe(false)
    expect(await at(1950)).toBe(true)
    // An instance whose clock is behind cannot reopen the window.
    expect(await at(0)).toBe(false)
  })

  it('counts a request from an instance whose clock is behind as of the latest reading', async () => {
    const limiter = redisLimiter(freshRedisPrefix())
    const subjects = [subject('key:k6b', { name: 'burst', limit: 2, windowMs: 1000 })]
    const start = new TestClock().now()
    expect((await limiter.consume(subjects, 1, start + 5000)).ok).toBe(true)
    // 4.9 s behind: admitted, but counted in the current bucket, not in one long expired.
    expect((await limiter.consume(subjects, 1, start + 100)).ok).toBe(true)
    expect(await limiter.consume(subjects, 1, start + 5000)).toMatchObject({ ok: false, code: 'rate_limited', retryAfterMs: 1050 })
  })

  it('answers exactly what the local limiter answers, request by request', async () => {
    const redis = redisLimiter(freshRedisPrefix())
    const local = new LocalRateLimiter()
    const keys = twoKeysSharingATenantLimit('7', { burst: 3, slow: 4, minute: 9 })
    const random = seededRandom(7)
    let now = Date.parse('2026-03-01T12:00:00.007Z')
    for (let request = 0; request < 150; request++) {
      now += Math.floor(random() * 400)
      const subjects = request % 2 === 0 ? keys[0] : keys[1]
      const cost = 1 + Math.floor(random() * 2)
      expect(plain(await redis.consume(subjects, cost, now))).toEqual(plain(local.consume(subjects, cost, now)))
    }
  })

  it('answers a batch of requests sharing keys exactly as the local limiter answers them one by one', async () => {
    // The script reads a key the batch shares once and writes it once, at the end: each request
    // must still see what the requests before it in the batch did. Two keys share a tenant limit.
    const redis = redisLimiter(freshRedisPrefix())
    const local = new LocalRateLimiter()
    const keys = twoKeysSharingATenantLimit('11', { burst: 4, slow: 5, minute: 14 })
    const random = seededRandom(11)
    let now = Date.parse('2026-03-01T12:00:00.011Z')
    let refusals = 0
    for (let group = 0; group < 40; group++) {
      const requests = Array.from({ length: 1 + Math.floor(random() * 8) }, () => {
        now += Math.floor(random() * 300)
        return { subjects: keys[random() < 0.5 ? 0 : 1], cost: 1 + Math.floor(random() * 2), now }
      })
      // One event-loop turn: the group leaves as one script call.
      const answers = await Promise.all(requests.map((request) => redis.consume(request.subjects, request.cost, request.now)))
      for (const [index, request] of requests.entries()) {
        const expected = local.consume(request.subjects, request.cost, request.now)
        if (!expected.ok) refusals++
        expect(plain(answers[index] as LimitResult)).toEqual(plain(expected))
      }
    }
    // The sequence has refusals by both limits, so it shows a refused request changing nothing.
    expect(refusals).toBeGreaterThan(10)
  })

  it('opens its own connection from a host’s ioredis client and leaves that client open', async () => {
    const hostClient = inspector()
    const prefix = freshRedisPrefix()
    const limiter = new RedisLimiter({ redis: hostClient, keyPrefix: prefix })
    const subjects = [subject('key:k10', { name: 'burst', limit: 1, windowMs: 1000 })]
    expect((await limiter.consume(subjects, 1, Date.now())).ok).toBe(true)
    await limiter.close()
    expect(await hostClient.exists(`${prefix}rl:key:k10:burst:1000`)).toBe(1)
  })

  it('keeps every key under its prefix with an expiry', async () => {
    const prefix = freshRedisPrefix()
    const limiter = redisLimiter(prefix)
    await limiter.consume([subject('key:k8', { name: 'burst', limit: 5, windowMs: 10_000 })], 1, Date.now(), {
      keyId: 'k8',
      epoch: '1',
      seed: 5,
    })
    const client = inspector()
    const keys = (await client.keys(`${prefix}*`)).sort()
    expect(keys).toEqual([`${prefix}credits:k8:1`, `${prefix}rl:key:k8:burst:10000`])
    const limitTtl = await client.pttl(`${prefix}rl:key:k8:burst:10000`)
    expect(limitTtl).toBeGreaterThan(0)
    expect(limitTtl).toBeLessThanOrEqual(10_500)
    const creditTtl = await client.pttl(`${prefix}credits:k8:1`)
    expect(creditTtl).toBeGreaterThan(86_400_000)
    expect(creditTtl).toBeLessThanOrEqual(7 * 86_400_000)
  })
})

describe.skipIf(!hasRedis)('createLimiter when Redis goes away', () => {
  const subjects = [subject('key:k9', { name: 'burst', limit: 3, windowMs: 60_000 })]

  it('rejects with LimiterUnavailableError, quickly, when Redis is down', async () => {
    const server = await throwawayRedis()
    const limiter = redisLimiter(freshRedisPrefix(), server.url)
    await limiter.ready()
    await server.stop()
    await expect(limiter.consume(subjects, 1, Date.now())).rejects.toBeInstanceOf(LimiterUnavailableError)
  })

  it('falls back to counting in process, reports the outage once, and returns to Redis when it is back', async () => {
    const server = await throwawayRedis()
    const errors: unknown[] = []
    const limiter = limiterWith({ redis: server.url, keyPrefix: 'fallback:', retryRedisAfterMs: 0, onError: (error) => errors.push(error) })
    const clock = new TestClock()
    expect(await limiter.consume(subjects, 1, clock.now())).toMatchObject({ ok: true })
    expect(await inspector(server.url).exists('fallback:rl:key:k9:burst:60000')).toBe(1)

    await server.stop()
    // In process: the local counters start empty, so 3 pass and the 4th is refused.
    const during = []
    for (let request = 0; request < 5; request++) during.push(await limiter.consume(subjects, 1, clock.now()))
    expect(during.map((result) => result.ok)).toEqual([true, true, true, false, false])
    expect(during[3]).toMatchObject({ code: 'rate_limited' })
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(LimiterUnavailableError)
    // Credits cannot be counted safely apart from Redis: refused, not overspent.
    expect(await limiter.consume([], 1, clock.now(), { keyId: 'k9', epoch: '1', seed: 10 })).toMatchObject({
      ok: false,
      code: 'limiter_unavailable',
    })

    await server.start()
    const back = await eventually(async () => {
      await limiter.consume(subjects, 1, clock.now())
      return (await inspector(server.url).exists('fallback:rl:key:k9:burst:60000')) === 1
    })
    expect(back).toBe(true)
    expect(errors).toHaveLength(1)
  })

  it('refuses keys with limits with limiter_unavailable when failing closed, and lets keys without limits through', async () => {
    const server = await throwawayRedis()
    const errors: unknown[] = []
    const limiter = limiterWith({ redis: server.url, onLimiterUnavailable: 'fail-closed', onError: (error) => errors.push(error) })
    expect(await limiter.consume(subjects, 1, Date.now())).toMatchObject({ ok: true })
    await server.stop()
    for (let request = 0; request < 3; request++) {
      expect(await limiter.consume(subjects, 1, Date.now())).toMatchObject({ ok: false, code: 'limiter_unavailable' })
    }
    expect(await limiter.consume([], 1, Date.now())).toMatchObject({ ok: true })
    expect(errors).toHaveLength(1)
  })
})

/** Polls until the check passes (Redis reconnects on its own schedule); false after 15 s. */
async function eventually(check: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}
