import { createServer, type IncomingMessage, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { Webhook } from 'standardwebhooks'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Keyward, type KeywardOptions } from '../src/core/keyward.js'
import type { Lookup } from '../src/core/lifecycle/transport.js'
import { type ApiKeyVariables, apiKeyAuth, createKeysRouter } from '../src/hono/index.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'
import { webhookDeliveries } from '../src/store/sqlite/schema.js'
import { TestClock } from './helpers/clock.js'
import { readJson } from './helpers/http.js'
import { tempSqlitePath } from './helpers/sqlite.js'
import { makeCertificate } from './helpers/tls.js'

const tenant = { tenantId: 'acme' }
const DAY = 86_400_000
const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function open(path: string, clock: TestClock, options: Partial<KeywardOptions> = {}) {
  // The receivers below listen on 127.0.0.1 over plain HTTP: allowed here, refused by default.
  const webhooks = { allowPrivateNetworks: true, allowInsecureHttp: true, ...options.webhooks }
  const kw = new Keyward({ store: createSqliteStore({ url: path }), now: clock.now, ...options, webhooks })
  cleanups.push(() => kw.close())
  return kw
}

/** A real HTTP server running the app, on a loopback port. */
async function listen(kw: Keyward): Promise<string> {
  const app = new Hono<{ Variables: ApiKeyVariables }>()
  app.use('/v1/*', apiKeyAuth({ keyward: kw }))
  app.get('/v1/ping', (c) => c.json({ key: c.var.apiKey.id }))
  app.route('/api-keys', createKeysRouter({ keyward: kw }))
  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server))
  })
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

interface Received {
  body: string
  headers: Record<string, string>
}

