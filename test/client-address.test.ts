import { describe, expect, it } from 'vitest'
import { clientAddress, compileTrustProxy } from '../src/http/client-address.js'

describe('clientAddress', () => {
  it('uses the socket address when no proxy is trusted, whatever X-Forwarded-For says', () => {
    for (const option of [undefined, false, 0] as const) {
      const trust = compileTrustProxy(option)
      expect(clientAddress('198.51.100.20', '203.0.113.5', trust)).toBe('198.51.100.20')
    }
  })

  it('ignores a forged X-Forwarded-For from a peer that is not a trusted proxy', () => {
    const trust = compileTrustProxy('loopback, 10.0.0.0/8')
    expect(clientAddress('198.51.100.20', '203.0.113.5', trust)).toBe('198.51.100.20')
  })

  it('skips trusted hops right to left and stops at the first untrusted address', () => {
    const trust = compileTrustProxy(['loopback', '10.0.0.0/8'])
    // The client forged "1.2.3.4"; the proxy appended the address it saw (203.0.113.5).
    expect(clientAddress('127.0.0.1', '1.2.3.4, 203.0.113.5', trust)).toBe('203.0.113.5')
    expect(clientAddress('127.0.0.1', '1.2.3.4, 203.0.113.5, 10.0.0.3', trust)).toBe('203.0.113.5')
    expect(clientAddress('::1', '2001:db8::7', trust)).toBe('2001:db8::7')
  })

  it('trusts the named ranges linklocal and uniquelocal', () => {
    const trust = compileTrustProxy('linklocal,uniquelocal')
    expect(clientAddress('192.168.1.1', '203.0.113.5, 172.16.0.9', trust)).toBe('203.0.113.5')
    expect(clientAddress('fe80::1', '203.0.113.5', trust)).toBe('203.0.113.5')
  })

  it('trusts a number of hops nearest to the server', () => {
    const trust = compileTrustProxy(1)
    expect(clientAddress('10.0.0.1', '1.2.3.4, 203.0.113.5', trust)).toBe('203.0.113.5')
    expect(clientAddress('10.0.0.1', '1.2.3.4, 203.0.113.5', compileTrustProxy(2))).toBe('1.2.3.4')
  })

  it('with true, takes the left-most address (every hop trusted)', () => {
    expect(clientAddress('10.0.0.1', '1.2.3.4, 203.0.113.5', compileTrustProxy(true))).toBe('1.2.3.4')
  })

  it('calls a trust function with each address and its hop index', () => {
    const asked: [string, number][] = []
    const trust = compileTrustProxy((address, hop) => {
      asked.push([address, hop])
      return address === '10.0.0.1'
    })
    expect(clientAddress('10.0.0.1', '1.2.3.4, 203.0.113.5', trust)).toBe('203.0.113.5')
    expect(asked).toEqual([
      ['10.0.0.1', 0],
      ['203.0.113.5', 1],
    ])
  })

  it('answers the socket address when there is no header, and nothing without a socket address', () => {
    const trust = compileTrustProxy('loopback')
    expect(clientAddress('127.0.0.1', undefined, trust)).toBe('127.0.0.1')
    expect(clientAddress('127.0.0.1', '', trust)).toBe('127.0.0.1')
    expect(clientAddress(undefined, '203.0.113.5', trust)).toBeUndefined()
  })

  it('refuses a trustProxy value it cannot read, naming the option', () => {
    expect(() => compileTrustProxy('loopback, not-an-ip')).toThrow(/trustProxy.*not-an-ip/)
    expect(() => compileTrustProxy(-1)).toThrow(/trustProxy/)
  })
})
