import type { Context, MiddlewareHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Keyward } from '../core/keyward.js'
import type { VerifiedKey } from '../core/types.js'
import {
  answerFor,
  fetchHeader,
  type HttpAnswer,
  type KeyExtractionOptions,
  keyExtractor,
  problemAnswer,
  rejectionAnswers,
  toResponse,
} from '../http/problem.js'
import { defaultKeyward } from '../index.js'
import { answerBeforeBody } from './body.js'

/**
 * The variables `apiKeyAuth()` sets. They are typed on the routes it guards only: chain it
 * (`new Hono().use(apiKeyAuth()).get(...)`), pass it per route (`app.get(path, apiKeyAuth(), h)`)
 * or use `requireScopes()` on the route, and `c.var.apiKey` is typed there; on a route it does not
 * guard, reading `c.var.apiKey` is a compile error rather than a 500 at run time.
 */
export type ApiKeyVariables = { apiKey: VerifiedKey }

export interface ApiKeyAuthOptions extends KeyExtractionOptions {
  /**
   * The keyward instance to verify against.
   * @default the shared zero-config instance (see `defaultKeyward()` in `keyward`)
   */
  keyward?: Keyward
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
  const answers = rejectionAnswers(options.realm ?? 'keyward')
  let instance = options.keyward
  return async function apiKeyAuthMiddleware(c, next) {
    const presented = extract(c.req.raw.headers, fetchHeader)
    if (presented === undefined) return reject(c, answers.missing_api_key)
    instance ??= defaultKeyward()
    let decision = instance.verifyFast(presented)
    if (decision instanceof Promise) decision = await decision
    if (!decision.ok) return reject(c, answers[decision.code])
    c.set('apiKey', decision.key)
    await next()
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
  return async function requireScopesMiddleware(c, next) {
    // Read untyped: this middleware may run on a route apiKeyAuth() does not guard.
    const key = c.get('apiKey') as VerifiedKey | undefined
    if (key === undefined) return reject(c, missing)
    if (key.scopes.length > 0 && !scopes.every((scope) => key.scopes.includes(scope))) return reject(c, insufficient)
    await next()
  }
}

/**
 * Rejects as Hono's own `bearerAuth` does: throws an `HTTPException` carrying the ready response,
 * so a host's `app.onError` sees it. A body the request may carry is drained first (bounded), so
 * the connection stays usable (`answerBeforeBody`); a request without one is rejected at once.
 */
function reject(c: Context, answer: HttpAnswer): Promise<never> {
  const drained = answerBeforeBody(c, toResponse(answer))
  if (drained instanceof Promise) return drained.then((response) => Promise.reject(exception(answer, response)))
  throw exception(answer, drained)
}

/** Rejections are common (every bad request) and their stack is of no use, so none is captured. */
function exception(answer: HttpAnswer, response: Response): HTTPException {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return new HTTPException(answer.status as 401, { res: response, message: answer.detail })
  } finally {
    Error.stackTraceLimit = limit
  }
}
