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

export const MAX_METADATA_BYTES = 4096
export const MAX_GRACE_PERIOD_SECONDS = 30 * 86_400
export const MAX_EXPIRES_IN_SECONDS = 10 * 365 * 86_400

export const nameSchema = z
  .string()
  .min(1, { error: 'must not be empty', abort: true })
  .max(100, 'must be at most 100 characters')
  .refine((name) => !CONTROL_CHARACTERS.test(name), 'must not contain control characters')
  .refine((name) => name.trim().length > 0, 'must not be blank')
  .meta({ description: 'A human-readable label, 1-100 printable characters.', example: 'Production Backend' })

export const scopeSchema = z.string().regex(/^[A-Za-z0-9_.:*/-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . : * / -')

export const scopesSchema = z
  .array(scopeSchema)
  .max(50, 'must hold at most 50 scopes')
  .transform((scopes) => [...new Set(scopes)])
  .meta({ description: 'What the key may do. An empty list means unrestricted within its tenant.', example: ['orders:read'] })

export const metadataSchema = z
  .record(z.string(), z.unknown())
  .refine((value) => Buffer.byteLength(JSON.stringify(value)) <= MAX_METADATA_BYTES, `must be at most ${MAX_METADATA_BYTES} bytes as JSON`)
  .meta({ description: 'Free-form JSON object (at most 4 KB), returned with the verified key.', example: { team: 'billing' } })

export const environmentSchema = z.enum(ENVIRONMENTS).meta({ description: 'live or test; part of the key itself.' })

export const projectIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . : -')
  .meta({ description: 'A project inside the tenant.', example: 'proj_web' })

export const tenantIdSchema = z.string().regex(/^[A-Za-z0-9_.:@-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 _ . : @ -')

export const expiresInSecondsSchema = z
  .number()
  .int('must be a whole number')
  .min(1, 'must be at least 1')
  .max(MAX_EXPIRES_IN_SECONDS, 'must be at most ten years')

export const gracePeriodSecondsSchema = z
  .number()
  .int('must be a whole number')
  .min(0, 'must not be negative')
  .max(MAX_GRACE_PERIOD_SECONDS, `must be at most ${MAX_GRACE_PERIOD_SECONDS} (30 days)`)

export const rotationIntervalDaysSchema = z.number().int('must be a whole number').min(1).max(365)

export const webhookUrlSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .max(2048, 'must be at most 2048 characters')

/** Zod issues as `{ field, message }` with the wire (snake_case) field names. */
export function fieldErrors(error: z.ZodError, rename: (segment: string) => string = snakeCase): FieldError[] {
  const fieldName = (path: PropertyKey[]) =>
    path.map((segment) => (typeof segment === 'string' ? rename(segment) : String(segment))).join('.')
  return error.issues.flatMap((issue) =>
    // An unknown field is the failing field itself, named as the caller sent it (not renamed).
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ field: [fieldName(issue.path), key].filter(Boolean).join('.'), message: 'is not a known field' }))
      : [{ field: fieldName(issue.path) || '(body)', message: issue.message }],
  )
}

export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)
}
