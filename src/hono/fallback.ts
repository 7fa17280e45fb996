import type { Context, Env, Hono } from 'hono'
import { Hono as HonoApp } from 'hono'
import { fail, type KeywardError } from '../core/errors.js'
import type { Actor } from '../core/types.js'

/**
 * What a bridge passes in `env` to the keys router: the caller already resolved with the host app's
 * own auth (the Express adapter), and the path below the mount point to route on.
 */
export const ACTOR_BINDING = 'keywardActor'
export const PATH_BINDING = 'keywardPath'
/** The socket's peer address of a bridged request (Express): the router applies `trustProxy` to it. */
export const CLIENT_ADDRESS_BINDING = 'keywardClientAddress'
export type KeysRouterBindings = { [ACTOR_BINDING]?: Actor | null; [PATH_BINDING]?: string; [CLIENT_ADDRESS_BINDING]?: string }

/**
 * A Hono app that routes `router` on the path named in `env[PATH_BINDING]` instead of the request
 * URL's path, so a request keeps its full URL (links keep the mount path) while it is routed as if
 * the router were at the root. The Express adapter answers every request through one; the Hono
 * fallback below uses one to serve a path with a trailing slash.
 */
export function bridgeTo<E extends Env>(router: Hono<E>): HonoApp<{ Bindings: KeysRouterBindings }> {
  const bridge = new HonoApp<{ Bindings: KeysRouterBindings }>({
    getPath: (request, context) => context?.env?.[PATH_BINDING] ?? new URL(request.url).pathname,
  })
  bridge.route('/', router as never)
  return bridge
}

interface RouteShape {
  method: string
  path: string
}

/**
 * The router's last route: what no route matched under its mount point. A single trailing slash
 * is ignored (`/api-keys/` is `/api-keys`), a known path with another method answers 405 with
 * `Allow`, anything else 404 `route_not_found` — in problem+json, the same on Hono and Express
 * (a mounted Hono router never sees the host's `notFound`, so the router answers itself).
 */
export function routeFallback<E extends Env>(
  router: Hono<E>,
  routes: Record<string, RouteShape>,
  problem: (c: Context, error: KeywardError, headers?: Record<string, string>) => Response,
) {
  const patterns = [...Object.values(routes), { method: 'get', path: '/openapi.json' }].map((route) => ({
    method: route.method.toUpperCase(),
    // `/{id}/rotate` → /^\/[^/]+\/rotate$/ (ids never hold a slash)
    pattern: new RegExp(`^${route.path.replace(/\{[^}]+\}/g, '[^/]+').replace(/^\/$/, '')}$`),
  }))
  let bridge: HonoApp<{ Bindings: KeysRouterBindings }> | undefined
  return async (c: Context<{ Bindings: KeysRouterBindings; Variables: { actor?: Actor } }>) => {
    // `/api-keys/*` when mounted at /api-keys, `/*` when bridged: what precedes `/*` is the mount point.
    const mount = c.req.routePath.replace(/\/?\*$/, '')
    const path = c.req.path.slice(mount.length).replace(/^\/?/, '/')
    const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
    const relative = trimmed === '/' ? '' : trimmed
    const allowed = patterns.filter((route) => route.pattern.test(relative)).map((route) => route.method)
    const method = c.req.method === 'HEAD' ? 'GET' : c.req.method
    // `c.req.path`, not `path`: mounted at /api-keys, `/api-keys/` is `/` below the mount, yet the
    // router's `/` route did not match it (Hono routes strictly); bridged, `/` is the collection itself.
    const slashed = c.req.path.length > 1 && c.req.path.endsWith('/')
    if (slashed && allowed.includes(method)) {
      bridge ??= bridgeTo(router)
      return bridge.fetch(c.req.raw, { ...c.env, [ACTOR_BINDING]: c.var.actor ?? c.env?.[ACTOR_BINDING], [PATH_BINDING]: trimmed })
    }
    if (allowed.length > 0) {
      return problem(c, fail('method_not_allowed', `This route takes ${[...new Set(allowed)].join(', ')}.`).error, {
        allow: [...new Set(allowed)].join(', '),
      })
    }
    return problem(c, fail('route_not_found').error)
  }
}
