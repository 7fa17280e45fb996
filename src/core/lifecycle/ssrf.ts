import { BlockList, isIP } from 'node:net'

/**
 * Where keyward may send outbound requests (rotation webhooks). A webhook URL is chosen by a tenant,
 * so without these limits it turns the server into a proxy into its own network (cloud metadata at
 * 169.254.169.254, admin ports on 127.0.0.1, the database on 10.x) and may carry a new secret in clear.
 */
export interface OutboundPolicy {
  /**
   * Lets webhook URLs name loopback, private, link-local and other non-public addresses, and host
   * names such as `localhost`. For self-hosted set-ups whose receiver lives on the internal network,
   * and for tests. Gives up the SSRF protection: any tenant who can set a webhook URL can then make
   * the server POST to any host and port it can reach.
   * @default false
   */
  allowPrivateNetworks: boolean
  /**
   * Lets webhook URLs use `http:`. Gives up confidentiality and integrity in transit: the rotation
   * webhook carries the new key in its body, readable (and forgeable) by anyone on the path.
   * @default false
   */
  allowInsecureHttp: boolean
}

/** https only, public addresses only: what every instance gets unless it opts out. */
export const DEFAULT_OUTBOUND_POLICY: Readonly<OutboundPolicy> = Object.freeze({ allowPrivateNetworks: false, allowInsecureHttp: false })

function blockList(family: 'ipv4' | 'ipv6', subnets: [network: string, prefix: number][]): BlockList {
  const list = new BlockList()
  for (const [network, prefix] of subnets) list.addSubnet(network, prefix, family)
  return list
}

// IPv4 addresses that are not globally reachable (IANA IPv4 Special-Purpose Address Registry),
// refused whole: a webhook receiver never legitimately lives in any of them.
const NON_PUBLIC_IPV4 = blockList('ipv4', [
  ['0.0.0.0', 8], // "this network"; 0.0.0.0 reaches the local host on Linux
  ['10.0.0.0', 8], // private (RFC 1918)
  ['100.64.0.0', 10], // carrier-grade NAT (RFC 6598); also Alibaba Cloud's metadata 100.100.100.200
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, including cloud metadata 169.254.169.254
  ['172.16.0.0', 12], // private (RFC 1918)
  ['192.0.0.0', 24], // IETF protocol assignments (DS-Lite, NAT64 discovery)
  ['192.0.2.0', 24], // documentation (TEST-NET-1)
  ['192.88.99.0', 24], // deprecated 6to4 relay anycast (RFC 7526)
  ['192.168.0.0', 16], // private (RFC 1918)
  ['198.18.0.0', 15], // benchmarking (RFC 2544); some networks use it internally
  ['198.51.100.0', 24], // documentation (TEST-NET-2)
  ['203.0.113.0', 24], // documentation (TEST-NET-3)
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, including the broadcast address 255.255.255.255
])

// IPv6 is judged the other way round: only global unicast (2000::/3) is public, so loopback ::1,
// unspecified ::, the deprecated IPv4-compatible ::a.b.c.d, unique-local fc00::/7 (AWS metadata
// fd00:ec2::254), link-local fe80::/10, site-local fec0::/10, multicast ff00::/8, discard 100::/64,
// local-use NAT64 64:ff9b:1::/48 and anything IANA allocates later are refused without a list.
const GLOBAL_UNICAST_IPV6 = blockList('ipv6', [['2000::', 3]])

// Blocks inside 2000::/3 that are not globally reachable.
const NON_PUBLIC_IPV6 = blockList('ipv6', [
  ['2001::', 23], // IETF protocol assignments: Teredo, benchmarking 2001:2::/48, ORCHID
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation (RFC 9637)
])

/**
 * Whether an IP address is on the public internet, and so a safe destination for a tenant-chosen
 * webhook. Anything that is not a valid IP literal is not public (fail closed).
 *
 * IPv6 forms that carry an IPv4 address are judged by that IPv4 address, because that is where the
 * packets end up: IPv4-mapped `::ffff:a.b.c.d` (any spelling, e.g. `::ffff:7f00:1`), NAT64
 * `64:ff9b::a.b.c.d` (RFC 6052) and 6to4 `2002:AABB:CCDD::/48` (RFC 3056). An address with a zone
 * index (`fe80::1%eth0`) is scoped to one link, so never public.
 *
 * Node's `BlockList` does the range matching. It is not used for the embedded forms because its
 * handling of IPv4-mapped addresses is implicit (an IPv4 rule matches `::ffff:a.b.c.d` but not NAT64
 * or 6to4), so the embedded IPv4 address is taken out here and checked explicitly.
 *
 * @example
 * isPublicAddress('93.184.215.14') // true
 * isPublicAddress('169.254.169.254') // false
 * isPublicAddress('::ffff:127.0.0.1') // false
 */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address)
  if (family === 4) return !NON_PUBLIC_IPV4.check(address, 'ipv4')
  if (family !== 6 || address.includes('%')) return false
  const words = ipv6Words(address)
  const embedded = embeddedIpv4(words)
  if (embedded !== undefined) return !NON_PUBLIC_IPV4.check(embedded, 'ipv4')
  return GLOBAL_UNICAST_IPV6.check(address, 'ipv6') && !NON_PUBLIC_IPV6.check(address, 'ipv6')
}

