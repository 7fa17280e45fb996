import { afterEach, describe, expect, it } from 'vitest'
import { generateKey } from '../../src/core/key-format.js'
import type { CreateKeyInput, Keyward } from '../../src/core/keyward.js'
import type { Actor } from '../../src/core/types.js'
import { type KeywardConfig, keyward } from '../../src/index.js'
import { TestClock } from '../helpers/clock.js'
import { readJson } from '../helpers/http.js'
import { type KeepAliveAnswer, type KeepAliveCall, keepAliveClient } from '../helpers/keep-alive.js'
import { tempSqlitePath } from '../helpers/sqlite.js'

/**
 * Issue 2's HTTP contract (and issue 3's rotate endpoint) as one behaviour suite, run over real
 * HTTP against every framework adapter (Hono, Express 5, Express 4), so they can never drift apart.
 */

/** What the suite hands a framework: the keyward instance to use and a log of handler runs. */
export interface HttpAppSetup {
  keyward: Keyward
  /** The `/v1` handlers push their name here when they run, so a test can tell they did not. */
  handled: string[]
}

export interface RunningServer {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string
  close(): Promise<void>
}

/**
 * Starts a real HTTP server whose app has:
 * - `apiKeyAuth({ keyward })` on `/v1/*`,
 * - `GET /v1/me` answering 200 with the verified key as JSON (and pushing `'me'` to `handled`),
 * - `POST /v1/orders` behind `requireScopes('orders:write')` answering 201 (pushing `'orders'`),
 * - the keys router (`createKeysRouter({ keyward })`) mounted at `/api-keys`.
 */
export type StartServer = (setup: HttpAppSetup) => Promise<RunningServer>

export interface HttpBehaviourOptions {
  /**
   * The host app parses JSON bodies before keyward sees them (`express.json()` mounted first). Such
   * a body is already off the wire when keyward answers, so keyward has nothing to drain and keeps
   * the connection even for a body it would otherwise close on.
   * @default false
   */
  hostParsesJson?: boolean
}

const TENANT = 'acme'
const OTHER_TENANT = 'globex'
const SECOND = 1000
const MAX_GRACE_SECONDS = 30 * 86_400

interface Call {
  method?: string
  /** Sent as `X-API-Key`. */
  key?: string
  /** Sent as `Authorization: Bearer`. */
  bearer?: string
  /** Sent as an `application/json` body. */
  json?: unknown
  /** A raw body, sent with `contentType`. */
  body?: string
  contentType?: string
}

interface Minted {
  key: string
  id: string
}

// biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON bodies
type Json = any

