import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { VerifiedKey } from '../core/types.js'
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
export function send(res: ServerResponse, answer: PreparedAnswer): void {
  res.statusCode = answer.status
  for (const [name, value] of answer.headers) res.setHeader(name, value)
  res.end(answer.body)
}

/** The header lookup for Node's `IncomingHttpHeaders` (names already lower-case). */
export function nodeHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}
