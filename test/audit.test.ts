import Database from 'better-sqlite3'
import { Webhook } from 'standardwebhooks'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { AuditEvent, EventType } from '../src/core/audit/types.js'
import type { Keyward } from '../src/core/keyward.js'
import type { Actor } from '../src/core/types.js'
import { type KeywardConfig, keyward } from '../src/index.js'
import { TestClock } from './helpers/clock.js'
import { freshPostgresDatabase, hasPostgres } from './helpers/postgres.js'
import { tempSqlitePath } from './helpers/sqlite.js'
import { type Certificate, makeCertificate } from './helpers/tls.js'
import { type ReceivedWebhook, waitFor, webhookReceiver } from './helpers/webhook-receiver.js'

const DAY = 86_400_000
const HOUR = 3_600_000
const acme: Actor = { tenantId: 'acme' }
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A keyward on `database` with a test clock; the local receivers below need the outbound policy opened. */
function open(database: string, clock: TestClock, options: Omit<KeywardConfig, 'database'> = {}): Keyward {
  const kw = keyward({
    database,
    now: clock.now,
    env: {},
    ...options,
    webhooks: { allowPrivateNetworks: true, allowInsecureHttp: true, ...options.webhooks },
  })
  cleanups.push(() => kw.close())
  return kw
}

async function created(kw: Keyward, actor: Actor, input: Parameters<Keyward['createKey']>[1]) {
  const result = await kw.createKey(actor, input)
  if (!result.ok) throw new Error(JSON.stringify(result.error))
  return result.value
}

/** Every event of the tenant the actor may see, oldest first. */
async function events(kw: Keyward, actor: Actor = acme, input: Parameters<Keyward['listEvents']>[1] = {}): Promise<AuditEvent[]> {
  const page = await kw.listEvents(actor, { limit: 100, ...input })
  if (!page.ok) throw new Error(JSON.stringify(page.error))
  return [...page.value.items].reverse()
}

const types = (list: AuditEvent[]) => list.map((event) => event.type)

async function endpoint(kw: Keyward, url: string, eventTypes: EventType[], actor: Actor = acme) {
  const result = await kw.createWebhookEndpoint(actor, { url, events: eventTypes })
  if (!result.ok) throw new Error(JSON.stringify(result.error))
  return result.value
}

/** The event a receiver got, checked with the standardwebhooks package under the endpoint's secret. */
function verified(secret: string, message: ReceivedWebhook): { type: string; timestamp: string; data: Record<string, unknown> } {
  return new Webhook(secret).verify(message.body, message.headers) as { type: string; timestamp: string; data: Record<string, unknown> }
}

