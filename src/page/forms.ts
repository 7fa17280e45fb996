import { ERRORS, type ErrorCode, type FieldError, type KeywardError } from '../core/errors.js'
import type { CreateKeyInput } from '../core/management/inputs.js'
import type { Abilities } from './options.js'

/**
 * The page's forms: reading a posted form into the core's inputs, and the core's errors back into
 * messages next to the fields they are about. The core checks every value (the same zod rules as the
 * API); this file only checks that a choice is one the form offered.
 */

/**
 * What went wrong with a form, as a person reads it: a message per form field (shown next to it and
 * in the summary at the top) and messages about the whole form.
 */
export interface FormProblem {
  /** The HTTP status of the page that shows it: the core's code → status table. */
  status: number
  fields: Record<string, string>
  general: string[]
}

/** The form fields' labels, as the page shows them; messages are worded "<label> <what is wrong>." */
export const FIELD_LABELS: Record<string, string> = {
  name: 'Name',
  environment: 'Environment',
  scopes: 'Scopes',
  expires: 'Expires',
  grace: 'Old key keeps working for',
  status: 'Status',
  cursor: 'Page',
  rate_limits: 'Rate limit',
  credits: 'Credits',
  allowed_ips: 'Allowed IP addresses',
}

/**
 * The core names fields as the API does (`expires_in_seconds`, `scopes.2`); the page names its form
 * fields. Fields the form does not have keep their first segment (`rate_limits.0.limit` →
 * `rate_limits`), so the controls of issue 14 get their messages once their fields exist.
 */
const FORM_FIELD_OF: Record<string, string> = {
  expires_at: 'expires',
  expires_in_seconds: 'expires',
  grace_period_seconds: 'grace',
  full_access: 'scopes',
}

export function formFieldOf(apiField: string): string {
  const head = apiField.split('.')[0] ?? apiField
  return Object.hasOwn(FORM_FIELD_OF, head) ? (FORM_FIELD_OF[head] as string) : head
}

function labelOf(field: string): string {
  if (Object.hasOwn(FIELD_LABELS, field)) return FIELD_LABELS[field] as string
  return field.replace(/_/g, ' ').replace(/^./, (letter) => letter.toUpperCase())
}

/** `name`, `must not be blank` → `Name must not be blank.` */
export function fieldMessage(field: string, message: string): string {
  return `${labelOf(field)} ${sentenceEnd(message)}`
}

/** A message as the end of a sentence: a full stop unless it has its own (`did you mean 10.0.0.0/8?`). */
function sentenceEnd(message: string): string {
  return /[.?!]$/.test(message) ? message : `${message}.`
}

/**
 * What was typed into the form's list fields (one entry per line), so a message about an item names
 * it: `Allowed IP addresses: “10.0.0.1/8” has bits set beyond the /8 prefix…`.
 */
export type ListEntries = Record<string, readonly string[]>

/** Field errors (from the core or the form) as a problem, keeping the first message of each field. */
export function problemOf(status: number, errors: readonly FieldError[], general: string[] = [], entries: ListEntries = {}): FormProblem {
  // No prototype: field names come from the core, and `__proto__` must stay a plain key.
  const fields: Record<string, string> = Object.create(null)
  for (const error of errors) {
    const field = formFieldOf(error.field)
    const [, index] = error.field.split('.')
    const entry = Object.hasOwn(entries, field) && index !== undefined && /^\d+$/.test(index) ? entries[field]?.[Number(index)] : undefined
    fields[field] ??=
      entry === undefined ? fieldMessage(field, error.message) : `${labelOf(field)}: “${entry}” ${sentenceEnd(error.message)}`
  }
  return { status, fields, general }
}

/**
 * A core error as a form problem. Validation errors go next to their fields; a scope ceiling next to
 * the scopes; anything else is about the whole form. The words are the core's own (`detail`), so the
 * page says what the API says; never a stack trace.
 */