export function describeHttpBehaviour(name: string, startServer: StartServer, options: HttpBehaviourOptions = {}): void {
  const cleanups: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  /**
   * A fresh keyward on a fresh SQLite file, a server for it and an unrestricted admin key of `acme`.
   * The environment is empty unless `config` names one: no `KEYWARD_*` variable of the machine leaks in.
   */
  async function start(config: KeywardConfig = {}) {
    const clock = new TestClock()
    const kw = keyward({ database: tempSqlitePath(), now: clock.now, env: {}, ...config })
    cleanups.push(() => kw.close())
    const handled: string[] = []
    const server = await startServer({ keyward: kw, handled })
    cleanups.push(() => server.close())
    const admin = await mint(kw, { tenantId: TENANT }, { name: 'admin' })
    const request = (path: string, call: Call = {}): Promise<Response> => {
      const headers: Record<string, string> = {}
      if (call.key !== undefined) headers['x-api-key'] = call.key
      if (call.bearer !== undefined) headers.authorization = `Bearer ${call.bearer}`
      let body = call.body
      if (call.json !== undefined) {
        body = JSON.stringify(call.json)
        headers['content-type'] = 'application/json'
      }
      if (call.contentType !== undefined) headers['content-type'] = call.contentType
      return fetch(`${server.url}${path}`, { method: call.method ?? 'GET', headers, body })
    }
    return { kw, clock, handled, admin, request, url: server.url }
  }

  describe(`HTTP behaviour: ${name}`, () => {
    describe('apiKeyAuth', () => {
      it('accepts a key in X-API-Key and hands the verified key to the handler', async () => {
        const { admin, request, handled } = await start()
        const response = await request('/v1/me', { key: admin.key })
        expect(response.status).toBe(200)
        expect(await readJson(response)).toEqual({
          id: admin.id,
          tenantId: TENANT,
          projectId: null,
          name: 'admin',
          environment: 'live',
          scopes: [],
          metadata: {},
          expiresAt: null,
        })
        expect(handled).toEqual(['me'])
      })

      it('accepts a key sent as Authorization: Bearer', async () => {
        const { admin, request } = await start()
        const response = await request('/v1/me', { bearer: admin.key })
        expect(response.status).toBe(200)
        expect((await readJson(response)).id).toBe(admin.id)
      })

      it('rejects a request without a key with 401 missing_api_key and a challenge without an error', async () => {
        const { request, handled } = await start()
        const response = await request('/v1/me')
        await expectProblem(response, 401, 'missing_api_key')
        expect(response.headers.get('www-authenticate')).toBe('Bearer realm="keyward"')
        expect(handled).toEqual([])
      })

      it('never accepts the key from the query string', async () => {
        const { admin, request, handled } = await start()
        for (const parameter of ['api_key', 'apiKey', 'key', 'access_token', 'x-api-key']) {
          const response = await request(`/v1/me?${parameter}=${admin.key}`)
          await expectProblem(response, 401, 'missing_api_key')
        }
        expect(handled).toEqual([])
      })

      it('rejects a malformed key with 401 invalid_api_key and an RFC 6750 invalid_token challenge', async () => {
        const { request, handled } = await start()
        for (const presented of [
          'nope',
          'sk_live_',
          'sk_live_short',
          'pk_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
          'sk_prod_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        ]) {
          const response = await request('/v1/me', { key: presented })
          await expectProblem(response, 401, 'invalid_api_key')
          expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="keyward", error="invalid_token"/)
        }
        expect(handled).toEqual([])
      })

      it('rejects a key with a bad checksum with 401 invalid_api_key', async () => {
        const { admin, request, handled } = await start()
        const last = admin.key.at(-1)
        const tampered = `${admin.key.slice(0, -1)}${last === 'A' ? 'B' : 'A'}`
        const response = await request('/v1/me', { key: tampered })
        await expectProblem(response, 401, 'invalid_api_key')
        expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"')
        expect(handled).toEqual([])
      })

      it('rejects a well-formed key it never issued with 401 invalid_api_key', async () => {
        const { request, handled } = await start()
        const response = await request('/v1/me', { key: generateKey('sk', 'live').key })
        await expectProblem(response, 401, 'invalid_api_key')
        expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"')
        expect(handled).toEqual([])
      })

      it('rejects a revoked key with 401 api_key_revoked', async () => {
        const { kw, request, handled } = await start()
        const revoked = await mint(kw, { tenantId: TENANT }, { name: 'doomed' })
        expect((await request('/v1/me', { key: revoked.key })).status).toBe(200)
        await kw.revokeKey({ tenantId: TENANT }, revoked.id)
        const response = await request('/v1/me', { key: revoked.key })
        await expectProblem(response, 401, 'api_key_revoked')
        expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"')
        expect(handled).toEqual(['me'])
      })

      it('rejects an expired key with 401 api_key_expired from the first request past its expiry', async () => {
        const { kw, clock, request, handled } = await start()
        const expiring = await mint(kw, { tenantId: TENANT }, { name: 'short-lived', expiresInSeconds: 60 })
        clock.advance(59 * SECOND)
        expect((await request('/v1/me', { key: expiring.key })).status).toBe(200)
        clock.advance(1 * SECOND)
        const response = await request('/v1/me', { key: expiring.key })
        await expectProblem(response, 401, 'api_key_expired')
        expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"')
        expect(handled).toEqual(['me'])
      })

      it('answers 403 insufficient_scope from requireScopes when the key lacks the scope, without running the handler', async () => {
        const { kw, request, handled } = await start()
        const reader = await mint(kw, { tenantId: TENANT }, { name: 'reader', scopes: ['orders:read'] })
        const response = await request('/v1/orders', { method: 'POST', key: reader.key, json: { item: 'coffee' } })
        await expectProblem(response, 403, 'insufficient_scope')
        expect(response.headers.get('www-authenticate')).toMatch(/error="insufficient_scope".*scope="orders:write"/)
        expect(handled).toEqual([])
      })

      it('lets requireScopes pass a key with the scope and an unrestricted key', async () => {
        const { kw, admin, request, handled } = await start()
        const writer = await mint(kw, { tenantId: TENANT }, { name: 'writer', scopes: ['orders:read', 'orders:write'] })
        expect((await request('/v1/orders', { method: 'POST', key: writer.key, json: { item: 'tea' } })).status).toBe(201)
        expect((await request('/v1/orders', { method: 'POST', key: admin.key, json: { item: 'tea' } })).status).toBe(201)
        expect(handled).toEqual(['orders', 'orders'])
      })
    })

    describe('the keys router', () => {
      it('answers 401 missing_api_key on every route without a key', async () => {
        const { admin, request } = await start()
        for (const [method, path] of routesOf(admin.id)) {
          const response = await request(path, { method, json: method === 'GET' || method === 'DELETE' ? undefined : {} })
          await expectProblem(response, 401, 'missing_api_key')
          expect(response.headers.get('www-authenticate'), `${method} ${path}`).toBe('Bearer realm="keyward"')
        }
      })

      it('answers 401 invalid_api_key and api_key_revoked to bad credentials on management calls', async () => {
        const { kw, request } = await start()
        await expectProblem(await request('/api-keys', { key: 'sk_live_nope' }), 401, 'invalid_api_key')
        const revoked = await mint(kw, { tenantId: TENANT }, { name: 'revoked' })
        await kw.revokeKey({ tenantId: TENANT }, revoked.id)
        await expectProblem(await request('/api-keys', { key: revoked.key }), 401, 'api_key_revoked')
      })

      it('creates a key: 201 with the full secret in `key`, and the new key authenticates at once', async () => {
        const { admin, request } = await start()
        const response = await request('/api-keys', {
          method: 'POST',
          key: admin.key,
          json: { name: 'Production Backend', scopes: ['orders:read'], metadata: { team: 'billing' } },
        })
        expect(response.status).toBe(201)
        expect(response.headers.get('content-type')).toMatch(/^application\/json/)
        const created: Json = await readJson(response)
        expect(created).toMatchObject({
          tenant_id: TENANT,
          project_id: null,
          name: 'Production Backend',
          environment: 'live',
          scopes: ['orders:read'],
          metadata: { team: 'billing' },
          status: 'active',
          revoked_at: null,
          expires_at: null,
          last_used_at: null,
        })
        expect(created.id).toMatch(/^key_/)
        expect(created.key).toMatch(/^sk_live_[0-9A-Za-z]+$/)
        expect(created.key_prefix).toBe(created.key.slice(0, 12))
        expect(created.key_suffix).toBe(created.key.slice(-4))
        expect(created).not.toHaveProperty('key_hash')
        const me = await request('/v1/me', { key: created.key })
        expect(me.status).toBe(200)
        expect((await readJson(me)).id).toBe(created.id)
      })

      it('never shows the secret again: neither GET nor the list carries `key` or a hash', async () => {
        const { admin, request } = await start()
        const created: Json = await readJson(await request('/api-keys', { method: 'POST', key: admin.key, json: { name: 'secret' } }))
        const one = await request(`/api-keys/${created.id}`, { key: admin.key })
        const list = await request('/api-keys', { key: admin.key })
        for (const response of [one, list]) {
          expect(response.status).toBe(200)
          const text = await response.text()
          expect(text).not.toContain(created.key)
          expect(text).not.toContain(created.key.slice(12, -4))
          expect(text).not.toMatch(/"key"\s*:|"key_hash"|"keyHash"/)
        }
      })

      it('lists the tenant’s keys newest first and pages them with a Link rel="next" header', async () => {
        const { kw, clock, admin, request } = await start()
        const ids = [admin.id]
        for (let i = 1; i <= 4; i++) {
          clock.advance(SECOND)
          ids.push((await mint(kw, { tenantId: TENANT }, { name: `key ${i}` })).id)
        }
        const seen: string[] = []
        let next: string | null = '/api-keys?limit=2'
        const pageSizes: number[] = []
        while (next !== null) {
          const response = await request(next, { key: admin.key })
          expect(response.status).toBe(200)
          const page: Json[] = await readJson(response)
          pageSizes.push(page.length)
          seen.push(...page.map((key) => key.id))
          next = nextLink(response)
          if (next !== null) expect(next).toMatch(/^\/api-keys\?/)
        }
        expect(pageSizes).toEqual([2, 2, 1])
        expect(seen).toEqual([...ids].reverse())
      })

      it('filters the list by status, project_id and environment', async () => {
        const { kw, admin, request } = await start()
        const revoked = await mint(kw, { tenantId: TENANT }, { name: 'revoked' })
        await kw.revokeKey({ tenantId: TENANT }, revoked.id)
        const inProject = await mint(kw, { tenantId: TENANT }, { name: 'web', projectId: 'proj_web' })
        const testKey = await mint(kw, { tenantId: TENANT }, { name: 'ci', environment: 'test' })
        const idsOf = async (query: string) =>
          ((await readJson(await request(`/api-keys?${query}`, { key: admin.key }))) as Json[]).map((key) => key.id)
        expect(await idsOf('status=revoked')).toEqual([revoked.id])
        expect((await idsOf('status=active')).sort()).toEqual([admin.id, inProject.id, testKey.id].sort())
        expect(await idsOf('project_id=proj_web')).toEqual([inProject.id])
        expect(await idsOf('environment=test')).toEqual([testKey.id])
        expect(await idsOf('environment=test&project_id=proj_web')).toEqual([])
      })

      it('gets one key by id', async () => {
        const { admin, request } = await start()
        const response = await request(`/api-keys/${admin.id}`, { key: admin.key })
        expect(response.status).toBe(200)
        expect(await readJson(response)).toMatchObject({ id: admin.id, name: 'admin', tenant_id: TENANT, status: 'active' })
      })

      // Issue 12, defect 12: the README says management calls made with a key are uses of that key.
      it('counts a management call made with a key as a use of that key, in its usage and last_used_at', async () => {
        const { kw, clock, admin, request } = await start()
        expect((await request('/api-keys', { key: admin.key })).status).toBe(200)
        expect((await request(`/api-keys/${admin.id}`, { bearer: admin.key })).status).toBe(200)
        await kw.flushUsage()
        const usage = await kw.getUsage({ tenantId: TENANT }, admin.id)
        if (!usage.ok) throw new Error(usage.error.detail)
        expect({ total: usage.value.totalRequests, lastUsedAt: usage.value.lastUsedAt?.toISOString() }).toEqual({
          total: 2,
          lastUsedAt: clock.date().toISOString(),
        })
      })

      it('renames a key with PATCH and the key keeps working', async () => {
        const { kw, clock, admin, request } = await start()
        const renamed = await mint(kw, { tenantId: TENANT }, { name: 'My New Key' })
        clock.advance(SECOND)
        const response = await request(`/api-keys/${renamed.id}`, { method: 'PATCH', key: admin.key, json: { name: 'Staging Server' } })
        expect(response.status).toBe(200)
        const body: Json = await readJson(response)
        expect(body).toMatchObject({ id: renamed.id, name: 'Staging Server', status: 'active' })
        expect(body.updated_at).toBe(clock.date().toISOString())
        const me = await request('/v1/me', { key: renamed.key })
        expect((await readJson(me)).name).toBe('Staging Server')
      })

      it('revokes a key with DELETE, and the key is rejected from the very next request on', async () => {
        const { kw, admin, request } = await start()
        const doomed = await mint(kw, { tenantId: TENANT }, { name: 'doomed' })
        // Warm the verification cache first: revocation must not wait for it to expire.
        expect((await request('/v1/me', { key: doomed.key })).status).toBe(200)
        const response = await request(`/api-keys/${doomed.id}`, { method: 'DELETE', key: admin.key })
        expect(response.status).toBe(200)
        const body: Json = await readJson(response)
        expect(body).toMatchObject({ id: doomed.id, status: 'revoked' })
        expect(body.revoked_at).toEqual(expect.any(String))
        await expectProblem(await request('/v1/me', { key: doomed.key }), 401, 'api_key_revoked')
      })

      it('treats revoking twice as success and keeps the first revoked_at', async () => {
        const { kw, clock, admin, request } = await start()
        const doomed = await mint(kw, { tenantId: TENANT }, { name: 'doomed' })
        const first: Json = await readJson(await request(`/api-keys/${doomed.id}`, { method: 'DELETE', key: admin.key }))
        clock.advance(60 * SECOND)
        const again = await request(`/api-keys/${doomed.id}`, { method: 'DELETE', key: admin.key })
        expect(again.status).toBe(200)
        expect((await readJson(again)).revoked_at).toBe(first.revoked_at)
      })

      it('answers 404 not_found for an id that does not exist', async () => {
        const { admin, request } = await start()
        for (const [method, path] of routesOf('key_doesNotExist0000000000').filter(([, path]) => path !== '/api-keys')) {
          const response = await request(path, {
            method,
            key: admin.key,
            json: method === 'PATCH' ? { name: 'x' } : method === 'POST' ? {} : undefined,
          })
          await expectProblem(response, 404, 'not_found')
        }
      })

      it('serves its OpenAPI document without a key, with paths under the mount point', async () => {
        const { request } = await start()
        const response = await request('/api-keys/openapi.json')
        expect(response.status).toBe(200)
        const document: Json = await readJson(response)
        expect(document.openapi).toBe('3.1.0')
        expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/api-keys', '/api-keys/{id}', '/api-keys/{id}/rotate']))
      })
    })

    describe('tenant isolation', () => {
      it('answers 404 not_found for another tenant’s key on get, patch, delete, rotate and usage, and leaves it untouched', async () => {
        const { kw, admin, request } = await start()
        const theirs = await mint(kw, { tenantId: OTHER_TENANT }, { name: 'globex prod' })
        const before = await stored(kw, OTHER_TENANT)
        for (const [method, path] of routesOf(theirs.id).filter(([, path]) => path !== '/api-keys')) {
          const response = await request(path, {
            method,
            key: admin.key,
            json: method === 'PATCH' ? { name: 'pwned' } : method === 'POST' ? {} : undefined,
          })
          await expectProblem(response, 404, 'not_found')
        }
        expect(await stored(kw, OTHER_TENANT)).toEqual(before)
        expect((await request('/v1/me', { key: theirs.key })).status).toBe(200)
      })

      it('lists only the caller’s tenant’s keys', async () => {
        const { kw, admin, request } = await start()
        const theirs = await mint(kw, { tenantId: OTHER_TENANT }, { name: 'globex admin' })
        const mine: Json[] = await readJson(await request('/api-keys', { key: admin.key }))
        expect(mine.map((key) => key.id)).toEqual([admin.id])
        const ours: Json[] = await readJson(await request('/api-keys', { key: theirs.key }))
        expect(ours.map((key) => key.id)).toEqual([theirs.id])
      })
    })

    describe('scopes, projects and environments', () => {
      it('requires api_keys:read to read keys and api_keys:write to change them from a restricted key', async () => {
        const { kw, admin, request } = await start()
        const orders = await mint(kw, { tenantId: TENANT }, { name: 'orders only', scopes: ['orders:read'] })
        const reader = await mint(kw, { tenantId: TENANT }, { name: 'reader', scopes: ['api_keys:read'] })
        const before = await stored(kw)
        await expectProblem(await request('/api-keys', { key: orders.key }), 403, 'insufficient_scope')
        await expectProblem(await request(`/api-keys/${admin.id}`, { key: orders.key }), 403, 'insufficient_scope')
        expect((await request('/api-keys', { key: reader.key })).status).toBe(200)
        expect((await request(`/api-keys/${admin.id}`, { key: reader.key })).status).toBe(200)
        expect((await request(`/api-keys/${admin.id}/usage`, { key: reader.key })).status).toBe(200)
        await expectProblem(
          await request('/api-keys', { method: 'POST', key: reader.key, json: { name: 'x', scopes: ['api_keys:read'] } }),
          403,
          'insufficient_scope',
        )
        await expectProblem(
          await request(`/api-keys/${admin.id}`, { method: 'PATCH', key: reader.key, json: { name: 'x' } }),
          403,
          'insufficient_scope',
        )
        await expectProblem(await request(`/api-keys/${admin.id}`, { method: 'DELETE', key: reader.key }), 403, 'insufficient_scope')
        await expectProblem(
          await request(`/api-keys/${admin.id}/rotate`, { method: 'POST', key: reader.key, json: {} }),
          403,
          'insufficient_scope',
        )
        expect(await stored(kw)).toEqual(before)
      })

      it('refuses to let a restricted key create a key with a scope it lacks', async () => {
        const { kw, request } = await start()
        const manager = await mint(kw, { tenantId: TENANT }, { name: 'manager', scopes: ['api_keys:write', 'orders:read'] })
        const before = await stored(kw)
        const response = await request('/api-keys', {
          method: 'POST',
          key: manager.key,
          json: { name: 'escalated', scopes: ['orders:write'] },
        })
        await expectProblem(response, 403, 'insufficient_scope')
        expect(await stored(kw)).toEqual(before)
      })

      it('refuses to let a restricted key create an unrestricted key, with [] or without scopes', async () => {
        const { kw, request } = await start()
        const manager = await mint(kw, { tenantId: TENANT }, { name: 'manager', scopes: ['api_keys:write', 'orders:read'] })
        const before = await stored(kw)
        await expectProblem(
          await request('/api-keys', { method: 'POST', key: manager.key, json: { name: 'everything', scopes: [] } }),
          403,
          'insufficient_scope',
        )
        await expectProblem(
          await request('/api-keys', { method: 'POST', key: manager.key, json: { name: 'everything' } }),
          403,
          'insufficient_scope',
        )
        expect(await stored(kw)).toEqual(before)
      })

      it('lets a restricted key create a key within its own scopes', async () => {
        const { kw, request } = await start()
        const manager = await mint(kw, { tenantId: TENANT }, { name: 'manager', scopes: ['api_keys:write', 'orders:read'] })
        const response = await request('/api-keys', {
          method: 'POST',
          key: manager.key,
          json: { name: 'reporting', scopes: ['orders:read'] },
        })
        expect(response.status).toBe(201)
        expect((await readJson(response)).scopes).toEqual(['orders:read'])
      })

      it('refuses to let a restricted key widen its own scopes with PATCH', async () => {
        const { kw, request } = await start()
        const manager = await mint(kw, { tenantId: TENANT }, { name: 'manager', scopes: ['api_keys:write', 'orders:read'] })
        const before = await stored(kw)
        for (const scopes of [['api_keys:write', 'orders:read', 'orders:write'], []]) {
          const response = await request(`/api-keys/${manager.id}`, { method: 'PATCH', key: manager.key, json: { scopes } })
          await expectProblem(response, 403, 'insufficient_scope')
        }
        expect(await stored(kw)).toEqual(before)
        const me: Json = await readJson(await request('/v1/me', { key: manager.key }))
        expect(me.scopes).toEqual(['api_keys:write', 'orders:read'])
      })

      it('refuses to let a restricted key rotate a broader key', async () => {
        const { kw, request } = await start()
        const manager = await mint(kw, { tenantId: TENANT }, { name: 'manager', scopes: ['api_keys:write', 'orders:read'] })
        const broader = await mint(kw, { tenantId: TENANT }, { name: 'writer', scopes: ['orders:write'] })
        const before = await stored(kw)
        const response = await request(`/api-keys/${broader.id}/rotate`, {
          method: 'POST',
          key: manager.key,
          json: { grace_period_seconds: 0 },
        })
        await expectProblem(response, 403, 'forbidden')
        expect(await stored(kw)).toEqual(before)
        expect((await request('/v1/me', { key: broader.key })).status).toBe(200)
      })

      it('shows a project-bound key only its own project’s keys and 404 for the others', async () => {
        const { kw, request } = await start()
        const web = await mint(kw, { tenantId: TENANT }, { name: 'web admin', projectId: 'proj_web' })
        const webKey = await mint(kw, { tenantId: TENANT }, { name: 'web worker', projectId: 'proj_web' })
        const mobileKey = await mint(kw, { tenantId: TENANT }, { name: 'mobile worker', projectId: 'proj_mobile' })
        const listed: Json[] = await readJson(await request('/api-keys', { key: web.key }))
        expect(listed.map((key) => key.id).sort()).toEqual([web.id, webKey.id].sort())
        expect(await readJson(await request('/api-keys?project_id=proj_mobile', { key: web.key }))).toEqual([])
        const before = await stored(kw)
        for (const [method, path] of routesOf(mobileKey.id).filter(([, path]) => path !== '/api-keys')) {
          const response = await request(path, {
            method,
            key: web.key,
            json: method === 'PATCH' ? { name: 'x' } : method === 'POST' ? {} : undefined,
          })
          await expectProblem(response, 404, 'not_found')
        }
        expect(await stored(kw)).toEqual(before)
        await expectProblem(
          await request('/api-keys', { method: 'POST', key: web.key, json: { name: 'x', project_id: 'proj_mobile' } }),
          403,
          'forbidden',
        )
        const created = await request('/api-keys', { method: 'POST', key: web.key, json: { name: 'another web key' } })
        expect(created.status).toBe(201)
        expect((await readJson(created)).project_id).toBe('proj_web')
      })

      it('refuses to let a test key create live keys', async () => {
        const { kw, request } = await start()
        const ci = await mint(kw, { tenantId: TENANT }, { name: 'ci', environment: 'test' })
        const before = await stored(kw)
        await expectProblem(
          await request('/api-keys', { method: 'POST', key: ci.key, json: { name: 'live one', environment: 'live' } }),
          403,
          'forbidden',
        )
        expect(await stored(kw)).toEqual(before)
        const created = await request('/api-keys', { method: 'POST', key: ci.key, json: { name: 'test one', environment: 'test' } })
        expect(created.status).toBe(201)
        expect((await readJson(created)).key).toMatch(/^sk_test_/)
        // Without an environment, a test key's key is a test key too.
        const defaulted = await request('/api-keys', { method: 'POST', key: ci.key, json: { name: 'defaulted' } })
        expect(defaulted.status).toBe(201)
        expect(await readJson(defaulted)).toMatchObject({ environment: 'test', key: expect.stringMatching(/^sk_test_/) })
      })

      // Issue 12, defect 1: an unrestricted test key listed, edited and revoked live keys.
      it('confines a test key to test keys: it lists only test keys, even when it asks for live ones', async () => {
        const { kw, admin, request } = await start()
        const ci = await mint(kw, { tenantId: TENANT }, { name: 'ci', environment: 'test' })
        const fixture = await mint(kw, { tenantId: TENANT }, { name: 'fixture', environment: 'test' })
        const live = await mint(kw, { tenantId: TENANT }, { name: 'production' })
        const idsOf = async (query: string) =>
          ((await readJson(await request(`/api-keys${query}`, { key: ci.key }))) as Json[]).map((key) => key.id).sort()
        expect(await idsOf('')).toEqual([ci.id, fixture.id].sort())
        expect(await idsOf('?environment=test')).toEqual([ci.id, fixture.id].sort())
        expect(await idsOf('?environment=live')).toEqual([])
        expect(await idsOf('?status=active')).toEqual([ci.id, fixture.id].sort())
        // The live admin still sees both worlds.
        const all: Json[] = await readJson(await request('/api-keys', { key: admin.key }))
        expect(all.map((key) => key.id).sort()).toEqual([admin.id, ci.id, fixture.id, live.id].sort())
      })

      it('answers 404 not_found to a test key for a live key on get, patch, delete, rotate, usage and deliveries, and changes nothing', async () => {
        const { kw, request } = await start()
        const ci = await mint(kw, { tenantId: TENANT }, { name: 'ci', environment: 'test' })
        const live = await mint(kw, { tenantId: TENANT }, { name: 'production' })
        const before = await stored(kw)
        for (const [method, path] of routesOf(live.id).filter(([, path]) => path !== '/api-keys')) {
          const response = await request(path, {
            method,
            key: ci.key,
            json: method === 'PATCH' ? { scopes: [] } : method === 'POST' ? { grace_period_seconds: 0 } : undefined,
          })
          await expectProblem(response, 404, 'not_found')
        }
        expect(await stored(kw)).toEqual(before)
        expect((await request('/v1/me', { key: live.key })).status).toBe(200)
      })

      it('lets a live key manage test keys and live keys alike', async () => {
        const { kw, admin, request } = await start()
        const ci = await mint(kw, { tenantId: TENANT }, { name: 'ci', environment: 'test' })
        const live = await mint(kw, { tenantId: TENANT }, { name: 'production' })
        for (const target of [ci, live]) {
          expect((await request(`/api-keys/${target.id}`, { key: admin.key })).status).toBe(200)
          expect((await request(`/api-keys/${target.id}/usage`, { key: admin.key })).status).toBe(200)
          const renamed = await request(`/api-keys/${target.id}`, { method: 'PATCH', key: admin.key, json: { name: 'renamed' } })
          expect(renamed.status).toBe(200)
          expect((await readJson(renamed)).name).toBe('renamed')
          expect((await request(`/api-keys/${target.id}`, { method: 'DELETE', key: admin.key })).status).toBe(200)
        }
      })

      it('lets a test key manage the test keys it sees', async () => {
        const { kw, request } = await start()
        const ci = await mint(kw, { tenantId: TENANT }, { name: 'ci', environment: 'test' })
        const fixture = await mint(kw, { tenantId: TENANT }, { name: 'fixture', environment: 'test' })
        expect((await request(`/api-keys/${fixture.id}`, { key: ci.key })).status).toBe(200)
        expect((await request(`/api-keys/${fixture.id}`, { method: 'PATCH', key: ci.key, json: { name: 'renamed' } })).status).toBe(200)
        expect((await request(`/api-keys/${fixture.id}/rotate`, { method: 'POST', key: ci.key, json: {} })).status).toBe(201)
      })
    })

    describe('keys stronger than the caller', () => {
      // Issue 12, defect 2: a key scoped to manage keys revoked and renamed the tenant's unrestricted key.
      const MANAGER_SCOPES = ['api_keys:read', 'api_keys:write', 'orders:read']

      it('answers 403 forbidden to a scoped key renaming, revoking or rotating the unrestricted admin key, and changes nothing', async () => {
        const { kw, admin, request } = await start()
        const manager = await mint(kw, { tenantId: TENANT }, { name: 'manager', scopes: MANAGER_SCOPES })
        const before = await stored(kw)
        await expectProblem(
          await request(`/api-keys/${admin.id}`, { method: 'PATCH', key: manager.key, json: { name: 'pwned' } }),
          403,
          'forbidden',
        )
        await expectProblem(await request(`/api-keys/${admin.id}`, { method: 'DELETE', key: manager.key }), 403, 'forbidden')
        await expectProblem(
          await request(`/api-keys/${admin.id}/rotate`, { method: 'POST', key: manager.key, json: { grace_period_seconds: 0 } }),
          403,
          'forbidden',
        )
        expect(await stored(kw)).toEqual(before)
        expect((await request('/v1/me', { key: admin.key })).status).toBe(200)
      })

      it('answers 403 forbidden to a scoped key renaming, revoking or rotating a key with a scope it lacks, and changes nothing', async () => {
        const { kw, request } = await start()
        const manager = await mint(kw, { tenantId: TENANT }, { name: 'manager', scopes: MANAGER_SCOPES })
        const writer = await mint(kw, { tenantId: TENANT }, { name: 'writer', scopes: ['orders:read', 'orders:write'] })
        const before = await stored(kw)
        await expectProblem(
          await request(`/api-keys/${writer.id}`, { method: 'PATCH', key: manager.key, json: { name: 'pwned' } }),
          403,
          'forbidden',
        )
        await expectProblem(await request(`/api-keys/${writer.id}`, { method: 'DELETE', key: manager.key }), 403, 'forbidden')
        await expectProblem(
          await request(`/api-keys/${writer.id}/rotate`, { method: 'POST', key: manager.key, json: {} }),
          403,
          'forbidden',
        )
        expect(await stored(kw)).toEqual(before)
        expect((await request('/v1/me', { key: writer.key })).status).toBe(200)
      })

      it('lets a scoped key rename, rotate and revoke a key within its own scopes', async () => {
        const { kw, request } = await start()
        const manager = await mint(kw, { tenantId: TENANT }, { name: 'manager', scopes: MANAGER_SCOPES })
        const reader = await mint(kw, { tenantId: TENANT }, { name: 'reader', scopes: ['orders:read'] })
        expect((await request(`/api-keys/${reader.id}`, { method: 'PATCH', key: manager.key, json: { name: 'renamed' } })).status).toBe(200)
        const rotated: Json = await readJson(
          await request(`/api-keys/${reader.id}/rotate`, { method: 'POST', key: manager.key, json: { grace_period_seconds: 0 } }),
        )
        expect(rotated).toMatchObject({ old_key_id: reader.id, scopes: ['orders:read'] })
        expect((await request(`/api-keys/${rotated.id}`, { method: 'DELETE', key: manager.key })).status).toBe(200)
      })

      it('lets a key revoke itself, even without api_keys:write, and it is rejected from the next request on', async () => {
        const { kw, request } = await start()
        const leaked = await mint(kw, { tenantId: TENANT }, { name: 'leaked', scopes: ['orders:read'] })
        const response = await request(`/api-keys/${leaked.id}`, { method: 'DELETE', key: leaked.key })
        expect(response.status).toBe(200)
        expect(await readJson(response)).toMatchObject({ id: leaked.id, status: 'revoked' })
        await expectProblem(await request('/v1/me', { key: leaked.key }), 401, 'api_key_revoked')
        // Only itself: without api_keys:write it cannot revoke another key.
        const other = await mint(kw, { tenantId: TENANT }, { name: 'other', scopes: ['orders:read'] })
        const another = await mint(kw, { tenantId: TENANT }, { name: 'another', scopes: ['orders:read'] })
        await expectProblem(await request(`/api-keys/${another.id}`, { method: 'DELETE', key: other.key }), 403, 'insufficient_scope')
      })
    })

    describe('bad input', () => {
      it('rejects malformed JSON with 400 invalid_json on create, update and rotate', async () => {
        const { kw, admin, request } = await start()
        const before = await stored(kw)
        for (const [method, path] of [
          ['POST', '/api-keys'],
          ['PATCH', `/api-keys/${admin.id}`],
          ['POST', `/api-keys/${admin.id}/rotate`],
        ] as const) {
          const response = await request(path, { method, key: admin.key, body: '{"name": "unterminated', contentType: 'application/json' })
          await expectProblem(response, 400, 'invalid_json')
        }
        expect(await stored(kw)).toEqual(before)
      })

      it('rejects a body that is not JSON with 415 unsupported_media_type', async () => {
        const { kw, admin, request } = await start()
        const before = await stored(kw)
        const cases = [
          ['text/plain', '{"name":"looks like JSON"}'],
          ['application/x-www-form-urlencoded', 'name=form'],
          ['application/xml', '<key><name>x</name></key>'],
        ] as const
        for (const [contentType, body] of cases) {
          await expectProblem(
            await request('/api-keys', { method: 'POST', key: admin.key, body, contentType }),
            415,
            'unsupported_media_type',
          )
          await expectProblem(
            await request(`/api-keys/${admin.id}`, { method: 'PATCH', key: admin.key, body, contentType }),
            415,
            'unsupported_media_type',
          )
        }
        expect(await stored(kw)).toEqual(before)
      })

      it('rejects an oversized body with 413 payload_too_large', async () => {
        const { kw, admin, request } = await start()
        const before = await stored(kw)
        const huge = { name: 'huge', metadata: { blob: 'x'.repeat(20_000) } }
        await expectProblem(await request('/api-keys', { method: 'POST', key: admin.key, json: huge }), 413, 'payload_too_large')
        await expectProblem(
          await request(`/api-keys/${admin.id}`, { method: 'PATCH', key: admin.key, json: huge }),
          413,
          'payload_too_large',
        )
        expect(await stored(kw)).toEqual(before)
      })

      it('rejects an empty, blank, too long or control-character name with 400 and a per-field error', async () => {
        const { kw, admin, request } = await start()
        const before = await stored(kw)
        for (const name of ['', '   ', 'x'.repeat(101), 'nul\u0000byte', 'line\nbreak', 'tab\there', 'bell\u0007', 'c1\u0085', 42, null]) {
          const created = await expectProblem(
            await request('/api-keys', { method: 'POST', key: admin.key, json: { name } }),
            400,
            'validation_error',
          )
          expect(fieldsOf(created), JSON.stringify(name)).toContain('name')
          const updated = await expectProblem(
            await request(`/api-keys/${admin.id}`, { method: 'PATCH', key: admin.key, json: { name } }),
            400,
            'validation_error',
          )
          expect(fieldsOf(updated), JSON.stringify(name)).toContain('name')
        }
        const missing = await expectProblem(
          await request('/api-keys', { method: 'POST', key: admin.key, json: {} }),
          400,
          'validation_error',
        )
        expect(fieldsOf(missing)).toContain('name')
        expect(await stored(kw)).toEqual(before)
      })

      it('accepts a name of exactly 100 characters', async () => {
        const { admin, request } = await start()
        expect((await request('/api-keys', { method: 'POST', key: admin.key, json: { name: 'x'.repeat(100) } })).status).toBe(201)
      })

      it('rejects unknown fields, naming each one', async () => {
        const { kw, admin, request } = await start()
        const before = await stored(kw)
        const created = await expectProblem(
          await request('/api-keys', { method: 'POST', key: admin.key, json: { name: 'x', tenant_id: 'globex', is_admin: true } }),
          400,
          'validation_error',
        )
        expect(fieldsOf(created)).toEqual(expect.arrayContaining(['tenant_id', 'is_admin']))
        const updated = await expectProblem(
          await request(`/api-keys/${admin.id}`, { method: 'PATCH', key: admin.key, json: { revoked_at: null } }),
          400,
          'validation_error',
        )
        expect(fieldsOf(updated)).toContain('revoked_at')
        const rotated = await expectProblem(
          await request(`/api-keys/${admin.id}/rotate`, { method: 'POST', key: admin.key, json: { scopes: [] } }),
          400,
          'validation_error',
        )
        expect(fieldsOf(rotated)).toContain('scopes')
        expect(await stored(kw)).toEqual(before)
      })

      it('rejects bad scopes with 400 and the failing scope’s position', async () => {
        const { kw, admin, request } = await start()
        const before = await stored(kw)
        const cases: [unknown, string][] = [
          ['orders:read', 'scopes'],
          [['orders read'], 'scopes.0'],
          [['orders:read', ''], 'scopes.1'],
          [['ok', 'x'.repeat(65)], 'scopes.1'],
          [[42], 'scopes.0'],
          [Array.from({ length: 51 }, (_, i) => `scope:${i}`), 'scopes'],
        ]
        for (const [scopes, field] of cases) {
          const problem = await expectProblem(
            await request('/api-keys', { method: 'POST', key: admin.key, json: { name: 'x', scopes } }),
            400,
            'validation_error',
          )
          expect(fieldsOf(problem), JSON.stringify(scopes)).toContain(field)
        }
        expect(await stored(kw)).toEqual(before)
      })

      it('rejects metadata that is not an object or is over 4 KB', async () => {
        const { kw, admin, request } = await start()
        const before = await stored(kw)
        for (const metadata of [{ blob: 'x'.repeat(4097) }, ['a'], 'text']) {
          const problem = await expectProblem(
            await request('/api-keys', { method: 'POST', key: admin.key, json: { name: 'x', metadata } }),
            400,
            'validation_error',
          )
          expect(fieldsOf(problem)).toContain('metadata')
        }
        const patched = await expectProblem(
          await request(`/api-keys/${admin.id}`, { method: 'PATCH', key: admin.key, json: { metadata: { blob: 'x'.repeat(4097) } } }),
          400,
          'validation_error',
        )
        expect(fieldsOf(patched)).toContain('metadata')
        expect(await stored(kw)).toEqual(before)
      })

      it('rejects a bad limit with 400', async () => {
        const { admin, request } = await start()
        for (const limit of ['0', '101', '-1', '1.5', 'ten', '']) {
          const problem = await expectProblem(await request(`/api-keys?limit=${limit}`, { key: admin.key }), 400, 'validation_error')
          expect(fieldsOf(problem), limit).toContain('limit')
        }
      })

      it('rejects a cursor it did not issue with 400', async () => {
        const { admin, request } = await start()
        for (const cursor of ['garbage', Buffer.from('1.key_x; drop table').toString('base64url'), 'x'.repeat(600)]) {
          const problem = await expectProblem(await request(`/api-keys?cursor=${cursor}`, { key: admin.key }), 400, 'validation_error')
          expect(fieldsOf(problem)).toContain('cursor')
        }
      })

      it('rejects unknown status and environment filters with 400', async () => {
        const { admin, request } = await start()
        expect(
          fieldsOf(await expectProblem(await request('/api-keys?status=deleted', { key: admin.key }), 400, 'validation_error')),
        ).toContain('status')
        expect(
          fieldsOf(await expectProblem(await request('/api-keys?environment=prod', { key: admin.key }), 400, 'validation_error')),
        ).toContain('environment')
      })

      it('rejects an expires_at in the past or that is not a date-time', async () => {
        const { kw, clock, admin, request } = await start()
        const before = await stored(kw)
        const past = new Date(clock.ms - SECOND).toISOString()
        for (const expiresAt of [past, clock.date().toISOString(), 'tomorrow', '2030-01-01', 1_900_000_000]) {
          const problem = await expectProblem(
            await request('/api-keys', { method: 'POST', key: admin.key, json: { name: 'x', expires_at: expiresAt } }),
            400,
            'validation_error',
          )
          expect(fieldsOf(problem), String(expiresAt)).toContain('expires_at')
        }
        const patched = await expectProblem(
          await request(`/api-keys/${admin.id}`, { method: 'PATCH', key: admin.key, json: { expires_at: past } }),
          400,
          'validation_error',
        )
        expect(fieldsOf(patched)).toContain('expires_at')
        expect(await stored(kw)).toEqual(before)
      })

      it('rejects an id that is far too long with 400 or 404, never 500', async () => {
        const { admin, request } = await start()
        const response = await request(`/api-keys/key_${'x'.repeat(500)}`, { key: admin.key })
        expect([400, 404]).toContain(response.status)
        await expectProblem(response, response.status, response.status === 400 ? 'validation_error' : 'not_found')
      })

      it('words every field error as a predicate of its field, never in the validator’s own words', async () => {
        // Issue 12, defect 9: a missing name answered "Invalid input: expected string, received undefined".
        const { kw, admin, request } = await start()
        const before = await stored(kw)
        const bodies: [string, string, unknown, { field: string; message: string }[]][] = [
          ['POST', '/api-keys', {}, [{ field: 'name', message: 'is required' }]],
          ['POST', '/api-keys', { name: null }, [{ field: 'name', message: 'must be a string' }]],
          ['POST', '/api-keys', { name: 42 }, [{ field: 'name', message: 'must be a string' }]],
          ['POST', '/api-keys', { name: '' }, [{ field: 'name', message: 'must not be empty' }]],
          ['POST', '/api-keys', { name: '   ' }, [{ field: 'name', message: 'must not be blank' }]],
          ['POST', '/api-keys', { name: 'x'.repeat(101) }, [{ field: 'name', message: 'must be at most 100 characters' }]],
          ['POST', '/api-keys', { name: 'x', scopes: 'orders:read' }, [{ field: 'scopes', message: 'must be an array' }]],
          ['POST', '/api-keys', { name: 'x', scopes: [42] }, [{ field: 'scopes.0', message: 'must be a string' }]],
          [
            'POST',
            '/api-keys',
            { name: 'x', scopes: ['orders read'] },
            [{ field: 'scopes.0', message: 'must be 1-64 characters of A-Z a-z 0-9 _ . : * / -' }],
          ],
          ['POST', '/api-keys', { name: 'x', metadata: ['a'] }, [{ field: 'metadata', message: 'must be an object' }]],
          ['POST', '/api-keys', { name: 'x', environment: 'prod' }, [{ field: 'environment', message: 'must be one of: live, test' }]],
          ['POST', '/api-keys', { name: 'x', project_id: 7 }, [{ field: 'project_id', message: 'must be a string' }]],
          [
            'POST',
            '/api-keys',
            { name: 'x', expires_in_seconds: 1.5 },
            [{ field: 'expires_in_seconds', message: 'must be a whole number' }],
          ],
          ['POST', '/api-keys', { name: 'x', expires_in_seconds: '60' }, [{ field: 'expires_in_seconds', message: 'must be a number' }]],
          ['POST', '/api-keys', { name: 'x', expires_in_seconds: 0 }, [{ field: 'expires_in_seconds', message: 'must be at least 1' }]],
          [
            'POST',
            '/api-keys',
            { name: 'x', rotation_interval_days: 0 },
            [{ field: 'rotation_interval_days', message: 'must be at least 1' }],
          ],
          [
            'POST',
            '/api-keys',
            { name: 'x', rotation_interval_days: 366 },
            [{ field: 'rotation_interval_days', message: 'must be at most 365' }],
          ],
          [
            'POST',
            '/api-keys',
            { name: 'x', expires_at: 'tomorrow' },
            [{ field: 'expires_at', message: 'must be an ISO 8601 date-time with a time zone' }],
          ],
          ['POST', '/api-keys', { name: 'x', tenant_id: 'globex' }, [{ field: 'tenant_id', message: 'is not a known field' }]],
          [
            'POST',
            '/api-keys',
            { scopes: 'x', environment: 'prod' },
            [
              { field: 'name', message: 'is required' },
              { field: 'scopes', message: 'must be an array' },
              { field: 'environment', message: 'must be one of: live, test' },
            ],
          ],
          ['POST', '/api-keys', [], [{ field: '(body)', message: 'must be an object' }]],
          ['PATCH', `/api-keys/${admin.id}`, { name: null }, [{ field: 'name', message: 'must be a string' }]],
          [
            'PATCH',
            `/api-keys/${admin.id}`,
            { scopes: [''] },
            [{ field: 'scopes.0', message: 'must be 1-64 characters of A-Z a-z 0-9 _ . : * / -' }],
          ],
          [
            'POST',
            `/api-keys/${admin.id}/rotate`,
            { grace_period_seconds: '60' },
            [{ field: 'grace_period_seconds', message: 'must be a number' }],
          ],
          [
            'POST',
            `/api-keys/${admin.id}/rotate`,
            { grace_period_seconds: -1 },
            [{ field: 'grace_period_seconds', message: 'must not be negative' }],
          ],
        ]
        for (const [method, path, json, errors] of bodies) {
          const problem = await expectProblem(await request(path, { method, key: admin.key, json }), 400, 'validation_error')
          expect(problem.errors, `${method} ${path} ${JSON.stringify(json)}`).toEqual(errors)
        }
        const queries: [string, { field: string; message: string }[]][] = [
          ['/api-keys?limit=abc', [{ field: 'limit', message: 'must be a number' }]],
          ['/api-keys?limit=0', [{ field: 'limit', message: 'must be at least 1' }]],
          ['/api-keys?limit=101', [{ field: 'limit', message: 'must be at most 100' }]],
          ['/api-keys?limit=1.5', [{ field: 'limit', message: 'must be a whole number' }]],
          [
            '/api-keys?status=deleted',
            [{ field: 'status', message: 'must be one of: active, expired, revoked, disabled, rotating, rotated' }],
          ],
          [`/api-keys?cursor=${'x'.repeat(513)}`, [{ field: 'cursor', message: 'must be at most 512 characters' }]],
          ['/api-keys?colour=red', [{ field: 'colour', message: 'is not a known field' }]],
          [
            `/api-keys/${admin.id}/usage?days=x&include_predecessors=yes`,
            [
              { field: 'days', message: 'must be a number' },
              { field: 'include_predecessors', message: 'must be one of: true, false' },
            ],
          ],
          [`/api-keys/key_${'x'.repeat(500)}`, [{ field: 'id', message: 'must be at most 64 characters' }]],
        ]
        for (const [path, errors] of queries) {
          const problem = await expectProblem(await request(path, { key: admin.key }), 400, 'validation_error')
          expect(problem.errors, path).toEqual(errors)
        }
        expect(await stored(kw)).toEqual(before)
      })
    })

    describe('webhook URLs', () => {
      // Issue 12, defect 3: a tenant's webhook URL aimed the server at cloud metadata and loopback, in clear.
      const REFUSED: [string, RegExp][] = [
        ['http://169.254.169.254/latest', /^must use https$/],
        ['https://169.254.169.254/latest/meta-data', /private, loopback, link-local or reserved/],
        ['https://[::ffff:127.0.0.1]/', /private, loopback, link-local or reserved/],
        ['https://localhost/', /localhost/],
      ]

      it('refuses an http, metadata, IPv4-mapped loopback or localhost webhook URL on create with 400 naming rotation_webhook_url', async () => {
        const { kw, admin, request } = await start()
        const before = await stored(kw)
        for (const [url, message] of REFUSED) {
          const problem = await expectProblem(
            await request('/api-keys', {
              method: 'POST',
              key: admin.key,
              json: { name: 'hooked', rotation_interval_days: 30, rotation_webhook_url: url },
            }),
            400,
            'validation_error',
          )
          expect(problem.errors, url).toEqual([{ field: 'rotation_webhook_url', message: expect.stringMatching(message) }])
        }
        expect(await stored(kw)).toEqual(before)
      })

      it('refuses the same webhook URLs on PATCH, and leaves the key as it was', async () => {
        const { kw, admin, request } = await start()
        const target = await mint(kw, { tenantId: TENANT }, { name: 'target', rotationWebhookUrl: 'https://hooks.example.com/keyward' })
        const before = await stored(kw)
        for (const [url, message] of REFUSED) {
          const problem = await expectProblem(
            await request(`/api-keys/${target.id}`, { method: 'PATCH', key: admin.key, json: { rotation_webhook_url: url } }),
            400,
            'validation_error',
          )
          expect(problem.errors, url).toEqual([{ field: 'rotation_webhook_url', message: expect.stringMatching(message) }])
        }
        expect(await stored(kw)).toEqual(before)
      })

      it('accepts a public https webhook URL without resolving it', async () => {
        const { admin, request } = await start()
        const response = await request('/api-keys', {
          method: 'POST',
          key: admin.key,
          json: { name: 'hooked', rotation_interval_days: 30, rotation_webhook_url: 'https://hooks.example.com/keyward' },
        })
        expect(response.status).toBe(201)
        expect(await readJson(response)).toMatchObject({ rotation_webhook_url: 'https://hooks.example.com/keyward' })
      })

      it('accepts those webhook URLs when the instance allows private networks and plain http', async () => {
        const { admin, request } = await start({ webhooks: { allowPrivateNetworks: true, allowInsecureHttp: true } })
        await expectAccepted(admin, request)
      })

      it('accepts those webhook URLs when KEYWARD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS and KEYWARD_WEBHOOKS_ALLOW_INSECURE_HTTP are true', async () => {
        const { admin, request } = await start({
          env: { KEYWARD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS: 'true', KEYWARD_WEBHOOKS_ALLOW_INSECURE_HTTP: 'true' },
        })
        await expectAccepted(admin, request)
      })

      /** Every URL of REFUSED is taken on create and on PATCH. */
      async function expectAccepted(admin: Minted, request: (path: string, call?: Call) => Promise<Response>) {
        for (const [url] of REFUSED) {
          const created = await request('/api-keys', {
            method: 'POST',
            key: admin.key,
            json: { name: 'hooked', rotation_interval_days: 30, rotation_webhook_url: url },
          })
          expect(created.status, url).toBe(201)
          const { id } = await readJson(created)
          const patched = await request(`/api-keys/${id}`, { method: 'PATCH', key: admin.key, json: { rotation_webhook_url: url } })
          expect(patched.status, url).toBe(200)
          expect((await readJson(patched)).rotation_webhook_url).toBe(url)
        }
      }
    })

    describe('Cache-Control', () => {
      // Issue 12, defect 4: the secret of a new or rotated key could be kept by a cache on the way.
      it('sends Cache-Control: no-store with every management answer, success and problem alike', async () => {
        const { kw, admin, request } = await start()
        const reader = await mint(kw, { tenantId: TENANT }, { name: 'reader', scopes: ['orders:read'] })
        const created = await request('/api-keys', { method: 'POST', key: admin.key, json: { name: 'fresh' } })
        const { id } = await readJson(created.clone())
        const rotated = await request(`/api-keys/${id}/rotate`, { method: 'POST', key: admin.key, json: { grace_period_seconds: 0 } })
        const successor: Json = await readJson(rotated.clone())
        const answers: [string, number, Response][] = [
          ['create', 201, created],
          ['rotate', 201, rotated],
          ['list', 200, await request('/api-keys', { key: admin.key })],
          ['list with a trailing slash', 200, await request('/api-keys/', { key: admin.key })],
          ['get', 200, await request(`/api-keys/${successor.id}`, { key: admin.key })],
          ['patch', 200, await request(`/api-keys/${successor.id}`, { method: 'PATCH', key: admin.key, json: { name: 'renamed' } })],
          ['usage', 200, await request(`/api-keys/${successor.id}/usage`, { key: admin.key })],
          ['deliveries', 200, await request(`/api-keys/${successor.id}/webhook-deliveries`, { key: admin.key })],
          ['revoke', 200, await request(`/api-keys/${successor.id}`, { method: 'DELETE', key: admin.key })],
          ['no key', 401, await request('/api-keys')],
          ['unknown key', 401, await request('/api-keys', { key: generateKey('sk', 'live').key })],
          ['missing scope', 403, await request('/api-keys', { key: reader.key })],
          ['no such key', 404, await request('/api-keys/key_doesNotExist0000000000', { key: admin.key })],
          ['rotated-out key', 409, await request(`/api-keys/${id}`, { method: 'PATCH', key: admin.key, json: { name: 'x' } })],
          ['invalid fields', 400, await request('/api-keys', { method: 'POST', key: admin.key, json: {} })],
          [
            'malformed JSON',
            400,
            await request('/api-keys', { method: 'POST', key: admin.key, body: '{"name":', contentType: 'application/json' }),
          ],
          ['not JSON', 415, await request('/api-keys', { method: 'POST', key: admin.key, body: 'name=x', contentType: 'text/plain' })],
          [
            'too large',
            413,
            await request('/api-keys', { method: 'POST', key: admin.key, json: { name: 'x', metadata: { blob: 'x'.repeat(20_000) } } }),
          ],
          ['other method', 405, await request('/api-keys', { method: 'PUT', key: admin.key, json: {} })],
          ['unknown route', 404, await request('/api-keys/a/b/c', { key: admin.key })],
        ]
        for (const [what, status, response] of answers) {
          expect(response.status, what).toBe(status)
          expect(response.headers.get('cache-control'), what).toBe('no-store')
          await response.arrayBuffer()
        }
      })
    })

    describe('lifecycle', () => {
      // Issue 12, defect 6: revoked, expired and rotated-out keys are read-only; an empty PATCH changes nothing.
      it('answers 409 key_revoked to renaming a revoked key, and keeps its name', async () => {
        const { kw, admin, request } = await start()
        const revoked = await mint(kw, { tenantId: TENANT }, { name: 'gone' })
        await kw.revokeKey({ tenantId: TENANT }, revoked.id)
        const before = await stored(kw)
        await expectProblem(
          await request(`/api-keys/${revoked.id}`, { method: 'PATCH', key: admin.key, json: { name: 'revived' } }),
          409,
          'key_revoked',
        )
        expect(await stored(kw)).toEqual(before)
      })

      it('answers 409 key_rotated to changing a key during its grace period and after it', async () => {
        const { kw, clock, admin, request } = await start()
        const old = await mint(kw, { tenantId: TENANT }, { name: 'billing', scopes: ['orders:read'] })
        expect(
          (await request(`/api-keys/${old.id}/rotate`, { method: 'POST', key: admin.key, json: { grace_period_seconds: 60 } })).status,
        ).toBe(201)
        for (const phase of ['rotating', 'rotated']) {
          expect((await readJson(await request(`/api-keys/${old.id}`, { key: admin.key }))).status).toBe(phase)
          const before = await stored(kw)
          for (const json of [{ name: 'renamed' }, { scopes: ['orders:write'] }, { expires_at: null }]) {
            await expectProblem(await request(`/api-keys/${old.id}`, { method: 'PATCH', key: admin.key, json }), 409, 'key_rotated')
          }
          expect(await stored(kw), phase).toEqual(before)
          clock.advance(60 * SECOND)
        }
      })

      it('answers 409 key_expired to changing an expired key, even to clear its expiry, and it stays rejected', async () => {
        const { kw, clock, admin, request } = await start()
        const expiring = await mint(kw, { tenantId: TENANT }, { name: 'short-lived', expiresInSeconds: 60 })
        clock.advance(60 * SECOND)
        const before = await stored(kw)
        for (const json of [{ expires_at: null }, { expires_at: new Date(clock.ms + 3600 * SECOND).toISOString() }, { name: 'renamed' }]) {
          await expectProblem(await request(`/api-keys/${expiring.id}`, { method: 'PATCH', key: admin.key, json }), 409, 'key_expired')
        }
        expect(await stored(kw)).toEqual(before)
        await expectProblem(await request('/v1/me', { key: expiring.key }), 401, 'api_key_expired')
      })

      it('writes nothing for an empty PATCH: updated_at stays, and no change reaches the change log', async () => {
        const { kw, clock, request } = await start()
        const target = await mint(kw, { tenantId: TENANT }, { name: 'steady' })
        const store = await kw.ready()
        const changesBefore = await store.latestChangeSeq()
        const created: Json = await readJson(await request(`/api-keys/${target.id}`, { key: target.key }))
        clock.advance(60 * SECOND)
        const response = await request(`/api-keys/${target.id}`, { method: 'PATCH', key: target.key, json: {} })
        expect(response.status).toBe(200)
        const body: Json = await readJson(response)
        expect(body.updated_at).toBe(created.updated_at)
        expect(body).toEqual({ ...created, last_used_at: body.last_used_at })
        expect(await store.latestChangeSeq()).toBe(changesBefore)
        expect((await readJson(await request(`/api-keys/${target.id}`, { key: target.key }))).updated_at).toBe(created.updated_at)
      })
    })

    describe('routing under the mount point', () => {
      // Issue 12, defect 7: Hono answered these with 404 text/plain, Express with problem+json.
      it('answers an unknown path with 404 route_not_found in problem+json', async () => {
        const { admin, request } = await start()
        for (const path of ['/api-keys/a/b/c', `/api-keys/${admin.id}/nothing`, `/api-keys/${admin.id}/rotate/again`]) {
          await expectProblem(await request(path, { key: admin.key }), 404, 'route_not_found')
        }
      })

      it('answers a method a known path does not take with 405 method_not_allowed and Allow', async () => {
        const { kw, admin, request } = await start()
        const before = await stored(kw)
        const cases: [string, string, string[]][] = [
          ['PUT', '/api-keys', ['GET', 'POST']],
          ['DELETE', '/api-keys', ['GET', 'POST']],
          ['POST', `/api-keys/${admin.id}`, ['DELETE', 'GET', 'PATCH']],
          ['PUT', `/api-keys/${admin.id}`, ['DELETE', 'GET', 'PATCH']],
          ['GET', `/api-keys/${admin.id}/rotate`, ['POST']],
          ['DELETE', `/api-keys/${admin.id}/usage`, ['GET']],
          ['POST', `/api-keys/${admin.id}/webhook-deliveries`, ['GET']],
        ]
        for (const [method, path, allowed] of cases) {
          const response = await request(path, { method, key: admin.key, json: method === 'GET' || method === 'DELETE' ? undefined : {} })
          const allow = response.headers.get('allow')
          await expectProblem(response, 405, 'method_not_allowed')
          expect(allow?.split(/,\s*/).sort(), `${method} ${path}`).toEqual(allowed)
        }
        expect(await stored(kw)).toEqual(before)
      })

      it('serves a path with a trailing slash as the path without it', async () => {
        const { kw, admin, request } = await start()
        const listed: Json[] = await readJson(await request('/api-keys/', { key: admin.key }))
        expect(listed.map((key) => key.id)).toEqual([admin.id])
        const one = await request(`/api-keys/${admin.id}/`, { key: admin.key })
        expect(one.status).toBe(200)
        expect((await readJson(one)).id).toBe(admin.id)
        const created = await request('/api-keys/', { method: 'POST', key: admin.key, json: { name: 'slashed' } })
        expect(created.status).toBe(201)
        const body: Json = await readJson(created)
        expect(body).toMatchObject({ name: 'slashed', key: expect.stringMatching(/^sk_live_/) })
        const patched = await request(`/api-keys/${body.id}/`, { method: 'PATCH', key: admin.key, json: { name: 'renamed' } })
        expect(patched.status).toBe(200)
        expect((await readJson(patched)).name).toBe('renamed')
        expect((await stored(kw)).find((key) => key.id === body.id)?.name).toBe('renamed')
        // The trailing slash passes through the same authentication.
        await expectProblem(await request('/api-keys/'), 401, 'missing_api_key')
        await expectProblem(await request(`/api-keys/${admin.id}/`, { method: 'PATCH', json: { name: 'x' } }), 401, 'missing_api_key')
      })
    })

    describe('answers sent before the body is read', () => {
      // Issue 12, defect 5. A keep-alive client sends its next request on the same connection; an
      // answer given before the body was read must leave that connection usable: keyward reads and
      // drops up to 64 KiB of such a body, and announces `Connection: close` for anything larger.
      const LARGE = 2 * 1024 * 1024
      const OVER_THE_DRAIN_BOUND = 90 * 1024
      const SMALL = 10 * 1024

      /** Sends `first` and then `GET /api-keys` over one keep-alive connection; returns both answers. */
      async function twoOnOneConnection(url: string, key: string, path: string, first: KeepAliveCall) {
        const client = keepAliveClient(url)
        cleanups.push(async () => client.close())
        const early = await client.send(path, first)
        const next = await client.send('/api-keys', { headers: { 'x-api-key': key } })
        expect(next.status, next.text).toBe(200)
        // Kept connections are reused; closed ones announced it, so the client opened a new one.
        if (early.headers.connection === 'close') expect(next.socket).not.toBe(early.socket)
        else expect(next.socket).toBe(early.socket)
        return early
      }

      it('answers 413 to a 2 MB body on POST /api-keys, closing the connection, and the next request works', async () => {
        const { admin, url } = await start()
        for (const chunked of [false, true]) {
          const early = await twoOnOneConnection(url, admin.key, '/api-keys', {
            method: 'POST',
            headers: { 'x-api-key': admin.key, 'content-type': 'application/json' },
            body: jsonOfSize(LARGE),
            chunked,
          })
          expectEarlyProblem(early, 413, 'payload_too_large')
          // express.json() has already read (and dropped) the whole body; keyward itself reads at most 64 KiB.
          expect(early.headers.connection, `chunked: ${chunked}`).toBe(options.hostParsesJson ? 'keep-alive' : 'close')
        }
      })

      it('answers 413 to a body a little over the limit and keeps the connection', async () => {
        const { admin, url } = await start()
        const early = await twoOnOneConnection(url, admin.key, '/api-keys', {
          method: 'POST',
          headers: { 'x-api-key': admin.key, 'content-type': 'application/json' },
          body: jsonOfSize(20 * 1024),
        })
        expectEarlyProblem(early, 413, 'payload_too_large')
        expect(early.headers.connection).toBe('keep-alive')
      })

      it('answers 415 to a body that is not JSON and keeps the connection', async () => {
        const { admin, url } = await start()
        const early = await twoOnOneConnection(url, admin.key, '/api-keys', {
          method: 'POST',
          headers: { 'x-api-key': admin.key, 'content-type': 'text/plain' },
          body: Buffer.alloc(SMALL, 'x'),
        })
        expectEarlyProblem(early, 415, 'unsupported_media_type')
        expect(early.headers.connection).toBe('keep-alive')
      })

      it('answers 401 to a POST /api-keys with a body and no key and keeps the connection', async () => {
        const { admin, url } = await start()
        const early = await twoOnOneConnection(url, admin.key, '/api-keys', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: jsonOfSize(SMALL),
        })
        expectEarlyProblem(early, 401, 'missing_api_key')
        expect(early.headers.connection).toBe('keep-alive')
      })

      it('answers 401 (not 413) to a POST /api-keys with a body over 64 KiB and no key, closing the connection', async () => {
        const { admin, url } = await start()
        for (const chunked of [false, true]) {
          const early = await twoOnOneConnection(url, admin.key, '/api-keys', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: jsonOfSize(OVER_THE_DRAIN_BOUND),
            chunked,
          })
          expectEarlyProblem(early, 401, 'missing_api_key')
          expect(early.headers.connection, `chunked: ${chunked}`).toBe(options.hostParsesJson ? 'keep-alive' : 'close')
        }
      })

      it('answers 401 from apiKeyAuth to a POST with a body and keeps the connection, without running the handler', async () => {
        const { admin, url, handled } = await start()
        const early = await twoOnOneConnection(url, admin.key, '/v1/orders', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: jsonOfSize(SMALL),
        })
        expectEarlyProblem(early, 401, 'missing_api_key')
        expect(early.headers.connection).toBe('keep-alive')
        expect(handled).toEqual([])
      })

      it('answers 401 from apiKeyAuth to a POST with a body over 64 KiB, closing the connection, and the next request works', async () => {
        const { admin, url, handled } = await start()
        for (const chunked of [false, true]) {
          const early = await twoOnOneConnection(url, admin.key, '/v1/orders', {
            method: 'POST',
            headers: { 'x-api-key': 'sk_live_nope', 'content-type': 'application/json' },
            body: jsonOfSize(OVER_THE_DRAIN_BOUND),
            chunked,
          })
          expectEarlyProblem(early, 401, 'invalid_api_key')
          expect(early.headers.connection, `chunked: ${chunked}`).toBe(options.hostParsesJson ? 'keep-alive' : 'close')
        }
        expect(handled).toEqual([])
      })

      it('answers 403 from requireScopes to a POST with a body and keeps the connection', async () => {
        const { kw, admin, url, handled } = await start()
        const reader = await mint(kw, { tenantId: TENANT }, { name: 'reader', scopes: ['orders:read'] })
        const early = await twoOnOneConnection(url, admin.key, '/v1/orders', {
          method: 'POST',
          headers: { 'x-api-key': reader.key, 'content-type': 'application/json' },
          body: jsonOfSize(SMALL),
        })
        expectEarlyProblem(early, 403, 'insufficient_scope')
        expect(early.headers.connection).toBe('keep-alive')
        expect(handled).toEqual([])
      })
    })

    describe('rotation', () => {
      it('rotates a key: 201 with the new key, its secret, and the old key with its grace_expires_at; the new key works', async () => {
        const { kw, clock, admin, request } = await start()
        const old = await mint(kw, { tenantId: TENANT }, { name: 'billing', scopes: ['orders:read'], metadata: { team: 'b' } })
        const response = await request(`/api-keys/${old.id}/rotate`, {
          method: 'POST',
          key: admin.key,
          json: { grace_period_seconds: 600 },
        })
        expect(response.status).toBe(201)
        const rotated: Json = await readJson(response)
        expect(rotated).toMatchObject({
          old_key_id: old.id,
          new_key_id: rotated.id,
          name: 'billing',
          scopes: ['orders:read'],
          metadata: { team: 'b' },
          rotated_from_key_id: old.id,
          status: 'active',
          grace_expires_at: null,
          old_key: { id: old.id, status: 'rotating', grace_expires_at: new Date(clock.ms + 600 * SECOND).toISOString() },
        })
        expect(rotated.new_key_id).not.toBe(old.id)
        expect(rotated.key).toMatch(/^sk_live_/)
        expect(rotated.key_prefix).toBe(rotated.key.slice(0, 12))
        const me: Json = await readJson(await request('/v1/me', { key: rotated.key }))
        expect(me.id).toBe(rotated.new_key_id)
        const oldObject: Json = await readJson(await request(`/api-keys/${old.id}`, { key: admin.key }))
        expect(oldObject).toMatchObject({ status: 'rotating', replaced_by_key_id: rotated.new_key_id })
      })

      it('keeps the old key working during the grace period and rejects it with 401 after', async () => {
        const { kw, clock, admin, request } = await start()
        const old = await mint(kw, { tenantId: TENANT }, { name: 'billing' })
        expect(
          (await request(`/api-keys/${old.id}/rotate`, { method: 'POST', key: admin.key, json: { grace_period_seconds: 600 } })).status,
        ).toBe(201)
        clock.advance(599 * SECOND)
        expect((await request('/v1/me', { key: old.key })).status).toBe(200)
        clock.advance(1 * SECOND)
        const response = await request('/v1/me', { key: old.key })
        await expectProblem(response, 401, 'api_key_rotated')
        expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"')
      })

      it('cuts the old key off at once with grace_period_seconds 0', async () => {
        const { kw, admin, request } = await start()
        const old = await mint(kw, { tenantId: TENANT }, { name: 'leaked' })
        expect((await request('/v1/me', { key: old.key })).status).toBe(200)
        const rotated: Json = await readJson(
          await request(`/api-keys/${old.id}/rotate`, { method: 'POST', key: admin.key, json: { grace_period_seconds: 0 } }),
        )
        await expectProblem(await request('/v1/me', { key: old.key }), 401, 'api_key_rotated')
        expect((await request('/v1/me', { key: rotated.key })).status).toBe(200)
      })

      it('uses the default grace period of one hour when the body is empty', async () => {
        const { kw, clock, admin, request } = await start()
        const old = await mint(kw, { tenantId: TENANT }, { name: 'billing' })
        const response = await request(`/api-keys/${old.id}/rotate`, { method: 'POST', key: admin.key })
        expect(response.status).toBe(201)
        expect((await readJson(response)).old_key.grace_expires_at).toBe(new Date(clock.ms + 3600 * SECOND).toISOString())
      })

      it('rejects a grace period over 30 days, negative or fractional with 400', async () => {
        const { kw, admin, request } = await start()
        const old = await mint(kw, { tenantId: TENANT }, { name: 'billing' })
        const before = await stored(kw)
        for (const grace of [MAX_GRACE_SECONDS + 1, -1, 1.5, '60']) {
          const response = await request(`/api-keys/${old.id}/rotate`, {
            method: 'POST',
            key: admin.key,
            json: { grace_period_seconds: grace },
          })
          const problem = await expectProblem(response, 400, 'validation_error')
          expect(fieldsOf(problem), String(grace)).toContain('grace_period_seconds')
        }
        expect(await stored(kw)).toEqual(before)
        expect(
          (
            await request(`/api-keys/${old.id}/rotate`, {
              method: 'POST',
              key: admin.key,
              json: { grace_period_seconds: MAX_GRACE_SECONDS },
            })
          ).status,
        ).toBe(201)
      })

      it('answers 409 already_rotated to rotating the same key twice', async () => {
        const { kw, admin, request } = await start()
        const old = await mint(kw, { tenantId: TENANT }, { name: 'billing' })
        expect((await request(`/api-keys/${old.id}/rotate`, { method: 'POST', key: admin.key, json: {} })).status).toBe(201)
        const before = await stored(kw)
        await expectProblem(
          await request(`/api-keys/${old.id}/rotate`, { method: 'POST', key: admin.key, json: {} }),
          409,
          'already_rotated',
        )
        expect(await stored(kw)).toEqual(before)
      })

      it('answers 409 key_revoked to rotating a revoked key', async () => {
        const { kw, admin, request } = await start()
        const old = await mint(kw, { tenantId: TENANT }, { name: 'billing' })
        await kw.revokeKey({ tenantId: TENANT }, old.id)
        const before = await stored(kw)
        await expectProblem(await request(`/api-keys/${old.id}/rotate`, { method: 'POST', key: admin.key, json: {} }), 409, 'key_revoked')
        expect(await stored(kw)).toEqual(before)
      })
    })
  })
}

