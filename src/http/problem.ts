import type { LimitReport } from '../core/controls/enforcer.js'
import {
  ERRORS,
  type ErrorCode,
  type ErrorStatus,
  type KeywardError,
  toProblem,
  type VerifyErrorCode,
  wwwAuthenticate,
} from '../core/errors.js'
import { limitHeaders } from './ratelimit-headers.js'

/**
 * The one place where an error value becomes HTTP: status, headers and an RFC 9457 body. Both the
 * Hono and the Express adapters answer from here, so their answers cannot drift apart.
 */
export interface HttpAnswer {
  status: number
  headers: Record<string, string>
  body: string
  /** The problem's sentence, for logs (an `HTTPException`'s message). */
  detail: string
}

export const PROBLEM_JSON = 'application/problem+json'

export function problemAnswer(
  error: KeywardError,
  options: { realm: string; scope?: readonly string[] },
): HttpAnswer & { status: ErrorStatus } {
  const problem = toProblem(error)
  const headers: Record<string, string> = { 'content-type': PROBLEM_JSON }
  const challenge = wwwAuthenticate(error.code, options.realm, error.detail, options.scope)
  if (challenge !== undefined) headers['www-authenticate'] = challenge
  if (error.code === 'store_unavailable' || error.code === 'limiter_unavailable') headers['retry-after'] = '1'
  return { status: problem.status, headers, body: JSON.stringify(problem), detail: problem.detail }
}

/** Precomputed answers for the codes the middleware returns on every bad request. */
export function answerFor(code: ErrorCode, realm: string): HttpAnswer {
  return problemAnswer({ code, detail: ERRORS[code].detail }, { realm })
}

/** Every answer an `apiKeyAuth` middleware can reject a request with. */
export type RejectionCode = 'missing_api_key' | VerifyErrorCode
const REJECTION_CODES: readonly RejectionCode[] = [
  'missing_api_key',
  'invalid_api_key',
  'api_key_revoked',
  'api_key_expired',
  'api_key_rotated',
  'api_key_disabled',
  'ip_not_allowed',
  'rate_limited',
  'credits_exhausted',
  'limiter_unavailable',
  'store_unavailable',
  'internal_error',
]

/**
 * The middleware's rejections, built once per middleware (each framework then encodes them its own
 * way), so a bad request costs no JSON serialisation.
 */
export function rejectionAnswers<T = HttpAnswer>(
  realm: string,
  encode: (answer: HttpAnswer) => T = (answer) => answer as T,
): Record<RejectionCode, T> {
  return Object.fromEntries(REJECTION_CODES.map((code) => [code, encode(answerFor(code, realm))])) as Record<RejectionCode, T>
}

export function toResponse(answer: HttpAnswer): Response {
  return new Response(answer.body, { status: answer.status, headers: answer.headers })
}

/** Header names are validated once, when a middleware is built. */
export function assertHeaderName(name: string, option: string): string {
  if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name))
    throw new Error(`keyward: option "${option}" must be an HTTP header name, got ${JSON.stringify(name)}`)
  return name.toLowerCase()
}

export interface KeyExtractionOptions {
  /**
   * The header that carries the key. Set `null` to accept only `Authorization: Bearer`.
   * @default 'x-api-key'
   */
  header?: string | null
  /**
   * Also accept `Authorization: Bearer <key>`.
   * @default true
   */
  bearer?: boolean
  /**
   * The realm named in `WWW-Authenticate`.
   * @default 'keyward'
   */
  realm?: string
}

/**
 * Reads the presented key from headers only, never from the query string (Kong/kong#4366).
 * `get(headers, name)` is the framework's header lookup (lower-case names); it is passed with the
 * headers rather than closed over them so the hot path allocates no function per request.
 */
export function keyExtractor(
  options: KeyExtractionOptions,
): <H>(headers: H, get: (headers: H, name: string) => string | null | undefined) => string | undefined {
  const header = options.header === null ? undefined : assertHeaderName(options.header ?? 'x-api-key', 'header')
  const bearer = options.bearer !== false
  if (header === undefined && !bearer) throw new Error('keyward: options "header" and "bearer" cannot both be off')
  return (headers, get) => {
    if (header !== undefined) {
      const value = get(headers, header)
      if (value) return value.trim()
    }
    if (bearer) {
      const authorization = get(headers, 'authorization')
      if (authorization && authorization.length > 7 && authorization.slice(0, 7).toLowerCase() === 'bearer ')
        return authorization.slice(7).trim()
    }
    return undefined
  }
}

/**
 * The answer to a refused verification: the precomputed one, or — for a limited key — one with
 * its own detail (which limit) and its `RateLimit-Policy`, `RateLimit` and `Retry-After` headers.
 */
export function refusalAnswer<T>(
  decision: { code: VerifyErrorCode; limits?: LimitReport; detail?: string },
  answers: Record<RejectionCode, T>,
  realm: string,
  encode: (answer: HttpAnswer) => T,
): T {
  if (decision.limits === undefined && decision.detail === undefined) return answers[decision.code]
  const answer = problemAnswer({ code: decision.code, detail: decision.detail ?? ERRORS[decision.code].detail }, { realm })
  if (decision.limits !== undefined) Object.assign(answer.headers, limitHeaders(decision.limits))
  return encode(answer)
}
