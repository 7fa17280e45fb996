import { describe, expect, it } from 'vitest'
import {
  CreditLedger,
  creditEpoch,
  creditsRetryAfterMs,
  currentRemaining,
  nextPeriodStart,
  periodStart,
} from '../src/core/controls/credits.js'

const at = (iso: string) => Date.parse(iso)

describe('credit periods', () => {
  it('starts a day at UTC midnight and a month on the 1st at UTC midnight', () => {
    expect(periodStart('day', at('2026-03-17T23:59:59.999Z'))).toBe(at('2026-03-17T00:00:00Z'))
    expect(periodStart('day', at('2026-03-18T00:00:00Z'))).toBe(at('2026-03-18T00:00:00Z'))
    expect(periodStart('month', at('2026-03-17T08:00:00Z'))).toBe(at('2026-03-01T00:00:00Z'))
    expect(periodStart('month', at('2026-03-01T00:00:00Z'))).toBe(at('2026-03-01T00:00:00Z'))
  })

  it('ends a day after 24 hours and a month on the next 1st, across the year', () => {
    expect(nextPeriodStart('day', at('2026-02-28T12:00:00Z'))).toBe(at('2026-03-01T00:00:00Z'))
    expect(nextPeriodStart('month', at('2026-02-10T00:00:00Z'))).toBe(at('2026-03-01T00:00:00Z'))
    expect(nextPeriodStart('month', at('2026-12-31T23:00:00Z'))).toBe(at('2027-01-01T00:00:00Z'))
  })

  it('sets remaining to the refill amount once a period began after the last refill', () => {
    const credits = { remaining: 7, refill: { amount: 100, interval: 'day' as const } }
    expect(currentRemaining(credits, at('2026-03-17T09:00:00Z'), at('2026-03-17T23:00:00Z'))).toBe(7)
    expect(currentRemaining(credits, at('2026-03-17T09:00:00Z'), at('2026-03-18T00:00:00Z'))).toBe(100)
    expect(currentRemaining({ remaining: 7, refill: null }, at('2020-01-01T00:00:00Z'), at('2026-03-18T00:00:00Z'))).toBe(7)
  })

  it('names a new counter for each credits version and each refill period', () => {
    const daily = { remaining: 5, refill: { amount: 5, interval: 'day' as const } }
    const morning = creditEpoch(3, daily, at('2026-03-17T09:00:00Z'))
    expect(creditEpoch(3, daily, at('2026-03-17T21:00:00Z'))).toBe(morning)
    expect(creditEpoch(3, daily, at('2026-03-18T00:00:00Z'))).not.toBe(morning)
    expect(creditEpoch(4, daily, at('2026-03-17T09:00:00Z'))).not.toBe(morning)
    expect(creditEpoch(3, { remaining: 5, refill: null }, at('2026-03-17T09:00:00Z'))).toBe('3')
  })

  it('says credits come back at the next refill, or never', () => {
    const monthly = { remaining: 0, refill: { amount: 5, interval: 'month' as const } }
    expect(creditsRetryAfterMs(monthly, at('2026-03-31T23:59:00Z'))).toBe(60_000)
    expect(creditsRetryAfterMs({ remaining: 0, refill: null }, at('2026-03-31T23:59:00Z'))).toBeNull()
  })
})

describe('CreditLedger', () => {
  it('spends from its seed and refuses a cost it cannot cover, changing nothing', () => {
    const ledger = new CreditLedger()
    expect(ledger.spend('key_a', '1', 2, 3)).toBe(true)
    expect(ledger.spend('key_a', '1', 2, 3)).toBe(false)
    expect(ledger.available('key_a', '1')).toBe(1)
    expect(ledger.spend('key_a', '1', 1)).toBe(true)
    expect(ledger.available('key_a', '1')).toBe(0)
  })

  it('spends leased blocks and gives back what was not spent', () => {
    const ledger = new CreditLedger()
    expect(ledger.spend('key_a', '1', 1)).toBe(false)
    ledger.grant('key_a', '1', 10)
    for (let request = 0; request < 4; request++) expect(ledger.spend('key_a', '1', 1)).toBe(true)
    expect(ledger.takeUnused('key_a')).toEqual({ epoch: '1', amount: 6 })
    expect(ledger.takeUnused('key_a')).toBeUndefined()
    expect(ledger.available('key_a', '1')).toBe(0)
  })

  it('reports spending since the last drain, for the flush', () => {
    const ledger = new CreditLedger()
    ledger.spend('key_a', '1', 3, 10)
    ledger.spend('key_b', '7', 1, 10)
    ledger.available('key_c', '1', 10)
    expect(ledger.drainSpent()).toEqual([
      { keyId: 'key_a', epoch: '1', spent: 3 },
      { keyId: 'key_b', epoch: '7', spent: 1 },
    ])
    expect(ledger.drainSpent()).toEqual([])
    ledger.spend('key_a', '1', 2)
    expect(ledger.drainSpent()).toEqual([{ keyId: 'key_a', epoch: '1', spent: 2 }])
  })

  it('drops what was held for an old epoch when the epoch changes', () => {
    const ledger = new CreditLedger()
    ledger.grant('key_a', '1', 10)
    expect(ledger.spend('key_a', '2', 1, 4)).toBe(true)
    expect(ledger.available('key_a', '2')).toBe(3)
    expect(ledger.takeUnused('key_a')).toEqual({ epoch: '2', amount: 3 })
  })

  it('charges metered usage down to zero and never below', () => {
    const ledger = new CreditLedger()
    expect(ledger.charge('key_a', '1', 4, 10)).toBe(4)
    expect(ledger.charge('key_a', '1', 50)).toBe(6)
    expect(ledger.available('key_a', '1')).toBe(0)
    expect(ledger.drainSpent()).toEqual([{ keyId: 'key_a', epoch: '1', spent: 10 }])
  })
})
