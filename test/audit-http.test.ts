import express from 'express'
import express4 from 'express4'
import { Hono } from 'hono'
import { jwt, sign } from 'hono/jwt'
import { afterEach, describe, expect, it } from 'vitest'
import { createKeysRouter as createExpressKeysRouter } from '../src/express/index.js'
import { createKeysRouter } from '../src/hono/index.js'
import { type Keyward, keyward } from '../src/index.js'
import { readJson } from './helpers/http.js'
import { listen } from './helpers/listen.js'
import { listenNode } from './helpers/listen-node.js'
import { tempSqlitePath } from './helpers/sqlite.js'

/**
 * The audit log's view of who called and from where, on each adapter: a user the host's own auth
 * names (`subject`), and the client address behind trusted proxies (`trustProxy`). The shared
 * behaviour suite covers API-key callers and the default (untrusted) address.
 */

const SECRET = 'host-app-jwt-secret'
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function freshKeyward(): Keyward {
  const kw = keyward({ database: tempSqlitePath(), env: {} })
  cleanups.push(() => kw.close())
  return kw
}

async function serve(app: { fetch: (request: Request) => Response | Promise<Response> } | express.Express) {
  const server = 'fetch' in app ? await listen(app) : await listenNode(app)
  cleanups.push(() => server.close())
  return server.url
}

async function onlyEvent(kw: Keyward) {
  const page = await kw.listEvents({ tenantId: 'acme' })
  if (!page.ok) throw new Error(page.error.detail)
  expect(page.value.items).toHaveLength(1)
  return page.value.items[0]
}

const create = (url: string, headers: Record<string, string>) =>
  fetch(`${url}/api-keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ name: 'from the dashboard' }),
  })

describe('a user authenticated by the host app', () => {
  it('is the actor of the change on Hono, named by the subject authenticate returned', async () => {
    const kw = freshKeyward()
    const app = new Hono()
    app.use('/api-keys/*', jwt({ secret: SECRET, alg: 'HS256' }))
    app.route(
      '/api-keys',
      createKeysRouter({
        keyward: kw,
        apiKeys: false,
        authenticate: (c) => {
          const payload = c.get('jwtPayload') as { sub?: string; tenant_id?: string }
          return payload.tenant_id ? { tenantId: payload.tenant_id, subject: payload.sub } : null
        },
      }),
    )
    const url = await serve(app)
    const token = await sign({ sub: 'user_1', tenant_id: 'acme' }, SECRET, 'HS256')
    const response = await create(url, { authorization: `Bearer ${token}`, 'x-request-id': 'dash-1' })
    expect(response.status).toBe(201)
    expect((await readJson(response)).created_by).toEqual({ type: 'user', id: 'user_1' })
    expect(await onlyEvent(kw)).toMatchObject({ actor: { type: 'user', id: 'user_1' }, ip: '127.0.0.1', requestId: 'dash-1' })
  })

  it('is a user without an id when authenticate names none', async () => {
    const kw = freshKeyward()
    const app = new Hono()
    app.route('/api-keys', createKeysRouter({ keyward: kw, authenticate: () => ({ tenantId: 'acme' }) }))
    const response = await app.request('/api-keys', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x' }),
    })
    expect(response.status).toBe(201)
    // app.request has no socket: no address is recorded rather than a made-up one.
    expect(await onlyEvent(kw)).toMatchObject({ actor: { type: 'user', id: null }, ip: null })
  })

  it.each([
    ['Express 5', express],
    ['Express 4', express4 as unknown as typeof express],
  ])('is the actor of the change on %s, with the socket’s address', async (_name, framework) => {
    const kw = freshKeyward()
    const app = framework()
    app.use(framework.json())
    app.use(
      '/api-keys',
      createExpressKeysRouter({
        keyward: kw,
        authenticate: (req: express.Request) => {
          const user = req.header('x-demo-user')
          return user ? { tenantId: 'acme', subject: user } : null
        },
      }),
    )
    const url = await serve(app)
    const response = await create(url, { 'x-demo-user': 'alice', 'user-agent': 'admin-ui/2' })
    expect(response.status).toBe(201)
    expect(await onlyEvent(kw)).toMatchObject({ actor: { type: 'user', id: 'alice' }, ip: '127.0.0.1', userAgent: 'admin-ui/2' })
  })
})

describe('the client address behind proxies', () => {
  const forwarded = { 'x-forwarded-for': '203.0.113.50, 127.0.0.1' }
  const asHost = { tenantId: 'acme', subject: 'ops' }

  it('is the forwarded client only when the proxy in front is trusted (Hono)', async () => {
    const trusting = freshKeyward()
    const app = new Hono()
    app.route('/api-keys', createKeysRouter({ keyward: trusting, authenticate: () => asHost, trustProxy: 'loopback' }))
    expect((await create(await serve(app), forwarded)).status).toBe(201)
    expect((await onlyEvent(trusting))?.ip).toBe('203.0.113.50')

    const untrusting = freshKeyward()
    const plain = new Hono()
    plain.route('/api-keys', createKeysRouter({ keyward: untrusting, authenticate: () => asHost }))
    expect((await create(await serve(plain), forwarded)).status).toBe(201)
    expect((await onlyEvent(untrusting))?.ip).toBe('127.0.0.1')
  })

  it('is the forwarded client only when the proxy in front is trusted (Express), whatever Express’s own setting', async () => {
    const trusting = freshKeyward()
    const app = express()
    app.use('/api-keys', createExpressKeysRouter({ keyward: trusting, authenticate: () => asHost, trustProxy: 1 }))
    expect((await create(await serve(app), forwarded)).status).toBe(201)
    expect((await onlyEvent(trusting))?.ip).toBe('127.0.0.1')

    const twoHops = freshKeyward()
    const behindTwo = express()
    behindTwo.set('trust proxy', true)
    behindTwo.use('/api-keys', createExpressKeysRouter({ keyward: twoHops, authenticate: () => asHost, trustProxy: 2 }))
    expect((await create(await serve(behindTwo), forwarded)).status).toBe(201)
    expect((await onlyEvent(twoHops))?.ip).toBe('203.0.113.50')

    const untrusting = freshKeyward()
    const plain = express()
    // Express's own `trust proxy` is not keyward's: the router trusts only what it is told.
    plain.set('trust proxy', true)
    plain.use('/api-keys', createExpressKeysRouter({ keyward: untrusting, authenticate: () => asHost }))
    expect((await create(await serve(plain), forwarded)).status).toBe(201)
    expect((await onlyEvent(untrusting))?.ip).toBe('127.0.0.1')
  })

  it('comes from clientAddress on runtimes without a Node socket', async () => {
    const kw = freshKeyward()
    const app = new Hono()
    app.route('/api-keys', createKeysRouter({ keyward: kw, authenticate: () => asHost, clientAddress: () => '192.0.2.10' }))
    const response = await app.request('/api-keys', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x' }),
    })
    expect(response.status).toBe(201)
    expect((await onlyEvent(kw))?.ip).toBe('192.0.2.10')
  })

  it('refuses a trustProxy it cannot read when the router is built, naming the option', () => {
    expect(() => createKeysRouter({ keyward: freshKeyward(), trustProxy: 'not-an-address' })).toThrow(/trustProxy/)
    expect(() => createExpressKeysRouter({ keyward: freshKeyward(), trustProxy: -1 })).toThrow(/trustProxy/)
  })
})
