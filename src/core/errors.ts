/**
 * Every error keyward can answer, as one table: a stable machine-readable code, the HTTP status an
 * adapter maps it to, and a sentence a person can read. Inside the core an error is a value
 * (`{ ok: false, error }`); only adapters turn it into a response, from this table.
 */
export const ERRORS = {
  missing_api_key: {
    status: 401,
    title: 'Missing API key',
    detail: 'Send an API key in the X-API-Key header or as Authorization: Bearer <key>.',
  },
  invalid_api_key: { status: 401, title: 'Invalid API key', detail: 'The API key is not valid.' },
  api_key_revoked: { status: 401, title: 'API key revoked', detail: 'The API key has been revoked.' },
  api_key_expired: { status: 401, title: 'API key expired', detail: 'The API key has expired.' },
  api_key_rotated: {
    status: 401,
    title: 'API key rotated',
    detail: 'The API key was rotated and its grace period has ended; use its replacement.',
  },
  api_key_disabled: { status: 401, title: 'API key disabled', detail: 'The API key is disabled.' },
  unauthenticated: { status: 401, title: 'Authentication required', detail: 'This call needs credentials.' },
  insufficient_scope: { status: 403, title: 'Insufficient scope', detail: 'The API key lacks a scope this request needs.' },
  forbidden: { status: 403, title: 'Forbidden', detail: 'The caller may not do this.' },
  ip_not_allowed: { status: 403, title: 'IP address not allowed', detail: 'This API key may not be used from this IP address.' },
  rate_limited: { status: 429, title: 'Rate limited', detail: 'A rate limit of this API key is exhausted; retry later.' },
  credits_exhausted: { status: 429, title: 'Credits exhausted', detail: 'This API key has no credits left for this request.' },
  not_found: { status: 404, title: 'Not found', detail: 'No such API key.' },
  route_not_found: { status: 404, title: 'Not found', detail: 'No such route.' },
  method_not_allowed: { status: 405, title: 'Method not allowed', detail: 'This route does not accept that method.' },
  already_rotated: {
    status: 409,
    title: 'Already rotated',
    detail: 'The API key has already been rotated; rotate its replacement instead.',
  },
  key_revoked: { status: 409, title: 'API key revoked', detail: 'A revoked API key cannot be changed or rotated.' },
  key_expired: { status: 409, title: 'API key expired', detail: 'An expired API key cannot be changed or rotated; create a new key.' },
  key_rotated: {
    status: 409,
    title: 'API key rotated',
    detail: 'A rotated-out API key cannot be changed; change its replacement instead.',
  },
  validation_error: { status: 400, title: 'Invalid request', detail: 'The request has invalid fields.' },
  invalid_json: { status: 400, title: 'Malformed JSON', detail: 'The request body is not valid JSON.' },
  payload_too_large: { status: 413, title: 'Payload too large', detail: 'The request body is too large.' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type', detail: 'Send the request body as application/json.' },
  limiter_unavailable: {
    status: 503,
    title: 'Rate limiter unavailable',
    detail: 'The rate limiter cannot be reached and this key is limited; try again shortly.',
  },
  store_unavailable: { status: 503, title: 'Key store unavailable', detail: 'The API key store cannot be reached; try again shortly.' },
  internal_error: { status: 500, title: 'Internal error', detail: 'Something went wrong on our side.' },
} as const satisfies Record<string, { status: number; title: string; detail: string }>

export type ErrorCode = keyof typeof ERRORS

/** Every HTTP status an error maps to. */
export type ErrorStatus = (typeof ERRORS)[ErrorCode]['status']

/** The codes a failed verification can carry. */
export type VerifyErrorCode =
  | 'invalid_api_key'
  | 'api_key_revoked'
  | 'api_key_expired'
  | 'api_key_rotated'
  | 'api_key_disabled'
  | 'ip_not_allowed'
  | 'rate_limited'
  | 'credits_exhausted'
  | 'limiter_unavailable'
  | 'store_unavailable'
  /** A host bug on the verification path (e.g. a `cost` function that returned a fraction). */
  | 'internal_error'

export interface FieldError {
  /** Dotted path into the body or query, e.g. `scopes.2`. */
  field: string
  message: string
}

export interface KeywardError {
  code: ErrorCode
  /** A sentence for a person; defaults to the table's. */
  detail: string
  /** For `validation_error`: each failing field. */
  errors?: FieldError[]
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: KeywardError }

export function ok<T>(value: T): Result<T> {
  return { ok: true, value }
}

export function fail(code: ErrorCode, detail?: string, errors?: FieldError[]): { ok: false; error: KeywardError } {
  const error: KeywardError = { code, detail: detail ?? ERRORS[code].detail }
  if (errors !== undefined) error.errors = errors
  return { ok: false, error }
}

/** RFC 9457 problem details for an error, plus keyward's `code` (and `errors` for validation). */
export interface ProblemDetails {
  type: string
  title: string
  status: ErrorStatus
  code: ErrorCode
  detail: string
  errors?: FieldError[]
}

export function toProblem(error: KeywardError): ProblemDetails {
  const entry = ERRORS[error.code]
  const problem: ProblemDetails = {
    type: `urn:keyward:error:${error.code}`,
    title: entry.title,
    status: entry.status,
    code: error.code,
    detail: error.detail,
  }
  if (error.errors !== undefined) problem.errors = error.errors
  return problem
}

/**
 * The `WWW-Authenticate` value for a 401/403 (RFC 6750 §3): no `error` when no credentials came,
 * `invalid_token` for a bad one, `insufficient_scope` with the scopes needed.
 */
export function wwwAuthenticate(code: ErrorCode, realm: string, detail: string, scope?: readonly string[]): string | undefined {
  const base = `Bearer realm="${realm}"`
  if (code === 'missing_api_key') return base
  if (code === 'insufficient_scope') {
    return `${base}, error="insufficient_scope", error_description="${quote(detail)}"${scope && scope.length > 0 ? `, scope="${scope.join(' ')}"` : ''}`
  }
  if (ERRORS[code].status === 401) return `${base}, error="invalid_token", error_description="${quote(detail)}"`
  return undefined
}

function quote(text: string): string {
  return text.replace(/["\\]/g, '')
}
