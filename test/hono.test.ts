import { Hono } from 'hono'
import { hc } from 'hono/client'
import { HTTPException } from 'hono/http-exception'
import type { JSONParsed } from 'hono/utils/types'
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest'
import type { KeyStatus, VerifiedKey } from '../src/core/types.js'
import { type ApiKeyVariables, apiKeyAuth, createKeysRouter, requireScopes } from '../src/hono/index.js'
import type { CreatedKeyObject, KeyObject } from '../src/http/serialize.js'
import { type Keyward, keyward } from '../src/index.js'
import { readJson } from './helpers/http.js'
import { listen } from './helpers/listen.js'
import { tempSqlitePath } from './helpers/sqlite.js'

/**
 * What only the Hono adapter has to get right (issue 13): the router's type is a typed client,
 * rejections reach a host's `app.onError` as `HTTPException`, and `c.var.apiKey` is typed only
 * where `apiKeyAuth()` guards. The shared suite (`http.hono.test.ts`) covers the HTTP contract.
 */

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function freshKeyward(): Promise<{ kw: Keyward; adminKey: string; readerKey: string }> {
  const kw = keyward({ database: tempSqlitePath(), env: {} })
  cleanups.push(() => kw.close())
  const admin = await kw.createKey({ tenantId: 'acme' }, { name: 'admin' })
  const reader = await kw.createKey({ tenantId: 'acme' }, { name: 'reader', scopes: ['orders:read'] })
  if (!admin.ok || !reader.ok) throw new Error('bootstrap failed')
  return { kw, adminKey: admin.value.key, readerKey: reader.value.key }
}

async function serve(app: { fetch: (request: Request) => Response | Promise<Response> }): Promise<string> {
  const server = await listen(app)
  cleanups.push(() => server.close())
  return server.url
}

describe('the typed client', () => {
  it('types create, list and get from the router and calls a real server with hc()', async () => {
    const { kw, adminKey } = await freshKeyward()
    const router = createKeysRouter({ keyward: kw })
    const url = await serve(new Hono().route('/api-keys', router))
    const client = hc<typeof router>(`${url}/api-keys`, { headers: { 'x-api-key': adminKey } })

    const created = await client.index.$post({ json: { name: 'typed client', scopes: ['orders:read'] } })
    expect(created.status).toBe(201)
    if (created.status !== 201) throw new Error(await created.text())
    const createdBody = await created.json()
    // What the client reads is the wire object's type after a JSON round trip (hono's JSONParsed).
    expectTypeOf(createdBody).toEqualTypeOf<JSONParsed<CreatedKeyObject>>()
    expectTypeOf(createdBody.key).toEqualTypeOf<string>()
    expect(createdBody).toMatchObject({ name: 'typed client', scopes: ['orders:read'], key: expect.stringMatching(/^sk_live_/) })

    const listed = await client.index.$get({ query: { limit: '10' } })
    if (listed.status !== 200) throw new Error(await listed.text())
    const listBody = await listed.json()
    expectTypeOf(listBody).toEqualTypeOf<JSONParsed<KeyObject>[]>()
    expect(listBody.map((key) => key.name).sort()).toEqual(['admin', 'reader', 'typed client'])

    const one = await client[':id'].$get({ param: { id: createdBody.id } })
    if (one.status !== 200) throw new Error(await one.text())
    const oneBody = await one.json()
    expectTypeOf(oneBody).toEqualTypeOf<JSONParsed<KeyObject>>()
    expectTypeOf(oneBody.status).toEqualTypeOf<KeyStatus>()
    expect(oneBody).toMatchObject({ id: createdBody.id, status: 'active' })
    // @ts-expect-error the secret is in the create answer only
    expect(oneBody.key).toBeUndefined()

    const missing = await client[':id'].$get({ param: { id: 'key_doesNotExist0000000000' } })
    expect(missing.status).toBe(404)
    if (missing.status !== 404) throw new Error('expected 404')
    expect(await missing.json()).toMatchObject({ code: 'not_found' })
  })
})

