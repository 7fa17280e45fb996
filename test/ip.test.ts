import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { canonicalRange, compileAllowlist, isWithin, parseRange } from '../src/core/controls/ip.js'
import { allowedIpsSchema } from '../src/core/controls/schemas.js'
import { fieldErrors } from '../src/core/schemas.js'

function failure(text: string): string {
  const parsed = parseRange(text)
  if (parsed.ok) throw new Error(`expected ${text} to be refused`)
  return parsed.message
}

describe('parseRange', () => {
  it('reads IPv4 and IPv6 ranges and bare addresses in canonical form', () => {
    expect(canonicalRange('203.0.113.0/24')).toBe('203.0.113.0/24')
    expect(canonicalRange('203.0.113.5')).toBe('203.0.113.5/32')
    expect(canonicalRange('2001:DB8:0:0::/32')).toBe('2001:db8::/32')
    expect(canonicalRange('2001:db8::1')).toBe('2001:db8::1/128')
    expect(canonicalRange('0.0.0.0/0')).toBe('0.0.0.0/0')
    expect(canonicalRange('::/0')).toBe('::/0')
  })

  it('reads an IPv4-mapped IPv6 range as the IPv4 range it is', () => {
    expect(canonicalRange('::ffff:203.0.113.0/120')).toBe('203.0.113.0/24')
    expect(canonicalRange('::ffff:203.0.113.5')).toBe('203.0.113.5/32')
  })

  it('refuses host bits beyond the prefix and suggests the network', () => {
    expect(failure('10.0.0.5/8')).toBe('has bits set beyond the /8 prefix; did you mean 10.0.0.0/8?')
    expect(failure('2001:db8::1/32')).toBe('has bits set beyond the /32 prefix; did you mean 2001:db8::/32?')
  })

  it('refuses what is not an address, and the forms other parsers read as other addresses', () => {
    for (const text of ['', 'localhost', '10.0.0', '127.1', '010.0.0.1', '0x7f.0.0.1', '256.0.0.1', 'fe80::1%eth0']) {
      expect(failure(text)).toBe('must be an IPv4 or IPv6 address or CIDR range, e.g. 203.0.113.0/24')
    }
    expect(failure('203.0.113.0/33')).toBe('must have a prefix length from 0 to 32')
    expect(failure('2001:db8::/129')).toBe('must have a prefix length from 0 to 128')
    expect(failure('203.0.113.0/024')).toBe('must have a prefix length from 0 to 32')
    expect(failure('203.0.113.0/-1')).toBe('must have a prefix length from 0 to 32')
    expect(failure('203.0.113.0/')).toBe('must have a prefix length from 0 to 32')
  })
})

describe('compileAllowlist', () => {
  it('matches addresses inside any of its ranges, IPv4 and IPv6', () => {
    const allowed = compileAllowlist(['203.0.113.0/24', '2001:db8::/32', '198.51.100.7'])
    expect(allowed('203.0.113.5')).toBe(true)
    expect(allowed('203.0.114.5')).toBe(false)
    expect(allowed('198.51.100.7')).toBe(true)
    expect(allowed('198.51.100.8')).toBe(false)
    expect(allowed('2001:db8:1234::9')).toBe(true)
    expect(allowed('2001:db9::1')).toBe(false)
  })

  it('matches an IPv4-mapped IPv6 address against IPv4 ranges', () => {
    const allowed = compileAllowlist(['203.0.113.0/24'])
    expect(allowed('::ffff:203.0.113.5')).toBe(true)
    expect(allowed('::ffff:cb00:7105')).toBe(true)
    expect(allowed('::ffff:203.0.114.5')).toBe(false)
    expect(compileAllowlist(['::ffff:203.0.113.0/120'])('203.0.113.9')).toBe(true)
  })

  it('matches nothing that is not an IP address', () => {
    const allowed = compileAllowlist(['0.0.0.0/0', '::/0'])
    expect(allowed('1.2.3.4')).toBe(true)
    expect(allowed('fe80::1%eth0')).toBe(true)
    for (const text of ['', 'unknown', '127.1', '0x7f.0.0.1', '1.2.3.4, 5.6.7.8']) expect(allowed(text)).toBe(false)
  })

  it('allows every address when the list is empty (no allowlist)', () => {
    expect(compileAllowlist([])('192.0.2.1')).toBe(true)
  })
})

describe('isWithin', () => {
  it('accepts a child whose every range lies inside one range of the parent', () => {
    expect(isWithin(['203.0.113.0/25', '203.0.113.200'], ['203.0.113.0/24'])).toBe(true)
    expect(isWithin(['2001:db8:1::/48'], ['10.0.0.0/8', '2001:db8::/32'])).toBe(true)
    expect(isWithin(['203.0.113.0/24'], ['203.0.113.0/24'])).toBe(true)
    expect(isWithin(['::ffff:203.0.113.0/120'], ['203.0.113.0/24'])).toBe(true)
  })

  it('refuses a wider range, a range elsewhere, or the other family', () => {
    expect(isWithin(['203.0.112.0/23'], ['203.0.113.0/24'])).toBe(false)
    // Starts inside the parent but is wider than it.
    expect(isWithin(['10.0.0.0/16'], ['10.0.0.0/24'])).toBe(false)
    expect(isWithin(['2001:db8::/31'], ['2001:db8::/32'])).toBe(false)
    expect(isWithin(['203.0.113.0/25', '198.51.100.0/24'], ['203.0.113.0/24'])).toBe(false)
    expect(isWithin(['2001:db8::/32'], ['0.0.0.0/0'])).toBe(false)
  })

  it('treats no allowlist as everywhere: looser than any allowlist, and the parent of any', () => {
    expect(isWithin([], ['203.0.113.0/24'])).toBe(false)
    expect(isWithin(['203.0.113.0/24'], [])).toBe(true)
    expect(isWithin([], [])).toBe(true)
  })
})

describe('allowedIpsSchema', () => {
  it('canonicalises and de-duplicates the ranges', () => {
    expect(allowedIpsSchema.parse(['203.0.113.5', '203.0.113.5/32', '2001:DB8::/32'])).toEqual(['203.0.113.5/32', '2001:db8::/32'])
  })

  it('names the failing entry with a sentence', () => {
    const result = z.object({ allowedIps: allowedIpsSchema }).safeParse({ allowedIps: ['203.0.113.0/24', 'nope', '10.0.0.1/8'] })
    expect(result.success).toBe(false)
    if (result.success) throw new Error('expected a failure')
    expect(fieldErrors(result.error)).toEqual([
      { field: 'allowed_ips.1', message: 'must be an IPv4 or IPv6 address or CIDR range, e.g. 203.0.113.0/24' },
      { field: 'allowed_ips.2', message: 'has bits set beyond the /8 prefix; did you mean 10.0.0.0/8?' },
    ])
  })

  it('holds at most 100 ranges', () => {
    const ranges = Array.from({ length: 101 }, (_, index) => `10.0.${index}.0/24`)
    const result = allowedIpsSchema.safeParse(ranges)
    expect(result.success).toBe(false)
    expect(result.error?.issues[0]?.message).toBe('must hold at most 100 ranges')
  })
})
