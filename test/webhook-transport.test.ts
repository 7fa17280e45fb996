import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_OUTBOUND_POLICY, type OutboundPolicy } from '../src/core/lifecycle/ssrf.js'
import { createWebhookTransport, type Lookup, WebhookRefusedError, type WebhookRequest } from '../src/core/lifecycle/transport.js'
import { type Certificate, makeCertificate } from './helpers/tls.js'

const HOOK_HOST = 'hooks.example.test'
const PRIVATE_ALLOWED: OutboundPolicy = { allowPrivateNetworks: true, allowInsecureHttp: false }
const BODY = JSON.stringify({ type: 'api_key.rotated', data: { key: 'sk_live_the_new_secret_must_stay_private' } })

let certificate: Certificate
beforeAll(() => {
  // Immutable, so one per file is enough.
  certificate = makeCertificate(HOOK_HOST)
})

interface Seen {
  method: string | undefined
  path: string | undefined
  host: string | undefined
  /** The TLS SNI name the client sent; undefined over http. */
  servername: string | false | null | undefined
  headers: IncomingMessage['headers']
  body: string
}

interface Receiver {
  port: number
  seen: Seen[]
  /** Resolves when a response of this receiver is closed before it finished (the client hung up). */
  abandoned: Promise<void>
  close(): Promise<void>
}

type Answer = (response: ServerResponse, receiver: { port: number }) => void

const answerOk: Answer = (response) => response.writeHead(200, { 'content-type': 'text/plain' }).end('ok')

/** A real HTTP(S) server on `address` that records every request it is sent. */
function startReceiver(options: { secure?: boolean; address?: string; port?: number; answer?: Answer } = {}): Promise<Receiver> {
  const { secure = true, address = '127.0.0.1', port = 0, answer = answerOk } = options
  const seen: Seen[] = []
  let markAbandoned: () => void = () => undefined
  const abandoned = new Promise<void>((resolve) => {
    markAbandoned = resolve
  })
  const listener = (request: IncomingMessage, response: ServerResponse) => {
    let body = ''
    request.setEncoding('utf8')
    request.on('data', (chunk: string) => {
      body += chunk
    })
    request.on('end', () => {
      seen.push({
        method: request.method,
        path: request.url,
        host: request.headers.host,
        servername: secure ? (request.socket as TLSSocket).servername : undefined,
        headers: request.headers,
        body,
      })
      response.on('close', () => {
        if (!response.writableFinished) markAbandoned()
      })
      answer(response, { port: (server.address() as AddressInfo).port })
    })
  }
  const server: Server = secure ? createHttpsServer({ key: certificate.key, cert: certificate.cert }, listener) : createHttpServer(listener)
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, address, () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        seen,
        abandoned,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections()
            server.close(() => done())
          }),
      })
    })
  })
}

/** A lookup that answers from a list, one answer per call, and counts its calls. */
function scriptedLookup(...answers: string[][]): Lookup & { calls: string[] } {
  const calls: string[] = []
  const lookup = async (hostname: string) => {
    calls.push(hostname)
    const addresses = answers[Math.min(calls.length, answers.length) - 1] ?? []
    return addresses.map((address) => ({ address, family: address.includes(':') ? (6 as const) : (4 as const) }))
  }
  return Object.assign(lookup, { calls })
}

function webhook(url: string, overrides: Partial<WebhookRequest> = {}): WebhookRequest {
  return {
    url,
    headers: { 'content-type': 'application/json', 'webhook-id': 'msg_test' },
    body: BODY,
    timeoutMs: 10_000,
    ...overrides,
  }
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (error) {
    return error as Error
  }
  throw new Error('expected the delivery to be rejected, but it succeeded')
}

