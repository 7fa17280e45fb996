import type { Context, MiddlewareHandler, Next } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { LimitReport, RequestFacts } from '../core/controls/enforcer.js'
import type { Keyward } from '../core/keyward.js'
import type { VerifiedKey } from '../core/types.js'
import type { Decision } from '../core/verification/decide.js'
import { spendCredits as spendKeyCredits } from '../core/verification/verifier.js'
import {
  answerFor,
  type HttpAnswer,
  type KeyExtractionOptions,
  keyExtractor,
  problemAnswer,
  refusalAnswer,
  rejectionAnswers,
  toResponse,
} from '../http/problem.js'
import { deferLimitHeaders, type NodeResponseLike, setLimitHeaders } from '../http/ratelimit-headers.js'
import { type ControlOptions, requestFacts } from '../http/request-facts.js'
import { defaultKeyward } from '../index.js'
import { answerBeforeBody } from './body.js'
import { socketAddress } from './client-address.js'

/**
 * The variables `apiKeyAuth()` sets. They are typed on the routes it guards only: chain it
 * (`new Hono().use(apiKeyAuth()).get(...)`), pass it per route (`app.get(path, apiKeyAuth(), h)`)
 * or use `requireScopes()` on the route, and `c.var.apiKey` is typed there; on a route it does not
 * guard, reading `c.var.apiKey` is a compile error rather than a 500 at run time.
 */
export type ApiKeyVariables = { apiKey: VerifiedKey }

export interface ApiKeyAuthOptions<R = Context> extends KeyExtractionOptions, ControlOptions<R> {
  /**
   * The keyward instance to verify against.
   * @default the shared zero-config instance (see `defaultKeyward()` in `keyward`)
   */
  keyward?: Keyward
  /**
   * The socket's peer address on runtimes other than Node (`@hono/node-server` is read by
   * default). Only keys with an IP allowlist ask for it.
   * @default the Express bridge's binding, else `c.env.incoming.socket.remoteAddress`
   */
  clientAddress?: (c: R) => string | undefined
}

/** What `@hono/node-server` puts in `c.env`: Node's own request and response (typed here so keyward need not import them). */
interface NodeBindings {
  incoming?: { headers: Record<string, string | string[] | undefined> }
  outgoing?: NodeResponseLike
}

/**
 * A limited key's RateLimit headers. Served by `@hono/node-server`, they go to Node's response,
 * handed to its `writeHead` with the handler's own headers, whatever Response the handler returns
 * (or `app.onError` makes). `c.header()` would instead make Hono build a `Headers` object for the
 * handler's response, and node-server convert it back, on every request of a limited key (about a
 * tenth of the throughput). Anywhere else, `c.header()`; either way the client gets the same
 * headers, but on node-server they are not in `c.res.headers`.
 */
function sendLimitHeaders(c: Context, report: LimitReport): void {
  const outgoing = (c.env as NodeBindings | undefined)?.outgoing
  if (outgoing !== undefined && typeof outgoing.writeHead === 'function' && !outgoing.headersSent) deferLimitHeaders(report, outgoing)
  else setLimitHeaders(report, { setHeader: (name, value) => c.header(name, value) })
}

/**
 * A request header. Served by `@hono/node-server`, it is read from the object Node's parser
 * already built (names lower-cased, values validated by the parser): no `Headers` object and no
 * per-call name checks on the hot path. Anywhere else (other runtimes, `app.request()`, the Express
 * bridge) through the standard `Request`.
 */
export function requestHeader(c: Context, name: string): string | null | undefined {
  const incoming = (c.env as NodeBindings | undefined)?.incoming
  if (incoming === undefined) return c.req.raw.headers.get(name)
  const value = incoming.headers[name]
  return typeof value === 'string' || value === undefined ? value : value.join(', ')
}

/** How `apiKeyAuth` and the keys router learn a Hono request's client address and cost. */
export function honoRequestFacts(options: ApiKeyAuthOptions): RequestFacts<Context> {
  return requestFacts(options, options.clientAddress ?? socketAddress, (c) => requestHeader(c, 'x-forwarded-for'))
}

/**
 * Rejects requests without a valid API key and puts the verified key on `c.var.apiKey`. A
 * rejection leaves the middleware as Hono's own `bearerAuth` does: an `HTTPException` carrying the
 * ready problem+json answer, so a host's `app.onError` sees it (and, without one, the client gets
 * that answer unchanged).
 *
 * @example
 * const v1 = new Hono()
 *   .use(apiKeyAuth())
 *   .get('/orders', (c) => c.json({ tenant: c.var.apiKey.tenantId }))
 * app.route('/v1', v1)
 */
export function apiKeyAuth(options: ApiKeyAuthOptions = {}): MiddlewareHandler<{ Variables: ApiKeyVariables }> {
  const extract = keyExtractor(options)
  const realm = options.realm ?? 'keyward'
  const answers = rejectionAnswers(realm)
  const facts = honoRequestFacts(options)
  let instance = options.keyward
  const admit = (c: Context, next: Next, decision: Decision): Promise<void> => {
    if (!decision.ok) return reject(c, refusalAnswer(decision, answers, realm, identity))
    // A limited key's every answer, 2xx included, tells its limits (IETF RateLimit headers).
    if (decision.limits !== undefined) sendLimitHeaders(c, decision.limits)
    c.set('apiKey', decision.key)
    return next()
  }
  // Not an async function: a cache hit calls next() with no promise of its own (see `reject` for
  // why a rejection is a rejected promise rather than a throw).
  return function apiKeyAuthMiddleware(c, next) {
    const presented = extract(c, requestHeader)
    if (presented === undefined) return reject(c, answers.missing_api_key)
    instance ??= defaultKeyward()
    const decision = instance.verifyFast(presented, c, facts)
    if (decision instanceof Promise) return decision.then((settled) => admit(c, next, settled))
    return admit(c, next, decision)
  }
}