describe('rejections and the host’s onError', () => {
  /** What a host's onError was handed: the error, and a copy of the answer it carried (if any). */
  interface Seen {
    error: unknown
    carried: Response | undefined
  }

  /** An app whose /v1 routes are guarded, with or without an onError that records what it sees. */
  function guardedApp(kw: Keyward, seen?: Seen[]) {
    const app = new Hono().use('/v1/*', apiKeyAuth({ keyward: kw }))
    app.get('/v1/me', (c) => c.json({ id: c.var.apiKey.id }))
    app.post('/v1/orders', requireScopes('orders:write'), (c) => c.json({ tenant: c.var.apiKey.tenantId }, 201))
    if (seen !== undefined) {
      app.onError((error, c) => {
        if (!(error instanceof HTTPException)) {
          seen.push({ error, carried: undefined })
          return c.text('host error', 500)
        }
        const response = error.getResponse()
        seen.push({ error, carried: response.clone() })
        return response
      })
    }
    return app
  }

  it('hands apiKeyAuth’s and requireScopes’ rejections to app.onError as HTTPException carrying the problem answer', async () => {
    const { kw, readerKey } = await freshKeyward()
    const seen: Seen[] = []
    const url = await serve(guardedApp(kw, seen))
    const missing = await fetch(`${url}/v1/me`)
    const insufficient = await fetch(`${url}/v1/orders`, { method: 'POST', headers: { 'x-api-key': readerKey } })
    expect(seen.map(({ error }) => error instanceof HTTPException && error.status)).toEqual([401, 403])
    // An Error like any other for a host that logs it: a message, and a stack without frames.
    const [rejection] = seen.map(({ error }) => error as Error)
    expect(rejection).toBeInstanceOf(Error)
    expect(rejection?.message).toMatch(/API key/i)
    expect(rejection?.stack).toBe(`HTTPException: ${rejection?.message}`)
    // getResponse() is the answer itself: the host can return it, log it, or wrap it.
    const [first, second] = seen.map(({ carried }) => carried) as [Response, Response]
    expect(first.status).toBe(401)
    expect(first.headers.get('content-type')).toMatch(/^application\/problem\+json/)
    expect(first.headers.get('www-authenticate')).toBe('Bearer realm="keyward"')
    expect(await readJson(first)).toMatchObject({ status: 401, code: 'missing_api_key' })
    expect(second.status).toBe(403)
    expect(await readJson(second)).toMatchObject({ status: 403, code: 'insufficient_scope' })
    // The client got exactly that answer, since this onError returns it.
    expect(missing.status).toBe(401)
    expect(await readJson(missing)).toMatchObject({ status: 401, code: 'missing_api_key' })
    expect(insufficient.status).toBe(403)
    expect(insufficient.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/)
  })

  it('answers the same problem without an onError as with one that returns getResponse()', async () => {
    const { kw, readerKey } = await freshKeyward()
    const withHandler = await serve(guardedApp(kw, []))
    const without = await serve(guardedApp(kw))
    const calls: [string, RequestInit][] = [
      ['/v1/me', {}],
      ['/v1/me', { headers: { 'x-api-key': 'sk_live_nope' } }],
      ['/v1/orders', { method: 'POST', headers: { 'x-api-key': readerKey } }],
    ]
    for (const [path, init] of calls) {
      const [a, b] = [await fetch(`${withHandler}${path}`, init), await fetch(`${without}${path}`, init)]
      const answer = async (response: Response) => ({
        status: response.status,
        type: response.headers.get('content-type'),
        challenge: response.headers.get('www-authenticate'),
        body: await response.text(),
      })
      const plain = await answer(b)
      expect(plain.type, path).toMatch(/^application\/problem\+json/)
      expect(await answer(a), path).toEqual(plain)
    }
  })

  it('rejects with a rejected promise, never a synchronous throw, also as the only handler of a path', async () => {
    const { kw, readerKey } = await freshKeyward()
    const outcomes: string[] = []
    const app = new Hono<{ Variables: ApiKeyVariables }>()
    const guard = apiKeyAuth({ keyward: kw })
    // A host middleware that calls keyward's itself: a synchronous throw would land in its catch.
    app.use('/wrapped/*', (c, next) => {
      let returned: Promise<Response | undefined | void>
      try {
        returned = guard(c, next)
      } catch {
        outcomes.push('threw')
        return Promise.resolve(c.text('threw', 500))
      }
      return returned.then(
        () => {
          outcomes.push('resolved')
        },
        (error) => {
          outcomes.push(error instanceof HTTPException ? `rejected ${error.status}` : 'rejected other')
          throw error
        },
      )
    })
    app.get('/wrapped/me', (c) => c.text('ok'))
    app.get('/wrapped/scoped', requireScopes('orders:write'), (c) => c.text('ok'))
    // No route under /only: keyward is the one handler Hono matches, which it calls outside compose.
    app.use('/only/*', apiKeyAuth({ keyward: kw }))
    const url = await serve(app)
    expect((await fetch(`${url}/wrapped/me`, { headers: { 'x-api-key': 'sk_live_nope' } })).status).toBe(401)
    expect((await fetch(`${url}/wrapped/me`, { headers: { 'x-api-key': readerKey } })).status).toBe(200)
    expect((await fetch(`${url}/wrapped/scoped`, { headers: { 'x-api-key': readerKey } })).status).toBe(403)
    expect(outcomes).toEqual(['rejected 401', 'resolved', 'resolved'])
    const only = await fetch(`${url}/only/anything`)
    expect(only.status).toBe(401)
    expect(await readJson(only)).toMatchObject({ code: 'missing_api_key' })
  })
})

