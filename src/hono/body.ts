import type { Context, MiddlewareHandler } from 'hono'
import { DRAIN_LIMIT_BYTES, DRAIN_LIMIT_FACTOR, readBody } from '../http/body.js'

/**
 * The keys router's body limit, in place of `hono/body-limit` (which answers 413 and leaves the rest
 * of the body on the connection, see `http/body.ts`). It reads the whole body before any route
 * runs, so no later answer (403, 404, 409, 415) leaves bytes on the wire. A body over `maxBytes`
 * gets `tooLarge(c)`: on a kept connection when it ended within `DRAIN_LIMIT_FACTOR × maxBytes`,
 * with `Connection: close` otherwise. Answers given before it (401) go through `answerBeforeBody`.
 */
export function readBodyFirst(maxBytes: number, tooLarge: (c: Context) => Response): MiddlewareHandler {
  const limitBytes = DRAIN_LIMIT_FACTOR * maxBytes
  return async function readBodyFirstMiddleware(c, next) {
    const request = c.req.raw
    if (request.bodyUsed || request.method === 'GET' || request.method === 'HEAD') return next()
    const read = await readBody(request, maxBytes, limitBytes)
    if (read.bytes === null) return read.ended ? tooLarge(c) : closing(c, tooLarge(c))
    // The stream is spent: later readers (the validator, c.req.json()) get the bytes from here.
    c.req.raw = new Request(request, { body: read.bytes })
    await next()
  }
}

/**
 * An answer given before the request body was read (`apiKeyAuth`'s 401, `requireScopes`' 403, the
 * keys router's 401). It reads and drops up to `limitBytes` of the body first, so the connection
 * stays usable, and adds `Connection: close` to the answer when more is left. A request without a
 * body is answered at once.
 */
export function answerBeforeBody(c: Context, response: Response, limitBytes = DRAIN_LIMIT_BYTES): Response | Promise<Response> {
  const request = c.req.raw
  if (request.method === 'GET' || request.method === 'HEAD') return response
  return readBody(request, 0, limitBytes).then((read) => (read.ended ? response : closing(c, response)))
}

/** The answer with `Connection: close`: the client must not send another request on this connection. */
function closing(c: Context, response: Response): Response {
  // HTTP/2 has no Connection header (node:http2 drops it with a warning); its streams end on their own.
  const incoming = (c.env as { incoming?: { httpVersionMajor?: unknown } } | undefined)?.incoming
  if (incoming?.httpVersionMajor !== 2) response.headers.set('connection', 'close')
  return response
}
