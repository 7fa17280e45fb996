import { describe, expect, it } from 'vitest'
import type { Keyward, KeywardOptions } from '../src/core/keyward.js'
import { keyward } from '../src/index.js'
import { TestClock } from './helpers/clock.js'
import { readJson } from './helpers/http.js'
import { freshPostgresDatabase, hasPostgres } from './helpers/postgres.js'
import { type AppProcess, startAppProcess } from './helpers/process.js'
import { freshRedisPrefix, hasRedis, REDIS_URL, throwawayRedis } from './helpers/redis.js'
import { tempSqlitePath } from './helpers/sqlite.js'

/**
 * Rate limits and credits across instances: real app processes on one PostgreSQL database (with
 * and without Redis), and several keyward instances in one test process where the test must own
 * the clock (refills) or Redis (an outage).
 */

const TENANT = { tenantId: 'acme' }

async function mintOn(url: string, input: Parameters<Keyward['createKey']>[1]): Promise<{ id: string; key: string }> {
  const kw = keyward({ database: url })
  const created = await kw.createKey(TENANT, input)
  await kw.close()
  if (!created.ok) throw new Error(JSON.stringify(created.error))
  return { id: created.value.apiKey.id, key: created.value.key }
}

/** `count` requests at once, spread over the processes; the status of each. */
async function burst(apps: AppProcess[], key: string, count: number): Promise<number[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const response = await fetch(`${(apps[i % apps.length] as AppProcess).baseUrl}/v1/ping`, { headers: { 'x-api-key': key } })
      await response.arrayBuffer()
      return response.status
    }),
  )
}

const count = (statuses: number[], status: number) => statuses.filter((value) => value === status).length

describe.skipIf(!hasPostgres || !hasRedis)('two app processes on one PostgreSQL database with Redis', () => {
  it('admits exactly 25 of 80 concurrent requests under a limit of 25 per 10 s, and spends exactly 30 credits of 30', async () => {
    const url = await freshPostgresDatabase()
    const limited = await mintOn(url, { name: 'limited', rateLimits: [{ name: 'burst', limit: 25, windowMs: 10_000 }] })
    const credited = await mintOn(url, { name: 'credited', credits: { remaining: 30 } })
    const env = {
      KEYWARD_REDIS_URL: REDIS_URL,
      KEYWARD_LIMITER_PREFIX: freshRedisPrefix(),
      KEYWARD_LIMITER_COMMAND_TIMEOUT_MS: '10000',
      FLUSH_INTERVAL_MS: '200',
    }
    const apps = await Promise.all([startAppProcess(url, env), startAppProcess(url, env)])
    try {
      const limitedStatuses = await burst(apps, limited.key, 80)
      expect(count(limitedStatuses, 200)).toBe(25)
      expect(count(limitedStatuses, 429)).toBe(55)
      const creditStatuses = await burst(apps, credited.key, 100)
      expect(count(creditStatuses, 200)).toBe(30)
      expect(count(creditStatuses, 429)).toBe(70)
      const after = await fetch(`${(apps[1] as AppProcess).baseUrl}/v1/ping`, { headers: { 'x-api-key': credited.key } })
      expect(after.status).toBe(429)
      expect(await readJson(after)).toMatchObject({ code: 'credits_exhausted' })
    } finally {
      await Promise.all(apps.map((app) => app.stop()))
    }
    // Both processes settled what they spent in the database on their way out.
    const kw = keyward({ database: url })
    const shown = await kw.getKey(TENANT, credited.id)
    await kw.close()
    expect(shown.ok && shown.value.credits).toEqual({ remaining: 0, refill: null })
  }, 60_000)
})

