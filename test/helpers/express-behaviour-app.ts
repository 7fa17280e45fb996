import type { RequestListener } from 'node:http'
import { apiKeyAuth, createKeysRouter, requireScopes } from '../../src/express/index.js'
import type { HttpAppSetup } from '../contract/http-behaviour.js'

type Handler = (req: { apiKey: unknown }, res: { json(body: unknown): void; status(code: number): { json(body: unknown): void } }) => void
/** What the test needs of an Express module; Express 4 and 5 both fit. */
interface ExpressModule {
  (): RequestListener & {
    use(...handlers: unknown[]): unknown
    get(path: string, ...handlers: unknown[]): unknown
    post(path: string, ...handlers: unknown[]): unknown
  }
  json(): unknown
}

/**
 * The app the shared behaviour suite drives on Express: an existing app that gains API keys with
 * two lines. `json` mounts `express.json()` before them (the consumed-body case).
 */
export function expressBehaviourApp(express: ExpressModule, { keyward, handled }: HttpAppSetup, json: boolean): RequestListener {
  const app = express()
  if (json) app.use(express.json())
  app.use('/v1', apiKeyAuth({ keyward }))
  app.use('/api-keys', createKeysRouter({ keyward }))
  const me: Handler = (req, res) => {
    handled.push('me')
    res.json(req.apiKey)
  }
  const orders: Handler = (_req, res) => {
    handled.push('orders')
    res.status(201).json({ created: true })
  }
  app.get('/v1/me', me)
  app.post('/v1/orders', requireScopes('orders:write'), orders)
  return app
}