/** Every management route that names a key, plus the collection. */
function routesOf(id: string): [string, string][] {
  return [
    ['GET', '/api-keys'],
    ['POST', '/api-keys'],
    ['GET', `/api-keys/${id}`],
    ['PATCH', `/api-keys/${id}`],
    ['DELETE', `/api-keys/${id}`],
    ['POST', `/api-keys/${id}/rotate`],
    ['GET', `/api-keys/${id}/usage`],
    ['GET', `/api-keys/${id}/webhook-deliveries`],
  ]
}

async function mint(kw: Keyward, actor: Actor, input: CreateKeyInput): Promise<Minted> {
  const created = await kw.createKey(actor, input)
  if (!created.ok) throw new Error(`bootstrap failed: ${JSON.stringify(created.error)}`)
  return { key: created.value.key, id: created.value.apiKey.id }
}

/**
 * What the tenant's keys look like in the store, for "nothing changed" checks. `last_used_at` is
 * left out: usage is flushed in the background and is not what these checks are about.
 */
async function stored(kw: Keyward, tenantId = TENANT) {
  const listed = await kw.listKeys({ tenantId }, { limit: 100 })
  if (!listed.ok) throw new Error(listed.error.detail)
  return listed.value.items.map(({ lastUsedAt: _ignored, ...rest }) => rest)
}