describe('typing of c.var.apiKey', () => {
  it('is a compile error on a route apiKeyAuth() does not guard, and typed without casts where it does', async () => {
    const { kw, adminKey } = await freshKeyward()
    const app = new Hono()
    // An unguarded route: reading the key does not compile (it would be a 500 at run time).
    // @ts-expect-error apiKey is not set on routes apiKeyAuth() does not guard
    app.get('/public', (c) => c.text(c.var.apiKey.tenantId))
    // Chained: every route after .use(apiKeyAuth()) reads it typed.
    const v1 = new Hono().use(apiKeyAuth({ keyward: kw })).get('/chained', (c) => {
      expectTypeOf(c.var.apiKey).toEqualTypeOf<VerifiedKey>()
      return c.json({ via: 'chained', tenant: c.var.apiKey.tenantId })
    })
    app.route('/v1', v1)
    // Per route, as the route's own middleware.
    app.get('/per-route', apiKeyAuth({ keyward: kw }), (c) => {
      expectTypeOf(c.var.apiKey).toEqualTypeOf<VerifiedKey>()
      return c.json({ via: 'per route', tenant: c.var.apiKey.tenantId })
    })
    // After requireScopes(), behind a path-wide apiKeyAuth().
    app.use('/scoped/*', apiKeyAuth({ keyward: kw }))
    app.get('/scoped/orders', requireScopes('orders:read'), (c) => {
      expectTypeOf(c.var.apiKey).toEqualTypeOf<VerifiedKey>()
      return c.json({ via: 'requireScopes', tenant: c.var.apiKey.tenantId })
    })
    const url = await serve(app)
    for (const [path, via] of [
      ['/v1/chained', 'chained'],
      ['/per-route', 'per route'],
      ['/scoped/orders', 'requireScopes'],
    ]) {
      const response = await fetch(`${url}${path}`, { headers: { 'x-api-key': adminKey } })
      expect(response.status, path).toBe(200)
      expect(await readJson(response)).toEqual({ via, tenant: 'acme' })
      expect((await fetch(`${url}${path}`)).status, path).toBe(401)
    }
  })
})

/** A key of tenant acme with one limit, `burst`: `limit` requests per 10 s. */
async function limitedKey(kw: Keyward, limit: number) {
  const created = await kw.createKey({ tenantId: 'acme' }, { name: 'limited', rateLimits: [{ name: 'burst', limit, windowMs: 10_000 }] })
  if (!created.ok) throw new Error('create failed')
  return created
}

