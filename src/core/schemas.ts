import { z } from 'zod'
import type { FieldError } from './errors.js'
import { ENVIRONMENTS } from './types.js'

/**
 * The rules for every field a caller can set, written once. The core validates code callers
 * (CLI, host apps) with them and the HTTP router builds its request schemas (and so its OpenAPI
 * document) from the same pieces.
 */

// C0 and C1 control characters, including NUL, tabs and newlines: a name is one printable line.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/

/**
 * The `error` param of every field rule (`z.string(fieldWording)`): errors the rule has no message of
 * its own for are worded by `fieldMessage`, with the input at hand.
 */
export const fieldWording = { error: (issue: z.core.$ZodRawIssue) => fieldMessage(issue) }

export const MAX_METADATA_BYTES = 4096
export const MAX_GRACE_PERIOD_SECONDS = 30 * 86_400
export const MAX_EXPIRES_IN_SECONDS = 10 * 365 * 86_400

export const nameSchema = z
  .string(fieldWording)
  .min(1, { error: 'must not be empty', abort: true })
  .max(100, 'must be at most 100 characters')
  .refine((name) => !CONTROL_CHARACTERS.test(name), 'must not contain control characters')
  .refine((name) => name.trim().length > 0, 'must not be blank')
  .meta({ description: 'A human-readable label, 1-100 printable characters.', example: 'Production Backend' })

