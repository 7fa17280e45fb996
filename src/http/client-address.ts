import proxyaddr from 'proxy-addr'

/**
 * The client's address, for IP allowlists: the socket's peer unless the host says which proxies
 * in front of it to trust.
 *
 * `trustProxy` has Express's `trust proxy` meaning, and the parsing is proxy-addr's, the package
 * Express itself uses, so a host moving from `app.set('trust proxy', …)` gets the same answer:
 * - `false` (default): the socket address; `X-Forwarded-For` is ignored.
 * - `true`: the left-most `X-Forwarded-For` entry (every hop trusted) — only behind a proxy that
 *   overwrites the header.
 * - a number n: trust the n hops nearest to this server.
 * - addresses / CIDRs, as an array or a comma-separated string, including the names `loopback`,
 *   `linklocal` and `uniquelocal`.
 * - a function `(address, hopIndex) => boolean`.
 *
 * `X-Forwarded-For` is read right to left from the socket address: each trusted hop is skipped and
 * the first untrusted address is the client. A forged header from an untrusted peer therefore
 * changes nothing: the peer itself is the first untrusted address.
 */

export type TrustProxy = boolean | number | string | readonly string[] | TrustFunction

/** Whether to trust `address`, `hopIndex` hops from this server (0 = the socket's peer). */
export type TrustFunction = (address: string, hopIndex: number) => boolean

/** Trust no proxy: `clientAddress` returns the socket address without reading the header. */
export const TRUST_NONE: TrustFunction = () => false

const TRUST_ALL: TrustFunction = () => true

/**
 * Compiles a `trustProxy` option once, at startup. Throws an `Error` naming the option for a value
 * that is not an address, a range or a known name.
 *
 * @example
 * const trust = compileTrustProxy('loopback, 10.0.0.0/8')
 * clientAddress('10.0.0.7', '203.0.113.9, 10.0.0.3', trust) // '203.0.113.9'
 */
export function compileTrustProxy(value: TrustProxy | undefined): TrustFunction {
  if (value === undefined || value === false) return TRUST_NONE
  if (value === true) return TRUST_ALL
  if (typeof value === 'function') return value
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0)
      throw new Error(`keyward: trustProxy as a number must be a whole number of hops >= 0, got ${value}`)
    if (value === 0) return TRUST_NONE
    return (_address, hopIndex) => hopIndex < value
  }
  const list = typeof value === 'string' ? value.split(',').map((entry) => entry.trim()) : [...value]
  try {
    return proxyaddr.compile(list)
  } catch (error) {
    throw new Error(`keyward: trustProxy: ${error instanceof Error ? error.message : String(error)}`)
  }
}

/**
 * The client address of a request. Pure: the adapters pass the socket's remote address and the
 * raw `X-Forwarded-For` value.
 *
 * @returns the address, or `undefined` when the socket has none (a closed connection)
 */
export function clientAddress(
  socketAddress: string | undefined,
  forwardedFor: string | null | undefined,
  trust: TrustFunction,
): string | undefined {
  if (trust === TRUST_NONE || !forwardedFor || socketAddress === undefined) return socketAddress
  return proxyaddr({ headers: { 'x-forwarded-for': forwardedFor }, socket: { remoteAddress: socketAddress } } as never, trust)
}