describe.skipIf(!hasPostgres)('two app processes on one PostgreSQL database without Redis', () => {
  it('never overspends credits: a concurrent burst and what follows spend exactly the 30 the key has', async () => {
    const url = await freshPostgresDatabase()
    const credited = await mintOn(url, { name: 'credited', credits: { remaining: 30 } })
    const apps = await Promise.all([startAppProcess(url, { FLUSH_INTERVAL_MS: '200' }), startAppProcess(url, { FLUSH_INTERVAL_MS: '200' })])
    let admitted = 0
    try {
      const first = await burst(apps, credited.key, 100)
      admitted += count(first, 200)
      expect(admitted).toBeLessThanOrEqual(30)
      // Leases one process held and did not spend go back on its flush; the other may use them then.
      for (let round = 0; round < 20 && admitted < 30; round++) {
        await new Promise((resolve) => setTimeout(resolve, 250))
        admitted += count(await burst(apps, credited.key, 10), 200)
      }
      expect(admitted).toBe(30)
    } finally {
      await Promise.all(apps.map((app) => app.stop()))
    }
    const kw = keyward({ database: url })
    const shown = await kw.getKey(TENANT, credited.id)
    await kw.close()
    expect(shown.ok && shown.value.credits?.remaining).toBe(0)
  }, 60_000)
})

/** Two keyward instances on one database (and Redis, when given), each with its own cache and limiter, on one clock. */
async function twoInstances(database: string, options: Omit<Partial<KeywardOptions>, 'store'> = {}) {
  const clock = new TestClock(Date.parse('2026-03-01T23:59:30.000Z'))
  const open = () => keyward({ database, now: clock.now, usage: { flushIntervalMs: 60_000 }, onError: () => undefined, ...options })
  const a = open()
  const b = open()
  return { clock, a, b, close: () => Promise.all([a.close(), b.close()]) }
}

async function verifyAll(instances: Keyward[], key: string, times: number): Promise<string[]> {
  const codes: string[] = []
  for (let i = 0; i < times; i++) {
    const decision = await (instances[i % instances.length] as Keyward).verify(key)
    codes.push(decision.ok ? 'ok' : decision.code)
  }
  return codes
}

describe('credits refill once per interval across instances', () => {
  it('without Redis (leases from one SQLite database)', async () => {
    const database = tempSqlitePath()
    const { clock, a, b, close } = await twoInstances(database)
    try {
      const created = await a.createKey(TENANT, { name: 'daily', credits: { remaining: 2, refill: { amount: 3, interval: 'day' } } })
      if (!created.ok) throw new Error('create failed')
      const key = created.value.key
      expect(await verifyAll([a, b], key, 4)).toEqual(['ok', 'ok', 'credits_exhausted', 'credits_exhausted'])
      clock.advance(60_000) // the next UTC day
      const codes = await verifyAll([a, b], key, 8)
      expect(codes.filter((code) => code === 'ok')).toHaveLength(3)
      await a.flushUsage()
      await b.flushUsage()
      expect(await verifyAll([a, b], key, 4)).toEqual(['credits_exhausted', 'credits_exhausted', 'credits_exhausted', 'credits_exhausted'])
    } finally {
      await close()
    }
  })

  it.skipIf(!hasRedis)('with Redis', async () => {
    const database = tempSqlitePath()
    const { clock, a, b, close } = await twoInstances(database, { redis: REDIS_URL, limiter: { keyPrefix: freshRedisPrefix() } })
    try {
      const created = await a.createKey(TENANT, { name: 'daily', credits: { remaining: 2, refill: { amount: 3, interval: 'day' } } })
      if (!created.ok) throw new Error('create failed')
      const key = created.value.key
      expect(await verifyAll([a, b], key, 4)).toEqual(['ok', 'ok', 'credits_exhausted', 'credits_exhausted'])
      clock.advance(60_000)
      expect(await verifyAll([a, b], key, 6)).toEqual(['ok', 'ok', 'ok', 'credits_exhausted', 'credits_exhausted', 'credits_exhausted'])
      await a.flushUsage()
      await b.flushUsage()
      const shown = await a.getKey(TENANT, created.value.apiKey.id)
      expect(shown.ok && shown.value.credits?.remaining).toBe(0)
    } finally {
      await close()
    }
  })
})

