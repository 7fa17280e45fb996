import { randomBytes } from 'node:crypto'
import { DEMO_TENANTS } from './bootstrap.js'

/**
 * The example's demo sign-in, shared by the Hono and Express examples: `GET /login?tenant=acme`
 * sets a signed session cookie naming the tenant and sends the visitor to the keys page. It asks
 * for no password, so it exists for the example only: a real app mounts the page behind its own
 * sign-in and returns the signed-in tenant from `authenticate`.
 */

export const KEYS_PAGE_PATH = '/settings/api-keys'
export const SESSION_COOKIE = 'keyward_demo_session'

export const DEMO_NOTICE =
  'Demo sign-in: /login?tenant=… signed you in without a password. It exists for this example only; a real app mounts this page behind its own sign-in.'

/** What the example's orders API checks (`requireScopes`), offered on the page's create form. */
export const DEMO_SCOPES = [
  { name: 'orders:read', description: 'List the account’s orders' },
  { name: 'orders:write', description: 'Place orders' },
]

/** The cookie options: readable by the server only, and sent on top-level navigations from other sites (Lax). */
export const SESSION_COOKIE_OPTIONS = { path: '/', httpOnly: true, sameSite: 'Lax', maxAge: 8 * 3600 } as const

/**
 * The key that signs the session cookie: `KEYWARD_DEMO_SESSION_SECRET`, or a random one per start
 * (sessions then end when the example restarts).
 */
export function demoSessionSecret(env: Record<string, string | undefined> = process.env): string {
  return env.KEYWARD_DEMO_SESSION_SECRET || randomBytes(32).toString('base64url')
}

export function isDemoTenant(tenant: unknown): tenant is (typeof DEMO_TENANTS)[number] {
  return typeof tenant === 'string' && (DEMO_TENANTS as readonly string[]).includes(tenant)
}

/** `/login` without a known tenant: the demo tenants to choose from. */
export function loginChooserHtml(): string {
  const choices = DEMO_TENANTS.map((tenant) => `<li><a href="/login?tenant=${tenant}">Sign in as ${tenant}</a></li>`).join('')
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo sign-in</title></head><body><main><h1>Demo sign-in</h1><p>This example signs you in as a demo tenant without a password, to show keyward's API keys page. It exists for the example only.</p><ul>${choices}</ul></main></body></html>`
}