export function problemFromError(error: KeywardError, scopeField?: string, entries: ListEntries = {}): FormProblem {
  const status = ERRORS[error.code].status
  if (error.code === 'validation_error' && error.errors !== undefined && error.errors.length > 0)
    return problemOf(status, error.errors, [], entries)
  if (error.code === 'insufficient_scope' && scopeField !== undefined)
    return { status, fields: { [scopeField]: error.detail }, general: [] }
  return { status, fields: {}, general: [error.detail] }
}

/** Whether a core error is about the request as a whole (a page of its own), not about the form. */
export function isPageError(code: ErrorCode): boolean {
  return code === 'not_found' || code === 'store_unavailable' || code === 'internal_error' || code === 'unauthenticated'
}

/** A posted `application/x-www-form-urlencoded` body. */
export function parseForm(bytes: Uint8Array | undefined): URLSearchParams {
  return new URLSearchParams(bytes === undefined ? '' : new TextDecoder().decode(bytes))
}

/**
 * Every value posted under `name`: repeated `name=a&name=b` as browsers send checkboxes, and also
 * `name[]=a` or `name[0]=a` — what an Express body parser's object turns back into on the bridge.
 */
export function valuesOf(form: URLSearchParams, name: string): string[] {
  const values: string[] = []
  for (const [key, value] of form)
    if (key === name || (key.startsWith(`${name}[`) && /^\[\d*\]$/.test(key.slice(name.length)))) values.push(value)
  return values
}

/** What a person typed and chose on the create form, kept to fill the form again when it has errors. */
export interface CreateFormValues {
  name: string
  environment: string
  scopes: string[]
  fullAccess: boolean
  /** `never` or a number of days. */
  expires: string
  /** The controls (issue 14), as typed: empty means none. */
  rateLimit: string
  rateLimitWindow: string
  credits: string
  creditsRefill: string
  allowedIps: string
}

/** The windows the rate limit field offers, and the name the limit gets (what `RateLimit` headers show). */
export const RATE_LIMIT_WINDOWS: Record<string, { label: string; windowMs: number; name: string }> = {
  second: { label: 'second', windowMs: 1000, name: 'per-second' },
  minute: { label: 'minute', windowMs: 60_000, name: 'per-minute' },
  hour: { label: 'hour', windowMs: 3_600_000, name: 'per-hour' },
  day: { label: 'day', windowMs: 86_400_000, name: 'per-day' },
}

export const CREDIT_REFILLS = ['never', 'day', 'month'] as const

export function emptyCreateForm(abilities: Abilities): CreateFormValues {
  return {
    name: '',
    environment: abilities.environments[0] ?? 'live',
    scopes: [],
    fullAccess: false,
    expires: 'never',
    rateLimit: '',
    rateLimitWindow: 'minute',
    credits: '',
    creditsRefill: 'never',
    allowedIps: '',
  }
}

/** The allowed IP addresses as typed: one per line (commas and spaces separate them too). */
export function allowedIpEntries(text: string): string[] {
  return text.split(/[\s,]+/).filter((entry) => entry !== '')
}

/**
 * The create form as the core's input, or the fields that are not among the choices offered. The
 * values themselves (the name's length, the scopes' ceiling) are the core's to check.
 */
