import { describe, expect, it } from 'vitest'
import { checkWebhookUrl, DEFAULT_OUTBOUND_POLICY, isPublicAddress, type OutboundPolicy } from '../src/core/lifecycle/ssrf.js'
import { outboundPolicyFromEnv } from '../src/core/lifecycle/transport.js'

const PRIVATE_ADDRESS = 'must not point to a private, loopback, link-local or reserved address'
const LOCALHOST = 'must not point to localhost'
const INTERNAL_NAME = 'must not point to an internal host name'

// [address, why it is not public]: the first and last address of each range, where it has an edge.
const NON_PUBLIC: [string, string][] = [
  ['0.0.0.0', 'unspecified'],
  ['0.255.255.255', '"this network" 0/8'],
  ['10.0.0.0', 'RFC 1918 10/8'],
  ['10.255.255.255', 'RFC 1918 10/8'],
  ['100.64.0.0', 'CGNAT 100.64/10'],
  ['100.127.255.255', 'CGNAT 100.64/10'],
  ['100.100.100.200', 'Alibaba Cloud metadata, inside CGNAT'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback 127/8'],
  ['169.254.169.254', 'link-local cloud metadata'],
  ['169.254.0.1', 'link-local'],
  ['172.16.0.0', 'RFC 1918 172.16/12'],
  ['172.31.255.255', 'RFC 1918 172.16/12'],
  ['192.0.0.170', 'IETF protocol assignments (NAT64 discovery)'],
  ['192.0.2.1', 'documentation TEST-NET-1'],
  ['192.88.99.1', 'deprecated 6to4 relay anycast'],
  ['192.168.0.1', 'RFC 1918 192.168/16'],
  ['192.168.255.255', 'RFC 1918 192.168/16'],
  ['198.18.0.1', 'benchmarking 198.18/15'],
  ['198.19.255.255', 'benchmarking 198.18/15'],
  ['198.51.100.7', 'documentation TEST-NET-2'],
  ['203.0.113.9', 'documentation TEST-NET-3'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast (SSDP)'],
  ['240.0.0.1', 'reserved 240/4'],
  ['255.255.255.255', 'broadcast'],
  ['::', 'IPv6 unspecified'],
  ['::1', 'IPv6 loopback'],
  ['0:0:0:0:0:0:0:1', 'IPv6 loopback, uncompressed'],
  ['fe80::1', 'link-local fe80::/10'],
  ['febf:ffff::1', 'link-local fe80::/10, last block'],
  ['fe80::1%eth0', 'link-local with a zone index'],
  ['fc00::1', 'unique-local fc00::/7'],
  ['fd00:ec2::254', 'unique-local: AWS metadata over IPv6'],
  ['FDFF:FFFF::1', 'unique-local, upper case'],
  ['fec0::1', 'deprecated site-local'],
  ['ff02::1', 'multicast ff00::/8'],
  ['ff0e::1', 'global-scope multicast'],
  ['100::1', 'discard-only 100::/64'],
  ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
  ['::ffff:7f00:1', 'IPv4-mapped loopback, hex form'],
  ['0:0:0:0:0:ffff:7f00:1', 'IPv4-mapped loopback, uncompressed'],
  ['::FFFF:A9FE:A9FE', 'IPv4-mapped metadata, upper-case hex'],
  ['::ffff:10.0.0.1', 'IPv4-mapped RFC 1918'],
  ['::ffff:192.168.1.1', 'IPv4-mapped RFC 1918'],
  ['::ffff:100.64.0.1', 'IPv4-mapped CGNAT'],
  ['::ffff:0.0.0.0', 'IPv4-mapped unspecified'],
  ['::ffff:224.0.0.1', 'IPv4-mapped multicast'],
  ['::ffff:255.255.255.255', 'IPv4-mapped broadcast'],
  ['::127.0.0.1', 'IPv4-compatible loopback (deprecated form)'],
  ['::7f00:1', 'IPv4-compatible loopback, hex form'],
  ['::169.254.169.254', 'IPv4-compatible metadata'],
  ['::8.8.8.8', 'IPv4-compatible: deprecated, refused whatever it embeds'],
  ['::ffff:0:8.8.8.8', 'IPv4-translated (SIIT), outside global unicast'],
  ['64:ff9b::127.0.0.1', 'NAT64 embedding loopback'],
  ['64:ff9b::a9fe:a9fe', 'NAT64 embedding metadata, hex form'],
  ['64:ff9b::10.1.2.3', 'NAT64 embedding RFC 1918'],
  ['64:ff9b:1::8.8.8.8', 'local-use NAT64 64:ff9b:1::/48'],
  ['2002:7f00:1::', '6to4 embedding loopback'],
  ['2002:a9fe:a9fe::1', '6to4 embedding metadata'],
  ['2002:c0a8:101::1', '6to4 embedding 192.168.1.1'],
  ['2001::1', 'Teredo'],
  ['2001:2::1', 'benchmarking 2001:2::/48'],
  ['2001:20::1', 'ORCHIDv2'],
  ['2001:db8::1', 'documentation 2001:db8::/32'],
  ['3fff::1', 'documentation 3fff::/20'],
  ['4000::1', 'outside global unicast 2000::/3'],
  ['not-an-address', 'not an IP literal'],
  ['127.1', 'not a canonical IP literal'],
  ['', 'empty'],
]

const PUBLIC: [string, string][] = [
  ['8.8.8.8', 'a public resolver'],
  ['1.1.1.1', 'a public resolver'],
  ['93.184.215.14', 'a public web host'],
  ['9.255.255.255', 'just below 10/8'],
  ['11.0.0.0', 'just above 10/8'],
  ['100.63.255.255', 'just below CGNAT'],
  ['100.128.0.0', 'just above CGNAT'],
  ['172.15.255.255', 'just below 172.16/12'],
  ['172.32.0.0', 'just above 172.16/12'],
  ['192.0.3.1', 'next to TEST-NET-1'],
  ['198.17.255.255', 'just below benchmarking'],
  ['198.20.0.0', 'just above benchmarking'],
  ['223.255.255.255', 'just below multicast'],
  ['2001:4860:4860::8888', 'a public IPv6 resolver'],
  ['2606:4700:4700::1111', 'a public IPv6 resolver'],
  ['2001:200::1', 'just above the IETF protocol assignments 2001::/23'],
  ['2a00:1450:4001:80b::200e', 'a public IPv6 web host'],
  ['::ffff:8.8.8.8', 'IPv4-mapped public'],
  ['::ffff:808:808', 'IPv4-mapped public, hex form'],
  ['64:ff9b::8.8.8.8', 'NAT64 embedding a public address'],
  ['2002:808:808::1', '6to4 embedding a public address'],
]

describe('isPublicAddress', () => {
  it.each(NON_PUBLIC)('refuses %s (%s)', (address) => {
    expect(isPublicAddress(address)).toBe(false)
  })

  it.each(PUBLIC)('accepts %s (%s)', (address) => {
    expect(isPublicAddress(address)).toBe(true)
  })
})

const HTTP_ALLOWED: OutboundPolicy = { allowPrivateNetworks: false, allowInsecureHttp: true }
const PRIVATE_ALLOWED: OutboundPolicy = { allowPrivateNetworks: true, allowInsecureHttp: false }

describe('checkWebhookUrl under the default policy', () => {
  it.each([
    ['https://hooks.example.com/keyward', 'a public name'],
    ['https://hooks.example.com:8443/keyward?tenant=acme', 'a public name with a port and a query'],
    ['https://hooks.example.com./keyward', 'a fully qualified name with a trailing dot'],
    ['https://127.0.0.1.nip.io/hook', 'a public-looking name is not resolved at save time'],
    ['https://localhost.example.com/hook', 'localhost as a label of a public name'],
    ['https://8.8.8.8/hook', 'a public IPv4 literal'],
    ['https://[2606:4700:4700::1111]/hook', 'a public IPv6 literal'],
    ['https://[::ffff:8.8.8.8]/hook', 'an IPv4-mapped public literal'],
    ['https://bücher.example/hook', 'an internationalised name'],
  ])('accepts %s (%s)', (url) => {
    expect(checkWebhookUrl(url, DEFAULT_OUTBOUND_POLICY)).toBeUndefined()
  })

  it.each([
    ['http://hooks.example.com/keyward', 'must use https'],
    ['http://169.254.169.254/latest', 'must use https'],
    ['ftp://hooks.example.com/', 'must use https'],
    ['file:///etc/passwd', 'must use https'],
    ['javascript:alert(1)', 'must use https'],
    ['not a url', 'must be a valid URL'],
    ['https://', 'must be a valid URL'],
    ['https://user:secret@hooks.example.com/', 'must not contain a user name or password'],
    ['https://hooks.example.com@evil.example/', 'must not contain a user name or password'],
    ['https://:secret@hooks.example.com/', 'must not contain a user name or password'],
  ])('refuses %s: %s', (url, message) => {
    expect(checkWebhookUrl(url, DEFAULT_OUTBOUND_POLICY)).toBe(message)
  })

  it.each([
    ['https://127.0.0.1/hook', 'loopback'],
    ['https://127.0.0.1:4555/hook', 'loopback with a port'],
    ['https://169.254.169.254/latest', 'cloud metadata'],
    ['https://10.0.0.5/hook', 'RFC 1918'],
    ['https://172.20.1.1/hook', 'RFC 1918'],
    ['https://192.168.1.10/hook', 'RFC 1918'],
    ['https://100.64.1.1/hook', 'CGNAT'],
    ['https://0.0.0.0/hook', 'unspecified'],
    ['https://224.0.0.1/hook', 'multicast'],
    ['https://255.255.255.255/hook', 'broadcast'],
    ['https://198.18.0.1/hook', 'benchmarking'],
    ['https://192.0.2.1/hook', 'documentation'],
    ['https://[::1]/hook', 'IPv6 loopback'],
    ['https://[::]/hook', 'IPv6 unspecified'],
    ['https://[fe80::1]/hook', 'IPv6 link-local'],
    ['https://[fd00:ec2::254]/hook', 'unique-local (AWS IPv6 metadata)'],
    ['https://[ff02::1]/hook', 'IPv6 multicast'],
    ['https://[::ffff:127.0.0.1]/hook', 'IPv4-mapped loopback'],
    ['https://[::ffff:7f00:1]/hook', 'IPv4-mapped loopback in hex'],
    ['https://[::ffff:169.254.169.254]/hook', 'IPv4-mapped metadata'],
    ['https://[::127.0.0.1]/hook', 'IPv4-compatible loopback'],
    ['https://[64:ff9b::10.0.0.1]/hook', 'NAT64 embedding RFC 1918'],
    ['https://[2002:7f00:1::1]/hook', '6to4 embedding loopback'],
    // The WHATWG URL parser turns these numeric spellings into 127.0.0.1 or 169.254.169.254.
    ['https://2130706433/hook', 'loopback as one decimal number'],
    ['https://0x7f000001/hook', 'loopback as one hex number'],
    ['https://0x7f.1/hook', 'loopback, hex and shortened'],
    ['https://127.1/hook', 'loopback, shortened'],
    ['https://0177.0.0.1/hook', 'loopback with an octal first part'],
    ['https://017700000001/hook', 'loopback as one octal number'],
    ['https://127.000.000.001/hook', 'loopback with zero-padded (octal) parts'],
    ['https://0/hook', 'unspecified as 0'],
    ['https://2852039166/hook', 'metadata as one decimal number'],
    ['https://127.0.0.1./hook', 'loopback with a trailing dot'],
  ])('refuses %s (%s) as a non-public address', (url) => {
    expect(checkWebhookUrl(url, DEFAULT_OUTBOUND_POLICY)).toBe(PRIVATE_ADDRESS)
  })

  it.each([
    'https://localhost/hook',
    'https://localhost:8443/hook',
    'https://LOCALHOST/hook',
    'https://localhost./hook',
    'https://localhost../hook',
    'https://api.localhost/hook',
    'https://a.b.localhost./hook',
    'https://%6c%6fcalhost/hook',
    'https://ｌｏｃａｌｈｏｓｔ/hook',
  ])('refuses %s as localhost', (url) => {
    expect(checkWebhookUrl(url, DEFAULT_OUTBOUND_POLICY)).toBe(LOCALHOST)
  })

  it.each([
    ['https://metadata/computeMetadata/v1', 'a single-label name resolved through the search domains'],
    ['https://receiver:8443/hook', 'a single-label (container) name'],
    ['https://printer.local/hook', 'mDNS .local'],
    ['https://metadata.google.internal/computeMetadata/v1', '.internal'],
    ['https://nas.home.arpa/hook', '.home.arpa'],
  ])('refuses %s (%s) as an internal name', (url) => {
    expect(checkWebhookUrl(url, DEFAULT_OUTBOUND_POLICY)).toBe(INTERNAL_NAME)
  })
})

describe('checkWebhookUrl with opt-outs', () => {
  it('accepts http only when allowInsecureHttp is set, and still refuses private hosts over it', () => {
    expect(checkWebhookUrl('http://hooks.example.com/keyward', HTTP_ALLOWED)).toBeUndefined()
    expect(checkWebhookUrl('http://127.0.0.1/hook', HTTP_ALLOWED)).toBe(PRIVATE_ADDRESS)
    expect(checkWebhookUrl('ftp://hooks.example.com/', HTTP_ALLOWED)).toBe('must be an http or https URL')
  })

  it('accepts private, loopback and localhost hosts when allowPrivateNetworks is set, but still https only', () => {
    for (const url of ['https://127.0.0.1:4555/hook', 'https://[::1]/hook', 'https://localhost/hook', 'https://receiver/hook']) {
      expect(checkWebhookUrl(url, PRIVATE_ALLOWED)).toBeUndefined()
    }
    expect(checkWebhookUrl('http://127.0.0.1:4555/hook', PRIVATE_ALLOWED)).toBe('must use https')
  })

  it('refuses credentials under every policy', () => {
    const everything: OutboundPolicy = { allowPrivateNetworks: true, allowInsecureHttp: true }
    expect(checkWebhookUrl('http://user:pass@127.0.0.1/hook', everything)).toBe('must not contain a user name or password')
  })
})

describe('outboundPolicyFromEnv', () => {
  it('keeps both protections on when the variables are unset', () => {
    expect(outboundPolicyFromEnv({})).toEqual(DEFAULT_OUTBOUND_POLICY)
  })

  it('opens each door only for exactly "true" or "1"', () => {
    expect(outboundPolicyFromEnv({ KEYWARD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS: 'true' })).toEqual({
      allowPrivateNetworks: true,
      allowInsecureHttp: false,
    })
    expect(outboundPolicyFromEnv({ KEYWARD_WEBHOOKS_ALLOW_INSECURE_HTTP: '1' })).toEqual({
      allowPrivateNetworks: false,
      allowInsecureHttp: true,
    })
  })

  it.each(['false', '0', '', 'TRUE', 'yes', 'ture', ' true'])('leaves the protection on for %j', (value) => {
    expect(outboundPolicyFromEnv({ KEYWARD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS: value, KEYWARD_WEBHOOKS_ALLOW_INSECURE_HTTP: value })).toEqual(
      DEFAULT_OUTBOUND_POLICY,
    )
  })
})
