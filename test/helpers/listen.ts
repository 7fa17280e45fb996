import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'

export interface Listening {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string
  close(): Promise<void>
}

/** Serves a fetch handler (a Hono app) over real HTTP on 127.0.0.1 and a free port. */
export function listen(app: { fetch: (request: Request) => Response | Promise<Response> }): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info: AddressInfo) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise<void>((done) => {
            // Keep-alive sockets from fetch would hold close() open until they time out.
            if ('closeAllConnections' in server) server.closeAllConnections()
            server.close(() => done())
          }),
      })
    })
    server.once('error', reject)
  })
}
