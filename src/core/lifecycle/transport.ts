import { promises as dns, type LookupAddress } from 'node:dns'
import { type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest, type RequestOptions } from 'node:https'
import { isIP, type LookupFunction } from 'node:net'
import { checkWebhookUrl, hostOf, isPublicAddress, type OutboundPolicy } from './ssrf.js'

/**
 * Resolves a host name to every address it has. Injected in tests; the default asks the operating
 * system, as `fetch` would, in the order it answers (`verbatim`).
 */
export type Lookup = (hostname: string) => Promise<{ address: string; family: 4 | 6 }[]>

/** `dns.promises.lookup(hostname, { all: true, verbatim: true })`: hosts file, then DNS. */
export const systemLookup: Lookup = async (hostname) => {
  const answers = await dns.lookup(hostname, { all: true, verbatim: true })
  return answers.map((answer) => ({ address: answer.address, family: answer.family === 6 ? 6 : 4 }))
}

/**
 * A delivery the outbound policy forbids: an http URL, a private literal, or a name that resolves to
 * a non-public address. Retrying cannot help (and against a rebinding name would only give it more
 * tries), so the caller records the attempt as failed and settles the delivery without retries.
 * The message names the rule, never the resolved address: the tenant reads it in the delivery log,
 * and it must not become a way to map the server's internal DNS.
 */
export class WebhookRefusedError extends Error {
  override readonly name = 'WebhookRefusedError'
}

export interface WebhookTransportOptions {
  /** What the URL and its resolved addresses must satisfy. */
  policy: OutboundPolicy
  /** @default systemLookup (the operating system's resolver) */
  lookup?: Lookup
  /**
   * Trusted certificate authorities (PEM). Replaces the bundled Mozilla roots, as `ca` does in
   * `node:tls`: for receivers behind a private CA, and for tests.
   * @default Node's bundled root certificates
   */
  ca?: string | Buffer
  /**
   * How much of a response body is read (and thrown away) before the connection is closed. The
   * status is all a delivery needs; the bound keeps an endless or huge body from holding the
   * delivery until its timeout.
   * @default 65536
   */
  maxResponseBytes?: number
}

export interface WebhookRequest {
  url: string
  /** Sent as given; `host` and `content-length` are set by the transport. */
  headers: Record<string, string>
  /** The exact bytes that were signed. */
  body: string
  /** For the whole exchange: resolving, connecting, TLS, the answer and reading its body. */
  timeoutMs: number
}

/** POSTs one webhook and answers the response status; a 3xx is a status like any other. */
export type WebhookTransport = (request: WebhookRequest) => Promise<{ status: number }>

export const DEFAULT_MAX_RESPONSE_BYTES = 65_536

/**
 * The outbound policy of the zero-config instance (and so the example app), from
 * `KEYWARD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS` and `KEYWARD_WEBHOOKS_ALLOW_INSECURE_HTTP`. Each opens
 * its door only when set to exactly `true` or `1`; any other value, including `TRUE`, `yes` or a
 * typo, leaves the protection on, so a mistake can only make keyward stricter (and shows up as
 * refused deliveries in the delivery log), never silently more permissive.
 *
 * @example
 * const policy = outboundPolicyFromEnv(process.env)
 */
export function outboundPolicyFromEnv(env: Record<string, string | undefined>): OutboundPolicy {
  const enabled = (name: string) => env[name] === 'true' || env[name] === '1'
  return {
    allowPrivateNetworks: enabled('KEYWARD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS'),
    allowInsecureHttp: enabled('KEYWARD_WEBHOOKS_ALLOW_INSECURE_HTTP'),
  }
}

/**
 * The delivery-time half of the SSRF guard, and the HTTP POST itself. For each delivery it
 * 1. re-checks the URL with `checkWebhookUrl` (the policy may be stricter than when it was saved);
 * 2. resolves the host name once and refuses with `WebhookRefusedError` if any answer is not public
 *    (unless `allowPrivateNetworks`): a name with one public and one private address would otherwise
 *    reach the private one whenever the connection picks it;
 * 3. connects only to the addresses it checked (the request's `lookup` hands them back instead of
 *    resolving again), so a DNS answer that changes between check and connect (DNS rebinding) cannot
 *    swap the destination. The `Host` header, TLS SNI and certificate check still use the URL's name;
 * 4. never follows redirects, reads at most `maxResponseBytes` of the body, and gives up after
 *    `timeoutMs`.
 *
 * Failures other than refusals reject with an `Error` whose message is safe to store in the
 * delivery log: it comes from the network or TLS layer and never contains headers or the body.
 *
 * @example
 * const post = createWebhookTransport({ policy: DEFAULT_OUTBOUND_POLICY })
 * const { status } = await post({ url, headers, body, timeoutMs: 10_000 })
 */
