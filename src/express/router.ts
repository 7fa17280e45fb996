import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ErrorCode } from '../core/errors.js'
import type { Actor } from '../core/types.js'
import { CLIENT_ADDRESS_BINDING } from '../hono/client-address.js'
import { ACTOR_BINDING, bridgeTo, PATH_BINDING } from '../hono/fallback.js'
import { createKeysRouter as createHonoKeysRouter, type KeysRouterOptions as HonoKeysRouterOptions } from '../hono/router.js'
import { answerFor } from '../http/problem.js'
import {
  type ExpressRequestLike,
  type KeywardErrorHandler,
  type KeywardRequestHandler,
  type PreparedAnswer,
  prepare,
  send,
} from './node-http.js'

export interface KeysRouterOptions<Req extends ExpressRequestLike = ExpressRequestLike>
  extends Omit<HonoKeysRouterOptions, 'authenticate' | 'clientAddress'> {
  /**
   * Resolve the caller from the host app's own auth (a session, a JWT verified by a middleware
   * before the router). Return the tenant (and optionally project and scopes) the caller acts for,
   * or null to fall back to an API key of the tenant; with `subject` (the user's id), the audit log
   * names that user as the actor of each change. Annotate `req` with your app's `Request` type
   * to read what your middlewares put on it.
   * @default undefined (management calls authenticate with an API key of the tenant)
   *
   * @example
   * authenticate: (req: express.Request) => (req.auth?.tenant_id ? { tenantId: req.auth.tenant_id } : null)
   */
  authenticate?: (req: Req) => Actor | null | undefined | Promise<Actor | null | undefined>
}

/**
 * The keys router as Express sees it: a request handler and an error handler, to mount together
 * with `app.use('/api-keys', keysRouter)`. The error handler exists because a body parser the host
 * mounted first (`express.json()`) reports bad JSON with `next(err)`, which only four-parameter
 * handlers receive; it answers those in problem+json instead of the host's HTML error page.
 */
export type ExpressKeysRouter<Req extends ExpressRequestLike = ExpressRequestLike> = [KeywardRequestHandler<Req>, KeywardErrorHandler<Req>]

/** `application/json` and `application/<vendor>+json`, with or without parameters. */
const JSON_CONTENT_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i

/** body-parser (and raw-body) error types, as the problem a client should get for each. */
const BODY_PARSER_ERRORS: Record<string, ErrorCode> = {
  'entity.parse.failed': 'invalid_json',
  'entity.too.large': 'payload_too_large',
  'parameters.too.many': 'payload_too_large',
  'encoding.unsupported': 'unsupported_media_type',
  'charset.unsupported': 'unsupported_media_type',
}

/**
 * The key-management router for Express 4 and 5, mountable under any path. It is a thin bridge to
 * the one router implementation (`keyward/hono`): each request is turned into a WHATWG `Request`
 * carrying the full original URL (so `Link` headers keep the mount path), answered by the Hono
 * router and copied back. It works whether or not the host mounted `express.json()` (or another
 * body parser) before it, and answers every error itself in problem+json, never through `next(err)`.
 *
 * @example
 * import { createKeysRouter } from 'keyward/express'
 *
 * app.use('/api-keys', createKeysRouter({ keyward: kw }))
 * // Or manage keys with your own login instead of an API key:
 * app.use('/api-keys', requireLogin, createKeysRouter({ keyward: kw, authenticate: (req: express.Request) => ({ tenantId: req.session.tenantId }) }))
 */
export function createKeysRouter<Req extends ExpressRequestLike = ExpressRequestLike>(
  options: KeysRouterOptions<Req> = {},
): ExpressKeysRouter<Req> {
  const { authenticate, ...routerOptions } = options
  const router = createHonoKeysRouter(routerOptions)
  const internalError = prepare(answerFor('internal_error', routerOptions.realm ?? 'keyward'))
  // Hono routes on the path below the Express mount point; `c.req.url` keeps the full URL.
  const bridge = bridgeTo(router)

  async function answer(req: Req, res: ServerResponse): Promise<void> {
    const actor = authenticate === undefined ? null : ((await authenticate(req)) ?? null)
    const { request, discardBody } = toWebRequest(req)
    try {
      const response = await bridge.fetch(request, {
        [ACTOR_BINDING]: actor,
        [PATH_BINDING]: relativePath(req.url),
        // The socket's peer: the router applies `trustProxy` to it as on Hono (not Express's own setting).
        [CLIENT_ADDRESS_BINDING]: req.socket?.remoteAddress,
      })
      await writeResponse(req, res, response)
    } finally {
      discardBody()
    }
  }

  function keysRouter(req: Req, res: ServerResponse) {
    answer(req, res).catch((error: unknown) => {
      // Never a stack trace on the wire and never the host's error page; the host sees the message in its logs.
      console.error('keyward: unexpected error in the keys router:', error instanceof Error ? error.message : error)
      if (!res.headersSent) sendNoStore(res, internalError)
      else res.destroy()
    })
  }

  function keysRouterErrors(error: unknown, req: Req, res: ServerResponse, next: (error?: unknown) => void) {
    const type = typeof error === 'object' && error !== null && 'type' in error ? error.type : undefined
    let code = typeof type === 'string' ? BODY_PARSER_ERRORS[type] : undefined
    // Anything but a body parser's verdict on this request's body is the host's own error.
    if (code === undefined || res.headersSent) return next(error)
    // A parser configured for any type (`express.json({ type: '*/*' })`) fails on a form post: that
    // body is not JSON at all, which the router answers with 415, not as malformed JSON.
    if (code === 'invalid_json' && !JSON_CONTENT_TYPE.test(req.headers['content-type'] ?? '')) code = 'unsupported_media_type'
    sendNoStore(res, prepare(answerFor(code, routerOptions.realm ?? 'keyward')))
  }

  return [keysRouter, keysRouterErrors]
}