describe('audit events of changes', () => {
  it('records each change once, with the key it is about and who made it: a code caller is system, a key is itself', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock)
    const admin = await created(kw, acme, { name: 'admin' })
    const asAdmin: Actor = { tenantId: 'acme', keyId: admin.apiKey.id }
    const svc = await created(kw, asAdmin, { name: 'svc', scopes: ['orders:read'] })
    clock.advance(1000)
    expect((await kw.updateKey(asAdmin, svc.apiKey.id, { name: 'svc 2', scopes: ['orders:read', 'orders:write'] })).ok).toBe(true)
    const rotated = await kw.rotateKey(asAdmin, svc.apiKey.id, { gracePeriodSeconds: 60 })
    if (!rotated.ok) throw new Error('rotate failed')
    const revoked = await kw.revokeKey(acme, rotated.value.newKey.id)
    expect(revoked.ok && revoked.value.revokedBy).toEqual({ type: 'system', id: null })

    const log = await events(kw)
    expect(types(log)).toEqual(['api_key.created', 'api_key.created', 'api_key.updated', 'api_key.rotated', 'api_key.revoked'])
    const [first, second, update, rotation, revocation] = log as [AuditEvent, AuditEvent, AuditEvent, AuditEvent, AuditEvent]
    expect(first).toMatchObject({ keyId: admin.apiKey.id, actor: { type: 'system', id: null }, tenantId: 'acme', environment: 'live' })
    expect(second).toMatchObject({ keyId: svc.apiKey.id, actor: { type: 'api_key', id: admin.apiKey.id } })
    expect(update.details).toEqual({
      name: 'svc 2',
      changes: {
        name: { before: 'svc', after: 'svc 2' },
        scopes: { before: ['orders:read'], after: ['orders:read', 'orders:write'] },
      },
    })
    expect(rotation).toMatchObject({
      keyId: svc.apiKey.id,
      details: { new_key_id: rotated.value.newKey.id, scheduled: false, grace_expires_at: new Date(clock.ms + 60_000).toISOString() },
    })
    expect(revocation).toMatchObject({ keyId: rotated.value.newKey.id, actor: { type: 'system', id: null } })
    // Key objects carry who created and revoked them.
    expect(svc.apiKey.createdBy).toEqual({ type: 'api_key', id: admin.apiKey.id })
    expect(rotated.value.newKey.createdBy).toEqual({ type: 'api_key', id: admin.apiKey.id })
    expect(admin.apiKey).toMatchObject({ createdBy: { type: 'system', id: null }, revokedBy: null })
  })

  it('records the request a change came from (ip, user agent, request id) and the acting user or CLI user', async () => {
    const kw = open(tempSqlitePath(), new TestClock())
    const request = { ip: '203.0.113.9', userAgent: 'dashboard/1.2', requestId: 'req-42' }
    await created(kw, { tenantId: 'acme', subject: 'user_7', request }, { name: 'a' })
    await created(kw, { tenantId: 'acme', type: 'cli', subject: 'ops' }, { name: 'b' })
    const [byUser, byCli] = await events(kw)
    expect(byUser).toMatchObject({
      actor: { type: 'user', id: 'user_7' },
      ip: '203.0.113.9',
      userAgent: 'dashboard/1.2',
      requestId: 'req-42',
    })
    expect(byCli).toMatchObject({ actor: { type: 'cli', id: 'ops' }, ip: null, userAgent: null, requestId: null })
  })

  it('writes no event for a change that fails or changes nothing', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock)
    const key = await created(kw, acme, { name: 'k', scopes: ['a'] })
    const scoped = await created(kw, acme, { name: 'scoped', scopes: ['b'] })
    const asScoped: Actor = { tenantId: 'acme', keyId: scoped.apiKey.id, scopes: ['b', 'api_keys:write'] }
    const before = (await events(kw)).length
    const failures = [
      await kw.createKey(acme, { name: '' }),
      await kw.createKey(asScoped, { name: 'wider', scopes: ['c'] }),
      await kw.updateKey(acme, key.apiKey.id, { name: ' ' }),
      await kw.updateKey(acme, 'key_doesnotexist', { name: 'x' }),
      await kw.updateKey({ tenantId: 'globex' }, key.apiKey.id, { name: 'x' }),
      await kw.updateKey(asScoped, key.apiKey.id, { name: 'x' }),
      await kw.revokeKey({ tenantId: 'globex' }, key.apiKey.id),
      await kw.rotateKey(acme, 'key_doesnotexist'),
    ]
    expect(failures.every((result) => !result.ok)).toBe(true)
    // Succeeds, but changes nothing: an empty PATCH, and a PATCH to the values the key already has.
    expect((await kw.updateKey(acme, key.apiKey.id, {})).ok).toBe(true)
    expect((await kw.updateKey(acme, key.apiKey.id, { name: 'k', scopes: ['a'] })).ok).toBe(true)
    expect((await events(kw)).length).toBe(before)
    // A second revoke is not a second revocation; a rotation refused for a revoked key writes nothing.
    expect((await kw.revokeKey(acme, key.apiKey.id)).ok).toBe(true)
    expect((await kw.revokeKey(acme, key.apiKey.id)).ok).toBe(true)
    expect((await kw.rotateKey(acme, key.apiKey.id)).ok).toBe(false)
    expect(types((await events(kw)).slice(before))).toEqual(['api_key.revoked'])
  })

  it('never records a secret, a hash or a webhook signing secret', async () => {
    const clock = new TestClock()
    const path = tempSqlitePath()
    const kw = open(path, clock)
    const hook = await webhookReceiver()
    const key = await created(kw, acme, { name: 'rotating', rotationIntervalDays: 1, rotationWebhookUrl: hook.url })
    const rotated = await kw.rotateKey(acme, key.apiKey.id)
    if (!rotated.ok) throw new Error('rotate failed')
    clock.advance(DAY)
    await kw.runDueRotations()
    const secrets = [key.key, rotated.value.key, key.rotationWebhookSecret as string]
    const stored = new Database(path, { readonly: true })
    const rows = JSON.stringify(stored.prepare('select * from audit_events').all())
    const hashes = (stored.prepare('select key_hash from api_keys').all() as { key_hash: string }[]).map((row) => row.key_hash)
    stored.close()
    expect(rows).toContain('api_key.rotated')
    for (const secret of [...secrets, ...hashes]) expect(rows).not.toContain(secret)
    expect(rows).not.toMatch(/sk_live_|whsec_/)
  })

  it('calls onEvent after each committed change; a hook that throws or rejects goes to onError and the change stands', async () => {
    const seen: AuditEvent[] = []
    const errors: [unknown, string][] = []
    let mode: 'ok' | 'throw' | 'reject' = 'ok'
    const kw = open(tempSqlitePath(), new TestClock(), {
      onEvent(event) {
        seen.push(event)
        if (mode === 'throw') throw new Error('hook failed')
        if (mode === 'reject') return Promise.reject(new Error('hook rejected'))
      },
      onError: (error, context) => errors.push([error, context]),
    })
    const key = await created(kw, acme, { name: 'a' })
    expect(seen.map((event) => [event.type, event.keyId])).toEqual([['api_key.created', key.apiKey.id]])
    mode = 'throw'
    expect((await kw.updateKey(acme, key.apiKey.id, { name: 'b' })).ok).toBe(true)
    mode = 'reject'
    expect((await kw.revokeKey(acme, key.apiKey.id)).ok).toBe(true)
    await waitFor(() => errors.length === 2)
    expect(errors.map(([error, context]) => [(error as Error).message, context])).toEqual([
      ['hook failed', 'onEvent'],
      ['hook rejected', 'onEvent'],
    ])
    expect(types(seen)).toEqual(['api_key.created', 'api_key.updated', 'api_key.revoked'])
    expect(types(await events(kw))).toEqual(['api_key.created', 'api_key.updated', 'api_key.revoked'])
    // A failed change calls no hook.
    expect((await kw.updateKey(acme, 'key_nope', { name: 'c' })).ok).toBe(false)
    expect(seen).toHaveLength(3)
  })

  it('records what the scheduler does as the scheduler: a scheduled rotation, and a schedule it turns off after 410 Gone', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock)
    const hook = await webhookReceiver([410])
    const key = await created(kw, acme, { name: 'nightly', rotationIntervalDays: 1, rotationWebhookUrl: hook.url })
    clock.advance(DAY)
    expect((await kw.runDueRotations()).rotated).toBe(1)
    const scheduler = { type: 'system', id: 'scheduler' }
    const [rotation] = await events(kw, acme, { type: 'api_key.rotated' })
    expect(rotation).toMatchObject({ keyId: key.apiKey.id, actor: scheduler, details: { scheduled: true } })
    const successor = await kw.getKey(acme, rotation?.details.new_key_id as string)
    expect(successor.ok && successor.value.createdBy).toEqual(scheduler)
    // The receiver answered 410: nobody would get the next secret, so the successor's schedule stops.
    const [stopped] = await events(kw, acme, { type: 'api_key.updated' })
    expect(stopped).toMatchObject({
      keyId: successor.ok ? successor.value.id : '',
      actor: scheduler,
      details: { changes: { rotation_interval_days: { before: 1, after: null }, next_rotation_at: { after: null } } },
    })
  })

  it('pages events newest first with a cursor, and filters by key, type and since', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock)
    const a = await created(kw, acme, { name: 'a' })
    const b = await created(kw, acme, { name: 'b' })
    clock.advance(HOUR)
    await kw.updateKey(acme, a.apiKey.id, { name: 'a2' })
    await kw.revokeKey(acme, b.apiKey.id)
    const first = await kw.listEvents(acme, { limit: 3 })
    if (!first.ok || first.value.nextCursor === null) throw new Error('expected a second page')
    expect(types(first.value.items)).toEqual(['api_key.revoked', 'api_key.updated', 'api_key.created'])
    const second = await kw.listEvents(acme, { limit: 3, cursor: first.value.nextCursor })
    expect(second.ok && [second.value.items.map((event) => event.keyId), second.value.nextCursor]).toEqual([[a.apiKey.id], null])
    expect(types(await events(kw, acme, { keyId: a.apiKey.id }))).toEqual(['api_key.created', 'api_key.updated'])
    expect(types(await events(kw, acme, { type: 'api_key.revoked' }))).toEqual(['api_key.revoked'])
    expect(await events(kw, acme, { since: new Date(clock.ms - 1) })).toHaveLength(2)
    expect(await kw.listEvents(acme, { cursor: 'bm9wZQ' })).toMatchObject({ ok: false, error: { code: 'validation_error' } })
    expect(await kw.listEvents(acme, { type: 'api_key.nope' as EventType })).toMatchObject({
      ok: false,
      error: { code: 'validation_error' },
    })
    expect(await kw.listEvents({ tenantId: 'acme', scopes: ['orders:read'] })).toMatchObject({
      ok: false,
      error: { code: 'insufficient_scope' },
    })
  })
})

