import { pathToFileURL } from 'node:url'
import { serve } from '@hono/node-server'
import { zValidator } from '@hono/zod-validator'
import { Hono } from 'hono'
import { z } from 'zod'
import { apiKeyAuth, createKeysRouter, requireScopes } from '../src/hono/index.js'
import { type Keyward, keyward } from '../src/index.js'
import { bootstrapDemoTenants, DemoOrders, runScheduler, stopOnSignals } from './bootstrap.js'
import { addApiReference } from './reference.js'

/**
 * The example API: a small orders service behind `apiKeyAuth()`, with tenants managing their own
 * keys under /api-keys. Exported so tests (and the browser test) can start it on any port.
 */
export function createExampleApp(kw: Keyward) {
  const orders = new DemoOrders()
  const app = new Hono()

  app.get('/', (c) => c.json({ service: 'keyward example', docs: '/reference', keys: '/api-keys' }))
  app.route('/api-keys', createKeysRouter({ keyward: kw }))

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
  stopOnSignals(server, kw)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main()
