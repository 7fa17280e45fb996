import type { RequestListener } from 'node:http'
import express from 'express'
import express4 from 'express4'
import { apiKeyAuth, createKeysRouter, spendCredits } from '../src/express/index.js'
import { type ControlsAppSetup, describeControlsBehaviour } from './contract/controls-behaviour.js'
import { listenNode } from './helpers/listen-node.js'

type Res = { json(body: unknown): void }
/** What the suite needs of an Express module; Express 4 and 5 both fit. */
type ExpressModule = () => RequestListener & {
  use(...handlers: unknown[]): unknown
  get(path: string, ...handlers: unknown[]): unknown
  post(path: string, ...handlers: unknown[]): unknown
}

function controlsApp(expressModule: ExpressModule, { keyward, trustProxy }: ControlsAppSetup): RequestListener {
  const app = expressModule()
  app.use('/api-keys', createKeysRouter({ keyward, trustProxy }))
  app.get('/v1/me', apiKeyAuth({ keyward, trustProxy }), (req: { apiKey: unknown }, res: Res) => res.json(req.apiKey))
  app.get('/v1/heavy', apiKeyAuth({ keyward, cost: 5 }), (_req: unknown, res: Res) => res.json({ ok: true }))
  app.get('/v1/fraction', apiKeyAuth({ keyward, cost: () => 1.5 }), (_req: unknown, res: Res) => res.json({ ok: true }))
  app.post('/v1/metered', apiKeyAuth({ keyward }), async (req: Parameters<typeof spendCredits>[0] & { url: string }, res: Res) => {
    const tokens = Number(new URL(req.url, 'http://x').searchParams.get('tokens'))
    res.json(await spendCredits(req, tokens))
  })
  return app
}

describeControlsBehaviour('Express 5', async (setup) => listenNode(controlsApp(express as unknown as ExpressModule, setup)))
describeControlsBehaviour('Express 4', async (setup) => listenNode(controlsApp(express4 as unknown as ExpressModule, setup)))
