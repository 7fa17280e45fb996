import type { ServerResponse } from 'node:http'
import type { Decision } from '../core/decide.js'
import type { ApiKeyAuthOptions } from '../hono/middleware.js'
import { answerFor, keyExtractor, problemAnswer, rejectionAnswers } from '../http/problem.js'
import { defaultKeyward } from '../index.js'
import { type ExpressRequestLike, type KeywardRequestHandler, type NextLike, nodeHeader, prepare, sendBeforeBody } from './node-http.js'

/** The same options as `apiKeyAuth` from `keyward/hono`: one set of options, two frameworks. */
export type { ApiKeyAuthOptions }

/**
 * Express middleware that rejects requests without a valid API key and puts the verified key on
 * `req.apiKey`. Same options, status codes, problem+json bodies and `WWW-Authenticate` headers as
 * the Hono middleware; works with Express 4 and 5.
 *
 * @example
 * import { apiKeyAuth } from 'keyward/express'
 *
 * app.use('/v1', apiKeyAuth())
 * app.get('/v1/orders', (req, res) => res.json({ tenant: req.apiKey.tenantId }))
 */
export function apiKeyAuth(options: ApiKeyAuthOptions = {}): KeywardRequestHandler {
  const extract = keyExtractor(options)
  const answers = rejectionAnswers(options.realm ?? 'keyward', prepare)
  let instance = options.keyward

  const conclude = (decision: Decision, req: ExpressRequestLike, res: ServerResponse, next: NextLike) => {
    if (!decision.ok) return sendBeforeBody(req, res, answers[decision.code])
    req.apiKey = decision.key
    next()
  }

  return function apiKeyAuthMiddleware(req, res, next) {
    const presented = extract(req.headers, nodeHeader)
    if (presented === undefined) return sendBeforeBody(req, res, answers.missing_api_key)
    instance ??= defaultKeyward()
    // A cache hit is answered synchronously: no promise, no extra tick on the hot path.
    const decision = instance.verifyFast(presented)
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
    const key = req.apiKey as ExpressRequestLike['apiKey'] | undefined
    if (key === undefined) return sendBeforeBody(req, res, missing)
    if (key.scopes.length > 0 && !scopes.every((scope) => key.scopes.includes(scope))) return sendBeforeBody(req, res, insufficient)
    next()
  }
}
