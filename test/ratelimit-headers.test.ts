import { parseList } from 'structured-headers'
import { describe, expect, it } from 'vitest'
import { ADMITTED, type LimitState, LocalRateLimiter, limitSubjects } from '../src/core/controls/rate-limit.js'
import {
  limitHeaders,
  limitResultHeaders,
  rateLimitHeader,
  rateLimitPolicyHeader,
  retryAfterSeconds,
} from '../src/http/ratelimit-headers.js'
import { TestClock } from './helpers/clock.js'

/** Parsed with an RFC 9651 parser: `[name, parameters]` per list member. */
function members(value: string | undefined): [unknown, Record<string, unknown>][] {
  if (value === undefined) throw new Error('expected a header value')
  return parseList(value).map(([item, parameters]) => [item, Object.fromEntries(parameters)])
}

const state = (overrides: Partial<LimitState>): LimitState => ({
  name: 'burst',
  limit: 10,
  remaining: 3,
  resetMs: 1000,
  windowMs: 1000,
  ...overrides,
})

describe('RateLimit-Policy', () => {
  it('lists each limit with its quota and window in seconds, tenant limits included', () => {
    const subjects = limitSubjects(
      {
        id: 'key_1',
        tenantId: 'acme',
        rateLimits: [
          { name: 'burst', limit: 10, windowMs: 1000 },
          { name: 'daily', limit: 1000, windowMs: 86_400_000 },
        ],
      },
      [{ name: 'minute', limit: 600, windowMs: 60_000 }],
    )
    const policy = rateLimitPolicyHeader(subjects, null, Date.now())
    expect(policy).toBe('"burst";q=10;w=1, "daily";q=1000;w=86400, "tenant:minute";q=600;w=60')
    expect(members(policy)).toEqual([
      ['burst', { q: 10, w: 1 }],
      ['daily', { q: 1000, w: 86400 }],
      ['tenant:minute', { q: 600, w: 60 }],
    ])
  })

  it('rounds a window up to whole seconds, never advertising more than the limit allows', () => {
    const subjects = [{ id: 'key:a', limits: [{ name: 'odd', limit: 5, windowMs: 1500 }] }]
    expect(members(rateLimitPolicyHeader(subjects, null, Date.now()))).toEqual([['odd', { q: 5, w: 2 }]])
  })

  it('announces a credits refill as a policy over its period (the month it is in)', () => {
    const february = Date.parse('2026-02-10T00:00:00Z')
    expect(members(rateLimitPolicyHeader([], { refill: { amount: 500, interval: 'month' } }, february))).toEqual([
      ['credits', { q: 500, w: 28 * 86_400 }],
    ])
    expect(rateLimitPolicyHeader([], { refill: null }, february)).toBeUndefined()
  })
})

describe('RateLimit', () => {
  it('gives each limit its remaining units and effective window in whole seconds, rounded up', () => {
    const value = rateLimitHeader([state({ remaining: 3, resetMs: 250 }), state({ name: 'daily', remaining: 0, resetMs: 3_600_001 })])
    expect(members(value)).toEqual([
      ['burst', { r: 3, t: 1 }],
      ['daily', { r: 0, t: 3601 }],
    ])
  })

  it('adds credits, with the time to the next refill when there is one', () => {
    expect(members(rateLimitHeader([], { remaining: 42, resetMs: 90_000 }))).toEqual([['credits', { r: 42, t: 90 }]])
    expect(members(rateLimitHeader([], { remaining: 42, resetMs: null }))).toEqual([['credits', { r: 42 }]])
    expect(rateLimitHeader([])).toBeUndefined()
  })
})

describe('Retry-After', () => {
  it('is whole seconds, rounded up, and never 0', () => {
    expect(retryAfterSeconds(1)).toBe(1)
    expect(retryAfterSeconds(0)).toBe(1)
    expect(retryAfterSeconds(1000)).toBe(1)
    expect(retryAfterSeconds(1001)).toBe(2)
  })
})

describe('limitResultHeaders', () => {
  it('sends the policy and the current standing on an admitted request', () => {
    const clock = new TestClock()
    const subjects = limitSubjects({ id: 'key_1', tenantId: 'acme', rateLimits: [{ name: 'burst', limit: 2, windowMs: 1000 }] })
    const policy = rateLimitPolicyHeader(subjects, null, clock.now())
    const result = new LocalRateLimiter().consume(subjects, 1, clock.now())
    expect(limitResultHeaders(result, policy)).toEqual({ 'RateLimit-Policy': '"burst";q=2;w=1', RateLimit: '"burst";r=1;t=2' })
  })

  it('adds Retry-After to a rate-limited refusal', () => {
    const clock = new TestClock()
    const subjects = limitSubjects({ id: 'key_1', tenantId: 'acme', rateLimits: [{ name: 'burst', limit: 1, windowMs: 1000 }] })
    const limiter = new LocalRateLimiter()
    limiter.consume(subjects, 1, clock.now())
    clock.advance(10)
    const headers = limitResultHeaders(limiter.consume(subjects, 1, clock.now()), undefined)
    // Room again at 1050 ms, 1040 ms from now: 2 s rounded up.
    expect(headers).toEqual({ RateLimit: '"burst";r=0;t=2', 'Retry-After': '2' })
  })

  it('adds Retry-After to a credits refusal only when a refill will come', () => {
    const exhausted = new LocalRateLimiter().consume([], 1, Date.now(), { keyId: 'key_1', epoch: '1', seed: 0 })
    expect(limitResultHeaders(exhausted, undefined, 30_500)).toEqual({ RateLimit: '"credits";r=0;t=31', 'Retry-After': '31' })
    expect(limitResultHeaders(exhausted, undefined, null)).toEqual({ RateLimit: '"credits";r=0' })
  })

  it('sends nothing for a key without limits or credits', () => {
    expect(limitResultHeaders(ADMITTED, undefined)).toEqual({})
  })
})

describe('limitHeaders', () => {
  it('measures a monthly refill’s window by the month of the verification’s clock, not the machine’s', () => {
    const refill = { amount: 500, interval: 'month' as const }
    const admitted = new LocalRateLimiter().consume([], 1, Date.now(), { keyId: 'key_1', epoch: '1', seed: 10 })
    const policyAt = (iso: string) =>
      members(limitHeaders({ result: admitted, subjects: [], refill, creditsResetMs: 1000, nowMs: Date.parse(iso) })['ratelimit-policy'])
    expect(policyAt('2026-02-10T00:00:00Z')).toEqual([['credits', { q: 500, w: 28 * 86_400 }]])
    expect(policyAt('2026-03-10T00:00:00Z')).toEqual([['credits', { q: 500, w: 31 * 86_400 }]])
  })
})