export const scopeSchema = z.string(fieldWording).regex(/^[A-Za-z0-9_.:*/-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . : * / -')

export const scopesSchema = z
  .array(scopeSchema, fieldWording)
  .max(50, 'must hold at most 50 scopes')
  .transform((scopes) => [...new Set(scopes)])
  .meta({ description: 'What the key may do. An empty list means unrestricted within its tenant.', example: ['orders:read'] })

export const metadataSchema = z
  .record(z.string(), z.unknown(), fieldWording)
  .refine((value) => Buffer.byteLength(JSON.stringify(value)) <= MAX_METADATA_BYTES, `must be at most ${MAX_METADATA_BYTES} bytes as JSON`)
  .meta({ description: 'Free-form JSON object (at most 4 KB), returned with the verified key.', example: { team: 'billing' } })

export const environmentSchema = z.enum(ENVIRONMENTS, fieldWording).meta({ description: 'live or test; part of the key itself.' })

export const projectIdSchema = z
  .string(fieldWording)
  .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . : -')
  .meta({ description: 'A project inside the tenant.', example: 'proj_web' })

export const tenantIdSchema = z.string(fieldWording).regex(/^[A-Za-z0-9_.:@-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 _ . : @ -')

export const expiresInSecondsSchema = z
  .number(fieldWording)
  .int('must be a whole number')
  .min(1, 'must be at least 1')
  .max(MAX_EXPIRES_IN_SECONDS, 'must be at most ten years')

export const gracePeriodSecondsSchema = z
  .number(fieldWording)
  .int('must be a whole number')
  .min(0, 'must not be negative')
  .max(MAX_GRACE_PERIOD_SECONDS, `must be at most ${MAX_GRACE_PERIOD_SECONDS} (30 days)`)

export const rotationIntervalDaysSchema = z.number(fieldWording).int('must be a whole number').min(1).max(365)

export const webhookUrlSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .max(2048, 'must be at most 2048 characters')

/**
 * Zod issues as `{ field, message }` with the wire (snake_case) field names. Every message reads as
 * a predicate of its field: a rule's own message ("must not be blank") as written, anything else in
 * `fieldMessage`'s words, so zod's own sentences ("Invalid input: expected string, received
 * undefined") never reach a caller, whichever schema raised the issue.
 */
export function fieldErrors(error: z.ZodError, rename: (segment: string) => string = snakeCase): FieldError[] {
  const fieldName = (path: PropertyKey[]) =>
    path.map((segment) => (typeof segment === 'string' ? rename(segment) : String(segment))).join('.')
  return error.issues.flatMap((issue) =>
    // An unknown field is the failing field itself, named as the caller sent it (not renamed).
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ field: [fieldName(issue.path), key].filter(Boolean).join('.'), message: 'is not a known field' }))
      : [{ field: fieldName(issue.path) || '(body)', message: wordingOf(issue) }],
  )
}

/**
 * keyward's own messages start lower-case ("must …", "is …"); zod's built-in ones, in any locale,
 * are capitalised sentences ("Invalid input: …", "Too small: …"). A message that is not keyward's
 * is replaced by `fieldMessage`'s wording of the issue.
 */
function wordingOf(issue: z.core.$ZodIssue): string {
  return /^[a-z]/.test(issue.message) ? issue.message : fieldMessage(issue)
}

/**
 * The one wording of a field error, from the issue's code and details: "is required", "must be a
 * string", "must be a whole number", "must be at least 1", "must be one of: live, test", ... It is
 * the `error` map of every field rule in this file (zod then passes the input, so a missing field
 * "is required" rather than "must be a string"), and `fieldErrors`' wording for issues raised by any
 * other schema. Not `z.config({ customError })`: that is process-wide and would reword the host
 * app's own zod errors too.
 */
export function fieldMessage(issue: z.core.$ZodRawIssue | z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      // Only zod's raw issue carries the input; JSON has no `undefined`, so it means "absent".
      if ('input' in issue && issue.input === undefined) return 'is required'
      return TYPE_NAMES[issue.expected] === undefined ? 'has the wrong type' : `must be ${TYPE_NAMES[issue.expected]}`
    case 'too_small':
      return boundMessage(issue.origin, issue.minimum, issue.inclusive !== false, issue.exact === true, 'at least', 'more than')
    case 'too_big':
      return boundMessage(issue.origin, issue.maximum, issue.inclusive !== false, issue.exact === true, 'at most', 'less than')
    case 'invalid_format':
      return formatMessage(issue)
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`
    case 'unrecognized_keys':
      return issue.keys.length === 1 ? `has an unknown field: ${issue.keys[0]}` : `has unknown fields: ${issue.keys.join(', ')}`
    case 'invalid_union':
      return unionMessage(issue)
    case 'invalid_key':
      return 'has an invalid key'
    case 'invalid_element':
      return 'has an invalid item'
    case 'invalid_value':
      return issue.values.length === 1 ? `must be ${String(issue.values[0])}` : `must be one of: ${issue.values.map(String).join(', ')}`
    default:
      // A refinement without a message of its own.
      return 'is not valid'
  }
}

/** `must be …` completions per zod type name; JSON's names where a JSON caller sends the value. */
const TYPE_NAMES: Partial<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  bigint: 'a whole number',
  boolean: 'true or false',
  date: 'a date',
  array: 'an array',
  tuple: 'an array',
  set: 'an array',
  object: 'an object',
  record: 'an object',
  map: 'an object',
  null: 'null',
  file: 'a file',
}

function boundMessage(
  origin: string,
  bound: number | bigint,
  inclusive: boolean,
  exact: boolean,
  inclusiveWord: 'at least' | 'at most',
  exclusiveWord: 'more than' | 'less than',
): string {
  const comparison = exact ? 'exactly' : inclusive ? inclusiveWord : exclusiveWord
  switch (origin) {
    case 'string':
      if (bound === 1 && comparison === 'at least') return 'must not be empty'
      return `must be ${comparison} ${bound} character${bound === 1 ? '' : 's'}`
    case 'array':
    case 'set':
      if (bound === 1 && comparison === 'at least') return 'must not be empty'
      return `must hold ${comparison} ${bound} item${bound === 1 ? '' : 's'}`
    case 'file':
      return `must be ${comparison} ${bound} bytes`
    case 'date':
      return `must be ${comparison === 'at least' ? 'on or after' : comparison === 'at most' ? 'on or before' : comparison === 'more than' ? 'after' : 'before'} ${new Date(Number(bound)).toISOString()}`
    default:
      return `must be ${comparison} ${bound}`
  }
}

const FORMAT_NAMES: Partial<Record<string, string>> = {
  url: 'a URL',
  email: 'an email address',
  uuid: 'a UUID',
  datetime: 'an ISO 8601 date-time',
  date: 'an ISO 8601 date',
  time: 'an ISO 8601 time',
  duration: 'an ISO 8601 duration',
  ipv4: 'an IPv4 address',
  ipv6: 'an IPv6 address',
  base64: 'base64',
  base64url: 'base64url',
  jwt: 'a JWT',
}

function formatMessage(issue: z.core.$ZodIssueInvalidStringFormat | z.core.$ZodRawIssue<z.core.$ZodIssueInvalidStringFormat>): string {
  const details = issue as { prefix?: string; suffix?: string; includes?: string }
  if (issue.format === 'starts_with') return `must start with "${details.prefix}"`
  if (issue.format === 'ends_with') return `must end with "${details.suffix}"`
  if (issue.format === 'includes') return `must contain "${details.includes}"`
  const name = FORMAT_NAMES[issue.format]
  return name === undefined ? 'is not in the expected format' : `must be ${name}`
}

/**
 * A union fails as a whole: worded from the branch that got the right type ("tomorrow" for a date
 * or a date-time string is a malformed date-time), or as the types it accepts ("must be a date or a
 * string") when no branch did.
 */
function unionMessage(issue: z.core.$ZodIssueInvalidUnion | z.core.$ZodRawIssue<z.core.$ZodIssueInvalidUnion>): string {
  const branches = issue.errors as z.core.$ZodIssue[][]
  const typeMismatch = (branch: z.core.$ZodIssue[]) =>
    branch.length === 1 && branch[0]?.code === 'invalid_type' && branch[0].path.length === 0
  const closest = branches.find((branch) => branch.length > 0 && !typeMismatch(branch))
  if (closest?.[0] !== undefined) return wordingOf(closest[0])
  if ('input' in issue && issue.input === undefined) return 'is required'
  const types = [...new Set(branches.map((branch) => TYPE_NAMES[(branch[0] as z.core.$ZodIssueInvalidType).expected] ?? 'another type'))]
  return types.length === 0 ? 'is not valid' : `must be ${types.join(' or ')}`
}

export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)
}
