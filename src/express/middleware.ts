import type { ServerResponse } from 'node:http'
import type { VerifiedKey } from '../core/types.js'
import type { Decision } from '../core/verification/decide.js'
import { spendCredits as spendKeyCredits } from '../core/verification/verifier.js'
import type { ApiKeyAuthOptions } from '../hono/middleware.js'
import { answerFor, keyExtractor, problemAnswer, refusalAnswer, rejectionAnswers } from '../http/problem.js'
import { setLimitHeaders } from '../http/ratelimit-headers.js'
import { requestFacts } from '../http/request-facts.js'
import { defaultKeyward } from '../index.js'
import { type ExpressRequestLike, type KeywardRequestHandler, type NextLike, nodeHeader, prepare, sendBeforeBody } from './node-http.js'

/**
 * The same options as `apiKeyAuth` from `keyward/hono`: one set of options, two frameworks; `cost`
 * and `clientAddress` take Express's `req`.
 */
export type ExpressApiKeyAuthOptions = ApiKeyAuthOptions<ExpressRequestLike>

/**
 * Express middleware that rejects requests without a valid API key and puts the verified key on
 * `req.apiKey`. Same options, status codes, problem+json bodies and `WWW-Authenticate` headers as
 * the Hono middleware; works with Express 4 and 5.
 *
 * @example
 * import { apiKeyAuth, withApiKey } from 'keyward/express'
 *
 * app.use('/v1', apiKeyAuth())
 * app.get('/v1/orders', withApiKey((req: express.Request, res: express.Response, key) => res.json({ tenant: key.tenantId })))
 */
export function apiKeyAuth(options: ExpressApiKeyAuthOptions = {}): KeywardRequestHandler {
  const extract = keyExtractor(options)
  const realm = options.realm ?? 'keyward'
  const answers = rejectionAnswers(realm, prepare)
  const facts = requestFacts<ExpressRequestLike>(options, options.clientAddress ?? ((req) => req.socket?.remoteAddress), (req) =>
    nodeHeader(req.headers, 'x-forwarded-for'),
  )
  let instance = options.keyward

  const conclude = (decision: Decision, req: ExpressRequestLike, res: ServerResponse, next: NextLike) => {
    if (!decision.ok) return sendBeforeBody(req, res, refusalAnswer(decision, answers, realm, prepare))
    // A limited key's every answer, 2xx included, tells its limits (IETF RateLimit headers).
    if (decision.limits !== undefined) setLimitHeaders(decision.limits, res)
    req.apiKey = decision.key
    next()
  }

  return function apiKeyAuthMiddleware(req, res, next) {
    const presented = extract(req.headers, nodeHeader)
    if (presented === undefined) return sendBeforeBody(req, res, answers.missing_api_key)
    instance ??= defaultKeyward()
    // A cache hit is answered synchronously: no promise, no extra tick on the hot path.
    const decision = instance.verifyFast(presented, req, facts)
    if (decision instanceof Promise) {
      // verify never rejects; should it, fail closed rather than hand the error to the host.
      decision.then(
        (settled) => conclude(settled, req, res, next),
        () => sendBeforeBody(req, res, answers.store_unavailable),
      )
      return
    }
    conclude(decision, req, res, next)
  }
}

/**
 * Spends up to `amount` more credits of the request's key after the handler did its work (e.g.
 * tokens generated): never below 0 and never refused. Resolves to what was charged and what is
 * left, or null when the key has no credits (or the route is not behind `apiKeyAuth()`).
 */
export function spendCredits(req: ExpressRequestLike, amount: number): Promise<{ charged: number; remaining: number } | null> {
  return req.apiKey === undefined ? Promise.resolve(null) : spendKeyCredits(req.apiKey, amount)
}

/**
 * Answers 403 `insufficient_scope` unless `req.apiKey` has every scope named. A key with no scopes
 * is unrestricted within its tenant and passes. Put it after `apiKeyAuth()`.
 *
 * @example
 * app.post('/v1/orders', requireScopes('orders:write'), createOrder)
 */
export function requireScopes(...scopes: string[]): KeywardRequestHandler {
  if (scopes.length === 0) throw new Error('keyward: requireScopes() needs at least one scope')
  const realm = 'keyward'
  const missing = prepare(answerFor('missing_api_key', realm))
  const insufficient = prepare(
    problemAnswer(
      { code: 'insufficient_scope', detail: `This request needs the scope(s): ${scopes.join(', ')}.` },
      { realm, scope: scopes },
    ),
  )
  return function requireScopesMiddleware(req, res, next) {
    const key = req.apiKey
    if (key === undefined) return sendBeforeBody(req, res, missing)
    if (key.scopes.length > 0 && !scopes.every((scope) => key.scopes.includes(scope))) return sendBeforeBody(req, res, insufficient)
    next()
  }
}

/**
 * A route handler that receives the verified key as a typed argument. On a route `apiKeyAuth()`
 * does not guard there is no key, and the request gets a clear 401 `missing_api_key` instead of a
 * crash in the handler. Annotate `req` and `res` with your Express types: they are passed through.
 *
 * @example
 * app.get('/v1/orders', withApiKey((req: express.Request, res: express.Response, key) => res.json({ tenant: key.tenantId })))
 */
export function withApiKey<Req extends ExpressRequestLike, Res extends ServerResponse>(
  handler: (req: Req, res: Res, key: VerifiedKey, next: NextLike) => unknown,
): (req: Req, res: Res, next: NextLike) => void {
  const missing = prepare(answerFor('missing_api_key', 'keyward'))
  return function withApiKeyHandler(req, res, next) {
    const key = req.apiKey
    if (key === undefined) return sendBeforeBody(req, res, missing)
    const outcome = handler(req, res, key, next)
    // Express 4 does not catch a rejected promise: hand it to the error handlers as Express 5 does.
    if (outcome instanceof Promise) outcome.catch(next)
  }
}