const databases: [string, () => Promise<string>][] = [['SQLite file', async () => tempSqlitePath()]]
if (hasPostgres) databases.push(['PostgreSQL database', freshPostgresDatabase])

describe.each(databases)('two instances on one %s', (_name, database) => {
  it('write one api_key.rotated when they race to rotate a key', async () => {
    const clock = new TestClock()
    const url = await database()
    const a = open(url, clock)
    const b = open(url, clock)
    const key = await created(a, acme, { name: 'contested' })
    const outcomes = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).rotateKey(acme, key.apiKey.id)))
    expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(1)
    expect(outcomes.filter((outcome) => !outcome.ok).map((outcome) => !outcome.ok && outcome.error.code)).toEqual(
      Array(5).fill('already_rotated'),
    )
    expect(types(await events(b))).toEqual(['api_key.created', 'api_key.rotated'])
  })

  it('send each expiry warning once, and one delivery of it, when both run the scheduler twice', async () => {
    const clock = new TestClock()
    const url = await database()
    const a = open(url, clock)
    const b = open(url, clock)
    const hook = await webhookReceiver()
    const subscription = await endpoint(a, hook.url, ['api_key.expiring', 'api_key.expired'])
    const keys = await Promise.all(Array.from({ length: 3 }, (_, i) => created(a, acme, { name: `k${i}`, expiresInSeconds: 10 * 86_400 })))
    // Each stage's first attempts (sent in the background) settle before the clock jumps days ahead:
    // a jump past an attempt's lock would let the other instance claim it while it is in flight.
    const settled = async () => {
      const listed = await a.listWebhookEndpointDeliveries(acme, subscription.endpoint.id)
      return listed.ok && listed.value.every((delivery) => delivery.status === 'succeeded')
    }
    for (const stage of [3.5 * DAY, 6 * DAY, 0.6 * DAY]) {
      clock.advance(stage)
      for (let round = 0; round < 2; round++) await Promise.all([a.runDueRotations(), b.runDueRotations()])
      await waitFor(settled)
    }
    const notices = await events(a, acme, { type: 'api_key.expiring' })
    expect(notices.map((event) => [event.keyId, event.details.threshold_seconds]).sort()).toEqual(
      keys
        .flatMap((key) => [
          [key.apiKey.id, 86_400],
          [key.apiKey.id, 604_800],
        ])
        .sort(),
    )
    expect(notices.every((event) => event.actor.type === 'system' && event.actor.id === 'scheduler')).toBe(true)
    expect(await events(a, acme, { type: 'api_key.expired' })).toHaveLength(3)
    await waitFor(() => hook.received.length >= 9)
    await Promise.all([a.deliverWebhooks(), b.deliverWebhooks()])
    const ids = hook.received.map((message) => verified(subscription.secret, message).data.id)
    expect(ids).toHaveLength(9)
    expect(new Set(ids).size).toBe(9)
  })
})

