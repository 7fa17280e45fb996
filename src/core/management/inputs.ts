import { z } from 'zod'
import type { RateLimit } from '../controls/rate-limit.js'
import { allowedIpsSchema, creditsSchema, rateLimitsSchema } from '../controls/schemas.js'
import { fail } from '../errors.js'
import {
  environmentSchema,
  expiresInSecondsSchema,
  fieldErrors,
  fieldWording,
  gracePeriodSecondsSchema,
  metadataSchema,
  nameSchema,
  projectIdSchema,
  rotationIntervalDaysSchema,
  scopesSchema,
  tenantIdSchema,
  webhookUrlSchema,
} from '../schemas.js'
import { type Environment, KEY_STATUSES, type KeyStatus, type Metadata } from '../types.js'

/**
 * What code callers (host apps, the CLI, the HTTP router) pass to management calls, and the zod
 * rules that check it. The router checks the wire shape first with the same field rules; these
 * checks make the code API just as safe.
 */

/** Credits as code callers give them: `refill` omitted or null means the credits never come back. */
export interface CreditsInput {
  remaining: number
  refill?: { amount: number; interval: 'day' | 'month' } | null
}

export interface CreateKeyInput {
  name: string
  /** What the key may do; omitted or `[]` means unrestricted within its tenant. */
  scopes?: string[]
  metadata?: Metadata
  /** @default the caller's environment when it is a key, else 'live' */
  environment?: Environment
  projectId?: string
  /** An instant in the future (Date or ISO 8601 string). */
  expiresAt?: Date | string
  expiresInSeconds?: number
  rotationIntervalDays?: number
  rotationWebhookUrl?: string
  /** Named sliding-window limits (at most 5). @default [] (none) */
  rateLimits?: RateLimit[]
  /** What the key may spend, and how it comes back. @default undefined (no credits) */
  credits?: CreditsInput
  /** CIDR ranges the key may be used from. @default [] (anywhere) */
  allowedIps?: string[]
}

export interface UpdateKeyInput {
  name?: string
  scopes?: string[]
  metadata?: Metadata
  /** A future instant, or `null` to remove the expiry. */
  expiresAt?: Date | string | null
  rotationIntervalDays?: number | null
  rotationWebhookUrl?: string | null
  rateLimits?: RateLimit[]
  /** New credits (what is left is set, not added to), or `null` to remove them. */
  credits?: CreditsInput | null
  allowedIps?: string[]
  /** `false` disables the key (401 `api_key_disabled` everywhere within the revocation bound); `true` enables it. */
  enabled?: boolean
}

export interface ListKeysInput {
  /** @default 20 */
  limit?: number
  /** From the previous page's `nextCursor`. */
  cursor?: string
  status?: KeyStatus
  projectId?: string
  environment?: Environment
}

export interface RotateKeyInput {
  /** How long the old key keeps working. @default `rotation.defaultGracePeriodSeconds` (3600) */
  gracePeriodSeconds?: number
}

export interface UsageInput {
  /** Length of the daily series, 1-90. @default 30 */
  days?: number
  /** Also count the keys this one was rotated from. @default false */
  includePredecessors?: boolean
}

const instantSchema = z.union([z.date(), z.iso.datetime({ offset: true })])

export const createInputSchema = z.strictObject({
  name: nameSchema,
  scopes: scopesSchema.optional(),
  metadata: metadataSchema.optional(),
  environment: environmentSchema.optional(),
  projectId: projectIdSchema.optional(),
  expiresAt: instantSchema.optional(),
  expiresInSeconds: expiresInSecondsSchema.optional(),
  rotationIntervalDays: rotationIntervalDaysSchema.optional(),
  rotationWebhookUrl: webhookUrlSchema.optional(),
  rateLimits: rateLimitsSchema.optional(),
  credits: creditsSchema.optional(),
  allowedIps: allowedIpsSchema.optional(),
})

export const updateInputSchema = z.strictObject({
  name: nameSchema.optional(),
  scopes: scopesSchema.optional(),
  metadata: metadataSchema.optional(),
  expiresAt: instantSchema.nullable().optional(),
  rotationIntervalDays: rotationIntervalDaysSchema.nullable().optional(),
  rotationWebhookUrl: webhookUrlSchema.nullable().optional(),
  rateLimits: rateLimitsSchema.optional(),
  credits: creditsSchema.nullable().optional(),
  allowedIps: allowedIpsSchema.optional(),
  enabled: z.boolean(fieldWording).optional(),
})

export const listInputSchema = z.strictObject({
  limit: z.number().int().min(1).max(100).optional(),
  cursor: z.string().max(512).optional(),
  status: z.enum(KEY_STATUSES).optional(),
  projectId: projectIdSchema.optional(),
  environment: environmentSchema.optional(),
})

export const rotateInputSchema = z.strictObject({ gracePeriodSeconds: gracePeriodSecondsSchema.optional() })

export const usageInputSchema = z.strictObject({
  days: z
    .number()
    .int('must be a whole number from 1 to 90')
    .min(1, 'must be a whole number from 1 to 90')
    .max(90, 'must be a whole number from 1 to 90')
    .optional(),
  includePredecessors: z.boolean().optional(),
})

const actorSchema = z.object({ tenantId: tenantIdSchema }).loose()

/** Parses a code caller's input; a failure is a `validation_error` naming each field in wire (snake_case) form. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown) {
  const parsed = schema.safeParse(input ?? {})
  if (parsed.success) return { ok: true as const, value: parsed.data as z.output<T> }
  return fail('validation_error', 'The request has invalid fields.', fieldErrors(parsed.error))
}

/** A caller without a valid tenant id is refused before anything else. */
export function checkActor(actor: unknown) {
  if (actorSchema.safeParse(actor).success) return undefined
  return fail('validation_error', 'The caller has no valid tenant id.', [{ field: 'tenant_id', message: 'is required' }])
}
