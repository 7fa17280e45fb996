import { Hono } from 'hono'
import { type ApiKeyVariables, apiKeyAuth, createKeysRouter, requireScopes } from '../src/hono/index.js'
import { describeHttpBehaviour } from './contract/http-behaviour.js'
import { listen } from './helpers/listen.js'

describeHttpBehaviour('Hono (@hono/node-server)', async ({ keyward, handled }) => {
  const app = new Hono<{ Variables: ApiKeyVariables }>()
  app.use('/v1/*', apiKeyAuth({ keyward }))
  app.get('/v1/me', (c) => {
    handled.push('me')
    return c.json(c.var.apiKey)
  })
  app.post('/v1/orders', requireScopes('orders:write'), (c) => {
    handled.push('orders')
    return c.json({ created: true }, 201)
  })
  app.route('/api-keys', createKeysRouter({ keyward }))
  return listen(app)
})
