import type { MiddlewareHandler } from 'hono'
import type { Keyward } from '../core/keyward.js'
import type { VerifiedKey } from '../core/types.js'
import {
  answerFor,
  fetchHeader,
  type KeyExtractionOptions,
  keyExtractor,
  problemAnswer,
  rejectionAnswers,
  toResponse,
} from '../http/problem.js'
import { defaultKeyward } from '../index.js'
import { answerBeforeBody } from './body.js'

declare module 'hono' {
  interface ContextVariableMap {
    /** The verified API key, set by `apiKeyAuth()`. */
    apiKey: VerifiedKey
  }
}

/** The variables `apiKeyAuth()` sets, for apps that type their `Hono<{ Variables }>` explicitly. */
export type ApiKeyVariables = { apiKey: VerifiedKey }

export interface ApiKeyAuthOptions extends KeyExtractionOptions {
  /**
   * The keyward instance to verify against.
   * @default the shared zero-config instance (SQLite at KEYWARD_DATABASE_URL, default ./keyward.db)
   */
  keyward?: Keyward
}

/**
 * Rejects requests without a valid API key and puts the verified key on `c.var.apiKey`.
 *
 * @example
 * app.use('/v1/*', apiKeyAuth())
 * app.get('/v1/orders', (c) => c.json({ tenant: c.var.apiKey.tenantId }))
 */
export function apiKeyAuth(options: ApiKeyAuthOptions = {}): MiddlewareHandler<{ Variables: ApiKeyVariables }> {
  const extract = keyExtractor(options)
  const realm = options.realm ?? 'keyward'
  const answers = rejectionAnswers(realm)
  let instance = options.keyward
  return async function apiKeyAuthMiddleware(c, next) {
    const presented = extract(c.req.raw.headers, fetchHeader)
    if (presented === undefined) return answerBeforeBody(c, toResponse(answers.missing_api_key))
    instance ??= defaultKeyward()
    let decision = instance.verifyFast(presented)
    if (decision instanceof Promise) decision = await decision
    if (!decision.ok) return answerBeforeBody(c, toResponse(answers[decision.code]))
    c.set('apiKey', decision.key)
    await next()
  }
}

/**
 * Answers 403 `insufficient_scope` unless the verified key has every scope named. A key with no
 * scopes is unrestricted within its tenant and passes.
 *
 * @example
 * app.post('/v1/orders', requireScopes('orders:write'), createOrder)
 */
export function requireScopes(...scopes: string[]): MiddlewareHandler<{ Variables: ApiKeyVariables }> {
  if (scopes.length === 0) throw new Error('keyward: requireScopes() needs at least one scope')
  const realm = 'keyward'
  return async function requireScopesMiddleware(c, next) {
    const key = c.get('apiKey') as VerifiedKey | undefined
    if (key === undefined) return answerBeforeBody(c, toResponse(answerFor('missing_api_key', realm)))
    if (key.scopes.length > 0 && !scopes.every((scope) => key.scopes.includes(scope))) {
      return answerBeforeBody(
        c,
        toResponse(
          problemAnswer(
            { code: 'insufficient_scope', detail: `This request needs the scope(s): ${scopes.join(', ')}.` },
            { realm, scope: scopes },
          ),
        ),
      )
    }
    await next()
  }
}