describe('the webhook transport, under the default policy', () => {
  it('refuses a name that resolves to 127.0.0.1 and never reaches the receiver', async () => {
    const receiver = await startReceiver()
    try {
      const lookup = scriptedLookup(['127.0.0.1'])
      const post = createWebhookTransport({ policy: DEFAULT_OUTBOUND_POLICY, lookup, ca: certificate.cert })
      const error = await rejection(post(webhook(`https://${HOOK_HOST}:${receiver.port}/hook`)))
      expect(error).toBeInstanceOf(WebhookRefusedError)
      expect(error.message).toMatch(/hooks\.example\.test resolves to a private, loopback, link-local or reserved address/)
      // The tenant reads this message: it must not reveal what the server's DNS answered.
      expect(error.message).not.toContain('127.0.0.1')
      expect(lookup.calls).toEqual([HOOK_HOST])
      expect(receiver.seen).toHaveLength(0)
    } finally {
      await receiver.close()
    }
  })

  it.each([
    [['8.8.8.8', '127.0.0.1']],
    [['127.0.0.1', '8.8.8.8']],
    [['2001:4860:4860::8888', '::ffff:127.0.0.1']],
    [['8.8.8.8', 'fd00:ec2::254']],
  ])('refuses a name when any of its addresses is not public: %j', async (addresses) => {
    const receiver = await startReceiver()
    try {
      const post = createWebhookTransport({ policy: DEFAULT_OUTBOUND_POLICY, lookup: scriptedLookup(addresses), ca: certificate.cert })
      expect(await rejection(post(webhook(`https://${HOOK_HOST}:${receiver.port}/hook`)))).toBeInstanceOf(WebhookRefusedError)
      expect(receiver.seen).toHaveLength(0)
    } finally {
      await receiver.close()
    }
  })

  it.each([
    'https://127.0.0.1:PORT/hook',
    'https://[::ffff:127.0.0.1]:PORT/hook',
    'https://2130706433:PORT/hook',
    'https://localhost:PORT/hook',
  ])('refuses the literal or local host %s without resolving anything', async (template) => {
    const receiver = await startReceiver()
    try {
      const lookup = scriptedLookup(['127.0.0.1'])
      const post = createWebhookTransport({ policy: DEFAULT_OUTBOUND_POLICY, lookup, ca: certificate.cert })
      const error = await rejection(post(webhook(template.replace('PORT', String(receiver.port)))))
      expect(error).toBeInstanceOf(WebhookRefusedError)
      expect(lookup.calls).toHaveLength(0)
      expect(receiver.seen).toHaveLength(0)
    } finally {
      await receiver.close()
    }
  })

  it('resolves once per delivery, so a rebinding name that answers public then 127.0.0.1 never reaches loopback', async () => {
    const receiver = await startReceiver()
    try {
      // 8.8.8.8 passes the check; the connection to it fails here (or times out), which is the point:
      // the transport must not ask again and get 127.0.0.1.
      const lookup = scriptedLookup(['8.8.8.8'], ['127.0.0.1'])
      const post = createWebhookTransport({ policy: DEFAULT_OUTBOUND_POLICY, lookup, ca: certificate.cert })
      const error = await rejection(post(webhook(`https://${HOOK_HOST}:${receiver.port}/hook`, { timeoutMs: 2_000 })))
      expect(error).not.toBeInstanceOf(WebhookRefusedError)
      expect(lookup.calls).toEqual([HOOK_HOST])
      expect(receiver.seen).toHaveLength(0)
    } finally {
      await receiver.close()
    }
  })

  it('refuses http before resolving or connecting', async () => {
    const receiver = await startReceiver({ secure: false })
    try {
      const lookup = scriptedLookup(['8.8.8.8'])
      const post = createWebhookTransport({ policy: PRIVATE_ALLOWED, lookup })
      const error = await rejection(post(webhook(`http://${HOOK_HOST}:${receiver.port}/hook`)))
      expect(error).toBeInstanceOf(WebhookRefusedError)
      expect(error.message).toBe('refused by the outbound policy: the URL must use https')
      expect(lookup.calls).toHaveLength(0)
      expect(receiver.seen).toHaveLength(0)
    } finally {
      await receiver.close()
    }
  })

  it('reports a name that does not resolve as a plain (retryable) failure', async () => {
    const lookup: Lookup = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND hooks.example.test'), { code: 'ENOTFOUND' })
    }
    const post = createWebhookTransport({ policy: DEFAULT_OUTBOUND_POLICY, lookup })
    const error = await rejection(post(webhook(`https://${HOOK_HOST}/hook`)))
    expect(error).not.toBeInstanceOf(WebhookRefusedError)
    expect(error.message).toBe('could not resolve hooks.example.test: ENOTFOUND')
  })
})