describe('rate-limit headers', () => {
  it('puts RateLimit-Policy and RateLimit on a 2xx both on @hono/node-server (Node response) and elsewhere (c.header)', async () => {
    const { kw } = await freshKeyward()
    const limited = await limitedKey(kw, 5)
    const app = new Hono().use(apiKeyAuth({ keyward: kw })).get('/ping', (c) => c.text('ok'))
    const headers = { 'x-api-key': limited.value.key }
    // In process (app.request: no Node response to write to): through c.header().
    const inProcess = await app.request('/ping', { headers })
    expect(inProcess.status).toBe(200)
    expect(inProcess.headers.get('ratelimit-policy')).toBe('"burst";q=5;w=10')
    expect(inProcess.headers.get('ratelimit')).toMatch(/^"burst";r=4;t=1[01]$/)
    // Over real HTTP: straight onto Node's response, merged with the handler's own headers.
    const url = await serve(app)
    const served = await fetch(`${url}/ping`, { headers })
    expect(served.status).toBe(200)
    expect(await served.text()).toBe('ok')
    expect(served.headers.get('content-type')).toMatch(/^text\/plain/)
    expect(served.headers.get('ratelimit-policy')).toBe('"burst";q=5;w=10')
    expect(served.headers.get('ratelimit')).toMatch(/^"burst";r=3;t=1[01]$/)
  })

  it('hands them to Node with the handler’s headers: never changing those, a handler’s own RateLimit wins, a wrapped writeHead still runs', async () => {
    const { kw } = await freshKeyward()
    const limited = await limitedKey(kw, 50)
    // One headers object shared by every response of a route (keyward must copy, not add to it).
    const shared = { 'content-type': 'text/plain', 'x-shared': 'yes' }
    const wrapped: number[] = []
    const app = new Hono<{ Bindings: { outgoing: { writeHead: (...args: unknown[]) => unknown } } }>()
      .use(async (c, next) => {
        // Another library wrapping writeHead on the response (as on-headers does), before keyward.
        const { outgoing } = c.env
        const original = outgoing.writeHead
        outgoing.writeHead = function (this: unknown, ...args: unknown[]) {
          wrapped.push(args[0] as number)
          return original.apply(this, args)
        }
        await next()
      })
      .use(apiKeyAuth({ keyward: kw }))
      .get('/shared', () => new Response('shared', { headers: shared }))
      .get('/own', (c) => c.text('own', 200, { RateLimit: '"mine";r=1' }))
      .get('/empty', (c) => c.body(null, 204))
      .get('/stream', () => new Response(new Blob(['streamed']).stream()))
    const url = await serve(app)
    const headers = { 'x-api-key': limited.value.key }
    for (let round = 0; round < 2; round++) {
      const answer = await fetch(`${url}/shared`, { headers })
      expect(await answer.text()).toBe('shared')
      expect(answer.headers.get('x-shared')).toBe('yes')
      expect(answer.headers.get('ratelimit-policy')).toBe('"burst";q=50;w=10')
      expect(answer.headers.get('ratelimit')).toMatch(/^"burst";r=4[89];t=1[01]$/)
    }
    expect(shared).toEqual({ 'content-type': 'text/plain', 'x-shared': 'yes' })
    const own = await fetch(`${url}/own`, { headers })
    expect(own.headers.get('ratelimit')).toBe('"mine";r=1')
    expect(own.headers.get('ratelimit-policy')).toBe('"burst";q=50;w=10')
    const empty = await fetch(`${url}/empty`, { headers })
    expect(empty.status).toBe(204)
    expect(empty.headers.get('ratelimit')).toMatch(/^"burst";r=46;t=1[01]$/)
    const streamed = await fetch(`${url}/stream`, { headers })
    expect(await streamed.text()).toBe('streamed')
    expect(streamed.headers.get('ratelimit')).toMatch(/^"burst";r=45;t=1[01]$/)
    expect(wrapped).toEqual([200, 200, 200, 204, 200])
  })
})
