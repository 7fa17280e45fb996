import type { Context } from 'hono'
import { clientAddress, compileTrustProxy, TRUST_NONE, type TrustProxy } from '../http/client-address.js'

/**
 * The client address of a Hono request: the socket's peer, or the client named by `X-Forwarded-For`
 * through the proxies the host trusts (src/http/client-address.ts, Express semantics).
 *
 * The socket address is read from what the runtime hands Hono, without importing it:
 * - the Express bridge passes `req.socket.remoteAddress` in `env[CLIENT_ADDRESS_BINDING]`;
 * - `@hono/node-server` passes the Node request as `env.incoming`;
 * - on other runtimes (Bun, Deno, workers) the host says where it is with `clientAddress`.
 */
export const CLIENT_ADDRESS_BINDING = 'keywardClientAddress'

export interface ClientAddressOptions {
  /**
   * Which proxies in front of the app to trust for `X-Forwarded-For`, as Express's `trust proxy`:
   * `false`, `true`, a hop count, addresses/CIDRs (array or comma-separated, with `loopback`,
   * `linklocal`, `uniquelocal`) or a function. Untrusted, the header is ignored.
   * @default false (the socket's peer address)
   */
  trustProxy?: TrustProxy
  /**
   * Reads the socket's peer address on runtimes other than Node (`@hono/node-server`), e.g. Bun's
   * `(c) => c.env.requestIP(c.req.raw)?.address`.
   * @default the Express bridge's binding, else `c.env.incoming.socket.remoteAddress`
   */
  clientAddress?: (c: Context) => string | undefined
}

/** The socket's peer address as the Node runtimes pass it, or undefined. */
export function socketAddress(c: Context): string | undefined {
  const env = c.env as { [CLIENT_ADDRESS_BINDING]?: unknown; incoming?: { socket?: { remoteAddress?: unknown } } } | undefined
  const bridged = env?.[CLIENT_ADDRESS_BINDING]
  if (typeof bridged === 'string') return bridged
  const remote = env?.incoming?.socket?.remoteAddress
  return typeof remote === 'string' ? remote : undefined
}

/**
 * Compiles the options once (an invalid `trustProxy` throws here, naming the option) and returns
 * the per-request lookup.
 *
 * @example
 * const addressOf = clientAddressResolver({ trustProxy: 'loopback' })
 * app.use((c, next) => { console.log(addressOf(c)); return next() })
 */
export function clientAddressResolver(options: ClientAddressOptions = {}): (c: Context) => string | undefined {
  const trust = compileTrustProxy(options.trustProxy)
  const socket = options.clientAddress ?? socketAddress
  if (trust === TRUST_NONE) return (c) => socket(c)
  return (c) => clientAddress(socket(c), c.req.header('x-forwarded-for'), trust)
}