describe('the webhook transport, with private networks allowed', () => {
  it('delivers to the checked address with the name in the Host header, SNI and certificate check', async () => {
    const receiver = await startReceiver()
    try {
      const lookup = scriptedLookup(['127.0.0.1'])
      const post = createWebhookTransport({ policy: PRIVATE_ALLOWED, lookup, ca: certificate.cert })
      const { status } = await post(webhook(`https://${HOOK_HOST}:${receiver.port}/hook?tenant=acme`))
      expect(status).toBe(200)
      expect(lookup.calls).toEqual([HOOK_HOST])
      expect(receiver.seen).toHaveLength(1)
      const [request] = receiver.seen
      expect(request).toMatchObject({
        method: 'POST',
        path: '/hook?tenant=acme',
        host: `${HOOK_HOST}:${receiver.port}`,
        servername: HOOK_HOST,
        body: BODY,
      })
      expect(request?.headers).toMatchObject({
        'content-type': 'application/json',
        'webhook-id': 'msg_test',
        'content-length': String(Buffer.byteLength(BODY)),
      })
    } finally {
      await receiver.close()
    }
  })

  it('delivers to a literal address without resolving it', async () => {
    const receiver = await startReceiver()
    try {
      const lookup = scriptedLookup(['8.8.8.8'])
      const post = createWebhookTransport({ policy: PRIVATE_ALLOWED, lookup, ca: certificate.cert })
      expect(await post(webhook(`https://127.0.0.1:${receiver.port}/hook`))).toEqual({ status: 200 })
      expect(lookup.calls).toHaveLength(0)
      expect(receiver.seen).toHaveLength(1)
    } finally {
      await receiver.close()
    }
  })

  it('connects to the address it resolved, never to a second answer (one lookup per delivery)', async () => {
    const loopback = await startReceiver({ address: '127.0.0.1' })
    // The same port on another loopback address: where the first answer points.
    const checked = await startReceiver({ address: '127.0.0.2', port: loopback.port })
    try {
      const lookup = scriptedLookup(['127.0.0.2'], ['127.0.0.1'])
      const post = createWebhookTransport({ policy: PRIVATE_ALLOWED, lookup, ca: certificate.cert })
      const url = `https://${HOOK_HOST}:${loopback.port}/hook`
      expect(await post(webhook(url))).toEqual({ status: 200 })
      expect(lookup.calls).toHaveLength(1)
      expect(checked.seen).toHaveLength(1)
      expect(loopback.seen).toHaveLength(0)
      // The next delivery resolves afresh, once, and goes where that answer points.
      expect(await post(webhook(url))).toEqual({ status: 200 })
      expect(lookup.calls).toHaveLength(2)
      expect(loopback.seen).toHaveLength(1)
      expect(checked.seen).toHaveLength(1)
    } finally {
      await Promise.all([loopback.close(), checked.close()])
    }
  })

  it('checks the certificate against the name in the URL, not the address', async () => {
    const receiver = await startReceiver()
    try {
      const post = createWebhookTransport({ policy: PRIVATE_ALLOWED, lookup: scriptedLookup(['127.0.0.1']), ca: certificate.cert })
      const error = await rejection(post(webhook(`https://other.example.test:${receiver.port}/hook`)))
      expect(error).not.toBeInstanceOf(WebhookRefusedError)
      expect(error.message).toMatch(/other\.example\.test.*altnames/)
      expect(receiver.seen).toHaveLength(0)
    } finally {
      await receiver.close()
    }
  })

  it('refuses a certificate no trusted authority signed', async () => {
    const receiver = await startReceiver()
    try {
      const post = createWebhookTransport({ policy: PRIVATE_ALLOWED, lookup: scriptedLookup(['127.0.0.1']) })
      const error = await rejection(post(webhook(`https://${HOOK_HOST}:${receiver.port}/hook`)))
      expect(error.message).toMatch(/self[- ]signed certificate/)
      expect(receiver.seen).toHaveLength(0)
    } finally {
      await receiver.close()
    }
  })

  it('checks certificates even when NODE_TLS_REJECT_UNAUTHORIZED=0 is set in the environment', async () => {
    const receiver = await startReceiver()
    const previous = process.env.NODE_TLS_REJECT_UNAUTHORIZED
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'
    try {
      const post = createWebhookTransport({ policy: PRIVATE_ALLOWED, lookup: scriptedLookup(['127.0.0.1']) })
      const error = await rejection(post(webhook(`https://${HOOK_HOST}:${receiver.port}/hook`)))
      expect(error.message).toMatch(/self[- ]signed certificate/)
      expect(receiver.seen).toHaveLength(0)
    } finally {
      if (previous === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previous
      await receiver.close()
    }
  })

  it('returns a 302 as a status and never follows it', async () => {
    const receiver = await startReceiver({
      answer: (response, { port }) => response.writeHead(302, { location: `https://${HOOK_HOST}:${port}/elsewhere` }).end('moved'),
    })
    try {
      const lookup = scriptedLookup(['127.0.0.1'])
      const post = createWebhookTransport({ policy: PRIVATE_ALLOWED, lookup, ca: certificate.cert })
      expect(await post(webhook(`https://${HOOK_HOST}:${receiver.port}/hook`))).toEqual({ status: 302 })
      expect(receiver.seen.map((request) => request.path)).toEqual(['/hook'])
      expect(lookup.calls).toHaveLength(1)
    } finally {
      await receiver.close()
    }
  })

  it('answers a redirect with an endless body after reading a bounded amount, and hangs up', async () => {
    const receiver = await startReceiver({
      answer: (response, { port }) => {
        response.writeHead(302, { location: `https://${HOOK_HOST}:${port}/elsewhere` })
        const chunk = Buffer.alloc(16_384, 'x')
        const pump = () => {
          while (!response.destroyed && response.write(chunk)) {}
          if (!response.destroyed) response.once('drain', pump)
        }
        pump()
      },
    })
    try {
      const post = createWebhookTransport({
        policy: PRIVATE_ALLOWED,
        lookup: scriptedLookup(['127.0.0.1']),
        ca: certificate.cert,
        maxResponseBytes: 4096,
      })
      // Reading the body to its end would run into the deadline and reject; a bounded read answers.
      expect(await post(webhook(`https://${HOOK_HOST}:${receiver.port}/hook`, { timeoutMs: 15_000 }))).toEqual({ status: 302 })
      await receiver.abandoned
      expect(receiver.seen).toHaveLength(1)
    } finally {
      await receiver.close()
    }
  })

  it('returns an error status as a status', async () => {
    const receiver = await startReceiver({ answer: (response) => response.writeHead(410).end() })
    try {
      const post = createWebhookTransport({ policy: PRIVATE_ALLOWED, lookup: scriptedLookup(['127.0.0.1']), ca: certificate.cert })
      expect(await post(webhook(`https://${HOOK_HOST}:${receiver.port}/hook`))).toEqual({ status: 410 })
    } finally {
      await receiver.close()
    }
  })

  it('gives up after timeoutMs when the receiver never answers', async () => {
    const receiver = await startReceiver({ answer: () => undefined })
    try {
      const post = createWebhookTransport({ policy: PRIVATE_ALLOWED, lookup: scriptedLookup(['127.0.0.1']), ca: certificate.cert })
      const error = await rejection(post(webhook(`https://${HOOK_HOST}:${receiver.port}/hook`, { timeoutMs: 300 })))
      expect(error).not.toBeInstanceOf(WebhookRefusedError)
      expect(error.message).toBe('timed out after 300 ms')
      expect(receiver.seen).toHaveLength(1)
    } finally {
      await receiver.close()
    }
  })

  it('gives up after timeoutMs when the name never resolves', async () => {
    const post = createWebhookTransport({ policy: PRIVATE_ALLOWED, lookup: () => new Promise(() => undefined) })
    const error = await rejection(post(webhook(`https://${HOOK_HOST}/hook`, { timeoutMs: 300 })))
    expect(error.message).toBe('timed out after 300 ms')
  })

  it('rejects a refused connection with a message that is safe to store', async () => {
    const receiver = await startReceiver()
    const port = receiver.port
    await receiver.close()
    const post = createWebhookTransport({ policy: PRIVATE_ALLOWED, lookup: scriptedLookup(['127.0.0.1']), ca: certificate.cert })
    const error = await rejection(post(webhook(`https://${HOOK_HOST}:${port}/hook`)))
    expect(error).not.toBeInstanceOf(WebhookRefusedError)
    expect(error.message).toMatch(/ECONNREFUSED/)
    expect(error.message).not.toContain('sk_live_')
  })
})

describe('the webhook transport over http', () => {
  it('delivers over http only when allowInsecureHttp is set', async () => {
    const receiver = await startReceiver({ secure: false })
    try {
      const post = createWebhookTransport({
        policy: { allowPrivateNetworks: true, allowInsecureHttp: true },
        lookup: scriptedLookup(['127.0.0.1']),
      })
      expect(await post(webhook(`http://${HOOK_HOST}:${receiver.port}/hook`))).toEqual({ status: 200 })
      expect(receiver.seen).toMatchObject([{ host: `${HOOK_HOST}:${receiver.port}`, body: BODY }])
    } finally {
      await receiver.close()
    }
  })
})

describe('createWebhookTransport options', () => {
  it('throws, naming the option, for a negative or fractional maxResponseBytes', () => {
    expect(() => createWebhookTransport({ policy: DEFAULT_OUTBOUND_POLICY, maxResponseBytes: -1 })).toThrow(/"maxResponseBytes"/)
    expect(() => createWebhookTransport({ policy: DEFAULT_OUTBOUND_POLICY, maxResponseBytes: 1.5 })).toThrow(/"maxResponseBytes"/)
  })
})
