import { z } from 'zod'
import { fieldErrors } from '../schemas.js'
import { parseRange } from './ip.js'
import type { RateLimit } from './rate-limit.js'

/**
 * The field rules of per-key controls, written once (as `../schemas.ts` does for the other
 * fields). The core's schemas are camelCase (`windowMs`) and `fieldErrors` reports them in wire
 * names (`rate_limits.0.window_ms`); the `*WireSchema` variants are the snake_case request shapes
 * the HTTP router and its OpenAPI document use. Both share every rule.
 */

export const MAX_RATE_LIMITS = 5
export const MIN_WINDOW_MS = 1_000
export const MAX_WINDOW_MS = 30 * 86_400_000
export const MAX_LIMIT = 1_000_000_000
export const MAX_CREDITS = 1_000_000_000_000
export const MAX_ALLOWED_IPS = 100

/** Reserved: the `RateLimit` headers name the credits quota this way. */
export const CREDITS_POLICY_NAME = 'credits'

export const rateLimitNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,32}$/, 'must be 1-32 characters of A-Z a-z 0-9 _ . -')
  .refine((name) => name !== CREDITS_POLICY_NAME, `must not be "${CREDITS_POLICY_NAME}" (reserved for the credits quota)`)

export const rateLimitCountSchema = z
  .number()
  .int('must be a whole number')
  .min(1, 'must be at least 1')
  .max(MAX_LIMIT, `must be at most ${MAX_LIMIT}`)

export const windowMsSchema = z
  .number()
  .int('must be a whole number of milliseconds')
  .min(MIN_WINDOW_MS, `must be at least ${MIN_WINDOW_MS} (1 second)`)
  .max(MAX_WINDOW_MS, `must be at most ${MAX_WINDOW_MS} (30 days)`)

/** At most 5 limits, names unique; the duplicate is reported at its own `name`. */
function limitList<T extends z.ZodType<{ name: string }>>(item: T) {
  return z
    .array(item)
    .max(MAX_RATE_LIMITS, `must hold at most ${MAX_RATE_LIMITS} rate limits`)
    .superRefine((limits, context) => {
      const seen = new Set<string>()
      limits.forEach((limit, index) => {
        if (seen.has(limit.name)) {
          context.addIssue({ code: 'custom', path: [index, 'name'], message: `must be unique; "${limit.name}" appears twice` })
        }
        seen.add(limit.name)
      })
    })
}

export const rateLimitSchema = z.strictObject({ name: rateLimitNameSchema, limit: rateLimitCountSchema, windowMs: windowMsSchema })

/** Rate limits as code callers (CLI, host apps, `tenantRateLimits`) give them. */
export const rateLimitsSchema = limitList(rateLimitSchema)

export const rateLimitWireSchema = z
  .strictObject({
    name: rateLimitNameSchema.meta({ example: 'burst' }),
    limit: rateLimitCountSchema.meta({ description: 'At most this many requests (units of cost) in any window.', example: 10 }),
    window_ms: windowMsSchema.meta({ description: 'The window, 1,000 ms to 30 days.', example: 1000 }),
  })
  .meta({ id: 'RateLimit' })

/** `rate_limits` on the wire; `fromWireRateLimits` turns a parsed value into core limits. */
export const rateLimitsWireSchema = limitList(rateLimitWireSchema).meta({
  description: 'Named sliding-window limits (at most 5). A request passes only if every limit has room.',
  example: [{ name: 'burst', limit: 10, window_ms: 1000 }],
})

export function fromWireRateLimits(limits: readonly z.infer<typeof rateLimitWireSchema>[]) {
  return limits.map(({ name, limit, window_ms }) => ({ name, limit, windowMs: window_ms }))
}

/**
 * Calls the host's `tenantRateLimits(tenantId)` and checks what it returned with the same rules
 * as a key's limits; once per cache fill. A bad value is a configuration error: it throws an
 * `Error` naming the option and the field.
 */
export function tenantRateLimitsOf(
  option: ((tenantId: string) => readonly RateLimit[]) | undefined,
  tenantId: string,
): readonly RateLimit[] {
  if (option === undefined) return []
  const parsed = rateLimitsSchema.safeParse(option(tenantId))
  if (parsed.success) return parsed.data
  const problems = fieldErrors(parsed.error, (segment) => segment)
    .map(({ field, message }) => `${field} ${message}`)
    .join('; ')
  throw new Error(`keyward: tenantRateLimits(${JSON.stringify(tenantId)}) returned invalid limits: ${problems}`)
}

export function toWireRateLimits(limits: readonly { name: string; limit: number; windowMs: number }[]) {
  return limits.map(({ name, limit, windowMs }) => ({ name, limit, window_ms: windowMs }))
}

/** The same field names in code and on the wire. */
export const creditsSchema = z
  .strictObject({
    remaining: z
      .number()
      .int('must be a whole number')
      .min(0, 'must not be negative')
      .max(MAX_CREDITS, `must be at most ${MAX_CREDITS}`)
      .meta({ description: 'Credits left; each request spends its cost.', example: 1000 }),
    refill: z
      .strictObject({
        amount: z.number().int('must be a whole number').min(1, 'must be at least 1').max(MAX_CREDITS, `must be at most ${MAX_CREDITS}`),
        interval: z.enum(['day', 'month'], 'must be day or month'),
      })
      .nullable()
      .default(null)
      .meta({ description: 'At the start of each UTC day or month, remaining is set to amount.' }),
  })
  .meta({ id: 'Credits' })

/** CIDR ranges in canonical form, duplicates dropped. */
export const allowedIpsSchema = z
  .array(
    z.string().transform((text, context) => {
      const parsed = parseRange(text)
      if (parsed.ok) return parsed.range.cidr
      context.addIssue({ code: 'custom', message: parsed.message })
      return z.NEVER
    }),
  )
  .max(MAX_ALLOWED_IPS, `must hold at most ${MAX_ALLOWED_IPS} ranges`)
  .transform((ranges) => [...new Set(ranges)])
  .meta({
    description: 'CIDR ranges (IPv4 or IPv6) the key may be used from; a bare address is one host. Empty: anywhere.',
    example: ['203.0.113.0/24', '2001:db8::/32'],
  })
