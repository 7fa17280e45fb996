import { Hono } from 'hono'
import { apiKeyAuth, createKeysRouter, spendCredits } from '../src/hono/index.js'
import { describeControlsBehaviour } from './contract/controls-behaviour.js'
import { listen } from './helpers/listen.js'

describeControlsBehaviour('Hono (@hono/node-server)', async ({ keyward, trustProxy }) => {
  const v1 = new Hono()
    .get('/me', apiKeyAuth({ keyward, trustProxy }), (c) => c.json(c.var.apiKey))
    .get('/heavy', apiKeyAuth({ keyward, cost: 5 }), (c) => c.json({ ok: true }))
    .get('/fraction', apiKeyAuth({ keyward, cost: () => 1.5 }), (c) => c.json({ ok: true }))
    .post('/metered', apiKeyAuth({ keyward }), async (c) => c.json(await spendCredits(c, Number(c.req.query('tokens')))))
  const app = new Hono()
  app.route('/v1', v1)
  app.route('/api-keys', createKeysRouter({ keyward, trustProxy }))
  return listen(app)
})
