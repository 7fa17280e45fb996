import type { RequestFacts } from '../core/controls/enforcer.js'
import { clientAddress, compileTrustProxy, type TrustProxy } from './client-address.js'

/** The options of `apiKeyAuth` (and the keys router) that only keys with controls read. */
export interface ControlOptions<R> {
  /**
   * How many units of its rate limits and credits a request spends: a number, or a function of
   * the request (e.g. by route or payload size). Meter work done after the handler with
   * `spendCredits`.
   * @default 1
   */
  cost?: number | ((request: R) => number)
  /**
   * Which proxies in front of the app to believe about the client's address (IP allowlists, the
   * audit log), with Express's `trust proxy` meaning: `false` uses the socket's peer and ignores
   * `X-Forwarded-For`; `true` trusts every hop; a number trusts that many hops; addresses or CIDRs
   * (array or comma-separated, with the names `loopback`, `linklocal`, `uniquelocal`) trust
   * those; a function `(address, hopIndex) => boolean` decides.
   * @default false
   */
  trustProxy?: TrustProxy
}

/**
 * What verification may ask of a request (client address, cost), built once per middleware from
 * how the framework exposes the socket's address and the `X-Forwarded-For` header.
 */
export function requestFacts<R>(
  options: ControlOptions<R>,
  socketAddress: (request: R) => string | undefined,
  forwardedFor: (request: R) => string | null | undefined,
): RequestFacts<R> {
  const trust = compileTrustProxy(options.trustProxy)
  const { cost } = options
  if (cost !== undefined && typeof cost !== 'function' && (!Number.isInteger(cost) || cost < 0)) {
    throw new Error(`keyward: option "cost" must be a whole number >= 0 or a function, got ${JSON.stringify(cost)}`)
  }
  const facts: RequestFacts<R> = {
    clientAddress: (request) => clientAddress(socketAddress(request), forwardedFor(request), trust),
  }
  if (typeof cost === 'function') facts.cost = cost
  else if (cost !== undefined) facts.cost = () => cost
  return facts
}
