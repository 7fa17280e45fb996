import type { IncomingMessage, ServerResponse } from 'node:http'
import express from 'express'
import express4 from 'express4'
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest'
import type { Actor, VerifiedKey } from '../src/core/types.js'
import { apiKeyAuth, createKeysRouter, type ExpressRequestLike, requireScopes, withApiKey } from '../src/express/index.js'
import { type Keyward, keyward } from '../src/index.js'
import type { RunningServer } from './contract/http-behaviour.js'
import { readJson } from './helpers/http.js'
import { listenNode } from './helpers/listen-node.js'
import { tempSqlitePath } from './helpers/sqlite.js'

/**
 * What only the Express adapter has to get right: body parsers the host mounted first, nested mount
 * paths, the host's error page, `authenticate(req)` and `req.apiKey` typing. The shared suite
 * (`http.express{4,5}.test.ts`) covers the HTTP contract itself.
 */

// One test body for both versions. Express 4's own types are checked by http.express4.test.ts and
// the typing tests at the end; here it is driven through Express 5's (identical) surface.
const versions = [
  { version: 'Express 5', express },
  { version: 'Express 4', express: express4 as unknown as typeof express },
]

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function freshKeyward() {
  const kw = keyward({ database: tempSqlitePath() })
  cleanups.push(() => kw.close())
  const created = await kw.createKey({ tenantId: 'acme' }, { name: 'admin' })
  if (!created.ok) throw new Error(created.error.detail)
  return { kw, adminKey: created.value.key }
}

async function serve(app: express.Express): Promise<RunningServer> {
  const server = await listenNode(app)
  cleanups.push(() => server.close())
  return server
}

/** A host error handler that renders HTML and records every error it is handed. */
function htmlErrorPage(seen: unknown[]) {
  return (error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    seen.push(error)
    res.status(500).type('html').send('<html><body><h1>Something broke</h1></body></html>')
  }
}

async function expectProblem(response: Response, status: number, code: string) {
  const text = await response.text()
  expect(response.status, text).toBe(status)
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/)
  expect(JSON.parse(text)).toMatchObject({ status, code })
}

const json = (key: string) => ({ 'x-api-key': key, 'content-type': 'application/json' })