/**
 * Answers 403 `insufficient_scope` unless the verified key has every scope named. A key with no
 * scopes is unrestricted within its tenant and passes. Typed as guarding its route, so a handler
 * after it reads `c.var.apiKey` without a cast.
 *
 * @example
 * app.post('/v1/orders', requireScopes('orders:write'), createOrder)
 */
export function requireScopes(...scopes: string[]): MiddlewareHandler<{ Variables: ApiKeyVariables }> {
  if (scopes.length === 0) throw new Error('keyward: requireScopes() needs at least one scope')
  const realm = 'keyward'
  const missing = answerFor('missing_api_key', realm)
  const insufficient = problemAnswer(
    { code: 'insufficient_scope', detail: `This request needs the scope(s): ${scopes.join(', ')}.` },
    { realm, scope: scopes },
  )
  return function requireScopesMiddleware(c, next) {
    // Read untyped: this middleware may run on a route apiKeyAuth() does not guard.
    const key = c.get('apiKey') as VerifiedKey | undefined
    if (key === undefined) return reject(c, missing)
    if (key.scopes.length > 0 && !scopes.every((scope) => key.scopes.includes(scope))) return reject(c, insufficient)
    return next()
  }
}

/**
 * Spends up to `amount` more credits of the request's key after the handler did its work (e.g.
 * tokens generated): never below 0 and never refused. Resolves to what was charged and what is
 * left, or null when the key has no credits (or the route is not behind `apiKeyAuth()`).
 *
 * @example
 * app.post('/v1/complete', async (c) => {
 *   const answer = await model.complete(...)
 *   await spendCredits(c, answer.tokens)
 *   return c.json(answer)
 * })
 */
export function spendCredits(c: Context, amount: number): Promise<{ charged: number; remaining: number } | null> {
  const key = c.get('apiKey') as VerifiedKey | undefined
  return key === undefined ? Promise.resolve(null) : spendKeyCredits(key, amount)
}

/**
 * Rejects as Hono's own `bearerAuth` does, with an `HTTPException` carrying the ready answer, so a
 * host's `app.onError` sees it. A body the request may carry is drained first (bounded), so the
 * connection stays usable (`answerBeforeBody`); a request without one is rejected at once.
 *
 * The exception is handed back as a rejected promise, not thrown: Hono awaits the middleware
 * either way and its `app.onError` gets the same exception. A `throw` is dear here: code called
 * from Node's HTTP parser runs with no C++ `TryCatch` around it, and there V8 records where every
 * throw happened, caught or not (a caught throw measured 1.2 µs from a callback, 0.2 µs in a plain
 * loop). Measured over real HTTP with a host `onError`: a thrown rejection ran at 0.77× the throughput
 * of a middleware returning the same answer, a rejected promise at 0.88× (medians of five rounds).
 */
function reject(c: Context, answer: HttpAnswer): Promise<never> {
  // Without a body there is nothing to drain: the common case builds no Response and no Headers here.
  const method = c.req.method
  if (method === 'GET' || method === 'HEAD') return Promise.reject(keyRejection(answer, answer.headers))
  const drained = answerBeforeBody(c, toResponse(answer))
  if (drained instanceof Promise) return drained.then((response) => Promise.reject(keyRejection(answer, response.headers)))
  return Promise.reject(keyRejection(answer, drained.headers))
}

/**
 * An `HTTPException` carrying a rejection, as Hono's own `bearerAuth` throws them: `instanceof
 * HTTPException` (and `Error`), with `status`, `message` and `getResponse()`, which builds the
 * answer from the problem's string, written by @hono/node-server in one go.
 *
 * Rejections are common (every bad request), so they are made without running `Error`'s
 * constructor, whose stack capture (even an empty one) was most of a rejection's own cost; `stack`
 * reads as `HTTPException: <message>`, with no frames (a rejection is not a fault of the code).
 * (Hono's *default* error handler re-wraps `getResponse().body`, a stream, in a new Response,
 * which node-server then pipes chunk by chunk: a fraction of the speed of a host `app.onError`
 * that returns `err.getResponse()` itself; the README says so.)
 */
class KeyRejection extends HTTPException {
  declare answer: HttpAnswer
  declare answerHeaders: Headers | Record<string, string>

  override getResponse(): Response {
    return new Response(this.answer.body, { status: this.answer.status, headers: this.answerHeaders })
  }
}
Object.defineProperty(KeyRejection.prototype, 'stack', {
  get(this: KeyRejection) {
    return `HTTPException: ${this.message}`
  },
  configurable: true,
})

function keyRejection(answer: HttpAnswer, headers: Headers | Record<string, string>): KeyRejection {
  // HTTPException's own fields (`res`, `status`) are read-only in its type, not at run time.
  const rejection = Object.create(KeyRejection.prototype) as { -readonly [K in keyof KeyRejection]: KeyRejection[K] }
  rejection.res = undefined
  rejection.status = answer.status as 401
  rejection.message = answer.detail
  rejection.answer = answer
  rejection.answerHeaders = headers
  return rejection as KeyRejection
}

const identity = <T>(value: T): T => value
