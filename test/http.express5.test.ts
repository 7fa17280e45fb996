import express from 'express'
import { apiKeyAuth, createKeysRouter, requireScopes } from '../src/express/index.js'
import { describeHttpBehaviour, type HttpAppSetup } from './contract/http-behaviour.js'
import { listenNode } from './helpers/listen-node.js'

/** An Express 5 app that gains API keys with two lines; `json` mounts `express.json()` before them. */
function expressApp({ keyward, handled }: HttpAppSetup, json: boolean) {
  const app = express()
  if (json) app.use(express.json())
  app.use('/v1', apiKeyAuth({ keyward }))
  app.use('/api-keys', createKeysRouter({ keyward }))
  app.get('/v1/me', (req, res) => {
    handled.push('me')
    res.json(req.apiKey)
  })
  app.post('/v1/orders', requireScopes('orders:write'), (_req, res) => {
    handled.push('orders')
    res.status(201).json({ created: true })
  })
  return app
}

describeHttpBehaviour('Express 5', async (setup) => listenNode(expressApp(setup, false)))
describeHttpBehaviour('Express 5 behind express.json()', async (setup) => listenNode(expressApp(setup, true)))