describe.each(versions)('keyward/express on $version', ({ express }) => {
  describe('body parsers mounted before the router', () => {
    const parsers: [string, () => express.RequestHandler | undefined][] = [
      ['no body parser', () => undefined],
      ['express.json()', () => express.json()],
      ['express.json({ type: "*/*" })', () => express.json({ type: '*/*' })],
      ['express.urlencoded({ extended: true })', () => express.urlencoded({ extended: true })],
      ['express.text({ type: "*/*" })', () => express.text({ type: '*/*' })],
      ['express.raw({ type: "*/*" })', () => express.raw({ type: '*/*' })],
    ]

    it.each(parsers)('answers the same as Hono behind %s', async (_name, parser) => {
      const { kw, adminKey } = await freshKeyward()
      const app = express()
      const mounted = parser()
      if (mounted !== undefined) app.use(mounted)
      app.use('/api-keys', createKeysRouter({ keyward: kw }))
      const { url } = await serve(app)

      const created = await fetch(`${url}/api-keys`, {
        method: 'POST',
        headers: json(adminKey),
        body: JSON.stringify({ name: 'From JSON', metadata: { a: [1, { b: 'é' }] } }),
      })
      expect(created.status).toBe(201)
      expect(await readJson(created)).toMatchObject({ name: 'From JSON', metadata: { a: [1, { b: 'é' }] } })

      await expectProblem(
        await fetch(`${url}/api-keys`, { method: 'POST', headers: json(adminKey), body: '{"name": ' }),
        400,
        'invalid_json',
      )
      await expectProblem(
        await fetch(`${url}/api-keys`, {
          method: 'POST',
          headers: { 'x-api-key': adminKey, 'content-type': 'text/plain' },
          body: '{"name":"text"}',
        }),
        415,
        'unsupported_media_type',
      )
      await expectProblem(
        await fetch(`${url}/api-keys`, {
          method: 'POST',
          headers: { 'x-api-key': adminKey, 'content-type': 'application/x-www-form-urlencoded' },
          body: 'name=form&scopes[0]=a',
        }),
        415,
        'unsupported_media_type',
      )
      await expectProblem(
        await fetch(`${url}/api-keys`, { method: 'POST', headers: json(adminKey), body: JSON.stringify({ name: 'x'.repeat(20_000) }) }),
        413,
        'payload_too_large',
      )
      const listed = await kw.listKeys({ tenantId: 'acme' }, { limit: 100 })
      expect(listed.ok && listed.value.items.map((key) => key.name).sort()).toEqual(['From JSON', 'admin'])
    })

    it('reads a chunked body streamed without a content-length', async () => {
      const { kw, adminKey } = await freshKeyward()
      const app = express()
      app.use('/api-keys', createKeysRouter({ keyward: kw }))
      const { url } = await serve(app)
      const chunks = ['{"name":', '"streamed"', '}']
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          const chunk = chunks.shift()
          if (chunk === undefined) controller.close()
          else controller.enqueue(new TextEncoder().encode(chunk))
        },
      })
      const response = await fetch(`${url}/api-keys`, { method: 'POST', headers: json(adminKey), body, duplex: 'half' } as RequestInit)
      expect(response.status).toBe(201)
      expect((await readJson(response)).name).toBe('streamed')
    })

    it('keeps the connection usable after answering without reading a large body', async () => {
      const { kw } = await freshKeyward()
      const app = express()
      app.use('/api-keys', createKeysRouter({ keyward: kw }))
      const { url } = await serve(app)
      const big = JSON.stringify({ name: 'x', metadata: { blob: 'x'.repeat(200_000) } })
      // 401 is decided from the headers alone; the unread body must be drained, not reset the socket.
      for (let i = 0; i < 3; i++) {
        await expectProblem(
          await fetch(`${url}/api-keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big }),
          401,
          'missing_api_key',
        )
      }
    })
  })

  describe('mount paths', () => {
    it('keeps a nested mount path in Link headers, and the next link works', async () => {
      const { kw, adminKey } = await freshKeyward()
      for (const name of ['one', 'two']) await kw.createKey({ tenantId: 'acme' }, { name })
      const app = express()
      const admin = express.Router()
      admin.use(express.json())
      admin.use('/api-keys', createKeysRouter({ keyward: kw }))
      app.use('/tenants/:tenant/admin', admin)
      const { url } = await serve(app)

      const seen: string[] = []
      let next: string | null = '/tenants/acme/admin/api-keys?limit=2'
      while (next !== null) {
        const page = await fetch(`${url}${next}`, { headers: { 'x-api-key': adminKey } })
        expect(page.status).toBe(200)
        seen.push(...((await readJson(page)) as { name: string }[]).map((key) => key.name))
        const link = page.headers.get('link')
        next = link === null ? null : (/<([^>]+)>; rel="next"/.exec(link)?.[1] ?? null)
        if (next !== null) expect(next).toMatch(/^\/tenants\/acme\/admin\/api-keys\?limit=2&cursor=/)
      }
      expect(seen.sort()).toEqual(['admin', 'one', 'two'])

      // A body parser in the same router reports bad JSON to the keys router's error handler.
      await expectProblem(
        await fetch(`${url}/tenants/acme/admin/api-keys`, { method: 'POST', headers: json(adminKey), body: '{' }),
        400,
        'invalid_json',
      )
      const document = await readJson(await fetch(`${url}/tenants/acme/admin/api-keys/openapi.json`))
      expect(Object.keys(document.paths)).toContain('/tenants/acme/admin/api-keys/{id}')
    })

    it('answers an unknown route under its mount with 404 route_not_found in problem+json', async () => {
      const { kw, adminKey } = await freshKeyward()
      const app = express()
      app.use('/api-keys', createKeysRouter({ keyward: kw }))
      const { url } = await serve(app)
      await expectProblem(await fetch(`${url}/api-keys/key_1/nothing/here`, { headers: { 'x-api-key': adminKey } }), 404, 'route_not_found')
      await expectProblem(await fetch(`${url}/api-keys/key_1/nothing/here`), 401, 'missing_api_key')
    })
  })

  describe('the host’s error page', () => {
    it('is never used for keyward’s errors, even with express.json() and a custom HTML error handler', async () => {
      const { kw, adminKey } = await freshKeyward()
      const errors: unknown[] = []
      const app = express()
      app.use(express.json({ limit: '1kb' }))
      app.use('/v1', apiKeyAuth({ keyward: kw }))
      app.get('/v1/orders', requireScopes('orders:read'), (_req, res) => {
        res.json([])
      })
      app.use('/api-keys', createKeysRouter({ keyward: kw }))
      app.use('/api-keys-sso', createKeysRouter({ keyward: kw, authenticate: () => Promise.reject(new Error('session store down')) }))
      app.use(htmlErrorPage(errors))
      const { url } = await serve(app)

      await expectProblem(await fetch(`${url}/v1/orders`), 401, 'missing_api_key')
      await expectProblem(await fetch(`${url}/v1/orders`, { headers: { 'x-api-key': 'sk_live_bogus' } }), 401, 'invalid_api_key')
      await expectProblem(
        await fetch(`${url}/api-keys`, { method: 'POST', headers: json(adminKey), body: '{"name": nope}' }),
        400,
        'invalid_json',
      )
      // Over the host parser's own 1 kb limit: body-parser's 413, answered by keyward.
      await expectProblem(
        await fetch(`${url}/api-keys`, {
          method: 'POST',
          headers: json(adminKey),
          body: JSON.stringify({ name: 'x', metadata: { b: 'x'.repeat(2000) } }),
        }),
        413,
        'payload_too_large',
      )
      await expectProblem(
        await fetch(`${url}/api-keys`, {
          method: 'POST',
          headers: { 'x-api-key': adminKey, 'content-type': 'application/json; charset=klingon' },
          body: '{"name":"x"}',
        }),
        415,
        'unsupported_media_type',
      )
      await expectProblem(await fetch(`${url}/api-keys/nope/nope/nope`, { headers: { 'x-api-key': adminKey } }), 404, 'route_not_found')
      const original = console.error
      console.error = () => {}
      try {
        const failed = await fetch(`${url}/api-keys-sso`, { headers: { 'x-api-key': adminKey } })
        await expectProblem(failed, 500, 'internal_error')
      } finally {
        console.error = original
      }
      expect(errors).toEqual([])
    })

    it('still receives the host’s own errors', async () => {
      const { kw } = await freshKeyward()
      const errors: unknown[] = []
      const app = express()
      app.use(express.json())
      app.use('/api-keys', createKeysRouter({ keyward: kw }))
      app.post('/webhooks', (_req, _res, next) => next(new Error('the host’s own bug')))
      app.use(htmlErrorPage(errors))
      const { url } = await serve(app)
      // Bad JSON outside the keys router's mount is the host's to answer.
      const outside = await fetch(`${url}/webhooks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' })
      expect(outside.status).toBe(500)
      expect(outside.headers.get('content-type')).toMatch(/^text\/html/)
      const bug = await fetch(`${url}/webhooks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
      expect(await bug.text()).toContain('Something broke')
      expect(errors).toHaveLength(2)
    })
  })

  describe('authenticate(req): management through the host’s own auth', () => {
    /** A host whose login middleware puts the signed-in user on `req.user` (as passport does). */
    async function hostApp(kw: Keyward, options: { apiKeys?: boolean } = {}) {
      const sessions = new Map<string, SignedInUser>([
        ['sess_acme', { id: 'user_1', tenantId: 'acme' }],
        ['sess_web', { id: 'user_2', tenantId: 'acme', projectId: 'proj_web' }],
      ])
      const app = express()
      app.use(express.json())
      app.use((req: HostRequest, _res, next) => {
        const user = sessions.get(req.get('x-session') ?? '')
        if (user !== undefined) req.user = user
        next()
      })
      app.use(
        '/api-keys',
        createKeysRouter({
          keyward: kw,
          apiKeys: options.apiKeys,
          authenticate: (req: HostRequest): Actor | null =>
            req.user ? { tenantId: req.user.tenantId, projectId: req.user.projectId ?? null } : null,
        }),
      )
      return (await serve(app)).url
    }

    it('creates and lists keys for the signed-in user’s tenant', async () => {
      const { kw } = await freshKeyward()
      const url = await hostApp(kw, { apiKeys: false })
      const headers = { 'x-session': 'sess_acme', 'content-type': 'application/json' }
      const created = await fetch(`${url}/api-keys`, { method: 'POST', headers, body: JSON.stringify({ name: 'From the dashboard' }) })
      expect(created.status).toBe(201)
      expect(await readJson(created)).toMatchObject({ tenant_id: 'acme', name: 'From the dashboard' })
      const listed: { name: string }[] = await readJson(await fetch(`${url}/api-keys`, { headers }))
      expect(listed.map((key) => key.name).sort()).toEqual(['From the dashboard', 'admin'])
    })

    it('binds a project-bound user to its project', async () => {
      const { kw } = await freshKeyward()
      const url = await hostApp(kw, { apiKeys: false })
      const headers = { 'x-session': 'sess_web', 'content-type': 'application/json' }
      const created = await readJson(
        await fetch(`${url}/api-keys`, { method: 'POST', headers, body: JSON.stringify({ name: 'web worker' }) }),
      )
      expect(created.project_id).toBe('proj_web')
      const listed: { name: string }[] = await readJson(await fetch(`${url}/api-keys`, { headers }))
      expect(listed.map((key) => key.name)).toEqual(['web worker'])
    })

    it('answers 401 unauthenticated without a session, and ignores API keys when apiKeys is false', async () => {
      const { kw, adminKey } = await freshKeyward()
      const url = await hostApp(kw, { apiKeys: false })
      await expectProblem(await fetch(`${url}/api-keys`), 401, 'unauthenticated')
      await expectProblem(await fetch(`${url}/api-keys`, { headers: { 'x-api-key': adminKey } }), 401, 'unauthenticated')
    })

    it('falls back to an API key when authenticate returns null and API keys are allowed', async () => {
      const { kw, adminKey } = await freshKeyward()
      const url = await hostApp(kw)
      expect((await fetch(`${url}/api-keys`, { headers: { 'x-api-key': adminKey } })).status).toBe(200)
      await expectProblem(await fetch(`${url}/api-keys`), 401, 'missing_api_key')
    })
  })

  describe('apiKeyAuth', () => {
    it('takes the same options as the Hono middleware: header, bearer and realm', async () => {
      const { kw, adminKey } = await freshKeyward()
      const app = express()
      app.use('/v1', apiKeyAuth({ keyward: kw, header: 'X-Orders-Token', bearer: false, realm: 'orders' }))
      app.get('/v1/me', (req, res) => {
        res.json({ id: req.apiKey?.id })
      })
      const { url } = await serve(app)
      expect((await fetch(`${url}/v1/me`, { headers: { 'x-orders-token': adminKey } })).status).toBe(200)
      const bearer = await fetch(`${url}/v1/me`, { headers: { authorization: `Bearer ${adminKey}` } })
      await expectProblem(bearer.clone(), 401, 'missing_api_key')
      expect(bearer.headers.get('www-authenticate')).toBe('Bearer realm="orders"')
      expect(() => apiKeyAuth({ header: 'not a header' })).toThrow(/option "header"/)
    })

    it('answers a cached key synchronously: next() runs before the middleware returns', async () => {
      const { kw, adminKey } = await freshKeyward()
      await kw.ready()
      expect((await kw.verify(adminKey)).ok).toBe(true)
      const middleware = apiKeyAuth({ keyward: kw })
      const req = { headers: { 'x-api-key': adminKey } } as unknown as ExpressRequestLike
      let nextCalls = 0
      middleware(req, {} as ServerResponse, () => {
        nextCalls++
      })
      expect(nextCalls).toBe(1)
      expect(req.apiKey?.tenantId).toBe('acme')
    })

    it('answers 401 missing_api_key from withApiKey on a route apiKeyAuth() does not guard, without running the handler', async () => {
      const { kw, adminKey } = await freshKeyward()
      const app = express()
      const ran: string[] = []
      const me = withApiKey((_req: express.Request, res: express.Response, key) => {
        ran.push(key.id)
        res.json({ tenant: key.tenantId })
      })
      app.use('/v1', apiKeyAuth({ keyward: kw }))
      app.get('/v1/me', me)
      // The mistake: the same handler on a path apiKeyAuth() does not cover.
      app.get('/public/me', me)
      const { url } = await serve(app)
      const unguarded = await fetch(`${url}/public/me`, { headers: { 'x-api-key': adminKey } })
      expect(unguarded.headers.get('www-authenticate')).toBe('Bearer realm="keyward"')
      await expectProblem(unguarded, 401, 'missing_api_key')
      expect(ran).toEqual([])
      const guarded = await fetch(`${url}/v1/me`, { headers: { 'x-api-key': adminKey } })
      expect(guarded.status).toBe(200)
      expect(await readJson(guarded)).toEqual({ tenant: 'acme' })
      expect(ran).toHaveLength(1)
    })

    it('answers 401 from requireScopes when apiKeyAuth did not run first', async () => {
      const app = express()
      app.get('/unprotected', requireScopes('orders:read'), (_req, res) => {
        res.send('ran')
      })
      const { url } = await serve(app)
      await expectProblem(await fetch(`${url}/unprotected`), 401, 'missing_api_key')
    })
  })
})

interface SignedInUser {
  id: string
  tenantId: string
  projectId?: string
}

/** The host's request type, with what its login middleware adds. */
interface HostRequest extends express.Request {
  user?: SignedInUser
}

describe('typing', () => {
  it('types req.apiKey as possibly absent, and the key withApiKey hands over as present and read-only, in Express 5 and 4', () => {
    const app5 = express()
    app5.use('/v1', apiKeyAuth())
    app5.use('/api-keys', createKeysRouter())
    app5.get('/public', (req, res) => {
      expectTypeOf(req.apiKey).toEqualTypeOf<VerifiedKey | undefined>()
      // @ts-expect-error on a route apiKeyAuth() may not guard, the key may be absent
      res.json({ tenant: req.apiKey.tenantId })
    })
    app5.get(
      '/v1/me',
      withApiKey((_req: express.Request, res: express.Response, key) => {
        expectTypeOf(key).toEqualTypeOf<VerifiedKey>()
        const tenant: string = key.tenantId
        // @ts-expect-error the verified key is read-only
        key.tenantId = 'someone-else'
        res.json({ tenant })
      }),
    )
    const app4 = express4()
    app4.use('/v1', apiKeyAuth(), requireScopes('orders:read'))
    app4.use('/api-keys', createKeysRouter())
    app4.get(
      '/v1/me',
      withApiKey((_req: express4.Request, res: express4.Response, key) => {
        const scopes: readonly string[] = key.scopes
        res.json({ scopes })
      }),
    )
    // authenticate(req) sees the host's own request type.
    createKeysRouter({ authenticate: (req: HostRequest) => (req.user ? { tenantId: req.user.tenantId } : null) })
    expectTypeOf(apiKeyAuth()).parameter(0).toMatchTypeOf<IncomingMessage>()
  })
})