/** The answers Express gives without the Hono router say `no-store` too, as every answer under the mount does. */
function sendNoStore(res: ServerResponse, answer: PreparedAnswer): void {
  res.setHeader('cache-control', 'no-store')
  send(res, answer)
}

/** `/key_1/rotate?x=1` → `/key_1/rotate`: the path as Express left it below the mount point. */
export function relativePath(url: string | undefined): string {
  if (url === undefined) return '/'
  const query = url.indexOf('?')
  const path = query === -1 ? url : url.slice(0, query)
  return path.startsWith('/') ? path : `/${path}`
}

/**
 * The Express request as a WHATWG `Request`. If a body parser already read the stream, the body is
 * re-serialised from `req.body` under the original content type (so a form post still gets 415,
 * and an oversized body still 413); otherwise the raw stream is passed through untouched.
 */
export function toWebRequest(req: ExpressRequestLike): { request: Request; discardBody: () => void } {
  const headers = new Headers()
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    // HTTP/2 pseudo-headers (`:path`) are not headers.
    if (name.charCodeAt(0) !== 58) headers.append(name, raw[i + 1] as string)
  }
  const method = req.method ?? 'GET'
  const init: RequestInit & { duplex?: 'half' } = { method, headers }
  let discardBody = () => {}
  if (method !== 'GET' && method !== 'HEAD') {
    const parsed = alreadyParsedBody(req)
    if (parsed !== undefined) {
      // The parser may have inflated or re-chunked the body: describe the bytes actually sent on.
      headers.delete('transfer-encoding')
      headers.delete('content-encoding')
      headers.set('content-length', String(Buffer.byteLength(parsed)))
      init.body = parsed
    } else {
      const stream = bodyStream(req)
      init.body = stream.body
      init.duplex = 'half'
      discardBody = stream.discard
    }
  }
  return { request: new Request(fullUrl(req), init), discardBody }
}

function fullUrl(req: ExpressRequestLike): string {
  const protocol = req.protocol === 'https' ? 'https' : 'http'
  const url = `${protocol}://${req.headers.host ?? 'localhost'}${req.originalUrl}`
  // A Host header no URL parser accepts must not turn into a 500: only the path matters here.
  return URL.canParse(url) ? url : `${protocol}://localhost${req.originalUrl}`
}

/**
 * The body a parser mounted before the router already read, re-serialised; `undefined` when the
 * stream is still unread. body-parser 1 (Express 4) marks a read with `req._body`; body-parser 2
 * (Express 5) leaves the stream ended, as does any other consumer.
 */
function alreadyParsedBody(req: ExpressRequestLike & { _body?: boolean }): Buffer | string | undefined {
  if (req._body !== true && !req.readableEnded) return undefined
  const body = req.body
  if (body === undefined || body === null) return ''
  if (Buffer.isBuffer(body)) return body
  if (typeof body === 'string') return body
  const type = (req.headers['content-type'] ?? '').toLowerCase()
  if (type.startsWith('application/x-www-form-urlencoded')) return formEncode(body)
  return JSON.stringify(body)
}

/** An object back to `a=1&b[c]=2` form encoding (the inverse of `express.urlencoded({ extended: true })`). */
function formEncode(value: unknown): string {
  const pairs: string[] = []
  const walk = (item: unknown, key: string) => {
    if (item !== null && typeof item === 'object') {
      for (const [name, child] of Object.entries(item)) walk(child, key === '' ? name : `${key}[${name}]`)
    } else pairs.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(item ?? ''))}`)
  }
  walk(value, '')
  return pairs.join('&')
}

/**
 * The unread request body as a web stream. Unlike `Readable.toWeb(req)`, cancelling it never
 * destroys the request: that would reset the socket before the answer is written. The router reads
 * every body before it answers, up to a bound (`readBodyFirst`); past it, it answers with
 * `Connection: close`, and what is left is dropped until Node closes the socket after that answer.
 */
function bodyStream(req: IncomingMessage): { body: ReadableStream<Uint8Array>; discard: () => void } {
  let done = false
  const discard = () => {
    done = true
    req.resume()
  }
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      req.on('data', (chunk: Buffer) => {
        if (done) return
        controller.enqueue(chunk)
        if ((controller.desiredSize ?? 0) <= 0) req.pause()
      })
      req.once('end', () => {
        if (!done) controller.close()
        done = true
      })
      req.once('error', (error) => {
        if (!done) controller.error(error)
        done = true
      })
    },
    pull() {
      req.resume()
    },
    cancel: discard,
  })
  return { body, discard }
}

export async function writeResponse(req: IncomingMessage, res: ServerResponse, response: Response): Promise<void> {
  res.statusCode = response.status
  // The router closes connections it left body bytes on; when Node's parser already has the whole
  // request (a body parser read it, or it all arrived), nothing is left and the connection is kept.
  const keepConnection = req.complete || req.httpVersionMajor !== 1
  response.headers.forEach((value, name) => {
    if (name === 'set-cookie' || (name === 'connection' && keepConnection)) return
    res.setHeader(name, value)
  })
  const cookies = response.headers.getSetCookie()
  if (cookies.length > 0) res.setHeader('set-cookie', cookies)
  const body = response.body === null ? undefined : Buffer.from(await response.arrayBuffer())
  if (body !== undefined && !response.headers.has('content-length')) res.setHeader('content-length', String(body.byteLength))
  res.end(body)
}