/** The eight 16-bit words of a valid IPv6 literal (no zone index). */
function ipv6Words(address: string): number[] {
  // The WHATWG URL serializer rewrites any valid spelling (upper case, a dotted IPv4 tail,
  // uncompressed zeros) to one canonical hex form, which leaves only `::` to expand.
  const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1)
  const [head = '', tail] = canonical.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const zeros = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0')
  return [...left, ...zeros, ...right].map((word) => Number.parseInt(word, 16))
}

function embeddedIpv4(words: number[]): string | undefined {
  const [w0, w1, w2, w3, w4, w5, w6 = 0, w7 = 0] = words
  const low32 = () => dotted(w6, w7)
  if (w0 === 0 && w1 === 0 && w2 === 0 && w3 === 0 && w4 === 0 && w5 === 0xffff) return low32() // ::ffff:0:0/96
  if (w0 === 0x64 && w1 === 0xff9b && w2 === 0 && w3 === 0 && w4 === 0 && w5 === 0) return low32() // 64:ff9b::/96
  if (w0 === 0x2002) return dotted(w1 ?? 0, w2 ?? 0) // 2002::/16
  return undefined
}

function dotted(high: number, low: number): string {
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.')
}

// Special-use names that always stay on this host or its network: `localhost` (RFC 6761), mDNS
// `.local` (RFC 6762), `.home.arpa` (RFC 8375) and `.internal` (reserved by ICANN for private use).
const LOCALHOST_NAME = /(^|\.)localhost$/
const INTERNAL_NAME = /\.(local|home\.arpa|internal)$/

/**
 * The check a webhook URL passes when it is saved (create and update). It needs no DNS: literal
 * addresses and special names are judged as written, and a public-looking host name is accepted;
 * the name is resolved and checked again at every delivery (see `createWebhookTransport`).
 *
 * Refused, with a field message in the style of the other field errors:
 * - anything but `https:` (`http:` too when `allowInsecureHttp`);
 * - a user name or password (`https://user:pass@host/`): it would be stored and shown with the key
 *   and its delivery log in clear, and `https://trusted.example@evil.example/` is a classic way to
 *   disguise the real host; receivers authenticate the sender by the webhook signature instead;
 * - unless `allowPrivateNetworks`: a literal address that is not public (`isPublicAddress`), in
 *   whatever form the URL parser accepts (`2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]` all become
 *   127.0.0.1); `localhost` and `*.localhost`; `*.local`, `*.home.arpa`, `*.internal` and
 *   single-label names (`https://metadata/`), which resolve through the local network's search
 *   domains. Trailing dots (`localhost.`) do not change the verdict.
 *
 * @returns `undefined` when the URL is acceptable, otherwise the message for `rotation_webhook_url`.
 * @example
 * checkWebhookUrl('https://hooks.example.com/keyward', DEFAULT_OUTBOUND_POLICY) // undefined
 * checkWebhookUrl('http://169.254.169.254/latest', DEFAULT_OUTBOUND_POLICY) // 'must use https'
 */
export function checkWebhookUrl(url: string, policy: OutboundPolicy): string | undefined {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return 'must be a valid URL'
  }
  if (parsed.protocol !== 'https:' && !(policy.allowInsecureHttp && parsed.protocol === 'http:')) {
    return policy.allowInsecureHttp ? 'must be an http or https URL' : 'must use https'
  }
  if (parsed.username !== '' || parsed.password !== '') return 'must not contain a user name or password'
  if (policy.allowPrivateNetworks) return undefined
  const host = hostOf(parsed)
  if (isIP(host) !== 0) return isPublicAddress(host) ? undefined : 'must not point to a private, loopback, link-local or reserved address'
  if (LOCALHOST_NAME.test(host)) return 'must not point to localhost'
  if (!host.includes('.') || INTERNAL_NAME.test(host)) return 'must not point to an internal host name'
  return undefined
}

/**
 * The host a parsed http(s) URL connects to, as `isIP` and DNS expect it: IPv6 without brackets,
 * names without trailing dots (`localhost.` is `localhost`). The URL parser has already lower-cased
 * the name and turned numeric IPv4 spellings into dotted quads.
 */
export function hostOf(url: URL): string {
  const hostname = url.hostname
  if (hostname.startsWith('[')) return hostname.slice(1, -1)
  return hostname.replace(/\.+$/, '')
}
