import type { MiddlewareHandler } from 'hono'
import { secureHeaders } from 'hono/secure-headers'

/**
 * The page's HTTP hardening, in one place: response headers for every answer, and the cross-site
 * check every state-changing request passes before anything else runs.
 */

/**
 * The Content-Security-Policy of every answer: the page's own stylesheet and script and nothing
 * else — no inline script or style (so no `'unsafe-inline'`), no other origin, no framing, forms
 * posted only to this origin.
 */
export const CONTENT_SECURITY_POLICY = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'"],
  connectSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
}

/**
 * Security headers (hono/secure-headers) on every answer, and `Cache-Control: no-store` on every
 * answer but the content-named assets: pages show key data, and the answer to a create or rotate
 * holds a secret. Strict-Transport-Security is the host's to set for its whole domain, not a page's.
 */
export function pageHeaders(): MiddlewareHandler {
  const secure = secureHeaders({
    contentSecurityPolicy: CONTENT_SECURITY_POLICY,
    xFrameOptions: 'DENY',
    referrerPolicy: 'no-referrer',
    strictTransportSecurity: false,
  })
  return async function keysPageHeaders(c, next) {
    await secure(c, async () => {
      await next()
      if (!c.res.headers.has('cache-control')) c.res.headers.set('cache-control', 'no-store')
    })
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Whether a request must be refused as cross-site (CSRF): the page is authenticated by the host's
 * cookie, which a browser attaches to a form another site posts. Like hono/csrf, it trusts the
 * browser's `Sec-Fetch-Site` first and `Origin` next, but it checks every method other than GET,
 * HEAD and OPTIONS whatever the body's type (hono/csrf checks form types only), and it refuses a
 * request that carries neither header: every browser of the last years sends one of them on a
 * POST, so a request without both did not come from this page in a browser that protects it.
 *
 * - `Sec-Fetch-Site: same-origin` passes.
 * - `Sec-Fetch-Site: cross-site` or `same-site` (a sibling subdomain, or another port) passes only
 *   with an `Origin` the host named in `trustedOrigins`.
 * - Otherwise an `Origin` passes when it is the request's own or a trusted one; `null` never does.
 */
export function isCrossSite(request: Request, trustedOrigins: ReadonlySet<string>): boolean {
  if (SAFE_METHODS.has(request.method)) return false
  const site = request.headers.get('sec-fetch-site')
  if (site === 'same-origin') return false
  const origin = request.headers.get('origin')
  if (origin === null || origin === 'null') return true
  if (trustedOrigins.has(origin)) return false
  if (site === 'cross-site' || site === 'same-site') return true
  return origin !== new URL(request.url).origin
}
