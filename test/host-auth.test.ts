import { Hono } from 'hono'
import { jwt, sign } from 'hono/jwt'
import { describe, expect, it } from 'vitest'
import { Keyward } from '../src/core/keyward.js'
import { createKeysRouter } from '../src/hono/index.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'
import { readJson } from './helpers/http.js'
import { tempSqlitePath } from './helpers/sqlite.js'

const SECRET = 'host-app-jwt-secret'

/** A host app whose own auth is a JWT naming the tenant (seeds 001 and 003), not an API key. */
function hostApp(kw: Keyward, apiKeys: boolean) {
  const app = new Hono()
  app.use('/api-keys/*', async (c, next) => {
    // API-key callers skip the JWT check; the keys router authenticates them itself.
    if (apiKeys && c.req.header('x-api-key')) return next()
    return jwt({ secret: SECRET, alg: 'HS256' })(c, next)
  })
  app.route(
    '/api-keys',
    createKeysRouter({
      keyward: kw,
      apiKeys,
      authenticate: (c) => {
        const payload = c.get('jwtPayload') as { tenant_id?: string; project_id?: string } | undefined
        return payload?.tenant_id ? { tenantId: payload.tenant_id, projectId: payload.project_id ?? null } : null
      },
    }),
  )
  return app
}

const bearer = async (claims: Record<string, unknown>) => ({
  authorization: `Bearer ${await sign(claims, SECRET, 'HS256')}`,
  'content-type': 'application/json',
})

describe('management through the host app’s own auth (hono/jwt)', () => {
  it('creates and lists keys for the tenant the JWT names', async () => {
    const kw = new Keyward({ store: createSqliteStore({ url: tempSqlitePath() }) })
    const app = hostApp(kw, false)
    const headers = await bearer({ sub: 'user_1', tenant_id: 'acme' })
    const created = await app.request('/api-keys', { method: 'POST', headers, body: JSON.stringify({ name: 'From the dashboard' }) })
    expect(created.status).toBe(201)
    const body = await readJson(created)
    expect(body).toMatchObject({ tenant_id: 'acme', name: 'From the dashboard', status: 'active' })
    expect(body.key).toMatch(/^sk_live_/)
    const listed = await app.request('/api-keys', { headers })
    expect((await readJson(listed)).map((k: { id: string }) => k.id)).toEqual([body.id])
    await kw.close()
  })

  it('keeps tenants apart: another tenant’s JWT sees an empty list and gets 404 for the key', async () => {
    const kw = new Keyward({ store: createSqliteStore({ url: tempSqlitePath() }) })
    const app = hostApp(kw, false)
    const acme = await bearer({ tenant_id: 'acme' })
    const globex = await bearer({ tenant_id: 'globex' })
    const created = await readJson(
      await app.request('/api-keys', { method: 'POST', headers: acme, body: JSON.stringify({ name: 'acme key' }) }),
    )
    expect(await readJson(await app.request('/api-keys', { headers: globex }))).toEqual([])
    for (const [method, path] of [
      ['GET', ''],
      ['PATCH', ''],
      ['DELETE', ''],
      ['POST', '/rotate'],
      ['GET', '/usage'],
    ] as const) {
      const res = await app.request(`/api-keys/${created.id}${path}`, {
        method,
        headers: globex,
        body: method === 'PATCH' ? '{"name":"x"}' : undefined,
      })
      expect(res.status, `${method} ${path}`).toBe(404)
      expect((await readJson(res)).code).toBe('not_found')
    }
    const untouched = await kw.getKey({ tenantId: 'acme' }, created.id)
    expect(untouched.ok && untouched.value).toMatchObject({ name: 'acme key', status: 'active' })
    await kw.close()
  })

  it('rejects a request without a JWT before keyward runs, and API keys when they are turned off', async () => {
    const kw = new Keyward({ store: createSqliteStore({ url: tempSqlitePath() }) })
    const created = await kw.createKey({ tenantId: 'acme' }, { name: 'admin' })
    if (!created.ok) throw new Error('create failed')
    const app = hostApp(kw, false)
    expect((await app.request('/api-keys')).status).toBe(401)
    expect((await app.request('/api-keys', { headers: { 'x-api-key': created.value.key } })).status).toBe(401)
    await kw.close()
  })

  it('accepts either credential when both are enabled', async () => {
    const kw = new Keyward({ store: createSqliteStore({ url: tempSqlitePath() }) })
    const created = await kw.createKey({ tenantId: 'acme' }, { name: 'admin' })
    if (!created.ok) throw new Error('create failed')
    const app = hostApp(kw, true)
    const viaKey = await app.request('/api-keys', { headers: { 'x-api-key': created.value.key } })
    const viaJwt = await app.request('/api-keys', { headers: await bearer({ tenant_id: 'acme' }) })
    expect(viaKey.status).toBe(200)
    expect(viaJwt.status).toBe(200)
    expect(await readJson(viaKey)).toEqual(await readJson(viaJwt))
    await kw.close()
  })

  it('answers 401 unauthenticated when the host resolver finds no tenant and API keys are off', async () => {
    const kw = new Keyward({ store: createSqliteStore({ url: tempSqlitePath() }) })
    const app = new Hono()
    app.route('/api-keys', createKeysRouter({ keyward: kw, apiKeys: false, authenticate: () => null }))
    const res = await app.request('/api-keys')
    expect(res.status).toBe(401)
    expect(res.headers.get('content-type')).toBe('application/problem+json')
    expect((await readJson(res)).code).toBe('unauthenticated')
    await kw.close()
  })
})
