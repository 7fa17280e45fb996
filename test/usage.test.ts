import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { Keyward, type KeywardOptions } from '../src/core/keyward.js'
import { StoreUnavailableError } from '../src/core/store.js'
import { apiKeyAuth, createKeysRouter } from '../src/hono/index.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'
import { TestClock } from './helpers/clock.js'
import { readJson } from './helpers/http.js'
import { instrument } from './helpers/instrumented-store.js'
import { tempSqlitePath } from './helpers/sqlite.js'

const tenant = { tenantId: 'acme' }
const DAY = 86_400_000

function open(path: string, clock: TestClock, options: Partial<KeywardOptions> = {}) {
  const store = instrument(createSqliteStore({ url: path }))
  // A long interval: these tests decide when flushes happen.
  const kw = new Keyward({ store, now: clock.now, usage: { flushIntervalMs: 3_600_000 }, ...options })
  return { kw, store }
}

async function newKey(kw: Keyward, name = 'k') {
  const created = await kw.createKey(tenant, { name })
  if (!created.ok) throw new Error(created.error.detail)
  return created.value
}

function appFor(kw: Keyward) {
  const app = new Hono()
  app.use('/v1/*', apiKeyAuth({ keyward: kw }))
  app.get('/v1/ping', (c) => c.text('pong'))
  app.route('/api-keys', createKeysRouter({ keyward: kw }))
  return app
}

describe('usage tracking', () => {
  it('counts a burst of requests exactly, with one bulk write per flush and none per request', async () => {
    const clock = new TestClock()
    const { kw, store } = open(tempSqlitePath(), clock)
    const keys = [await newKey(kw, 'a'), await newKey(kw, 'b'), await newKey(kw, 'c')]
    const app = appFor(kw)
    const perKey = [250, 120, 31]
    await Promise.all(
      keys.flatMap((key, i) =>
        Array.from({ length: perKey[i] as number }, () => app.request('/v1/ping', { headers: { 'x-api-key': key.key } })),
      ),
    )
    expect(store.calls.recordUsage ?? 0).toBe(0)
    expect(kw.pendingUsage).toBe(401)
    await kw.flushUsage()
    expect(store.calls.recordUsage).toBe(1)
    expect(kw.pendingUsage).toBe(0)
    for (const [i, key] of keys.entries()) {
      const usage = await kw.getUsage(tenant, key.apiKey.id)
      expect(usage.ok && usage.value.totalRequests).toBe(perKey[i])
      expect(usage.ok && usage.value.lastUsedAt?.toISOString()).toBe(clock.date().toISOString())
    }
    await kw.close()
  })

  it('loses nothing on graceful shutdown: close() writes the buffer', async () => {
    const clock = new TestClock()
    const path = tempSqlitePath()
    const first = open(path, clock)
    const key = await newKey(first.kw)
    for (let i = 0; i < 37; i++) expect((await first.kw.verify(key.key)).ok).toBe(true)
    await first.kw.close()
    const second = open(path, clock)
    const usage = await second.kw.getUsage(tenant, key.apiKey.id)
    expect(usage.ok && usage.value.totalRequests).toBe(37)
    await second.kw.close()
  })

  it('keeps counts through a failed flush and writes them with the next one', async () => {
    const clock = new TestClock()
    const { kw, store } = open(tempSqlitePath(), clock, { onError: () => undefined })
    const key = await newKey(kw)
    for (let i = 0; i < 10; i++) await kw.verify(key.key)
    store.before.recordUsage = () => {
      throw new StoreUnavailableError('down')
    }
    await expect(kw.flushUsage()).rejects.toThrow('down')
    for (let i = 0; i < 5; i++) await kw.verify(key.key)
    expect(kw.pendingUsage).toBe(15)
    store.before.recordUsage = undefined
    await kw.flushUsage()
    const usage = await kw.getUsage(tenant, key.apiKey.id)
    expect(usage.ok && usage.value.totalRequests).toBe(15)
    await kw.close()
  })

  it('adds up exactly when two instances on one SQLite file count the same key', async () => {
    const clock = new TestClock()
    const path = tempSqlitePath()
    const a = open(path, clock)
    const key = await newKey(a.kw)
    const b = open(path, clock)
    const late = new TestClock(clock.ms + 5000)
    const c = open(path, late)
    for (let i = 0; i < 300; i++) {
      await a.kw.verify(key.key)
      await b.kw.verify(key.key)
    }
    await c.kw.verify(key.key)
    // The later use flushes first; the earlier flushes after it must not move last_used_at back.
    await c.kw.close()
    await Promise.all([a.kw.flushUsage(), b.kw.flushUsage()])
    const usage = await a.kw.getUsage(tenant, key.apiKey.id)
    expect(usage.ok && usage.value.totalRequests).toBe(601)
    expect(usage.ok && usage.value.lastUsedAt?.toISOString()).toBe(late.date().toISOString())
    await a.kw.close()
    await b.kw.close()
  })

  it('reports the seed-003 usage fields and a daily series over ?days=', async () => {
    const clock = new TestClock()
    const { kw } = open(tempSqlitePath(), clock)
    const admin = await newKey(kw, 'admin')
    const key = await newKey(kw, 'reporting')
    for (let i = 0; i < 3; i++) await kw.verify(key.key)
    clock.advance(2 * DAY)
    for (let i = 0; i < 4; i++) await kw.verify(key.key)
    clock.advance(5 * DAY)
    const app = appFor(kw)
    const res = await app.request(`/api-keys/${key.apiKey.id}/usage?days=10`, { headers: { 'x-api-key': admin.key } })
    expect(res.status).toBe(200)
    const body = await readJson(res)
    expect(body).toMatchObject({
      key_id: key.apiKey.id,
      name: 'reporting',
      created_at: key.apiKey.createdAt.toISOString(),
      days_since_creation: 7,
      days_since_last_use: 5,
      total_requests: 7,
    })
    expect(body.daily).toHaveLength(10)
    expect(body.daily.filter((d: { requests: number }) => d.requests > 0)).toEqual([
      { date: '2026-03-01', requests: 3, rate_limited: 0, credits_refused: 0 },
      { date: '2026-03-03', requests: 4, rate_limited: 0, credits_refused: 0 },
    ])
    const tooMany = await app.request(`/api-keys/${key.apiKey.id}/usage?days=91`, { headers: { 'x-api-key': admin.key } })
    expect(tooMany.status).toBe(400)
    expect((await readJson(tooMany)).code).toBe('validation_error')
    await kw.close()
  })

  it('follows the rotation chain when asked, so a rotation keeps the history', async () => {
    const clock = new TestClock()
    const { kw } = open(tempSqlitePath(), clock)
    const key = await newKey(kw)
    for (let i = 0; i < 5; i++) await kw.verify(key.key)
    const rotated = await kw.rotateKey(tenant, key.apiKey.id, { gracePeriodSeconds: 0 })
    if (!rotated.ok) throw new Error('rotate failed')
    for (let i = 0; i < 2; i++) await kw.verify(rotated.value.key)
    const own = await kw.getUsage(tenant, rotated.value.newKey.id)
    const chain = await kw.getUsage(tenant, rotated.value.newKey.id, { includePredecessors: true })
    expect(own.ok && own.value.totalRequests).toBe(2)
    expect(chain.ok && chain.value.totalRequests).toBe(7)
    expect(chain.ok && chain.value.keyIds).toEqual([rotated.value.newKey.id, key.apiKey.id])
    await kw.close()
  })
})
