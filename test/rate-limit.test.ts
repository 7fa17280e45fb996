import { describe, expect, it } from 'vitest'
import {
  ADMITTED,
  type LimitResult,
  type LimitSubject,
  LocalRateLimiter,
  limitSubjects,
  NO_SUBJECTS,
  type RateLimit,
} from '../src/core/controls/rate-limit.js'
import { TestClock } from './helpers/clock.js'

// TestClock starts on a whole second, so the 50 ms buckets of a 1 s window start with it.
const subject = (id: string, ...limits: RateLimit[]): LimitSubject => ({ id, limits: Object.freeze(limits) })
const perSecond = (limit: number, name = 'burst'): RateLimit => ({ name, limit, windowMs: 1000 })

function refusal(result: LimitResult) {
  if (result.ok || result.code !== 'rate_limited') throw new Error(`expected rate_limited, got ${JSON.stringify(result)}`)
  return result
}

describe('LocalRateLimiter', () => {
  it('admits up to the limit, then refuses naming the limit and when to retry', () => {
    const clock = new TestClock()
    const limiter = new LocalRateLimiter()
    const subjects = [subject('key:a', perSecond(3))]

    const admitted = [1, 2, 3].map(() => limiter.consume(subjects, 1, clock.now()))
    expect(admitted.map((result) => result.ok)).toEqual([true, true, true])
    expect(admitted.map((result) => result.states[0]?.remaining)).toEqual([2, 1, 0])

    clock.advance(300)
    const refused = refusal(limiter.consume(subjects, 1, clock.now()))
    expect(refused.limit).toMatchObject({ name: 'burst', limit: 3, remaining: 0, windowMs: 1000 })
    // The three requests sit in the bucket [0, 50) ms, which leaves the window at 1050 ms.
    expect(refused.retryAfterMs).toBe(750)
    expect(refused.limit.resetMs).toBe(750)
  })

  it('slides: capacity returns when old requests leave the window, not at a fixed boundary', () => {
    const clock = new TestClock()
    const limiter = new LocalRateLimiter()
    const subjects = [subject('key:a', perSecond(2))]
    const start = clock.now()
    const at = (offsetMs: number) => limiter.consume(subjects, 1, start + offsetMs).ok

    expect(at(900)).toBe(true)
    expect(at(950)).toBe(true)
    // A fixed window would start afresh at 1000 ms and allow a burst of 4 within 100 ms.
    expect(at(1000)).toBe(false)
    expect(at(1899)).toBe(false)
    // The bucket [900, 950) leaves the window (now − 1000, now] at 1950 ms.
    expect(at(1949)).toBe(false)
    expect(at(1950)).toBe(true)
    expect(at(1951)).toBe(false)
    expect(at(2000)).toBe(true)
  })

  it('never admits more than the limit in any span of the window (random arrivals)', () => {
    const limit = 7
    const windowMs = 1000
    const limiter = new LocalRateLimiter()
    const subjects = [subject('key:a', { name: 'burst', limit, windowMs })]
    let seed = 42
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      return seed / 2 ** 31
    }
    let now = Date.parse('2026-03-01T12:00:00.013Z')
    const admittedAt: number[] = []
    for (let request = 0; request < 5000; request++) {
      now += Math.floor(random() * 60)
      if (limiter.consume(subjects, 1, now).ok) admittedAt.push(now)
    }
    let worst = 0
    for (let last = 0; last < admittedAt.length; last++) {
      const end = admittedAt[last] as number
      const inWindow = admittedAt.filter((time) => time > end - windowMs && time <= end).length
      worst = Math.max(worst, inWindow)
    }
    expect(worst).toBe(limit)
    // And it is not a trickle: the whole run admitted at least ~90 % of the ceiling.
    const windows = ((admittedAt.at(-1) ?? 0) - (admittedAt[0] ?? 0)) / windowMs
    expect(admittedAt.length).toBeGreaterThan(windows * limit * 0.9)
  })

  it('admits exactly 25 of 80 requests spread over 400 ms against 25 per 10 s', () => {
    const clock = new TestClock()
    const limiter = new LocalRateLimiter()
    const subjects = [subject('key:a', { name: 'burst', limit: 25, windowMs: 10_000 })]
    let admitted = 0
    for (let request = 0; request < 80; request++) {
      if (limiter.consume(subjects, 1, clock.now()).ok) admitted++
      clock.advance(5)
    }
    expect(admitted).toBe(25)
  })

  it('spends nothing on a refused request: the first limit is unchanged when the second refuses', () => {
    const clock = new TestClock()
    const limiter = new LocalRateLimiter()
    const subjects = [subject('key:a', { name: 'hourly', limit: 5, windowMs: 3_600_000 }, perSecond(2))]

    expect(limiter.consume(subjects, 1, clock.now()).ok).toBe(true)
    expect(limiter.consume(subjects, 1, clock.now()).ok).toBe(true)
    for (let request = 0; request < 4; request++) {
      const refused = refusal(limiter.consume(subjects, 1, clock.now()))
      expect(refused.limit.name).toBe('burst')
      expect(refused.states[0]).toMatchObject({ name: 'hourly', remaining: 3 })
    }
    // The hourly limit still has exactly 3: two more now, one a second later, then it refuses.
    clock.advance(1100)
    expect(limiter.consume(subjects, 1, clock.now()).ok).toBe(true)
    expect(limiter.consume(subjects, 1, clock.now()).ok).toBe(true)
    clock.advance(1100)
    expect(limiter.consume(subjects, 1, clock.now()).ok).toBe(true)
    const exhausted = refusal(limiter.consume(subjects, 1, clock.now()))
    expect(exhausted.limit).toMatchObject({ name: 'hourly', remaining: 0 })
  })

  it('does not extend the block while a client keeps sending refused requests', () => {
    const clock = new TestClock()
    const limiter = new LocalRateLimiter()
    const subjects = [subject('key:a', perSecond(1))]
    expect(limiter.consume(subjects, 1, clock.now()).ok).toBe(true)
    for (let step = 0; step < 104; step++) {
      clock.advance(10)
      expect(limiter.consume(subjects, 1, clock.now()).ok).toBe(false)
    }
    clock.advance(10) // 1050 ms after the admitted request: its bucket has left the window
    expect(limiter.consume(subjects, 1, clock.now()).ok).toBe(true)
  })

  it('counts a request with a cost as that many units and says when the cost fits', () => {
    const clock = new TestClock()
    const limiter = new LocalRateLimiter()
    const subjects = [subject('key:a', perSecond(10))]
    expect(limiter.consume(subjects, 4, clock.now()).ok).toBe(true)
    clock.advance(100)
    expect(limiter.consume(subjects, 4, clock.now()).ok).toBe(true)
    const refused = refusal(limiter.consume(subjects, 4, clock.now()))
    expect(refused.limit.remaining).toBe(2)
    // 4 fits once the first 4 (bucket [0, 50)) leave at 1050 ms: 950 ms from now.
    expect(refused.retryAfterMs).toBe(950)
    expect(limiter.consume(subjects, 2, clock.now()).ok).toBe(true)
  })

  it('treats a clock that runs backwards as the latest reading, so the window cannot reopen', () => {
    const clock = new TestClock()
    const limiter = new LocalRateLimiter()
    const subjects = [subject('key:a', perSecond(1))]
    clock.advance(5000)
    expect(limiter.consume(subjects, 1, clock.now()).ok).toBe(true)
    const behind = refusal(limiter.consume(subjects, 1, clock.now() - 4000))
    // Answered as of the latest reading: room again 1050 ms after the admitted request.
    expect(behind.retryAfterMs).toBe(1050)
    expect(behind.limit.resetMs).toBe(1050)
  })

  it('shares a tenant limit between the keys of a tenant, named tenant:<name>', () => {
    const clock = new TestClock()
    const limiter = new LocalRateLimiter()
    const tenantLimits = [{ name: 'minute', limit: 3, windowMs: 60_000 }]
    const first = limitSubjects({ id: 'key_1', tenantId: 'acme', rateLimits: [perSecond(10)] }, tenantLimits)
    const second = limitSubjects({ id: 'key_2', tenantId: 'acme', rateLimits: [] }, tenantLimits)
    const other = limitSubjects({ id: 'key_3', tenantId: 'globex', rateLimits: [] }, tenantLimits)

    expect(limiter.consume(first, 1, clock.now()).ok).toBe(true)
    expect(limiter.consume(second, 1, clock.now()).ok).toBe(true)
    expect(limiter.consume(first, 1, clock.now()).ok).toBe(true)
    const refused = refusal(limiter.consume(second, 1, clock.now()))
    expect(refused.limit).toMatchObject({ name: 'tenant:minute', remaining: 0 })
    expect(refusal(limiter.consume(first, 1, clock.now())).states.map((state) => [state.name, state.remaining])).toEqual([
      ['burst', 8],
      ['tenant:minute', 0],
    ])
    expect(limiter.consume(other, 1, clock.now()).ok).toBe(true)
  })

  it('does not spend the tenant limit when the key limit refuses', () => {
    const clock = new TestClock()
    const limiter = new LocalRateLimiter()
    const tenantLimits = [{ name: 'minute', limit: 5, windowMs: 60_000 }]
    const tight = limitSubjects({ id: 'key_1', tenantId: 'acme', rateLimits: [perSecond(1)] }, tenantLimits)
    const free = limitSubjects({ id: 'key_2', tenantId: 'acme', rateLimits: [] }, tenantLimits)
    expect(limiter.consume(tight, 1, clock.now()).ok).toBe(true)
    for (let request = 0; request < 10; request++) expect(limiter.consume(tight, 1, clock.now()).ok).toBe(false)
    const admitted = [1, 2, 3, 4, 5].map(() => limiter.consume(free, 1, clock.now()).ok)
    expect(admitted).toEqual([true, true, true, true, false])
  })

  it('answers a key without limits with the shared admission and keeps no state for it', () => {
    const limiter = new LocalRateLimiter()
    const subjects = limitSubjects({ id: 'key_1', tenantId: 'acme', rateLimits: [] })
    expect(subjects).toBe(NO_SUBJECTS)
    expect(limiter.consume(subjects, 1, Date.now())).toBe(ADMITTED)
    expect(limiter.size).toBe(0)
  })

  it('keeps counters for at most maxSubjects subjects, dropping the least recently used', () => {
    const clock = new TestClock()
    const limiter = new LocalRateLimiter({ maxSubjects: 3 })
    const keep = [subject('key:kept', perSecond(2))]
    expect(limiter.consume(keep, 1, clock.now()).ok).toBe(true)
    for (let index = 0; index < 10; index++) {
      limiter.consume([subject(`key:${index}`, perSecond(2))], 1, clock.now())
      limiter.consume(keep, 0, clock.now()) // touch: most recently used
      expect(limiter.size).toBeLessThanOrEqual(3)
    }
    expect(limiter.size).toBe(3)
    // The subject in constant use kept its count.
    expect(limiter.consume(keep, 1, clock.now()).ok).toBe(true)
    expect(limiter.consume(keep, 1, clock.now()).ok).toBe(false)
  })

  it('keeps the counts of unchanged limits when a key’s limits are edited', () => {
    const clock = new TestClock()
    const limiter = new LocalRateLimiter()
    const hourly = { name: 'hourly', limit: 3, windowMs: 3_600_000 }
    expect(limiter.consume([subject('key:a', hourly)], 1, clock.now()).ok).toBe(true)
    expect(limiter.consume([subject('key:a', hourly)], 1, clock.now()).ok).toBe(true)
    // A PATCH adds a limit and raises nothing: the hourly count (2) carries over.
    const edited = [subject('key:a', hourly, perSecond(10))]
    expect(limiter.consume(edited, 1, clock.now()).ok).toBe(true)
    expect(refusal(limiter.consume(edited, 1, clock.now())).limit.name).toBe('hourly')
    // Raising the limit keeps the count too: 3 used of 4.
    const raised = [subject('key:a', { ...hourly, limit: 4 }, perSecond(10))]
    expect(limiter.consume(raised, 1, clock.now()).ok).toBe(true)
    expect(limiter.consume(raised, 1, clock.now()).ok).toBe(false)
  })

  it('spends credits only when every limit admits, and refuses for credits first', () => {
    const clock = new TestClock()
    const limiter = new LocalRateLimiter()
    const subjects = [subject('key:a', perSecond(2))]
    const credits = { keyId: 'key_a', epoch: '1', seed: 3 }

    const first = limiter.consume(subjects, 1, clock.now(), credits)
    expect(first).toMatchObject({ ok: true, credits: { remaining: 2 } })
    expect(limiter.consume(subjects, 1, clock.now(), credits)).toMatchObject({ ok: true, credits: { remaining: 1 } })
    // Rate limited: the credit is not spent.
    expect(limiter.consume(subjects, 1, clock.now(), credits)).toMatchObject({ ok: false, code: 'rate_limited', credits: { remaining: 1 } })
    clock.advance(1100)
    expect(limiter.consume(subjects, 1, clock.now(), credits)).toMatchObject({ ok: true, credits: { remaining: 0 } })
    // Out of credits (and rate limited too): credits are named, and the rate limit is not spent.
    const exhausted = limiter.consume(subjects, 1, clock.now(), credits)
    expect(exhausted).toMatchObject({ ok: false, code: 'credits_exhausted', credits: { remaining: 0 } })
    expect(exhausted.states[0]?.remaining).toBe(1)
  })

  it('starts a new credit epoch from its seed (a PATCH or a refill)', () => {
    const limiter = new LocalRateLimiter()
    const now = Date.now()
    expect(limiter.consume([], 1, now, { keyId: 'key_a', epoch: '1', seed: 1 }).ok).toBe(true)
    expect(limiter.consume([], 1, now, { keyId: 'key_a', epoch: '1', seed: 1 }).ok).toBe(false)
    expect(limiter.consume([], 1, now, { keyId: 'key_a', epoch: '2', seed: 5 })).toMatchObject({ ok: true, credits: { remaining: 4 } })
  })

  it('refuses to be built with a maxSubjects that is not a positive integer', () => {
    expect(() => new LocalRateLimiter({ maxSubjects: 0 })).toThrow(/maxSubjects/)
  })
})