describe('expiry notices', () => {
  it('warn 7 days and 1 day before expires_at, once each, then report the expiry once', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock)
    const key = await created(kw, acme, { name: 'ci', expiresInSeconds: 10 * 86_400 })
    const run = async () => {
      const { expiring, expired } = await kw.runDueRotations()
      return [expiring, expired]
    }
    expect(await run()).toEqual([0, 0])
    clock.advance(3 * DAY - 1)
    expect(await run()).toEqual([0, 0])
    clock.advance(1)
    expect(await run()).toEqual([1, 0])
    expect(await run()).toEqual([0, 0])
    clock.advance(6 * DAY)
    expect(await run()).toEqual([1, 0])
    clock.advance(DAY - 1)
    expect(await run()).toEqual([0, 0])
    clock.advance(1)
    expect(await run()).toEqual([0, 1])
    expect(await run()).toEqual([0, 0])
    const log = await events(kw, acme, { keyId: key.apiKey.id })
    expect(log.map((event) => [event.type, event.details])).toEqual([
      ['api_key.created', expect.anything()],
      [
        'api_key.expiring',
        { name: 'ci', expires_at: key.apiKey.expiresAt?.toISOString(), reason: 'expires_at', threshold_seconds: 604_800 },
      ],
      [
        'api_key.expiring',
        { name: 'ci', expires_at: key.apiKey.expiresAt?.toISOString(), reason: 'expires_at', threshold_seconds: 86_400 },
      ],
      ['api_key.expired', { name: 'ci', expired_at: key.apiKey.expiresAt?.toISOString(), reason: 'expires_at' }],
    ])
  })

  it('send only the nearest warning to a key that is already inside several thresholds', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock)
    await created(kw, acme, { name: 'short', expiresInSeconds: 12 * 3600 })
    await kw.runDueRotations()
    clock.advance(HOUR)
    await kw.runDueRotations()
    expect((await events(kw, acme, { type: 'api_key.expiring' })).map((event) => event.details.threshold_seconds)).toEqual([86_400])
  })

  it('warn again for a new expires_at, and not for a revoked key', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock)
    const moved = await created(kw, acme, { name: 'moved', expiresInSeconds: 12 * 3600 })
    const revoked = await created(kw, acme, { name: 'revoked', expiresInSeconds: 12 * 3600 })
    await kw.revokeKey(acme, revoked.apiKey.id)
    await kw.runDueRotations()
    await kw.updateKey(acme, moved.apiKey.id, { expiresAt: new Date(clock.ms + 20 * HOUR) })
    await kw.runDueRotations()
    const warnings = await events(kw, acme, { type: 'api_key.expiring' })
    expect(warnings.map((event) => [event.keyId, event.details.expires_at])).toEqual([
      [moved.apiKey.id, new Date(clock.ms + 12 * HOUR).toISOString()],
      [moved.apiKey.id, new Date(clock.ms + 20 * HOUR).toISOString()],
    ])
  })

  it('warn before a rotated key’s grace period ends, and report its end', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock, { events: { expiryWarningSeconds: [6 * 3600] } })
    const key = await created(kw, acme, { name: 'old', expiresInSeconds: 30 * 86_400 })
    const rotated = await kw.rotateKey(acme, key.apiKey.id, { gracePeriodSeconds: 2 * 86_400 })
    if (!rotated.ok) throw new Error('rotate failed')
    clock.advance(DAY)
    await kw.runDueRotations()
    expect(await events(kw, acme, { type: 'api_key.expiring' })).toEqual([])
    clock.advance(19 * HOUR)
    await kw.runDueRotations()
    clock.advance(5 * HOUR)
    await kw.runDueRotations()
    const notices = (await events(kw, acme, { keyId: key.apiKey.id })).filter((event) => event.actor.id === 'scheduler')
    expect(notices.map((event) => [event.type, event.details.reason])).toEqual([
      ['api_key.expiring', 'rotation_grace'],
      ['api_key.expired', 'rotation_grace'],
    ])
    expect(notices[0]?.details.expires_at).toBe(rotated.value.oldKey.graceExpiresAt?.toISOString())
  })

  it('refuse thresholds and retention periods that cannot work, naming the option', () => {
    const store = tempSqlitePath()
    expect(() => keyward({ database: store, env: {}, events: { expiryWarningSeconds: [0] } })).toThrow(/events\.expiryWarningSeconds/)
    expect(() => keyward({ database: store, env: {}, events: { expiryWarningSeconds: [1.5] } })).toThrow(/events\.expiryWarningSeconds/)
    expect(() => keyward({ database: store, env: {}, events: { retentionDays: 0 } })).toThrow(/events\.retentionDays/)
    expect(() => keyward({ database: store, env: {}, events: { retentionDays: 7 } })).toThrow(/events\.retentionDays/)
    expect(() => keyward({ database: store, env: {}, events: { retentionDays: 30, expiryWarningSeconds: [40 * 86_400] } })).toThrow(
      /events\.retentionDays/,
    )
  })
})