/** A webhook receiver on a real local HTTP server; `answers` are the statuses it gives in turn. */
async function receiver(answers: number[] = []) {
  const received: Received[] = []
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers as Record<string, string> })
      res.statusCode = answers.shift() ?? 200
      res.end('ok')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/keyward`, received }
}

async function create(kw: Keyward, input: Parameters<Keyward['createKey']>[1]) {
  const created = await kw.createKey(tenant, input)
  if (!created.ok) throw new Error(JSON.stringify(created.error))
  return created.value
}

describe('rotation', () => {
  it('issues a successor that inherits name, project, environment, scopes, metadata and lifetime', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock)
    const old = await create(kw, {
      name: 'billing',
      projectId: 'proj_1',
      environment: 'test',
      scopes: ['orders:read'],
      metadata: { team: 'b' },
      expiresInSeconds: 7 * 86400,
    })
    clock.advance(DAY)
    const rotated = await kw.rotateKey(tenant, old.apiKey.id, { gracePeriodSeconds: 600 })
    if (!rotated.ok) throw new Error('rotate failed')
    const successor = rotated.value.newKey
    expect(successor).toMatchObject({
      name: 'billing',
      projectId: 'proj_1',
      environment: 'test',
      scopes: ['orders:read'],
      metadata: { team: 'b' },
      rotatedFromKeyId: old.apiKey.id,
    })
    expect(successor.expiresAt?.getTime()).toBe(clock.ms + 7 * DAY)
    expect(rotated.value.key).toMatch(/^sk_test_/)
    expect(rotated.value.oldKey).toMatchObject({ replacedByKeyId: successor.id, graceExpiresAt: new Date(clock.ms + 600_000) })
    await kw.close()
  })

  it('keeps the old key working through the grace period and rejects it from the first moment after', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock)
    const base = await listen(kw)
    const admin = await create(kw, { name: 'admin' })
    const target = await create(kw, { name: 'svc' })
    const res = await fetch(`${base}/api-keys/${target.apiKey.id}/rotate`, {
      method: 'POST',
      headers: { 'x-api-key': admin.key, 'content-type': 'application/json' },
      body: JSON.stringify({ grace_period_seconds: 60 }),
    })
    expect(res.status).toBe(201)
    const body = await readJson(res)
    // Each object describes itself: the new key has no grace period; the old key's is on old_key.
    expect(body).toMatchObject({
      old_key_id: target.apiKey.id,
      new_key_id: body.id,
      status: 'active',
      grace_expires_at: null,
      old_key: { id: target.apiKey.id, status: 'rotating', grace_expires_at: new Date(clock.ms + 60_000).toISOString() },
    })
    expect(body.key_prefix).toBe(body.key.slice(0, 12))
    const ping = (key: string) => fetch(`${base}/v1/ping`, { headers: { authorization: `Bearer ${key}` } })
    expect((await ping(target.key)).status).toBe(200)
    expect((await ping(body.key)).status).toBe(200)
    const listed = await readJson(await fetch(`${base}/api-keys`, { headers: { 'x-api-key': admin.key } }))
    expect(listed.find((k: { id: string }) => k.id === target.apiKey.id)).toMatchObject({ status: 'rotating', replaced_by_key_id: body.id })
    clock.advance(59_999)
    expect((await ping(target.key)).status).toBe(200)
    clock.advance(1)
    const rejected = await ping(target.key)
    expect(rejected.status).toBe(401)
    expect(await readJson(rejected)).toMatchObject({ code: 'api_key_rotated' })
    expect((await ping(body.key)).status).toBe(200)
    const after = await readJson(await fetch(`${base}/api-keys/${target.apiKey.id}`, { headers: { 'x-api-key': admin.key } }))
    expect(after.status).toBe('rotated')
  })

  it('cuts the old key off at once with grace_period_seconds: 0, and bounds the grace period at 30 days', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock)
    const base = await listen(kw)
    const admin = await create(kw, { name: 'admin' })
    const target = await create(kw, { name: 'svc' })
    const rotate = (grace: unknown) =>
      fetch(`${base}/api-keys/${target.apiKey.id}/rotate`, {
        method: 'POST',
        headers: { 'x-api-key': admin.key, 'content-type': 'application/json' },
        body: JSON.stringify({ grace_period_seconds: grace }),
      })
    for (const bad of [30 * 86400 + 1, -1, 1.5, 'soon']) {
      const res = await rotate(bad)
      expect(res.status, String(bad)).toBe(400)
      expect(await readJson(res)).toMatchObject({ code: 'validation_error', errors: [{ field: 'grace_period_seconds' }] })
    }
    expect((await rotate(0)).status).toBe(201)
    const res = await fetch(`${base}/v1/ping`, { headers: { 'x-api-key': target.key } })
    expect(res.status).toBe(401)
  })

  it('lets exactly one of many simultaneous HTTP rotations win; the rest get 409 already_rotated', async () => {
    const clock = new TestClock()
    const path = tempSqlitePath()
    const kwA = open(path, clock)
    const kwB = open(path, clock)
    const [baseA, baseB] = [await listen(kwA), await listen(kwB)]
    const admin = await create(kwA, { name: 'admin' })
    const target = await create(kwA, { name: 'svc' })
    const responses = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        fetch(`${i % 2 === 0 ? baseA : baseB}/api-keys/${target.apiKey.id}/rotate`, {
          method: 'POST',
          headers: { 'x-api-key': admin.key },
        }),
      ),
    )
    const statuses = responses.map((res) => res.status).sort()
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409, 409, 409])
    for (const res of responses.filter((r) => r.status === 409)) expect(await readJson(res)).toMatchObject({ code: 'already_rotated' })
    const listed = await kwA.listKeys(tenant, { limit: 100 })
    expect(listed.ok && listed.value.items.filter((key) => key.rotatedFromKeyId === target.apiKey.id)).toHaveLength(1)
  })

  it('refuses to rotate a key in its grace period (rotate the successor) and a revoked key', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock)
    const target = await create(kw, { name: 'svc' })
    const first = await kw.rotateKey(tenant, target.apiKey.id, { gracePeriodSeconds: 3600 })
    expect(first.ok).toBe(true)
    expect(await kw.rotateKey(tenant, target.apiKey.id)).toMatchObject({ ok: false, error: { code: 'already_rotated' } })
    const revoked = await create(kw, { name: 'gone' })
    await kw.revokeKey(tenant, revoked.apiKey.id)
    expect(await kw.rotateKey(tenant, revoked.apiKey.id)).toMatchObject({ ok: false, error: { code: 'key_revoked' } })
  })
})

describe('expiry', () => {
  it('accepts expires_at in the future or expires_in_seconds, and rejects a past instant or both at once', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock)
    const future = new Date(clock.ms + 3_600_000).toISOString()
    expect((await kw.createKey(tenant, { name: 'a', expiresAt: future })).ok).toBe(true)
    expect((await kw.createKey(tenant, { name: 'b', expiresInSeconds: 60 })).ok).toBe(true)
    expect(await kw.createKey(tenant, { name: 'c', expiresAt: new Date(clock.ms).toISOString() })).toMatchObject({
      ok: false,
      error: { code: 'validation_error', errors: [{ field: 'expires_at' }] },
    })
    expect(await kw.createKey(tenant, { name: 'd', expiresAt: future, expiresInSeconds: 60 })).toMatchObject({
      ok: false,
      error: { code: 'validation_error' },
    })
    expect(await kw.createKey(tenant, { name: 'e', expiresAt: 'tomorrow' })).toMatchObject({
      ok: false,
      error: { code: 'validation_error' },
    })
  })

  it('rejects an expired key over HTTP with 401 api_key_expired from the first request past expiry; PATCH extends or clears it only before', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock)
    const base = await listen(kw)
    const admin = await create(kw, { name: 'admin' })
    const key = await create(kw, { name: 'short', expiresInSeconds: 30 })
    const ping = () => fetch(`${base}/v1/ping`, { headers: { 'x-api-key': key.key } })
    const patch = (id: string, body: unknown) =>
      fetch(`${base}/api-keys/${id}`, {
        method: 'PATCH',
        headers: { 'x-api-key': admin.key, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    expect((await ping()).status).toBe(200)
    clock.advance(20_000)
    const extended = await patch(key.apiKey.id, { expires_at: new Date(clock.ms + 60_000).toISOString() })
    expect(extended.status).toBe(200)
    expect((await readJson(extended)).status).toBe('active')
    clock.advance(30_000)
    expect((await ping()).status).toBe(200)
    expect((await patch(key.apiKey.id, { expires_at: null })).status).toBe(200)
    clock.advance(10 * DAY)
    expect((await ping()).status).toBe(200)
    const past = await patch(key.apiKey.id, { expires_at: new Date(clock.ms - 1000).toISOString() })
    expect(past.status).toBe(400)
    expect((await ping()).status).toBe(200)

    const short = await create(kw, { name: 'shorter', expiresInSeconds: 30 })
    clock.advance(30_000)
    const expired = await fetch(`${base}/v1/ping`, { headers: { 'x-api-key': short.key } })
    expect(expired.status).toBe(401)
    expect(expired.headers.get('www-authenticate')).toContain('error="invalid_token"')
    expect(await readJson(expired)).toMatchObject({ code: 'api_key_expired' })
    // Past its expiry a key is read-only: clearing the expiry must not revive it.
    const revive = await patch(short.apiKey.id, { expires_at: null })
    expect(revive.status).toBe(409)
    expect(await readJson(revive)).toMatchObject({ code: 'key_expired' })
    expect((await fetch(`${base}/v1/ping`, { headers: { 'x-api-key': short.key } })).status).toBe(401)
  })
})

describe('scheduled rotation', () => {
  async function scheduledKey(kw: Keyward, url: string) {
    const key = await create(kw, { name: 'nightly', scopes: ['orders:read'], rotationIntervalDays: 1, rotationWebhookUrl: url })
    expect(key.rotationWebhookSecret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/)
    expect(key.apiKey.nextRotationAt?.getTime()).toBe(key.apiKey.createdAt.getTime() + DAY)
    return key
  }

  it('rotates a key when next_rotation_at passes and POSTs the new secret, signed per Standard Webhooks', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock, { rotation: { defaultGracePeriodSeconds: 300 } })
    const hook = await receiver()
    const key = await scheduledKey(kw, hook.url)
    expect(await kw.runDueRotations()).toEqual({ rotated: 0, delivered: 0, failed: 0 })
    clock.advance(DAY)
    expect(await kw.runDueRotations()).toEqual({ rotated: 1, delivered: 1, failed: 0 })
    expect(hook.received).toHaveLength(1)
    const message = hook.received[0] as Received
    // The receiver verifies with the standardwebhooks package and the secret shown at creation.
    const event = new Webhook(key.rotationWebhookSecret as string).verify(message.body, message.headers) as {
      type: string
      data: { old_key_id: string; new_key_id: string; key: string; grace_expires_at: string }
    }
    expect(event.type).toBe('api_key.rotated')
    expect(event.data.old_key_id).toBe(key.apiKey.id)
    expect(message.headers['webhook-id']).toMatch(/^msg_/)
    expect(() => new Webhook(`whsec_${Buffer.from('x'.repeat(24)).toString('base64')}`).verify(message.body, message.headers)).toThrow()
    // The delivered secret works, the old one works until the grace ends.
    expect(await kw.verify(event.data.key)).toMatchObject({ ok: true, key: { id: event.data.new_key_id, scopes: ['orders:read'] } })
    expect((await kw.verify(key.key)).ok).toBe(true)
    clock.advance(300_000)
    expect(await kw.verify(key.key)).toEqual({ ok: false, code: 'api_key_rotated' })
    // The successor is scheduled a day on, and the old key is no longer due.
    const successor = await kw.getKey(tenant, event.data.new_key_id)
    expect(successor.ok && successor.value.nextRotationAt?.toISOString()).toBe(new Date(clock.ms - 300_000 + DAY).toISOString())
    expect(await kw.runDueRotations()).toEqual({ rotated: 0, delivered: 0, failed: 0 })
  })

  it('never rotates one due time twice, even with two schedulers on one database', async () => {
    const clock = new TestClock()
    const path = tempSqlitePath()
    const a = open(path, clock)
    const b = open(path, clock)
    const hook = await receiver()
    const keys = [await scheduledKey(a, hook.url), await scheduledKey(a, hook.url), await scheduledKey(a, hook.url)]
    clock.advance(DAY)
    const [runA, runB] = await Promise.all([a.runDueRotations(), b.runDueRotations()])
    expect(runA.rotated + runB.rotated).toBe(3)
    expect(runA.delivered + runB.delivered).toBe(3)
    expect(hook.received).toHaveLength(3)
    const olds = hook.received.map((m) => JSON.parse(m.body).data.old_key_id).sort()
    expect(olds).toEqual(keys.map((k) => k.apiKey.id).sort())
    const listed = await a.listKeys(tenant, { limit: 100 })
    expect(listed.ok && listed.value.items).toHaveLength(6)
  })

  it('retries a failed delivery with backoff, records every attempt, and shows them through the API', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock, { webhooks: { retryScheduleSeconds: [10, 60] } })
    const base = await listen(kw)
    const admin = await create(kw, { name: 'admin' })
    const hook = await receiver([500, 503, 200])
    const key = await scheduledKey(kw, hook.url)
    clock.advance(DAY)
    expect(await kw.runDueRotations()).toEqual({ rotated: 1, delivered: 0, failed: 0 })
    // Not yet due for a retry: nothing is sent.
    clock.advance(5_000)
    expect(await kw.deliverWebhooks()).toEqual({ delivered: 0, failed: 0 })
    clock.advance(7_000)
    expect(await kw.deliverWebhooks()).toEqual({ delivered: 0, failed: 0 })
    clock.advance(80_000)
    expect(await kw.deliverWebhooks()).toEqual({ delivered: 1, failed: 0 })
    expect(hook.received).toHaveLength(3)
    // Standard Webhooks: the message id is stable across retries.
    expect(new Set(hook.received.map((m) => m.headers['webhook-id'])).size).toBe(1)
    const res = await fetch(`${base}/api-keys/${key.apiKey.id}/webhook-deliveries`, { headers: { 'x-api-key': admin.key } })
    expect(res.status).toBe(200)
    const [delivery] = await readJson(res)
    expect(delivery).toMatchObject({ key_id: key.apiKey.id, status: 'succeeded', event_type: 'api_key.rotated', next_attempt_at: null })
    expect(delivery.attempts.map((a: { status: number }) => a.status)).toEqual([500, 503, 200])
    expect(JSON.stringify(delivery)).not.toContain('sk_live_')
  })

  it('gives up after the last retry, and stops the schedule when the endpoint answers 410 Gone', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock, { webhooks: { retryScheduleSeconds: [1] } })
    const failing = await receiver([500, 500])
    await scheduledKey(kw, failing.url)
    clock.advance(DAY)
    await kw.runDueRotations()
    clock.advance(2_000)
    expect(await kw.deliverWebhooks()).toEqual({ delivered: 0, failed: 1 })
    const gone = await receiver([410])
    const key = await scheduledKey(kw, gone.url)
    clock.advance(DAY)
    const run = await kw.runDueRotations()
    expect(run.failed).toBeGreaterThanOrEqual(1)
    const successorId = JSON.parse((gone.received[0] as Received).body).data.new_key_id
    const successor = await kw.getKey(tenant, successorId)
    expect(successor.ok && successor.value).toMatchObject({
      rotationIntervalDays: null,
      nextRotationAt: null,
      rotatedFromKeyId: key.apiKey.id,
    })
  })

  it('keeps the pending payload encrypted at rest when a pepper is set, and wipes it once settled', async () => {
    const clock = new TestClock()
    const path = tempSqlitePath()
    const kw = open(path, clock, { pepper: 'server-secret', webhooks: { retryScheduleSeconds: [5] } })
    const hook = await receiver([500, 200])
    await scheduledKey(kw, hook.url)
    clock.advance(DAY)
    await kw.runDueRotations()
    const store = createSqliteStore({ url: path })
    const [pending] = store.db.select().from(webhookDeliveries).all()
    expect(pending?.payload).toMatch(/^sealed:v1:/)
    expect(pending?.payload).not.toContain('sk_live_')
    clock.advance(10_000)
    expect(await kw.deliverWebhooks()).toEqual({ delivered: 1, failed: 0 })
    const [settled] = store.db.select().from(webhookDeliveries).all()
    expect(settled?.payload).toBeNull()
    await store.close()
  })

  it('runs only when started: at once, then on its interval, and not after it is stopped', async () => {
    // Only the intervals are fake, so the scheduler's loop moves when the test says; the store, the
    // receiver and the deliveries are real. Runs against SQLite are microtasks until a webhook is
    // sent, so a run that rotates has rotated before the next macrotask.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    cleanups.push(() => {
      vi.useRealTimers()
    })
    const nextMacrotask = () => new Promise((resolve) => setImmediate(resolve))
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock, { cache: false, usage: false })
    const hook = await receiver()
    const key = await scheduledKey(kw, hook.url)
    // The instance's own background loops (if any) are running now: the scheduler's is not one of them.
    const backgroundTimers = vi.getTimerCount()
    clock.advance(DAY)
    // Nothing is rotated by a hidden timer, however many times the background loops tick.
    vi.advanceTimersByTime(10 * 60_000)
    await nextMacrotask()
    const untouched = await kw.getKey(tenant, key.apiKey.id)
    expect(untouched.ok && untouched.value.status).toBe('active')
    expect(hook.received).toHaveLength(0)

    kw.startScheduler({ intervalMs: 60_000 })
    expect(vi.getTimerCount()).toBe(backgroundTimers + 1)
    // The first run starts at once; stopping waits for it.
    await kw.stopScheduler()
    expect(hook.received).toHaveLength(1)
    expect(vi.getTimerCount()).toBe(backgroundTimers)

    kw.startScheduler({ intervalMs: 60_000 })
    // Its first run finds nothing due and is over before the next macrotask.
    await nextMacrotask()
    clock.advance(DAY)
    // The interval's tick starts the next run, which rotates the successor; stopping waits for it.
    vi.advanceTimersByTime(60_000)
    await kw.stopScheduler()
    expect(hook.received).toHaveLength(2)

    // Stopped: no tick starts a run, however much time passes (stopping again would wait for one).
    clock.advance(DAY)
    vi.advanceTimersByTime(10 * 60_000)
    await kw.stopScheduler()
    expect(hook.received).toHaveLength(2)
    expect(vi.getTimerCount()).toBe(backgroundTimers)
  })

  it('refuses a delivery whose host name resolves to 127.0.0.1: one failed attempt, no retry, the receiver never reached', async () => {
    const certificate = makeCertificate('hooks.example.test')
    const seen: string[] = []
    const server = createHttpsServer({ key: certificate.key, cert: certificate.cert }, (req, res) => {
      seen.push(req.url ?? '')
      res.end('ok')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const port = (server.address() as AddressInfo).port
    // The name looks public, so it is accepted on save; at delivery it resolves to loopback.
    const lookups: string[] = []
    const lookup: Lookup = async (hostname) => {
      lookups.push(hostname)
      return [{ address: '127.0.0.1', family: 4 }]
    }
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock, {
      webhooks: { allowPrivateNetworks: false, allowInsecureHttp: false, lookup, ca: certificate.cert, retryScheduleSeconds: [10, 60] },
    })
    const key = await scheduledKey(kw, `https://hooks.example.test:${port}/hook`)
    clock.advance(DAY)
    expect(await kw.runDueRotations()).toEqual({ rotated: 1, delivered: 0, failed: 1 })
    expect(lookups).toEqual(['hooks.example.test'])
    const deliveries = await kw.listDeliveries(tenant, key.apiKey.id)
    if (!deliveries.ok) throw new Error(deliveries.error.detail)
    expect(deliveries.value).toHaveLength(1)
    expect(deliveries.value[0]).toMatchObject({ status: 'failed', nextAttemptAt: null })
    expect(deliveries.value[0]?.attempts).toEqual([
      {
        at: expect.any(String),
        status: null,
        error: expect.stringMatching(/refused by the outbound policy/),
        durationMs: expect.any(Number),
      },
    ])
    // Not retried later either: the refusal settled it.
    clock.advance(DAY)
    expect(await kw.deliverWebhooks()).toEqual({ delivered: 0, failed: 0 })
    expect(lookups).toHaveLength(1)
    expect(seen).toEqual([])
  })

  it('neither rotates nor keeps scheduling a key whose webhook URL was saved over http before the policy refused it', async () => {
    const clock = new TestClock()
    const errors: string[] = []
    const kw = open(tempSqlitePath(), clock, {
      webhooks: { allowPrivateNetworks: false, allowInsecureHttp: false },
      onError: (error, context) => errors.push(`${context}: ${error instanceof Error ? error.message : String(error)}`),
    })
    const hook = await receiver()
    const legacy = await create(kw, { name: 'legacy', rotationIntervalDays: 1, rotationWebhookUrl: 'https://hooks.example.com/keyward' })
    const { key } = legacy
    const record = legacy.apiKey
    // Saved by an earlier version, straight into the store: the API refuses an http URL now.
    const store = await kw.ready()
    await store.updateKey(tenant.tenantId, record.id, { rotationWebhookUrl: hook.url }, clock.date())
    clock.advance(DAY)
    expect(await kw.runDueRotations()).toEqual({ rotated: 0, delivered: 0, failed: 0 })
    const kept = await kw.getKey(tenant, record.id)
    expect(kept.ok && kept.value).toMatchObject({
      status: 'active',
      replacedByKeyId: null,
      rotationIntervalDays: null,
      nextRotationAt: null,
    })
    const listed = await kw.listKeys(tenant)
    expect(listed.ok && listed.value.items.map((item) => item.id)).toEqual([record.id])
    expect(errors).toEqual([expect.stringContaining(`key ${record.id} is refused by the outbound policy`)])
    // The owner keeps a working key, and the schedule does not come back.
    expect((await kw.verify(key)).ok).toBe(true)
    clock.advance(DAY)
    expect(await kw.runDueRotations()).toEqual({ rotated: 0, delivered: 0, failed: 0 })
    expect(hook.received).toHaveLength(0)
  })
})
