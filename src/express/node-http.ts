import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { VerifiedKey } from '../core/types.js'
import { DRAIN_LIMIT_BYTES, declaredLargerThan } from '../http/body.js'
import type { HttpAnswer } from '../http/problem.js'

declare global {
  namespace Express {
    interface Request {
      /**
       * The verified API key, set by `apiKeyAuth()` from `keyward/express`. Optional because only
       * requests that passed `apiKeyAuth()` carry it: reading it unchecked on a route it does not
       * guard is a compile error, not a 500. Read it with `withApiKey(...)` for a typed key.
       */
      apiKey?: VerifiedKey
    }
  }
}

/**
 * What keyward reads from an Express request. Typed against `node:http` plus the few fields Express
 * 4 and 5 both add, so one build of `keyward/express` type-checks against either version's types.
 */
export interface ExpressRequestLike extends IncomingMessage, Express.Request {
  /** The URL as the client sent it, mount path included. */
  originalUrl: string
  /** The path the handler is mounted at (`/api-keys`, `/admin/api-keys`). */
  baseUrl: string
  /** Set by a body parser (`express.json()`, `express.urlencoded()`, ...) that already read the stream. */
  body?: unknown
  /** `http` or `https` (Express honours `trust proxy` here). */
  protocol?: string
}

/** `next` as Express 4 and 5 both pass it. */
export type NextLike = (error?: unknown) => void

/** An Express-compatible middleware: `app.use(handler)` accepts it in Express 4 and 5. */
export type KeywardRequestHandler<Req extends ExpressRequestLike = ExpressRequestLike> = (
  req: Req,
  res: ServerResponse,
  next: NextLike,
) => void

/** An Express-compatible error middleware (four parameters, so Express routes errors to it). */
export type KeywardErrorHandler<Req extends ExpressRequestLike = ExpressRequestLike> = (
  error: unknown,
  req: Req,
  res: ServerResponse,
  next: NextLike,
) => void

/** An answer with its body already encoded, for the answers a middleware gives on every bad request. */
export interface PreparedAnswer {
  status: number
  headers: [string, string][]
  body: Buffer
}

export function prepare(answer: HttpAnswer): PreparedAnswer {
  const body = Buffer.from(answer.body)
  return { status: answer.status, headers: [...Object.entries(answer.headers), ['content-length', String(body.byteLength)]], body }
}

/**
 * Writes an answer with Node's own response API (not `res.status().send()`), so it behaves the same
 * under Express 4 and 5 and adds nothing (no ETag, no charset rewriting).
 */
export function send(res: ServerResponse, answer: PreparedAnswer, closeConnection = false): void {
  res.statusCode = answer.status
  for (const [name, value] of answer.headers) res.setHeader(name, value)
  if (closeConnection) res.setHeader('connection', 'close')
  res.end(answer.body)
}

/**
 * An answer given before the request body was read (`apiKeyAuth`'s 401, `requireScopes`' 403): it
 * reads and drops up to `DRAIN_LIMIT_BYTES` of the body first, so the connection stays usable, and
 * answers with `Connection: close` when more is left (see `http/body.ts`). A request whose body is
 * already off the wire (none, or read by a body parser) is answered at once, without a promise.
 */
export function sendBeforeBody(req: IncomingMessage, res: ServerResponse, answer: PreparedAnswer): void {
  const drained = drainRequest(req, DRAIN_LIMIT_BYTES)
  // HTTP/2 has no Connection header (node:http2 drops it with a warning); its streams end on their own.
  if (typeof drained === 'boolean') send(res, answer, !drained && req.httpVersionMajor === 1)
  else drained.then((ended) => send(res, answer, !ended && req.httpVersionMajor === 1))
}

/**
 * Node's counterpart of `readBody(request, 0, limitBytes)` from `http/body.ts`: reads and drops the
 * body nobody read, up to `limitBytes`. True when nothing of it is left on the connection, false
 * when the answer must close it. Past the bound it pauses the request instead of destroying it
 * (which would reset the socket before the answer is written).
 */
export function drainRequest(req: IncomingMessage, limitBytes: number): boolean | Promise<boolean> {
  // `complete`: the parser has the whole message, so nothing is left on the wire (Node drops what is buffered).
  if (req.complete || req.readableEnded) return true
  if (declaredLargerThan(req.headers['content-length'], req.headers['transfer-encoding'], limitBytes)) return false
  return new Promise((resolve) => {
    let size = 0
    const settle = (ended: boolean) => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onGone)
      req.off('close', onGone)
      resolve(ended)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength
      if (size > limitBytes) {
        req.pause()
        settle(false)
      }
    }
    const onEnd = () => settle(true)
    const onGone = () => settle(req.complete)
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onGone)
    req.on('close', onGone)
  })
}

/** The header lookup for Node's `IncomingHttpHeaders` (names already lower-case). */
export function nodeHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}
