import { isIPv4, isIPv6 } from 'node:net'
import ipaddr from 'ipaddr.js'

/**
 * IP allowlists: CIDR ranges (IPv4 and IPv6) a key may be used from.
 *
 * Parsing is strict where it decides what an allowlist means: dotted quads only (Node's `isIPv4`:
 * no `127.1`, no octal `010.0.0.1`, which `inet_aton`-style parsers read as other addresses), no
 * zone ids, no host bits beyond the prefix (`10.0.0.5/8` is refused, not silently widened).
 * IPv4-mapped IPv6 (`::ffff:203.0.113.5`, how a dual-stack socket reports an IPv4 client) is
 * treated as the IPv4 address it carries, for both ranges and request addresses.
 * The byte arithmetic is ipaddr.js, the parser Express's `trust proxy` (proxy-addr) uses.
 */

type Address = ipaddr.IPv4 | ipaddr.IPv6

export interface IpRange {
  address: Address
  bits: number
  /** Canonical text: `203.0.113.0/24`, `2001:db8::/32`. */
  cidr: string
}

export type ParsedRange = { ok: true; range: IpRange } | { ok: false; message: string }

const PREFIX = /^(?:0|[1-9]\d{0,2})$/

/**
 * Parses `203.0.113.0/24`, `2001:db8::/32` or a bare address (= /32 or /128). The message of a
 * failure reads after the field name (`allowed_ips.0 must be ...`).
 */
export function parseRange(text: string): ParsedRange {
  const slash = text.indexOf('/')
  const addressText = slash < 0 ? text : text.slice(0, slash)
  const prefixText = slash < 0 ? undefined : text.slice(slash + 1)
  const family = isIPv4(addressText) ? 4 : isIPv6(addressText) && !addressText.includes('%') ? 6 : 0
  if (family === 0) return { ok: false, message: 'must be an IPv4 or IPv6 address or CIDR range, e.g. 203.0.113.0/24' }
  const maxBits = family === 4 ? 32 : 128
  if (prefixText !== undefined && (!PREFIX.test(prefixText) || Number(prefixText) > maxBits)) {
    return { ok: false, message: `must have a prefix length from 0 to ${maxBits}` }
  }
  let address: Address = ipaddr.parse(addressText)
  let bits = prefixText === undefined ? maxBits : Number(prefixText)
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
    address = (address as ipaddr.IPv6).toIPv4Address()
    bits -= 96
  }
  const network = networkOf(address, bits)
  if (network.toString() !== address.toString()) {
    return { ok: false, message: `has bits set beyond the /${bits} prefix; did you mean ${network.toString()}/${bits}?` }
  }
  return { ok: true, range: { address: network, bits, cidr: `${network.toString()}/${bits}` } }
}

/** Parses a range that was validated before (stored data, options); throws on a bad one. */
export function toRange(text: string): IpRange {
  const parsed = parseRange(text)
  if (!parsed.ok) throw new Error(`keyward: ${JSON.stringify(text)} ${parsed.message}`)
  return parsed.range
}

/** The canonical form of a range: `203.0.113.5` → `203.0.113.5/32`, `2001:DB8::/32` → `2001:db8::/32`. */
export function canonicalRange(text: string): string {
  return toRange(text).cidr
}

/** A request address as ipaddr parses it, IPv4-mapped IPv6 unwrapped; `undefined` if not an address. */
function requestAddress(text: string): Address | undefined {
  const zone = text.indexOf('%')
  const bare = zone < 0 ? text : text.slice(0, zone)
  if (!isIPv4(bare) && !isIPv6(bare)) return undefined
  const address = ipaddr.parse(bare)
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) return (address as ipaddr.IPv6).toIPv4Address()
  return address
}

/**
 * Compiles an allowlist into a matcher, once per cache fill. An empty list allows every address
 * (no restriction); anything that is not an IP address (an unparseable forwarded value) matches
 * nothing.
 *
 * @example
 * const allowed = compileAllowlist(['203.0.113.0/24', '2001:db8::/32'])
 * allowed('::ffff:203.0.113.5') // true
 */
export function compileAllowlist(cidrs: readonly string[]): (address: string) => boolean {
  if (cidrs.length === 0) return allowEveryAddress
  const ipv4: [ipaddr.IPv4, number][] = []
  const ipv6: [ipaddr.IPv6, number][] = []
  for (const text of cidrs) {
    const { address, bits } = toRange(text)
    if (address.kind() === 'ipv4') ipv4.push([address as ipaddr.IPv4, bits])
    else ipv6.push([address as ipaddr.IPv6, bits])
  }
  return (text) => {
    const address = requestAddress(text)
    if (address === undefined) return false
    if (address.kind() === 'ipv4') {
      for (const range of ipv4) if ((address as ipaddr.IPv4).match(range)) return true
      return false
    }
    for (const range of ipv6) if ((address as ipaddr.IPv6).match(range)) return true
    return false
  }
}

function allowEveryAddress(): boolean {
  return true
}

/**
 * Whether an allowlist is no looser than another (for "no escalation"): every range of `child`
 * lies inside one range of `parent`. No allowlist means every address: an empty `parent` admits
 * any child, an empty `child` fits only an empty parent.
 */
export function isWithin(child: readonly string[], parent: readonly string[]): boolean {
  if (parent.length === 0) return true
  if (child.length === 0) return false
  const parents = parent.map(toRange)
  return child.map(toRange).every((inner) => parents.some((outer) => contains(outer, inner)))
}

function contains(outer: IpRange, inner: IpRange): boolean {
  if (outer.address.kind() !== inner.address.kind() || inner.bits < outer.bits) return false
  return outer.address.kind() === 'ipv4'
    ? (inner.address as ipaddr.IPv4).match(outer.address as ipaddr.IPv4, outer.bits)
    : (inner.address as ipaddr.IPv6).match(outer.address as ipaddr.IPv6, outer.bits)
}

function networkOf(address: Address, bits: number): Address {
  const bytes = address.toByteArray()
  for (let index = 0; index < bytes.length; index++) {
    const keep = Math.max(0, Math.min(8, bits - index * 8))
    bytes[index] = (bytes[index] as number) & ((0xff << (8 - keep)) & 0xff)
  }
  return ipaddr.fromByteArray(bytes)
}
