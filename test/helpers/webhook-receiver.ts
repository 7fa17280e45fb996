import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { afterEach } from 'vitest'
import type { Certificate } from './tls.js'

export interface ReceivedWebhook {
  body: string
  headers: Record<string, string>
}

const open: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const close of open.splice(0)) await close()
})

/**
 * A webhook receiver on a real local server (closed after each test). `answers` are the statuses
 * it gives in turn (then 200). With a certificate it speaks HTTPS and its URL names `hostname`.
 */
export async function webhookReceiver(
  answers: number[] = [],
  tls?: { certificate: Certificate; hostname: string },
): Promise<{ url: string; received: ReceivedWebhook[] }> {
  const received: ReceivedWebhook[] = []
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers as Record<string, string> })
      res.statusCode = answers.shift() ?? 200
      res.end('ok')
    })
  }
  const server =
    tls === undefined ? createHttpServer(handler) : createHttpsServer({ key: tls.certificate.key, cert: tls.certificate.cert }, handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  open.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  const port = (server.address() as AddressInfo).port
  const url = tls === undefined ? `http://127.0.0.1:${port}/hooks/keyward` : `https://${tls.hostname}:${port}/hooks/keyward`
  return { url, received }
}

/** Polls until `condition` holds (a delivery sent in the background), failing after `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('waitFor: the condition did not hold in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
