import express from 'express'
import express4 from 'express4'
import type { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
import { createExampleApp as createExpressExample } from '../example-app/express.js'
import { createExampleApp as createHonoExample } from '../example-app/hono.js'
import { createKeysPage } from '../src/express/index.js'
import { keyward } from '../src/index.js'
import { expectPageHeaders, formBody, keyIdsIn, secretIn, textOf } from './helpers/keys-page.js'
import { listen } from './helpers/listen.js'
import { listenNode } from './helpers/listen-node.js'
import { tempSqlitePath } from './helpers/sqlite.js'

/**
 * The keys page on Express 4 and 5 through the bridge, over real HTTP: the same headers, the same
 * cross-site refusal before the host's `authenticate`, the same forms (with and without a body
 * parser mounted first). And the example apps' demo sign-in on both frameworks.
 */

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const MOUNT = '/settings/api-keys'

const variants = [
  { name: 'Express 5', make: () => express(), parser: undefined },
  { name: 'Express 5 after express.urlencoded({ extended: true })', make: () => express(), parser: express.urlencoded({ extended: true }) },
  { name: 'Express 4', make: () => express4() as unknown as express.Express, parser: undefined },
  {
    name: 'Express 4 after express.urlencoded({ extended: false })',
    make: () => express4() as unknown as express.Express,
    parser: express4.urlencoded({ extended: false }) as unknown as express.RequestHandler,
  },
]

for (const variant of variants) {
  describe(`the keys page on ${variant.name}`, () => {
    async function start() {
      const kw = keyward({ database: tempSqlitePath() })
      cleanups.push(() => kw.close())
      let authenticated = 0
      const app = variant.make()
      if (variant.parser !== undefined) app.use(variant.parser)
      app.use(
        MOUNT,
        createKeysPage({
          keyward: kw,
          authenticate: (req: express.Request) => {
            authenticated++
            const tenantId = req.headers['x-test-tenant']
            return typeof tenantId === 'string' ? { tenantId } : null
          },
          loginUrl: (returnTo) => `/login?next=${encodeURIComponent(returnTo)}`,
          scopes: ['orders:read', 'orders:write'],
        }),
      )
      const server = await listenNode(app)
      cleanups.push(() => server.close())
      const post = (path: string, body: string, headers: Record<string, string> = {}) =>
        fetch(`${server.url}${path}`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url, 'x-test-tenant': 'acme', ...headers },
          body,
        })
      return { kw, url: server.url, post, authenticated: () => authenticated }
    }

    it('serves the page under its mount path with the same headers as on Hono', async () => {
      const { url, kw } = await start()
      const created = await kw.createKey({ tenantId: 'acme' }, { name: 'Server', scopes: ['orders:read'] })
      if (!created.ok) throw new Error(created.error.detail)
      const list = await fetch(`${url}${MOUNT}`, { headers: { 'x-test-tenant': 'acme' } })
      expect(list.status).toBe(200)
      expectPageHeaders(list)
      const html = await list.text()
      expect(keyIdsIn(html)).toEqual([created.value.apiKey.id])
      expect(html).toContain(`href="${MOUNT}/${created.value.apiKey.id}"`)
      const stylesheet = /href="([^"]+\.css)"/.exec(html)?.[1] as string
      expect(stylesheet).toMatch(/^\/settings\/api-keys\/assets\//)
      const asset = await fetch(`${url}${stylesheet}`)
      expect(asset.status).toBe(200)
      expectPageHeaders(asset, 'immutable')
    })

    it('refuses a cross-site form with 403 before the host’s authenticate runs', async () => {
      const { post, authenticated, kw } = await start()
      const body = formBody({ name: 'x', environment: 'live', scopes: 'orders:read', expires: 'never' })
      const answers = [
        await post(`${MOUNT}/new`, body, { origin: 'https://evil.example' }),
        await post(`${MOUNT}/new`, body, { 'sec-fetch-site': 'cross-site' }),
      ]
      expect(answers.map((answer) => answer.status)).toEqual([403, 403])
      for (const answer of answers) expectPageHeaders(answer)
      expect(authenticated()).toBe(0)
      const listed = await kw.listKeys({ tenantId: 'acme' })
      expect(listed.ok && listed.value.items).toEqual([])
    })

    it('creates a key with two scopes, shows its secret once, and revokes it', async () => {
      const { post, kw } = await start()
      const created = await post(
        `${MOUNT}/new`,
        formBody({ name: 'CI', environment: 'live', scopes: ['orders:read', 'orders:write'], expires: 'never' }),
      )
      expect(created.status).toBe(201)
      expectPageHeaders(created)
      const secret = secretIn(await created.text()) as string
      const verified = await kw.verify(secret)
      expect(verified.ok && verified.key.scopes).toEqual(['orders:read', 'orders:write'])

      const id = verified.ok ? verified.key.id : ''
      const revoked = await post(`${MOUNT}/${id}/revoke`, '')
      expect(revoked.status).toBe(303)
      expect(revoked.headers.get('location')).toBe(`${MOUNT}/${id}?done=revoked`)
      expect(await kw.verify(secret)).toMatchObject({ ok: false, code: 'api_key_revoked' })
    })

    it('sends a visitor who is not signed in to the login URL, with the page asked for', async () => {
      const { url } = await start()
      const answer = await fetch(`${url}${MOUNT}/new`, { redirect: 'manual' })
      expect(answer.status).toBe(303)
      expect(answer.headers.get('location')).toBe(`/login?next=${encodeURIComponent(`${MOUNT}/new`)}`)
    })
  })
}

