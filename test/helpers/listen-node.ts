import { createServer, type RequestListener } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { RunningServer } from '../contract/http-behaviour.js'

/** Serves a Node request listener (an Express 4 or 5 app) over real HTTP on 127.0.0.1 and a free port. */
export function listenNode(listener: RequestListener): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const server = createServer(listener)
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () =>
          new Promise<void>((done) => {
            // Keep-alive sockets from fetch would hold close() open until they time out.
            server.closeAllConnections()
            server.close(() => done())
          }),
      })
    })
  })
}
