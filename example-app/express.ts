import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'
import express from 'express'
import { generateSignedCookie } from 'hono/cookie'
import { parseSigned } from 'hono/utils/cookie'
import { z } from 'zod'
import { apiKeyAuth, createKeysPage, createKeysRouter, requireScopes, withApiKey } from '../src/express/index.js'
import { type Keyward, keyward } from '../src/index.js'
import { bootstrapDemoTenants, DemoOrders, runScheduler, stopOnSignals } from './bootstrap.js'
import type { ExampleAppOptions } from './hono.js'
import {
  DEMO_NOTICE,
  DEMO_SCOPES,
  demoSessionSecret,
  isDemoTenant,
  KEYS_PAGE_PATH,
  loginChooserHtml,
  SESSION_COOKIE,
  SESSION_COOKIE_OPTIONS,
} from './session.js'

const orderBody = z.object({ item: z.string().min(1).max(200) })

/**
 * The example API on Express, the same as `example-app/hono.ts`: a small orders service behind
 * `apiKeyAuth()`, with tenants managing their own keys under /api-keys. `express.json()` is
 * mounted first, as most Express apps do; the keys router copes with the body it already read.
 * Exported so tests can start it on any port.
 */
export function createExampleApp(kw: Keyward, options: ExampleAppOptions = {}) {
  const orders = new DemoOrders()
  const sessionSecret = options.sessionSecret ?? demoSessionSecret()
  const app = express()
  app.use(express.json())

  app.get('/', (_req, res) => {
    res.json({
      service: 'keyward example (Express)',
      keys: '/api-keys',
      openapi: '/api-keys/openapi.json',
      keys_page: `/login?tenant=acme (then ${KEYS_PAGE_PATH})`,
    })
  })
  app.use('/api-keys', createKeysRouter({ keyward: kw }))

  // The demo sign-in: for the example only (it asks for no password). See example-app/session.ts.
  app.get('/login', (req, res, next) => {
    const tenant = req.query.tenant
    if (!isDemoTenant(tenant)) {
      res
        .status(tenant === undefined ? 200 : 400)
        .type('html')
        .send(loginChooserHtml())
      return
    }
    generateSignedCookie(SESSION_COOKIE, tenant, sessionSecret, SESSION_COOKIE_OPTIONS).then((cookie) => {
      res.setHeader('set-cookie', cookie)
      res.redirect(303, KEYS_PAGE_PATH)
    }, next)
  })
  app.use(
    KEYS_PAGE_PATH,
    createKeysPage({
      keyward: kw,
      authenticate: async (req: express.Request) => {
        const tenant = (await parseSigned(req.headers.cookie ?? '', sessionSecret, SESSION_COOKIE))[SESSION_COOKIE]
        return isDemoTenant(tenant) ? { tenantId: tenant } : null
      },
      loginUrl: '/login',
      scopes: DEMO_SCOPES,
      notice: DEMO_NOTICE,
    }),
  )

  app.use('/v1', apiKeyAuth({ keyward: kw }))
  app.get(
    '/v1/whoami',
    withApiKey((_req: express.Request, res: express.Response, key) => res.json(key)),
  )
  app.get(
    '/v1/orders',
    requireScopes('orders:read'),
    withApiKey((_req: express.Request, res: express.Response, key) => res.json(orders.list(key.tenantId))),
  )
  app.post(
    '/v1/orders',
    requireScopes('orders:write'),
    withApiKey((req: express.Request, res: express.Response, key) => {
      const body = orderBody.safeParse(req.body)
      if (!body.success) {
        res.status(400).json({ code: 'validation_error', detail: 'Send {"item": "..."}' })
        return
      }
      res.status(201).json(orders.add(key.tenantId, body.data.item, key.id))
    }),
  )

  // The app's own errors (bad JSON on /v1/orders): JSON, like the rest of the API.
  app.use((error: { status?: number; type?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    if (error.type === 'entity.parse.failed') {
      res.status(400).json({ code: 'validation_error', detail: 'Send {"item": "..."}' })
      return
    }
    res.status(error.status ?? 500).json({ code: 'internal_error', detail: 'Something went wrong.' })
  })
  return app
}

/** Starts the example on PORT (default 3000) and KEYWARD_DATABASE_URL (default ./keyward.db). */
export async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 3000)
  const kw = keyward()
  const app = createExampleApp(kw)
  await kw.ready()
  const server: Server = await new Promise((resolve, reject) => {
    const listening = app.listen(port, process.env.HOST ?? '127.0.0.1', (error?: Error) => (error ? reject(error) : resolve(listening)))
  })
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  console.log(`keyward example (Express) listening on ${baseUrl}`)
  await bootstrapDemoTenants(kw, baseUrl)
  runScheduler(kw)
  console.log(`\nManage keys in the browser (demo sign-in): ${baseUrl}/login?tenant=acme`)
  stopOnSignals(server, kw)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main()
