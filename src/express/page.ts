import type { ServerResponse } from 'node:http'
import type { Actor } from '../core/types.js'
import { bridgeTo, PATH_BINDING } from '../hono/fallback.js'
import {
  createKeysPage as createHonoKeysPage,
  type KeysPageOptions as HonoKeysPageOptions,
  PAGE_AUTHENTICATE_BINDING,
} from '../page/index.js'
import type { ExpressRequestLike, KeywardRequestHandler } from './node-http.js'
import { relativePath, toWebRequest, writeResponse } from './router.js'

export interface KeysPageOptions<Req extends ExpressRequestLike = ExpressRequestLike> extends Omit<HonoKeysPageOptions, 'authenticate'> {
  /**
   * Who is looking at the page, from the host app's own sign-in (a session your middleware read):
   * the tenant (and optionally project and scopes) the person acts for, or null when nobody is
   * signed in. Annotate `req` with your app's `Request` type to read what your middlewares put on it.
   *
   * @example
   * authenticate: (req: express.Request) => (req.session?.tenantId ? { tenantId: req.session.tenantId } : null)
   */
  authenticate: (req: Req) => Actor | null | undefined | Promise<Actor | null | undefined>
}

/**
 * The self-serve API keys page for Express 4 and 5: the same page as `keyward/hono`'s
 * `createKeysPage`, answered through the same bridge as the keys router, so both frameworks serve
 * it byte for byte alike (headers, the cross-site check, redirects). Mount it with `app.use`; it
 * works whether or not the host mounted `express.urlencoded()` before it.
 *
 * @example
 * import { createKeysPage } from 'keyward/express'
 *
 * app.use('/settings/api-keys', createKeysPage({
 *   keyward: kw,
 *   authenticate: (req: express.Request) => (req.session?.tenantId ? { tenantId: req.session.tenantId } : null),
 *   loginUrl: '/login',
 *   scopes: ['orders:read', 'orders:write'],
 * }))
 */
export function createKeysPage<Req extends ExpressRequestLike = ExpressRequestLike>(
  options: KeysPageOptions<Req>,
): KeywardRequestHandler<Req> {
  if (typeof options?.authenticate !== 'function') {
    throw new Error('createKeysPage: `authenticate` is required: a function of the request that returns the signed-in tenant, or null.')
  }
  const { authenticate, ...pageOptions } = options
  // The page asks the bridge for the caller, after its cross-site check, exactly when it would call
  // `authenticate(c)` on Hono.
  const page = createHonoKeysPage({ ...pageOptions, authenticate: () => null })
  const bridge = bridgeTo(page)

  async function answer(req: Req, res: ServerResponse): Promise<void> {
    const { request, discardBody } = toWebRequest(req)
    try {
      const response = await bridge.fetch(request, {
        [PATH_BINDING]: relativePath(req.url),
        [PAGE_AUTHENTICATE_BINDING]: async () => (await authenticate(req)) ?? null,
      })
      await writeResponse(req, res, response)
    } finally {
      discardBody()
    }
  }

  return function keysPage(req: Req, res: ServerResponse) {
    answer(req, res).catch((error: unknown) => {
      // The page answers its own errors; this is a failure to write the answer at all.
      console.error('keyward: unexpected error in the keys page:', error instanceof Error ? error.message : error)
      if (!res.headersSent) {
        res.statusCode = 500
        res.setHeader('content-type', 'text/plain; charset=utf-8')
        res.setHeader('cache-control', 'no-store')
        res.end('Something went wrong on our side.')
      } else res.destroy()
    })
  }
}