describe('the example apps’ demo sign-in', () => {
  const examples = [
    { name: 'Hono', serve: (kw: ReturnType<typeof keyward>) => listen(createHonoExample(kw, { sessionSecret: 'test secret' }) as Hono) },
    { name: 'Express', serve: (kw: ReturnType<typeof keyward>) => listenNode(createExpressExample(kw, { sessionSecret: 'test secret' })) },
  ]
  for (const example of examples) {
    it(`signs in at /login?tenant=acme and lands on the keys page, which says the sign-in is for the example only (${example.name})`, async () => {
      const kw = keyward({ database: tempSqlitePath() })
      cleanups.push(() => kw.close())
      const server = await example.serve(kw)
      cleanups.push(() => server.close())

      const anonymous = await fetch(`${server.url}${MOUNT}`, { redirect: 'manual' })
      expect(anonymous.status).toBe(303)
      expect(anonymous.headers.get('location')).toBe('/login')
      expect(await (await fetch(`${server.url}/login`)).text()).toContain('Sign in as acme')
      expect((await fetch(`${server.url}/login?tenant=initech`, { redirect: 'manual' })).status).toBe(400)

      const login = await fetch(`${server.url}/login?tenant=acme`, { redirect: 'manual' })
      expect(login.status).toBe(303)
      expect(login.headers.get('location')).toBe(MOUNT)
      const cookie = login.headers.getSetCookie()[0] ?? ''
      expect(cookie).toMatch(/^keyward_demo_session=acme\.[^;]+;.*HttpOnly/)
      expect(cookie).toContain('SameSite=Lax')

      const page = await fetch(`${server.url}${MOUNT}`, { headers: { cookie: cookie.split(';')[0] as string } })
      expect(page.status).toBe(200)
      const text = textOf(await page.text())
      expect(text).toContain('Signed in for acme')
      expect(text).toContain('It exists for this example only')

      // A cookie whose signature does not match is no sign-in at all.
      const forged = await fetch(`${server.url}${MOUNT}`, { redirect: 'manual', headers: { cookie: 'keyward_demo_session=globex.AAAA' } })
      expect(forged.status).toBe(303)
    })
  }
})
