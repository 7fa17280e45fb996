import { afterEach, describe, expect, it } from 'vitest'
import type { CreateKeyInput, Keyward } from '../../src/core/keyward.js'
import type { Actor } from '../../src/core/types.js'
import { keyward } from '../../src/index.js'
import { TestClock } from '../helpers/clock.js'
import { readJson } from '../helpers/http.js'
import { tempSqlitePath } from '../helpers/sqlite.js'
import type { RunningServer } from './http-behaviour.js'

/**
 * Issue 14's per-key controls (rate limits, credits, IP allowlists, disable) as one behaviour suite,
 * run over real HTTP against every framework adapter, so Hono and Express answer alike.
 */

export interface ControlsAppSetup {
  keyward: Keyward
  /** `trustProxy` for `apiKeyAuth` and the keys router. */
  trustProxy?: string
}

/**
 * Starts a real HTTP server whose app has:
 * - `GET /v1/me` behind `apiKeyAuth({ keyward, trustProxy })`, answering the verified key;
 * - `GET /v1/heavy` behind `apiKeyAuth({ keyward, cost: 5 })`;
 * - `GET /v1/fraction` behind `apiKeyAuth({ keyward, cost: () => 1.5 })` (a host bug);
 * - `POST /v1/metered?tokens=N` behind `apiKeyAuth({ keyward })`, which calls `spendCredits(…, N)`
 *   after its work and answers what it charged;
 * - the keys router (`createKeysRouter({ keyward, trustProxy })`) at `/api-keys`.
 */
export type StartControlsServer = (setup: ControlsAppSetup) => Promise<RunningServer>

// biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON bodies
type Json = any

const TENANT = 'acme'
const SECOND = 1000

