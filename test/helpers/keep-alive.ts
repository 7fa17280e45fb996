import { Agent, type IncomingHttpHeaders, request } from 'node:http'
import type { Socket } from 'node:net'

export interface KeepAliveAnswer {
  status: number
  headers: IncomingHttpHeaders
  text: string
  /** The connection the request went over: the same object when the client reused it. */
  socket: Socket
}

export interface KeepAliveCall {
  method?: string
  headers?: Record<string, string>
  body?: Buffer
  /** Send the body with `Transfer-Encoding: chunked` instead of a `Content-Length`. */
  chunked?: boolean
}

/**
 * An HTTP/1.1 client with one keep-alive connection (`maxSockets: 1`), as a pooled client talking to
 * one origin: each request goes over the connection the previous one left open, unless the server
 * announced `Connection: close`. A request that fails before its answer arrives rejects (the
 * `socket hang up` a poisoned connection gives); once the answer is in, an error from writing the
 * rest of a body the server closed on is expected and ignored.
 */
export function keepAliveClient(baseUrl: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const { hostname, port } = new URL(baseUrl)

  function send(path: string, call: KeepAliveCall = {}): Promise<KeepAliveAnswer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...call.headers }
      if (call.body !== undefined && !call.chunked) headers['content-length'] = String(call.body.byteLength)
      const outgoing = request({ hostname, port, path, method: call.method ?? 'GET', headers, agent })
      let socket: Socket | undefined
      let answered = false
      outgoing.on('socket', (assigned) => {
        socket = assigned
      })
      outgoing.on('response', (incoming) => {
        const chunks: Buffer[] = []
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk))
        incoming.on('error', reject)
        incoming.on('end', () => {
          answered = true
          resolve({
            status: incoming.statusCode ?? 0,
            headers: incoming.headers,
            text: Buffer.concat(chunks).toString(),
            socket: socket as Socket,
          })
        })
      })
      outgoing.on('error', (error) => {
        if (!answered) reject(error)
      })
      if (call.body !== undefined && call.chunked) {
        outgoing.write(call.body)
        outgoing.end()
      } else outgoing.end(call.body)
    })
  }

  return { send, close: () => agent.destroy() }
}
