import { pathToFileURL } from 'node:url'
import { serve } from '@hono/node-server'
import { zValidator } from '@hono/zod-validator'
import { Hono } from 'hono'
import { getSignedCookie, setSignedCookie } from 'hono/cookie'
import { z } from 'zod'
import { apiKeyAuth, createKeysPage, createKeysRouter, requireScopes } from '../src/hono/index.js'
import { type Keyward, keyward } from '../src/index.js'
import { bootstrapDemoTenants, DemoOrders, runScheduler, stopOnSignals } from './bootstrap.js'
import { addApiReference } from './reference.js'
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

export interface ExampleAppOptions {
  /**
   * Signs the demo session cookie.
   * @default env.KEYWARD_DEMO_SESSION_SECRET, or a random one per start
   */
  sessionSecret?: string
}

/**
 * The example API: a small orders service behind `apiKeyAuth()`, with tenants managing their own
 * keys under /api-keys (with an API key) and on the page at /settings/api-keys (in a browser, after
 * the demo sign-in at /login?tenant=acme). Exported so tests (and the browser tests) can start it on
 * any port.
 */
export function createExampleApp(kw: Keyward, options: ExampleAppOptions = {}) {
  const orders = new DemoOrders()
  const sessionSecret = options.sessionSecret ?? demoSessionSecret()
  const app = new Hono()

  app.get('/', (c) =>
    c.json({ service: 'keyward example', docs: '/reference', keys: '/api-keys', keys_page: `/login?tenant=acme (then ${KEYS_PAGE_PATH})` }),
  )
  app.route('/api-keys', createKeysRouter({ keyward: kw }))

  // The demo sign-in: for the example only (it asks for no password). See example-app/session.ts.
  app.get('/login', async (c) => {
    const tenant = c.req.query('tenant')
    if (!isDemoTenant(tenant)) return c.html(loginChooserHtml(), tenant === undefined ? 200 : 400)
    await setSignedCookie(c, SESSION_COOKIE, tenant, sessionSecret, SESSION_COOKIE_OPTIONS)
    return c.redirect(KEYS_PAGE_PATH, 303)
  })
  app.route(
    KEYS_PAGE_PATH,
    createKeysPage({
      keyward: kw,
      authenticate: async (c) => {
        const tenant = await getSignedCookie(c, sessionSecret, SESSION_COOKIE)
        return isDemoTenant(tenant) ? { tenantId: tenant } : null
      },
      loginUrl: '/login',
      scopes: DEMO_SCOPES,
      notice: DEMO_NOTICE,
    }),
  )

  // Every /v1 route is behind apiKeyAuth(), and chaining it types c.var.apiKey on each of them.
  const v1 = new Hono()
    .use(apiKeyAuth({ keyward: kw }))
    .get('/whoami', (c) => c.json(c.var.apiKey))
    .get('/orders', requireScopes('orders:read'), (c) => c.json(orders.list(c.var.apiKey.tenantId)))
    .post(
      '/orders',
      requireScopes('orders:write'),
      zValidator('json', z.object({ item: z.string().min(1).max(200) }), (result, c) => {
        if (!result.success) return c.json({ code: 'validation_error', detail: 'Send {"item": "..."}' }, 400)
      }),
      (c) => c.json(orders.add(c.var.apiKey.tenantId, c.req.valid('json').item, c.var.apiKey.id), 201),
    )
  app.route('/v1', v1)
  // The interactive API reference of the whole example API: /reference (and /openapi.json).
  addApiReference(app)
  return app
}

/** Starts the example on PORT (default 3000) and KEYWARD_DATABASE_URL (default ./keyward.db). */
export async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 3000)
  const kw = keyward()
  const app = createExampleApp(kw)
  await kw.ready()
  const server = serve({ fetch: app.fetch, port, hostname: process.env.HOST ?? '127.0.0.1' }, (info) => {
    console.log(`keyward example (Hono) listening on http://127.0.0.1:${info.port}`)
  })
  await bootstrapDemoTenants(kw, `http://127.0.0.1:${port}`)
  runScheduler(kw)
  console.log(`\nManage keys in the browser (demo sign-in): http://127.0.0.1:${port}/login?tenant=acme`)
  stopOnSignals(server, kw)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main()