describe.skipIf(!hasRedis)('when Redis stops', () => {
  async function withThrowawayRedis(mode: 'fallback-local' | 'fail-closed') {
    const redis = await throwawayRedis()
    const reported: string[] = []
    const kw = keyward({
      database: tempSqlitePath(),
      redis: redis.url,
      onLimiterUnavailable: mode,
      limiter: { retryRedisAfterMs: 50, commandTimeoutMs: 300 },
      onError: (_error, context) => reported.push(context),
    })
    const limited = await kw.createKey(TENANT, { name: 'limited', rateLimits: [{ name: 'burst', limit: 3, windowMs: 60_000 }] })
    const credited = await kw.createKey(TENANT, { name: 'credited', credits: { remaining: 10 } })
    const plain = await kw.createKey(TENANT, { name: 'plain' })
    if (!limited.ok || !credited.ok || !plain.ok) throw new Error('create failed')
    return { redis, kw, reported, limited: limited.value.key, credited: credited.value.key, plain: plain.value.key }
  }

  it('falls back to counting per instance and reports the outage once; credit keys answer limiter_unavailable; no key without controls is touched', async () => {
    const { redis, kw, reported, limited, credited, plain } = await withThrowawayRedis('fallback-local')
    try {
      expect((await kw.verify(limited)).ok).toBe(true)
      expect((await kw.verify(credited)).ok).toBe(true)
      await redis.stop()
      const codes = await verifyAll([kw], limited, 5)
      // Counted in this process from zero while Redis is away: 3 admitted, then refused.
      expect(codes).toEqual(['ok', 'ok', 'ok', 'rate_limited', 'rate_limited'])
      expect(reported.filter((context) => context.startsWith('rate limiter'))).toHaveLength(1)
      expect(await kw.verify(credited)).toMatchObject({ ok: false, code: 'limiter_unavailable' })
      expect((await kw.verify(plain)).ok).toBe(true)
      await redis.start()
      let recovered = false
      for (let i = 0; i < 100 && !recovered; i++) {
        recovered = (await kw.verify(credited)).ok
        if (!recovered) await new Promise((resolve) => setTimeout(resolve, 50))
      }
      expect(recovered).toBe(true)
    } finally {
      await kw.close()
      await redis.stop()
    }
  })

  it('answers 503 limiter_unavailable for every limited key with onLimiterUnavailable: fail-closed', async () => {
    const { redis, kw, limited, credited, plain } = await withThrowawayRedis('fail-closed')
    try {
      expect((await kw.verify(limited)).ok).toBe(true)
      await redis.stop()
      expect(await kw.verify(limited)).toMatchObject({ ok: false, code: 'limiter_unavailable' })
      expect(await kw.verify(credited)).toMatchObject({ ok: false, code: 'limiter_unavailable' })
      expect((await kw.verify(plain)).ok).toBe(true)
    } finally {
      await kw.close()
      await redis.stop()
    }
  })
})

/**
 * A key's limits and credits belong to its lineage (the key its rotations began with), not to
 * its row: a rotation neither resets the window nor spends the credits a second time, and what a
 * process leased before it is given back to the successor.
 */