export function createWebhookTransport(options: WebhookTransportOptions): WebhookTransport {
  const { policy, ca } = options
  const lookup = options.lookup ?? systemLookup
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
  if (!Number.isSafeInteger(maxResponseBytes) || maxResponseBytes < 0) {
    throw new Error('keyward: option "maxResponseBytes" must be a whole number of bytes, 0 or more')
  }
  return async ({ url, headers, body, timeoutMs }) => {
    const problem = checkWebhookUrl(url, policy)
    if (problem !== undefined) throw new WebhookRefusedError(`refused by the outbound policy: the URL ${problem}`)
    const target = new URL(url)
    const host = hostOf(target)
    const deadline = new AbortController()
    const timer = setTimeout(() => deadline.abort(), timeoutMs)
    try {
      const addresses = isIP(host) !== 0 ? undefined : await untilAborted(resolveHost(lookup, host), deadline.signal, timeoutMs)
      if (addresses !== undefined && !policy.allowPrivateNetworks && !addresses.every((answer) => isPublicAddress(answer.address))) {
        throw new WebhookRefusedError(
          `refused by the outbound policy: ${host} resolves to a private, loopback, link-local or reserved address`,
        )
      }
      return await post({ target, host, addresses, ca, headers, body, maxResponseBytes, signal: deadline.signal, timeoutMs })
    } finally {
      clearTimeout(timer)
    }
  }
}

async function resolveHost(lookup: Lookup, host: string): Promise<LookupAddress[]> {
  let answers: Awaited<ReturnType<Lookup>>
  try {
    answers = await lookup(host)
  } catch (cause) {
    throw new Error(`could not resolve ${host}: ${(cause as NodeJS.ErrnoException)?.code ?? 'lookup failed'}`, { cause })
  }
  if (answers.length === 0) throw new Error(`could not resolve ${host}: no addresses`)
  return answers.map(({ address, family }) => ({ address, family }))
}

function untilAborted<T>(work: Promise<T>, signal: AbortSignal, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(timedOut(timeoutMs))
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

function timedOut(timeoutMs: number): Error {
  return new Error(`timed out after ${timeoutMs} ms`)
}

interface PostInput {
  target: URL
  host: string
  /** The checked answers for a host name; undefined for a literal address (nothing to resolve). */
  addresses: LookupAddress[] | undefined
  ca: string | Buffer | undefined
  headers: Record<string, string>
  body: string
  maxResponseBytes: number
  signal: AbortSignal
  timeoutMs: number
}

function post(input: PostInput): Promise<{ status: number }> {
  const { target, host, addresses, signal, maxResponseBytes } = input
  const secure = target.protocol === 'https:'
  const requestOptions: RequestOptions = {
    method: 'POST',
    host,
    port: target.port === '' ? undefined : Number(target.port),
    path: `${target.pathname}${target.search}`,
    headers: { ...input.headers, host: target.host, 'content-length': String(Buffer.byteLength(input.body)) },
    // A fresh connection per delivery: no pooled socket opened for an earlier answer is reused.
    agent: false,
    signal,
  }
  if (addresses !== undefined) requestOptions.lookup = pinnedLookup(addresses)
  if (secure) {
    // Explicit, so NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment cannot send the secret to an
    // impostor. SNI carries the name (never an address: RFC 6066 forbids it).
    requestOptions.rejectUnauthorized = true
    if (isIP(host) === 0) requestOptions.servername = host
    if (input.ca !== undefined) requestOptions.ca = input.ca
  }
  return new Promise((resolvePost, rejectPost) => {
    let settled = false
    const settle = (outcome: () => void) => {
      if (settled) return
      settled = true
      outcome()
    }
    const fail = (cause: unknown) => settle(() => rejectPost(signal.aborted ? timedOut(input.timeoutMs) : safeError(cause)))
    const request: ClientRequest = (secure ? httpsRequest : httpRequest)(requestOptions, (response: IncomingMessage) => {
      const status = response.statusCode ?? 0
      const done = () => settle(() => resolvePost({ status }))
      let received = 0
      response.on('data', (chunk: Buffer) => {
        received += chunk.length
        if (received >= maxResponseBytes) {
          done()
          response.destroy()
        }
      })
      response.on('end', done)
      // The answer's status stands if the receiver drops the connection mid-body; only our own
      // deadline turns it into a failure.
      response.on('close', () => (signal.aborted ? fail(signal.reason) : done()))
      response.on('error', () => undefined)
    })
    request.on('error', fail)
    request.end(input.body)
  })
}

/**
 * The request's `lookup`: answers the addresses that were checked instead of resolving again. With
 * `all` (Node's happy-eyeballs connect asks for it) every checked address is offered; otherwise the
 * first.
 */
function pinnedLookup(addresses: LookupAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    const [first] = addresses
    if (options.all) callback(null, addresses)
    else if (first !== undefined) callback(null, first.address, first.family)
  }
}

/** An Error whose message comes from the network or TLS layer: no request headers, no body. */
function safeError(cause: unknown): Error {
  const reasons = cause instanceof AggregateError ? cause.errors : [cause]
  const message = [...new Set(reasons.map((reason) => (reason instanceof Error ? reason.message : String(reason))))]
    .filter((text) => text !== '')
    .join('; ')
  return new Error((message || 'the connection failed').slice(0, 300), { cause })
}