export function readCreateForm(
  form: URLSearchParams,
  abilities: Abilities,
  expiryDays: readonly number[],
  withControls = true,
): { values: CreateFormValues; input?: CreateKeyInput; problem?: FormProblem } {
  const values: CreateFormValues = {
    name: (form.get('name') ?? '').trim(),
    environment: form.get('environment') ?? '',
    scopes: [...new Set(valuesOf(form, 'scopes'))],
    fullAccess: form.get('full_access') === 'on',
    expires: form.get('expires') ?? 'never',
    rateLimit: (form.get('rate_limit') ?? '').trim(),
    rateLimitWindow: form.get('rate_limit_window') ?? 'minute',
    credits: (form.get('credits') ?? '').trim(),
    creditsRefill: form.get('credits_refill') ?? 'never',
    allowedIps: form.get('allowed_ips') ?? '',
  }
  const errors: FieldError[] = []
  if (!abilities.environments.includes(values.environment as never)) {
    errors.push({ field: 'environment', message: `must be one of: ${abilities.environments.join(', ')}` })
  }
  const offered = new Set(abilities.scopes.map((scope) => scope.name))
  const unknown = values.scopes.filter((scope) => !offered.has(scope))
  if (unknown.length > 0) errors.push({ field: 'scopes', message: `cannot include ${unknown.join(', ')}: not a scope you can grant here` })
  else if (values.fullAccess && !abilities.fullAccess) errors.push({ field: 'scopes', message: 'cannot be full access for you' })
  else if (values.fullAccess && values.scopes.length > 0)
    errors.push({ field: 'scopes', message: 'must be either full access or chosen scopes, not both' })
  else if (!values.fullAccess && values.scopes.length === 0 && abilities.scopes.length > 0) {
    errors.push({
      field: 'scopes',
      message: abilities.fullAccess ? 'must include at least one scope, or full access' : 'must include at least one scope',
    })
  }
  const days = values.expires === 'never' ? undefined : Number(values.expires)
  if (days !== undefined && !expiryDays.includes(days)) errors.push({ field: 'expires', message: 'must be one of the choices offered' })
  const controls = withControls ? readControls(values, errors) : {}
  // Blank names are the core's to refuse, in its words; the other errors are reported with them.
  if (errors.length > 0) {
    if (values.name === '') errors.unshift({ field: 'name', message: 'must not be empty' })
    return { values, problem: problemOf(400, errors, [], { allowed_ips: allowedIpEntries(values.allowedIps) }) }
  }
  const input: CreateKeyInput = {
    name: values.name,
    environment: values.environment as CreateKeyInput['environment'],
    // No scopes offered at all (the host declared none) means the key has full access, as the API's `[]`.
    scopes: values.fullAccess ? [] : values.scopes,
  }
  if (days !== undefined) input.expiresInSeconds = days * 86_400
  return { values, input: { ...input, ...controls } }
}

/**
 * The controls of issue 14 as the core's input: one rate limit (count per window), credits with an
 * optional daily or monthly refill to the same number, and allowed IP ranges. Only the form's own
 * choices are checked here; the numbers' bounds and the ranges are the core's to check.
 */
function readControls(values: CreateFormValues, errors: FieldError[]): Pick<CreateKeyInput, 'rateLimits' | 'credits' | 'allowedIps'> {
  const controls: Pick<CreateKeyInput, 'rateLimits' | 'credits' | 'allowedIps'> = {}
  const window = Object.hasOwn(RATE_LIMIT_WINDOWS, values.rateLimitWindow) ? RATE_LIMIT_WINDOWS[values.rateLimitWindow] : undefined
  if (window === undefined) errors.push({ field: 'rate_limits', message: 'must be per second, minute, hour or day' })
  else if (values.rateLimit !== '') {
    if (!/^\d+$/.test(values.rateLimit)) errors.push({ field: 'rate_limits', message: 'must be a whole number of requests' })
    else controls.rateLimits = [{ name: window.name, limit: Number(values.rateLimit), windowMs: window.windowMs }]
  }
  const refill = values.creditsRefill as (typeof CREDIT_REFILLS)[number]
  if (!CREDIT_REFILLS.includes(refill)) errors.push({ field: 'credits', message: 'must refill never, every day or every month' })
  else if (values.credits === '') {
    if (refill !== 'never') errors.push({ field: 'credits', message: 'must be given to be refilled' })
  } else if (!/^\d+$/.test(values.credits)) errors.push({ field: 'credits', message: 'must be a whole number' })
  else {
    const remaining = Number(values.credits)
    controls.credits = { remaining, refill: refill === 'never' ? null : { amount: remaining, interval: refill } }
  }
  const ranges = allowedIpEntries(values.allowedIps)
  if (ranges.length > 0) controls.allowedIps = ranges
  return controls
}