export function describeControlsBehaviour(name: string, startServer: StartControlsServer): void {
  const cleanups: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  async function start(trustProxy?: string) {
    const clock = new TestClock()
    const reported: { error: unknown; context: string }[] = []
    const kw = keyward({ database: tempSqlitePath(), now: clock.now, onError: (error, context) => reported.push({ error, context }) })
    cleanups.push(() => kw.close())
    const server = await startServer({ keyward: kw, trustProxy })
    cleanups.push(() => server.close())
    const admin = await mint(kw, { tenantId: TENANT }, { name: 'admin' })
    const call = (path: string, key: string, init: { method?: string; json?: unknown; headers?: Record<string, string> } = {}) =>
      fetch(`${server.url}${path}`, {
        method: init.method ?? 'GET',
        headers: {
          'x-api-key': key,
          ...(init.json === undefined ? {} : { 'content-type': 'application/json' }),
          ...init.headers,
        },
        body: init.json === undefined ? undefined : JSON.stringify(init.json),
      })
    const create = async (body: Record<string, unknown>, caller = admin.key) => {
      const response = await call('/api-keys', caller, { method: 'POST', json: body })
      return { response, body: (await readJson(response)) as Json }
    }
    return { kw, clock, admin, call, create, reported }
  }

  describe(`per-key controls: ${name}`, () => {
    describe('rate limits', () => {
      it('admits up to the limit, then answers 429 rate_limited naming the limit, with Retry-After and RateLimit headers', async () => {
        const { clock, call, create } = await start()
        const { body: key } = await create({ name: 'limited', rate_limits: [{ name: 'burst', limit: 3, window_ms: 10_000 }] })
        expect(key.rate_limits).toEqual([{ name: 'burst', limit: 3, window_ms: 10_000 }])
        for (let i = 0; i < 3; i++) {
          const ok = await call('/v1/me', key.key)
          expect(ok.status).toBe(200)
          expect(ok.headers.get('ratelimit-policy')).toBe('"burst";q=3;w=10')
          // t: until the oldest counted request leaves the window (the window plus at most one 5 % bucket).
          expect(ok.headers.get('ratelimit')).toMatch(new RegExp(`^"burst";r=${2 - i};t=1[01]$`))
        }
        const refused = await call('/v1/me', key.key)
        expect(refused.status).toBe(429)
        expect(refused.headers.get('content-type')).toContain('application/problem+json')
        expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
        expect(refused.headers.get('ratelimit')).toMatch(/^"burst";r=0;t=1[01]$/)
        expect(refused.headers.get('www-authenticate')).toBeNull()
        const problem = await readJson(refused)
        expect(problem).toMatchObject({ status: 429, code: 'rate_limited' })
        expect(problem.detail).toContain('"burst"')
        // The window slides: once the admitted requests leave it, the key is admitted again.
        clock.advance(10_500)
        expect((await call('/v1/me', key.key)).status).toBe(200)
      })

      it('consumes nothing when a second limit refuses: the first limit is unchanged', async () => {
        const { call, create } = await start()
        const { body: key } = await create({
          name: 'two limits',
          rate_limits: [
            { name: 'minute', limit: 10, window_ms: 60_000 },
            { name: 'second', limit: 1, window_ms: 1_000 },
          ],
        })
        const remaining = (response: Response) => response.headers.get('ratelimit')?.replace(/;t=\d+/g, '')
        expect(remaining(await call('/v1/me', key.key))).toBe('"minute";r=9, "second";r=0')
        for (let i = 0; i < 5; i++) expect((await call('/v1/me', key.key)).status).toBe(429)
        expect(remaining(await call('/v1/me', key.key))).toBe('"minute";r=9, "second";r=0')
      })

      it('counts rate-limited and credit-refused requests per day in the usage statistics', async () => {
        const { kw, admin, call, create } = await start()
        const { body: limited } = await create({ name: 'l', rate_limits: [{ name: 'one', limit: 1, window_ms: 60_000 }] })
        const { body: credited } = await create({ name: 'c', credits: { remaining: 1 } })
        await call('/v1/me', limited.key)
        await call('/v1/me', limited.key)
        await call('/v1/me', limited.key)
        await call('/v1/me', credited.key)
        await call('/v1/me', credited.key)
        await kw.flushUsage()
        const usage = await readJson(await call(`/api-keys/${limited.id}/usage?days=1`, admin.key))
        expect(usage.daily).toEqual([expect.objectContaining({ requests: 1, rate_limited: 2, credits_refused: 0 })])
        expect(usage.total_requests).toBe(1)
        const creditUsage = await readJson(await call(`/api-keys/${credited.id}/usage?days=1`, admin.key))
        expect(creditUsage.daily).toEqual([expect.objectContaining({ requests: 1, rate_limited: 0, credits_refused: 1 })])
      })

      it('applies a key’s limits to the management calls it makes (they are uses of it)', async () => {
        const { call, create } = await start()
        const { body: key } = await create({ name: 'manager', rate_limits: [{ name: 'm', limit: 2, window_ms: 60_000 }] })
        expect((await call('/api-keys', key.key)).status).toBe(200)
        expect((await call('/api-keys', key.key)).headers.get('ratelimit')).toMatch(/^"m";r=0;t=6[03]$/)
        const refused = await call('/api-keys', key.key)
        expect(refused.status).toBe(429)
        expect((await readJson(refused)).code).toBe('rate_limited')
      })

      it('keeps counting across a rotation: the old key (in its grace period) and its successor share the window', async () => {
        const { admin, call, create } = await start()
        const { body: key } = await create({ name: 'rotated', rate_limits: [{ name: 'minute', limit: 3, window_ms: 60_000 }] })
        expect((await call('/v1/me', key.key)).status).toBe(200)
        expect((await call('/v1/me', key.key)).status).toBe(200)
        const rotation = await call(`/api-keys/${key.id}/rotate`, admin.key, { method: 'POST', json: { grace_period_seconds: 300 } })
        expect(rotation.status).toBe(201)
        const { key: successor } = await readJson(rotation)
        // One request of the window is left, whichever key spends it; a rotation is no reset.
        const statuses = []
        for (const presented of [successor, key.key, successor, key.key]) statuses.push((await call('/v1/me', presented)).status)
        expect(statuses).toEqual([200, 429, 429, 429])
      })

      it('refuses invalid limits with 400 naming the field', async () => {
        const { create } = await start()
        const { response, body } = await create({ name: 'x', rate_limits: [{ name: 'fast', limit: 1, window_ms: 10 }] })
        expect(response.status).toBe(400)
        expect(body.errors).toEqual([{ field: 'rate_limits.0.window_ms', message: 'must be at least 1000 (1 second)' }])
      })
    })

    describe('credits', () => {
      it('spends one credit per request until none is left, then answers 429 credits_exhausted; the key shows remaining 0', async () => {
        const { kw, admin, call, create } = await start()
        const { body: key } = await create({ name: 'credited', credits: { remaining: 3 } })
        expect(key.credits).toEqual({ remaining: 3, refill: null })
        for (let i = 0; i < 3; i++) expect((await call('/v1/me', key.key)).status).toBe(200)
        const refused = await call('/v1/me', key.key)
        expect(refused.status).toBe(429)
        expect(await readJson(refused)).toMatchObject({ code: 'credits_exhausted' })
        expect(refused.headers.get('ratelimit')).toBe('"credits";r=0')
        // Without a refill, credits never come back: no Retry-After promises otherwise.
        expect(refused.headers.get('retry-after')).toBeNull()
        const shown = await readJson(await call(`/api-keys/${key.id}`, admin.key))
        expect(shown.credits).toEqual({ remaining: 0, refill: null })
        await kw.flushUsage()
        expect((await readJson(await call(`/api-keys/${key.id}`, admin.key))).credits.remaining).toBe(0)
      })

      it('spends the route’s cost per request, and spendCredits charges more after the handler, never below zero', async () => {
        const { admin, call, create } = await start()
        const { body: key } = await create({ name: 'metered', credits: { remaining: 12 } })
        expect((await call('/v1/heavy', key.key)).status).toBe(200)
        expect((await readJson(await call(`/api-keys/${key.id}`, admin.key))).credits.remaining).toBe(7)
        const metered = await call('/v1/metered?tokens=4', key.key, { method: 'POST' })
        expect(await readJson(metered)).toEqual({ charged: 4, remaining: 2 })
        const over = await call('/v1/metered?tokens=10', key.key, { method: 'POST' })
        expect(await readJson(over)).toEqual({ charged: 1, remaining: 0 })
        expect((await call('/v1/heavy', key.key)).status).toBe(429)
      })

      it('answers 500 internal_error, reported through onError, when the host’s cost function returns no whole number', async () => {
        const { call, create, reported } = await start()
        const { body: key } = await create({ name: 'metered', credits: { remaining: 5 } })
        const response = await call('/v1/fraction', key.key)
        expect(response.status).toBe(500)
        const problem = await readJson(response)
        expect(problem).toMatchObject({ status: 500, code: 'internal_error' })
        expect(response.headers.get('retry-after')).toBeNull()
        expect(JSON.stringify(problem)).not.toMatch(/\bat .*:\d+:\d+/)
        expect(reported).toEqual([{ error: expect.objectContaining({ message: expect.stringContaining('got 1.5') }), context: 'cost' }])
        // Nothing was spent by the refused request.
        expect((await call('/v1/heavy', key.key)).status).toBe(200)
      })

      it('refills to the amount at the start of each UTC day, with Retry-After until then', async () => {
        const { clock, call, create } = await start()
        clock.ms = Date.parse('2026-03-01T23:59:00.000Z')
        const { body: key } = await create({ name: 'daily', credits: { remaining: 1, refill: { amount: 2, interval: 'day' } } })
        expect((await call('/v1/me', key.key)).status).toBe(200)
        const refused = await call('/v1/me', key.key)
        expect(refused.status).toBe(429)
        expect(refused.headers.get('retry-after')).toBe('60')
        expect(refused.headers.get('ratelimit-policy')).toBe('"credits";q=2;w=86400')
        clock.advance(60 * SECOND)
        expect((await call('/v1/me', key.key)).status).toBe(200)
        expect((await call('/v1/me', key.key)).status).toBe(200)
        expect((await call('/v1/me', key.key)).status).toBe(429)
      })

      it('PATCH sets new credits (not added to what is left) and takes effect at once', async () => {
        const { admin, call, create } = await start()
        const { body: key } = await create({ name: 'topped up', credits: { remaining: 1 } })
        expect((await call('/v1/me', key.key)).status).toBe(200)
        expect((await call('/v1/me', key.key)).status).toBe(429)
        const patched = await call(`/api-keys/${key.id}`, admin.key, { method: 'PATCH', json: { credits: { remaining: 2 } } })
        expect((await readJson(patched)).credits).toEqual({ remaining: 2, refill: null })
        expect((await call('/v1/me', key.key)).status).toBe(200)
        expect((await call('/v1/me', key.key)).status).toBe(200)
        expect((await call('/v1/me', key.key)).status).toBe(429)
        const removed = await call(`/api-keys/${key.id}`, admin.key, { method: 'PATCH', json: { credits: null } })
        expect((await readJson(removed)).credits).toBeNull()
        expect((await call('/v1/me', key.key)).status).toBe(200)
      })
    })

    describe('IP allowlists', () => {
      it('answers 403 ip_not_allowed from outside the ranges, and 200 from inside', async () => {
        const { call, create } = await start()
        const { body: outside } = await create({ name: 'office', allowed_ips: ['203.0.113.0/24', '2001:db8::/32'] })
        expect(outside.allowed_ips).toEqual(['203.0.113.0/24', '2001:db8::/32'])
        const refused = await call('/v1/me', outside.key)
        expect(refused.status).toBe(403)
        expect(await readJson(refused)).toMatchObject({ code: 'ip_not_allowed' })
        const { body: local } = await create({ name: 'local', allowed_ips: ['127.0.0.1'] })
        expect(local.allowed_ips).toEqual(['127.0.0.1/32'])
        expect((await call('/v1/me', local.key)).status).toBe(200)
      })

      it('ignores a forged X-Forwarded-For from an untrusted peer', async () => {
        const { call, create } = await start()
        const { body: key } = await create({ name: 'office', allowed_ips: ['203.0.113.0/24'] })
        expect((await call('/v1/me', key.key, { headers: { 'x-forwarded-for': '203.0.113.9' } })).status).toBe(403)
      })

      it('reads the client from X-Forwarded-For behind a trusted proxy', async () => {
        const { call, create } = await start('loopback')
        const { body: key } = await create({ name: 'office', allowed_ips: ['203.0.113.0/24'] })
        expect((await call('/v1/me', key.key, { headers: { 'x-forwarded-for': '203.0.113.9' } })).status).toBe(200)
        expect((await call('/v1/me', key.key, { headers: { 'x-forwarded-for': '198.51.100.1' } })).status).toBe(403)
        // A forged entry further left is not the client: the nearest untrusted address is.
        expect((await call('/v1/me', key.key, { headers: { 'x-forwarded-for': '203.0.113.9, 198.51.100.1' } })).status).toBe(403)
      })

      it('refuses invalid ranges with 400 naming the entry', async () => {
        const { create } = await start()
        const { response, body } = await create({ name: 'x', allowed_ips: ['10.0.0.1/8'] })
        expect(response.status).toBe(400)
        expect(body.errors[0].field).toBe('allowed_ips.0')
      })
    })

    describe('disable and enable', () => {
      it('answers 401 api_key_disabled while disabled, keeps the key listed, and restores it when enabled', async () => {
        const { admin, call, create } = await start()
        const { body: key } = await create({ name: 'paused' })
        expect((await call('/v1/me', key.key)).status).toBe(200)
        const disabled = await readJson(await call(`/api-keys/${key.id}`, admin.key, { method: 'PATCH', json: { enabled: false } }))
        expect(disabled).toMatchObject({ enabled: false, status: 'disabled' })
        const refused = await call('/v1/me', key.key)
        expect(refused.status).toBe(401)
        expect(await readJson(refused)).toMatchObject({ code: 'api_key_disabled' })
        expect(refused.headers.get('www-authenticate')).toContain('invalid_token')
        const listed: Json[] = await readJson(await call('/api-keys?status=disabled', admin.key))
        expect(listed.map((item) => item.id)).toEqual([key.id])
        const enabled = await readJson(await call(`/api-keys/${key.id}`, admin.key, { method: 'PATCH', json: { enabled: true } }))
        expect(enabled).toMatchObject({ enabled: true, status: 'active' })
        expect((await call('/v1/me', key.key)).status).toBe(200)
      })
    })

    describe('no escalation through controls', () => {
      async function limitedCaller() {
        const setup = await start()
        const { body: caller } = await setup.create({
          name: 'limited manager',
          rate_limits: [{ name: 'hour', limit: 100, window_ms: 3_600_000 }],
          credits: { remaining: 50 },
          allowed_ips: ['127.0.0.0/8'],
        })
        const { body: looser } = await setup.create({ name: 'root-ish' })
        return { ...setup, caller, looser }
      }
      const tight = {
        rate_limits: [{ name: 'hour', limit: 100, window_ms: 3_600_000 }],
        credits: { remaining: 10 },
        allowed_ips: ['127.0.0.1'],
      }

      it('on create: refuses a key without the caller’s limit, credits or allowlist, or with looser ones; allows equal or tighter', async () => {
        const { create, caller } = await limitedCaller()
        const attempts: Record<string, unknown>[] = [
          { ...tight, rate_limits: [] },
          { ...tight, rate_limits: [{ name: 'minute', limit: 10, window_ms: 60_000 }] },
          { ...tight, rate_limits: [{ name: 'hour', limit: 101, window_ms: 3_600_000 }] },
          { ...tight, credits: undefined },
          { ...tight, credits: { remaining: 51 } },
          { ...tight, credits: { remaining: 5, refill: { amount: 5, interval: 'day' } } },
          { ...tight, allowed_ips: [] },
          { ...tight, allowed_ips: ['10.0.0.0/8'] },
        ]
        for (const attempt of attempts) {
          const { response, body } = await create({ name: 'child', ...attempt }, caller.key)
          expect(response.status, JSON.stringify(attempt)).toBe(403)
          expect(body.code).toBe('forbidden')
        }
        const equal = await create({ name: 'child', ...tight, rate_limits: [{ name: 'h', limit: 100, window_ms: 3_600_000 }] }, caller.key)
        expect(equal.response.status).toBe(201)
        const tighter = await create({ name: 'child', ...tight, rate_limits: [{ name: 's', limit: 1, window_ms: 60_000 }] }, caller.key)
        expect(tighter.response.status).toBe(201)
      })

      it('on update, revoke and rotate: refuses to touch a key with looser controls, or to loosen one', async () => {
        const { call, create, caller, looser } = await limitedCaller()
        const { body: child } = await create({ name: 'child', ...tight }, caller.key)
        for (const [method, path, json] of [
          ['PATCH', `/api-keys/${looser.id}`, { name: 'renamed' }],
          ['DELETE', `/api-keys/${looser.id}`, undefined],
          ['POST', `/api-keys/${looser.id}/rotate`, {}],
          ['PATCH', `/api-keys/${child.id}`, { rate_limits: [] }],
          ['PATCH', `/api-keys/${child.id}`, { credits: null }],
          ['PATCH', `/api-keys/${child.id}`, { allowed_ips: [] }],
        ] as const) {
          const response = await call(path, caller.key, { method, json })
          expect(response.status, `${method} ${path} ${JSON.stringify(json)}`).toBe(403)
          expect((await readJson(response)).code).toBe('forbidden')
        }
        expect((await call(`/api-keys/${child.id}`, caller.key, { method: 'PATCH', json: { name: 'renamed child' } })).status).toBe(200)
        expect((await call(`/api-keys/${child.id}/rotate`, caller.key, { method: 'POST', json: {} })).status).toBe(201)
      })
    })
  })
}

async function mint(kw: Keyward, actor: Actor, input: CreateKeyInput): Promise<{ key: string; id: string }> {
  const created = await kw.createKey(actor, input)
  if (!created.ok) throw new Error(`bootstrap failed: ${JSON.stringify(created.error)}`)
  return { key: created.value.key, id: created.value.apiKey.id }
}