describe('retention', () => {
  it('prunes events older than the retention period when the scheduler runs', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock, { events: { retentionDays: 10 } })
    const old = await created(kw, acme, { name: 'old' })
    clock.advance(5 * DAY)
    await created(kw, acme, { name: 'recent' })
    clock.advance(5 * DAY)
    expect((await kw.runDueRotations()).pruned).toBe(0)
    clock.advance(1)
    expect((await kw.runDueRotations()).pruned).toBe(1)
    expect((await events(kw)).map((event) => event.details.name)).toEqual(['recent'])
    // The key itself is not touched.
    expect((await kw.getKey(acme, old.apiKey.id)).ok).toBe(true)
  })
})

describe('event webhooks', () => {
  let certificate: Certificate
  beforeAll(() => {
    certificate = makeCertificate('hooks.example.test')
  })

  it('deliver a change to a subscribed endpoint within seconds of its commit, signed per Standard Webhooks', async () => {
    const kw = open(tempSqlitePath(), new TestClock())
    const hook = await webhookReceiver()
    const subscription = await endpoint(kw, hook.url, ['api_key.revoked'])
    expect(subscription.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/)
    const key = await created(kw, acme, { name: 'leaked' })
    await kw.revokeKey({ tenantId: 'acme', subject: 'alice', request: { ip: '198.51.100.4', requestId: 'r-1' } }, key.apiKey.id)
    // No scheduler runs here: the instance that made the change sends the first attempt itself.
    await waitFor(() => hook.received.length === 1)
    const message = hook.received[0] as ReceivedWebhook
    const body = verified(subscription.secret, message)
    expect(message.headers['webhook-id']).toMatch(/^msg_/)
    expect(body).toMatchObject({
      type: 'api_key.revoked',
      data: {
        type: 'api_key.revoked',
        tenant_id: 'acme',
        key_id: key.apiKey.id,
        actor: { type: 'user', id: 'alice' },
        ip: '198.51.100.4',
        request_id: 'r-1',
        details: { name: 'leaked' },
      },
    })
    expect(body.timestamp).toBe(body.data.occurred_at)
    expect(message.body).not.toContain(key.key)
    expect(() => new Webhook(`whsec_${Buffer.from('y'.repeat(24)).toString('base64')}`).verify(message.body, message.headers)).toThrow()
    // The outcome is saved just after the receiver answers.
    await waitFor(async () => {
      const listed = await kw.listWebhookEndpointDeliveries(acme, subscription.endpoint.id)
      return listed.ok && listed.value[0]?.status !== 'pending'
    })
    const deliveries = await kw.listWebhookEndpointDeliveries(acme, subscription.endpoint.id)
    expect(deliveries.ok && deliveries.value).toMatchObject([
      { status: 'succeeded', eventType: 'api_key.revoked', attempts: [{ status: 200 }] },
    ])
  })

  it('send an endpoint only the types it subscribed to and the events it may see (its project and environment)', async () => {
    const kw = open(tempSqlitePath(), new TestClock())
    const all = await webhookReceiver()
    const projectOnly = await webhookReceiver()
    const testOnly = await webhookReceiver()
    await endpoint(kw, all.url, ['api_key.created'])
    expect((await kw.createWebhookEndpoint(acme, { url: projectOnly.url, events: ['api_key.created'], projectId: 'web' })).ok).toBe(true)
    const testKey = await created(kw, acme, { name: 'test admin', environment: 'test' })
    // A test key's endpoint is bound to test keys, as its own view is.
    await endpoint(kw, testOnly.url, ['api_key.created', 'api_key.revoked'], {
      tenantId: 'acme',
      keyId: testKey.apiKey.id,
      environment: 'test',
    })
    await created(kw, acme, { name: 'web live', projectId: 'web' })
    await created(kw, acme, { name: 'other test', environment: 'test' })
    await created(kw, { tenantId: 'globex' }, { name: 'elsewhere' })
    const revoked = await created(kw, acme, { name: 'to revoke' })
    await kw.revokeKey(acme, revoked.apiKey.id)
    await kw.deliverWebhooks()
    await waitFor(() => all.received.length === 4 && projectOnly.received.length === 1 && testOnly.received.length === 1)
    const names = (hook: { received: ReceivedWebhook[] }) =>
      hook.received.map((message) => JSON.parse(message.body).data.details.name).sort()
    expect(names(all)).toEqual(['other test', 'test admin', 'to revoke', 'web live'])
    expect(names(projectOnly)).toEqual(['web live'])
    expect(names(testOnly)).toEqual(['other test'])
  })

  it('retry a failed delivery from the outbox and show every attempt', async () => {
    const clock = new TestClock()
    const kw = open(tempSqlitePath(), clock, { webhooks: { retryScheduleSeconds: [10] } })
    const hook = await webhookReceiver([500])
    const subscription = await endpoint(kw, hook.url, ['api_key.created'])
    await created(kw, acme, { name: 'a' })
    await waitFor(() => hook.received.length === 1)
    // The first attempt's outcome is saved just after the receiver answers.
    const attempted = async () => {
      const listed = await kw.listWebhookEndpointDeliveries(acme, subscription.endpoint.id)
      return listed.ok && listed.value[0] !== undefined && listed.value[0].attempts.length > 0
    }
    await waitFor(attempted)
    let listed = await kw.listWebhookEndpointDeliveries(acme, subscription.endpoint.id)
    expect(listed.ok && listed.value[0]).toMatchObject({ status: 'pending', attempts: [{ status: 500, error: 'HTTP 500' }] })
    clock.advance(13_000)
    expect(await kw.deliverWebhooks()).toEqual({ delivered: 1, failed: 0 })
    expect(new Set(hook.received.map((message) => message.headers['webhook-id'])).size).toBe(1)
    listed = await kw.listWebhookEndpointDeliveries(acme, subscription.endpoint.id)
    expect(listed.ok && listed.value[0]?.attempts.map((attempt) => attempt.status)).toEqual([500, 200])
  })

  it('disable an endpoint that answers 410 Gone, and send it nothing more', async () => {
    const kw = open(tempSqlitePath(), new TestClock())
    const hook = await webhookReceiver([410])
    const subscription = await endpoint(kw, hook.url, ['api_key.created'])
    await created(kw, acme, { name: 'a' })
    await waitFor(() => hook.received.length === 1)
    await waitFor(async () => {
      const listed = await kw.listWebhookEndpoints(acme)
      return listed.ok && listed.value[0]?.disabledAt !== null
    })
    const listed = await kw.listWebhookEndpoints(acme)
    expect(listed.ok && listed.value[0]?.disabledAt).toBeInstanceOf(Date)
    await created(kw, acme, { name: 'b' })
    await kw.deliverWebhooks()
    expect(hook.received).toHaveLength(1)
    const deliveries = await kw.listWebhookEndpointDeliveries(acme, subscription.endpoint.id)
    expect(deliveries.ok && deliveries.value.map((delivery) => delivery.status)).toEqual(['failed'])
  })

  it('record an endpoint’s creation and deletion as events, and send nothing to a deleted endpoint', async () => {
    const kw = open(tempSqlitePath(), new TestClock())
    const watcher = await webhookReceiver()
    const doomed = await webhookReceiver()
    const watching = await endpoint(kw, watcher.url, ['webhook_endpoint.created', 'webhook_endpoint.deleted'])
    const deleting = await endpoint(kw, doomed.url, ['api_key.created'])
    expect((await kw.deleteWebhookEndpoint(acme, deleting.endpoint.id)).ok).toBe(true)
    expect(await kw.deleteWebhookEndpoint(acme, deleting.endpoint.id)).toMatchObject({ ok: false, error: { code: 'not_found' } })
    await created(kw, acme, { name: 'after' })
    await kw.deliverWebhooks()
    await waitFor(() => watcher.received.length === 3)
    expect(doomed.received).toEqual([])
    expect(watcher.received.map((message) => verified(watching.secret, message).type)).toEqual([
      'webhook_endpoint.created',
      'webhook_endpoint.created',
      'webhook_endpoint.deleted',
    ])
    const log = await events(kw, acme, { type: 'webhook_endpoint.deleted' })
    expect(log[0]).toMatchObject({ keyId: null, details: { endpoint_id: deleting.endpoint.id, url: doomed.url } })
  })

  it('refuse an endpoint URL the outbound policy forbids, with a validation error on url', async () => {
    const kw = keyward({ database: tempSqlitePath(), env: {} })
    cleanups.push(() => kw.close())
    for (const url of ['http://hooks.example.com/x', 'https://127.0.0.1/x', 'https://169.254.169.254/latest', 'ftp://example.com']) {
      expect(await kw.createWebhookEndpoint(acme, { url, events: ['api_key.revoked'] }), url).toMatchObject({
        ok: false,
        error: { code: 'validation_error', errors: [{ field: 'url' }] },
      })
    }
    expect(await kw.createWebhookEndpoint(acme, { url: 'https://hooks.example.com/x', events: [] })).toMatchObject({
      ok: false,
      error: { code: 'validation_error', errors: [{ field: 'events' }] },
    })
    expect((await kw.listWebhookEndpoints(acme)).ok && (await events(kw))).toEqual([])
  })

  it('keep the signing secret sealed under the pepper, and deliver over HTTPS to a receiver with its own CA', async () => {
    const path = tempSqlitePath()
    // https only (the default), to a name resolved to the local receiver.
    const kw = keyward({
      database: path,
      env: {},
      pepper: 'server-secret',
      webhooks: {
        allowPrivateNetworks: true,
        ca: certificate.cert,
        lookup: async () => [{ address: '127.0.0.1', family: 4 }],
      },
    })
    cleanups.push(() => kw.close())
    const hook = await webhookReceiver([], { certificate, hostname: 'hooks.example.test' })
    const subscription = await endpoint(kw, hook.url, ['api_key.created'])
    const stored = new Database(path, { readonly: true })
    const row = stored.prepare('select secret from webhook_endpoints').get() as { secret: string }
    stored.close()
    expect(row.secret).toMatch(/^sealed:v1:/)
    expect(row.secret).not.toContain(subscription.secret.slice('whsec_'.length))
    await created(kw, acme, { name: 'over tls' })
    await waitFor(() => hook.received.length === 1)
    expect(verified(subscription.secret, hook.received[0] as ReceivedWebhook).data.details).toEqual({
      name: 'over tls',
      environment: 'live',
      scopes: [],
      expires_at: null,
    })
  })

  it('show, list and delete endpoints by the keys’ visibility rules: project-bound and test callers see their own only', async () => {
    const kw = open(tempSqlitePath(), new TestClock())
    const hook = await webhookReceiver()
    const tenantWide = await endpoint(kw, hook.url, ['api_key.created'])
    const web: Actor = { tenantId: 'acme', projectId: 'web' }
    const webEndpoint = await endpoint(kw, hook.url, ['api_key.created'], web)
    expect(webEndpoint.endpoint).toMatchObject({ projectId: 'web', environment: null, createdBy: { type: 'system', id: null } })
    expect(await kw.createWebhookEndpoint(web, { url: hook.url, events: ['api_key.created'], projectId: 'api' })).toMatchObject({
      ok: false,
      error: { code: 'forbidden' },
    })
    const tester: Actor = { tenantId: 'acme', environment: 'test', keyId: 'key_tester' }
    expect(await kw.createWebhookEndpoint(tester, { url: hook.url, events: ['api_key.created'], environment: 'live' })).toMatchObject({
      ok: false,
      error: { code: 'forbidden' },
    })
    const ids = async (actor: Actor) => {
      const listed = await kw.listWebhookEndpoints(actor)
      return listed.ok ? listed.value.map((item) => item.id).sort() : listed.error.code
    }
    expect(await ids(acme)).toEqual([tenantWide.endpoint.id, webEndpoint.endpoint.id].sort())
    expect(await ids(web)).toEqual([webEndpoint.endpoint.id])
    expect(await ids(tester)).toEqual([])
    expect(await ids({ tenantId: 'globex' })).toEqual([])
    expect(await kw.deleteWebhookEndpoint(web, tenantWide.endpoint.id)).toMatchObject({ ok: false, error: { code: 'not_found' } })
    expect(await kw.listWebhookEndpointDeliveries({ tenantId: 'globex' }, tenantWide.endpoint.id)).toMatchObject({
      ok: false,
      error: { code: 'not_found' },
    })
    expect(
      await kw.createWebhookEndpoint({ tenantId: 'acme', scopes: ['api_keys:read'] }, { url: hook.url, events: ['api_key.created'] }),
    ).toMatchObject({
      ok: false,
      error: { code: 'insufficient_scope' },
    })
  })
})