describe('controls follow a key across a rotation', () => {
  async function rotate(kw: Keyward, id: string): Promise<{ id: string; key: string }> {
    const rotated = await kw.rotateKey(TENANT, id, { gracePeriodSeconds: 300 })
    if (!rotated.ok) throw new Error(JSON.stringify(rotated.error))
    return { id: rotated.value.newKey.id, key: rotated.value.key }
  }

  async function rateLimitAcrossRotation(instances: Keyward[]) {
    const [first] = instances as [Keyward]
    const created = await first.createKey(TENANT, { name: 'limited', rateLimits: [{ name: 'minute', limit: 3, windowMs: 60_000 }] })
    if (!created.ok) throw new Error('create failed')
    const old = created.value.key
    expect(await verifyAll(instances, old, 2)).toEqual(['ok', 'ok'])
    const successor = await rotate(first, created.value.apiKey.id)
    const codes = []
    for (const [i, key] of [successor.key, old, successor.key, old].entries()) {
      const decision = await (instances[i % instances.length] as Keyward).verify(key)
      codes.push(decision.ok ? 'ok' : decision.code)
    }
    expect(codes).toEqual(['ok', 'rate_limited', 'rate_limited', 'rate_limited'])
  }

  it('rate limits: one window for the old key and its successor (in-process limiter)', async () => {
    const { a, close } = await twoInstances(tempSqlitePath())
    try {
      await rateLimitAcrossRotation([a])
    } finally {
      await close()
    }
  })

  it.skipIf(!hasRedis)('rate limits: one window for the old key and its successor, across instances (Redis)', async () => {
    const { a, b, close } = await twoInstances(tempSqlitePath(), { redis: REDIS_URL, limiter: { keyPrefix: freshRedisPrefix() } })
    try {
      await rateLimitAcrossRotation([a, b])
    } finally {
      await close()
    }
  })

  it.skipIf(!hasRedis)('Redis credits: spending before the rotation counts after it; the flush settles it on the successor', async () => {
    const { a, b, close } = await twoInstances(tempSqlitePath(), { redis: REDIS_URL, limiter: { keyPrefix: freshRedisPrefix() } })
    try {
      const created = await a.createKey(TENANT, { name: 'credited', credits: { remaining: 10 } })
      if (!created.ok) throw new Error('create failed')
      const old = created.value.key
      expect((await verifyAll([a, b], old, 8)).every((code) => code === 'ok')).toBe(true)
      // Not flushed yet: the database still says 10; the Redis counter says 2.
      const successor = await rotate(a, created.value.apiKey.id)
      const codes = []
      for (const [i, key] of [old, successor.key, successor.key, old, successor.key].entries()) {
        const decision = await ([a, b][i % 2] as Keyward).verify(key)
        codes.push(decision.ok ? 'ok' : decision.code)
      }
      expect(codes).toEqual(['ok', 'ok', 'credits_exhausted', 'credits_exhausted', 'credits_exhausted'])
      await a.flushUsage()
      await b.flushUsage()
      const shown = await a.getKey(TENANT, successor.id)
      expect(shown.ok && shown.value.credits?.remaining).toBe(0)
    } finally {
      await close()
    }
  })

  it('leased credits (no Redis): leases outstanding at the rotation go back to the successor; exactly the original amount is spendable', async () => {
    const { a, b, close } = await twoInstances(tempSqlitePath())
    try {
      const created = await a.createKey(TENANT, { name: 'credited', credits: { remaining: 10 } })
      if (!created.ok) throw new Error('create failed')
      const old = created.value.key
      // Leases grow with use (1, 2, 4, …): a takes 7 and spends 4, b takes 3 and spends 2; the
      // database has none left and 4 are held, unspent, when the key is rotated.
      expect(await verifyAll([a], old, 4)).toEqual(['ok', 'ok', 'ok', 'ok'])
      expect(await verifyAll([b], old, 2)).toEqual(['ok', 'ok'])
      const successor = await rotate(a, created.value.apiKey.id)
      expect((await a.getKey(TENANT, successor.id)).ok).toBe(true)
      await a.flushUsage()
      await b.flushUsage()
      const shown = await a.getKey(TENANT, successor.id)
      expect(shown.ok && shown.value.credits?.remaining).toBe(4)
      let admitted = 6
      for (let round = 0; round < 4; round++) {
        const codes = await verifyAll([a, b], round % 2 === 0 ? successor.key : old, 4)
        admitted += codes.filter((code) => code === 'ok').length
        await a.flushUsage()
        await b.flushUsage()
      }
      expect(admitted).toBe(10)
      const after = await a.getKey(TENANT, successor.id)
      expect(after.ok && after.value.credits?.remaining).toBe(0)
    } finally {
      await close()
    }
  })
})
