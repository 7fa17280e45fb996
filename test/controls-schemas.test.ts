import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  creditsSchema,
  fromWireRateLimits,
  rateLimitsSchema,
  rateLimitsWireSchema,
  tenantRateLimitsOf,
  toWireRateLimits,
} from '../src/core/controls/schemas.js'
import { fieldErrors } from '../src/core/schemas.js'

function errorsOf(schema: z.ZodType, value: unknown) {
  const result = schema.safeParse(value)
  if (result.success) throw new Error(`expected ${JSON.stringify(value)} to be refused`)
  return fieldErrors(result.error)
}

describe('rate limit fields', () => {
  it('accepts up to five named limits and converts between wire and code shapes', () => {
    const wire = [
      { name: 'burst', limit: 10, window_ms: 1000 },
      { name: 'daily', limit: 10_000, window_ms: 86_400_000 },
    ]
    const parsed = rateLimitsWireSchema.parse(wire)
    expect(fromWireRateLimits(parsed)).toEqual([
      { name: 'burst', limit: 10, windowMs: 1000 },
      { name: 'daily', limit: 10_000, windowMs: 86_400_000 },
    ])
    expect(toWireRateLimits(fromWireRateLimits(parsed))).toEqual(wire)
  })

  it('reports each bad field in wire names with a sentence', () => {
    const body = z.object({ rateLimits: rateLimitsSchema })
    expect(
      errorsOf(body, {
        rateLimits: [
          { name: 'burst', limit: 0, windowMs: 1000 },
          { name: 'has space', limit: 1.5, windowMs: 999 },
          { name: 'credits', limit: 1, windowMs: 31 * 86_400_000 },
        ],
      }),
    ).toEqual([
      { field: 'rate_limits.0.limit', message: 'must be at least 1' },
      { field: 'rate_limits.1.name', message: 'must be 1-32 characters of A-Z a-z 0-9 _ . -' },
      { field: 'rate_limits.1.limit', message: 'must be a whole number' },
      { field: 'rate_limits.1.window_ms', message: 'must be at least 1000 (1 second)' },
      { field: 'rate_limits.2.name', message: 'must not be "credits" (reserved for the credits quota)' },
      { field: 'rate_limits.2.window_ms', message: 'must be at most 2592000000 (30 days)' },
    ])
  })

  it('refuses a repeated name at the repeat, and more than five limits', () => {
    const limit = (name: string) => ({ name, limit: 1, window_ms: 1000 })
    expect(errorsOf(z.object({ rate_limits: rateLimitsWireSchema }), { rate_limits: [limit('a'), limit('b'), limit('a')] })).toEqual([
      { field: 'rate_limits.2.name', message: 'must be unique; "a" appears twice' },
    ])
    expect(errorsOf(rateLimitsWireSchema, ['a', 'b', 'c', 'd', 'e', 'f'].map(limit))).toEqual([
      { field: '(body)', message: 'must hold at most 5 rate limits' },
    ])
  })

  it('refuses a colon in a key limit name, which tenant limits use as their prefix', () => {
    expect(errorsOf(rateLimitsSchema, [{ name: 'tenant:minute', limit: 1, windowMs: 60_000 }])).toEqual([
      { field: '0.name', message: 'must be 1-32 characters of A-Z a-z 0-9 _ . -' },
    ])
  })
})

describe('tenantRateLimitsOf', () => {
  it('returns the host’s limits for a tenant, and none without the option', () => {
    const limits = tenantRateLimitsOf((tenantId) => (tenantId === 'acme' ? [{ name: 'minute', limit: 600, windowMs: 60_000 }] : []), 'acme')
    expect(limits).toEqual([{ name: 'minute', limit: 600, windowMs: 60_000 }])
    expect(tenantRateLimitsOf(undefined, 'acme')).toEqual([])
  })

  it('throws naming the option, the tenant and the field when the host returns a bad limit', () => {
    expect(() => tenantRateLimitsOf(() => [{ name: 'minute', limit: 0, windowMs: 60_000 }], 'acme')).toThrow(
      'keyward: tenantRateLimits("acme") returned invalid limits: 0.limit must be at least 1',
    )
  })
})

describe('credits fields', () => {
  it('accepts remaining with or without a refill, which defaults to none', () => {
    expect(creditsSchema.parse({ remaining: 0 })).toEqual({ remaining: 0, refill: null })
    expect(creditsSchema.parse({ remaining: 1000, refill: { amount: 1000, interval: 'month' } })).toEqual({
      remaining: 1000,
      refill: { amount: 1000, interval: 'month' },
    })
  })

  it('refuses negative or fractional credits and an unknown interval', () => {
    expect(errorsOf(z.object({ credits: creditsSchema }), { credits: { remaining: -1, refill: { amount: 0, interval: 'week' } } })).toEqual(
      [
        { field: 'credits.remaining', message: 'must not be negative' },
        { field: 'credits.refill.amount', message: 'must be at least 1' },
        { field: 'credits.refill.interval', message: 'must be day or month' },
      ],
    )
    expect(errorsOf(creditsSchema, { remaining: 2.5, extra: true })).toEqual([
      { field: 'remaining', message: 'must be a whole number' },
      { field: 'extra', message: 'is not a known field' },
    ])
  })
})