/** Asserts an RFC 9457 problem with keyward's code, and no stack trace; returns the body. */
async function expectProblem(response: Response, status: number, code: string): Promise<Json> {
  const text = await response.text()
  expect(response.status, text).toBe(status)
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/)
  expect(text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/)
  const body = JSON.parse(text)
  expect(body).toMatchObject({ type: expect.any(String), title: expect.any(String), status, code, detail: expect.any(String) })
  expect(body.detail.length).toBeGreaterThan(0)
  expectHouseWording(body)
  return body
}

/** A JSON object of exactly `bytes` bytes: a name and padding. */
function jsonOfSize(bytes: number): Buffer {
  const shell = JSON.stringify({ name: 'big', metadata: { padding: '' } })
  return Buffer.from(JSON.stringify({ name: 'big', metadata: { padding: 'x'.repeat(bytes - shell.length) } }))
}

/** `expectProblem` for an answer read by the keep-alive client. */
function expectEarlyProblem(answer: KeepAliveAnswer, status: number, code: string): void {
  expect(answer.status, answer.text).toBe(status)
  expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/)
  expect(JSON.parse(answer.text)).toMatchObject({ status, code })
}

function fieldsOf(problem: Json): string[] {
  expect(Array.isArray(problem.errors), JSON.stringify(problem)).toBe(true)
  for (const error of problem.errors) expect(error).toEqual({ field: expect.any(String), message: expect.any(String) })
  return problem.errors.map((error: { field: string }) => error.field)
}

/**
 * keyward's field errors read as predicates of the field ("is required", "must be a string"), never
 * as the validator's own sentences ("Invalid input: expected string, received undefined").
 */
function expectHouseWording(problem: Json): void {
  for (const error of problem.errors ?? []) {
    expect(error.message, JSON.stringify(error)).toMatch(/^(?:is|must|cannot|has) /)
    expect(error.message).not.toMatch(/^Invalid input/i)
  }
}

/** The target of `Link: <...>; rel="next"`, or null on the last page. */
function nextLink(response: Response): string | null {
  const link = response.headers.get('link')
  if (link === null) return null
  const match = /<([^>]+)>;\s*rel="next"/.exec(link)
  expect(match, link).not.toBeNull()
  return (match as RegExpExecArray)[1] as string
}
