import { Hono } from 'hono'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { StoreUnavailableError } from '../src/core/store.js'
import { type Actor, KEY_STATUSES } from '../src/core/types.js'
import { createKeysPage, type KeysPageOptions } from '../src/hono/index.js'
import { keyward } from '../src/index.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'
import { instrument } from './helpers/instrumented-store.js'
import { expectPageHeaders, fieldErrorIn, formBody, keyIdsIn, secretIn, textOf } from './helpers/keys-page.js'
import { tempSqlitePath } from './helpers/sqlite.js'

/**
 * The keys page over HTTP, without a browser: headers, the cross-site check, sign-in, and every
 * action against a real SQLite store, checked through keyward's own API. The signed-in person is
 * named by test headers, standing in for the host's session (the browser tests use the example's
 * signed cookie).
 */

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  vi.restoreAllMocks()
})

const MOUNT = '/settings/api-keys'
const ORIGIN = 'http://localhost'

/** The page mounted at /settings/api-keys on a fresh SQLite store; the test headers name the actor. */
function pageApp(options: Partial<KeysPageOptions> = {}) {
  const store = instrument(createSqliteStore({ url: tempSqlitePath() }))
  const kw = keyward({ store })
  cleanups.push(() => kw.close())
  let authenticated = 0
  const app = new Hono()
  app.route(
    MOUNT,
    createKeysPage({
      keyward: kw,
      authenticate: (c) => {
        authenticated++
        const tenantId = c.req.header('x-test-tenant')
        if (tenantId === undefined) return null
        const actor: Actor = { tenantId }
        const scopes = c.req.header('x-test-scopes')
        if (scopes !== undefined) actor.scopes = scopes === '' ? [] : scopes.split(',')
        const projectId = c.req.header('x-test-project')
        if (projectId !== undefined) actor.projectId = projectId
        if (c.req.header('x-test-environment') === 'test') actor.environment = 'test'
        return actor
      },
      scopes: ['orders:read', { name: 'orders:write', description: 'Place orders' }],
      ...options,
    }),
  )
  const request = (
    path: string,
    init: { method?: string; tenant?: string | null; headers?: Record<string, string>; body?: string } = {},
  ) => {
    const headers: Record<string, string> = { ...init.headers }
    if (init.tenant !== null) headers['x-test-tenant'] = init.tenant ?? 'acme'
    return app.request(`${ORIGIN}${path}`, { method: init.method ?? 'GET', headers, body: init.body })
  }
  /** A form post as the page's own forms send it: same origin, urlencoded. */
  const post = (
    path: string,
    fields: Record<string, string | readonly string[]>,
    init: { tenant?: string | null; headers?: Record<string, string> } = {},
  ) =>
    request(path, {
      method: 'POST',
      tenant: init.tenant,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, ...init.headers },
      body: formBody(fields),
    })
  return { app, kw, store, request, post, authenticated: () => authenticated }
}

async function createdKey(kw: ReturnType<typeof keyward>, actor: Actor, name = 'Server', scopes = ['orders:read']) {
  const created = await kw.createKey(actor, { name, scopes })
  if (!created.ok) throw new Error(created.error.detail)
  return created.value
}

describe('the keys page: headers', () => {
  it('answers every page, error pages included, with a strict CSP, X-Frame-Options DENY and Cache-Control no-store', async () => {
    const { request, post, kw } = pageApp({ loginUrl: undefined })
    const key = await createdKey(kw, { tenantId: 'acme' })
    const answers = [
      await request(MOUNT),
      await request(`${MOUNT}/new`),
      await request(`${MOUNT}/${key.apiKey.id}`),
      await request(`${MOUNT}/${key.apiKey.id}/revoke`),
      await request(`${MOUNT}/key_unknown`),
      await request(`${MOUNT}/no/such/page`),
      await request(MOUNT, { tenant: null }),
      await post(`${MOUNT}/new`, { name: 'x' }, { headers: { origin: 'https://evil.example' } }),
      await post(`${MOUNT}/new`, { name: 'CI', environment: 'live', scopes: 'orders:read', expires: 'never' }),
    ]
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 404, 404, 401, 403, 201])
    for (const answer of answers) {
      expectPageHeaders(answer)
      expect(answer.headers.get('content-type')).toBe('text/html; charset=UTF-8')
    }
  })

  it('serves the stylesheet and script it links from under its mount path, cacheable because their names change with them', async () => {
    const { request } = pageApp()
    const html = await (await request(MOUNT)).text()
    const assets = [...html.matchAll(/(?:href|src)="([^"]+\/assets\/[^"]+)"/g)].map((match) => match[1] as string)
    expect(assets).toEqual([
      expect.stringMatching(/^\/settings\/api-keys\/assets\/page\.[0-9a-f]{12}\.css$/),
      expect.stringMatching(/\.js$/),
    ])
    for (const asset of assets) {
      // Assets need no sign-in: they are the package's files.
      const answer = await request(asset, { tenant: null })
      expect(answer.status).toBe(200)
      expectPageHeaders(answer, 'immutable')
      expect(answer.headers.get('content-type')).toMatch(asset.endsWith('.css') ? /^text\/css/ : /^text\/javascript/)
      expect((await answer.text()).length).toBeGreaterThan(500)
    }
    expect((await request(`${MOUNT}/assets/page.000000000000.js`)).status).toBe(404)
  })

  it('puts no inline script, no inline style and no third-party URL in its markup', async () => {
    const { request, post, kw } = pageApp()
    const key = await createdKey(kw, { tenantId: 'acme' })
    const pages = [
      await (await request(MOUNT)).text(),
      await (await request(`${MOUNT}/new`)).text(),
      await (await request(`${MOUNT}/${key.apiKey.id}`)).text(),
      await (await post(`${MOUNT}/new`, { name: 'CI', environment: 'live', scopes: 'orders:read', expires: 'never' })).text(),
    ]
    for (const html of pages) {
      expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/)
      expect(html).not.toMatch(/\sstyle=/)
      expect(html).not.toMatch(/<style/)
      expect(html).not.toMatch(/\son[a-z]+=/)
      expect(html).not.toMatch(/(?:href|src|action)="https?:/)
    }
  })
})

describe('the keys page: signing in', () => {
  it('sends a visitor who is not signed in to loginUrl with the page asked for', async () => {
    const { request } = pageApp({ loginUrl: (returnTo) => `/login?next=${encodeURIComponent(returnTo)}` })
    const answer = await request(`${MOUNT}/key_abc?done=renamed`, { tenant: null })
    expect(answer.status).toBe(303)
    expect(answer.headers.get('location')).toBe(`/login?next=${encodeURIComponent(`${MOUNT}/key_abc?done=renamed`)}`)
    expectPageHeaders(answer)
  })

  it('sends a form post without a sign-in to loginUrl, to come back to the list', async () => {
    const { post, kw } = pageApp({ loginUrl: '/login' })
    const answer = await post(`${MOUNT}/new`, { name: 'x', environment: 'live', scopes: 'orders:read', expires: 'never' }, { tenant: null })
    expect(answer.status).toBe(303)
    expect(answer.headers.get('location')).toBe('/login')
    const listed = await kw.listKeys({ tenantId: 'acme' })
    expect(listed.ok && listed.value.items).toEqual([])
  })

  it('answers 401 with a page saying to sign in when there is no loginUrl', async () => {
    const { request } = pageApp()
    const answer = await request(MOUNT, { tenant: null })
    expect(answer.status).toBe(401)
    expect(textOf(await answer.text())).toContain('Sign in to manage API keys')
  })

  it('answers 500 without a stack trace when authenticate throws, and logs the message', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    const kw = keyward({ database: tempSqlitePath() })
    cleanups.push(() => kw.close())
    const app = new Hono().route(
      MOUNT,
      createKeysPage({
        keyward: kw,
        authenticate: () => {
          throw new Error('session store down at /srv/secret/path')
        },
      }),
    )
    const answer = await app.request(MOUNT)
    expect(answer.status).toBe(500)
    const text = await answer.text()
    expect(textOf(text)).toContain('Something went wrong')
    expect(text).not.toContain('/srv/secret/path')
    expect(text).not.toMatch(/at .*\.(?:ts|js):\d+/)
    expectPageHeaders(answer)
    expect(logged).toHaveBeenCalledWith('keyward: unexpected error in the keys page:', 'session store down at /srv/secret/path')
  })

  it('answers 500 when authenticate names no valid tenant, instead of showing another tenant or none', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const kw = keyward({ database: tempSqlitePath() })
    cleanups.push(() => kw.close())
    const app = new Hono().route(MOUNT, createKeysPage({ keyward: kw, authenticate: () => ({ tenantId: '' }) }))
    expect((await app.request(MOUNT)).status).toBe(500)
  })
})

describe('the keys page: cross-site requests (CSRF)', () => {
  const crossSite: [string, Record<string, string>][] = [
    ['a foreign Origin', { origin: 'https://evil.example' }],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site: cross-site, even with the page’s own Origin', { 'sec-fetch-site': 'cross-site', origin: ORIGIN }],
    ['Sec-Fetch-Site: same-site (a sibling subdomain)', { 'sec-fetch-site': 'same-site', origin: 'http://other.localhost' }],
    ['Origin: null (a sandboxed frame)', { origin: 'null' }],
    ['neither Origin nor Sec-Fetch-Site', {}],
  ]
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    for (const [what, headers] of crossSite) {
      it(`refuses a ${method} with ${what} with 403 before the host's authenticate runs and before routing`, async () => {
        const { request, authenticated, kw } = pageApp()
        const key = await createdKey(kw, { tenantId: 'acme' })
        const answer = await request(`${MOUNT}/${key.apiKey.id}/revoke`, {
          method,
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
          body: 'x=1',
        })
        expect(answer.status).toBe(403)
        expect(textOf(await answer.text())).toContain('Form refused')
        expectPageHeaders(answer)
        expect(authenticated()).toBe(0)
        const stored = await kw.getKey({ tenantId: 'acme' }, key.apiKey.id)
        expect(stored.ok && stored.value.status).toBe('active')
      })
    }
  }

  it('refuses a JSON POST from another origin too (a check of every body type, not only forms)', async () => {
    const { request, kw } = pageApp()
    const answer = await request(`${MOUNT}/new`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
      body: JSON.stringify({ name: 'x' }),
    })
    expect(answer.status).toBe(403)
    const listed = await kw.listKeys({ tenantId: 'acme' })
    expect(listed.ok && listed.value.items).toEqual([])
  })

  it('accepts a form from the page itself: Sec-Fetch-Site same-origin, or its own Origin, or a trusted one', async () => {
    const { request, kw } = pageApp({ trustedOrigins: ['https://keys.example.com'] })
    const fields = { name: 'CI', environment: 'live', scopes: 'orders:read', expires: 'never' }
    const accepted: Record<string, string>[] = [
      { 'sec-fetch-site': 'same-origin' },
      { origin: ORIGIN },
      { origin: 'https://keys.example.com', 'sec-fetch-site': 'cross-site' },
    ]
    for (const headers of accepted) {
      const answer = await request(`${MOUNT}/new`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: formBody(fields),
      })
      expect(answer.status).toBe(201)
    }
    const listed = await kw.listKeys({ tenantId: 'acme' })
    expect(listed.ok && listed.value.items.length).toBe(3)
  })

  it('lets GET requests from anywhere through (links into the page work)', async () => {
    const { request } = pageApp()
    expect((await request(MOUNT, { headers: { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' } })).status).toBe(200)
  })
})

describe('the keys page: creating a key', () => {
  it('shows the new secret once, in the answer to the POST itself, and the secret works', async () => {
    const { post, request, kw } = pageApp()
    const answer = await post(`${MOUNT}/new`, {
      name: 'CI deploy',
      environment: 'test',
      scopes: ['orders:read', 'orders:write'],
      expires: '30',
    })
    expect(answer.status).toBe(201)
    expect(answer.headers.get('location')).toBeNull()
    expectPageHeaders(answer)
    const html = await answer.text()
    const secret = secretIn(html)
    expect(secret).toMatch(/^sk_test_[A-Za-z0-9]{36}$/)
    expect(textOf(html)).toContain('It will not be shown again.')
    expect(html).toContain('data-copy="secret-value"')

    const verified = await kw.verify(secret as string)
    expect(verified.ok && verified.key).toMatchObject({
      tenantId: 'acme',
      name: 'CI deploy',
      environment: 'test',
      scopes: ['orders:read', 'orders:write'],
    })
    const expiresAt = verified.ok ? verified.key.expiresAt : null
    expect(expiresAt && Math.round((expiresAt.getTime() - Date.now()) / 86_400_000)).toBe(30)

    // Nowhere else: not on the list, not on the key's page.
    const list = await (await request(MOUNT)).text()
    const [id] = keyIdsIn(list)
    expect(list).not.toContain(secret)
    expect(await (await request(`${MOUNT}/${id}`)).text()).not.toContain(secret)
  })

  it('creates a key with full access only when the person has full access and ticks it', async () => {
    const { post, request, kw } = pageApp({ fullAccess: true })
    expect(await (await request(`${MOUNT}/new`)).text()).toContain('id="full_access"')
    const answer = await post(`${MOUNT}/new`, { name: 'Root', environment: 'live', full_access: 'on', expires: 'never' })
    expect(answer.status).toBe(201)
    const verified = await kw.verify(secretIn(await answer.text()) as string)
    expect(verified.ok && verified.key.scopes).toEqual([])

    const scoped = { 'x-test-scopes': 'api_keys:write,api_keys:read,orders:read' }
    expect(await (await request(`${MOUNT}/new`, { headers: scoped })).text()).not.toContain('id="full_access"')
    const refused = await post(
      `${MOUNT}/new`,
      { name: 'Root', environment: 'live', full_access: 'on', expires: 'never' },
      { headers: scoped },
    )
    expect(refused.status).toBe(400)
    expect(fieldErrorIn(await refused.text(), 'scopes')).toBe('Scopes cannot be full access for you.')
  })

  it('shows what is wrong next to each field, keeps what was typed, and creates nothing', async () => {
    const { post, kw } = pageApp()
    const answer = await post(`${MOUNT}/new`, { name: '   ', environment: 'live', scopes: [], expires: '12' })
    expect(answer.status).toBe(400)
    const html = await answer.text()
    expect(fieldErrorIn(html, 'name')).toBe('Name must not be empty.')
    expect(fieldErrorIn(html, 'scopes')).toBe('Scopes must include at least one scope.')
    expect(fieldErrorIn(html, 'expires')).toBe('Expires must be one of the choices offered.')
    expect(html).toContain('aria-describedby="name-hint name-error"')
    expect(html).toContain('aria-invalid="true"')
    // The summary at the top links to each field.
    expect(html).toMatch(/<div class="error-summary" role="alert"/)
    expect(html).toContain('<a href="#name">Name must not be empty.</a>')
    expect(html).toContain('<a href="#scope-0">Scopes must include at least one scope.</a>')
    const listed = await kw.listKeys({ tenantId: 'acme' })
    expect(listed.ok && listed.value.items).toEqual([])
  })

  it('shows the core’s own field messages next to the field (a name of 101 characters)', async () => {
    const { post } = pageApp()
    const answer = await post(`${MOUNT}/new`, { name: 'n'.repeat(101), environment: 'live', scopes: 'orders:read', expires: 'never' })
    expect(answer.status).toBe(400)
    const html = await answer.text()
    expect(fieldErrorIn(html, 'name')).toBe('Name must be at most 100 characters.')
    // Filled in again as typed, the chosen scope still ticked.
    expect(html).toContain(`value="${'n'.repeat(101)}"`)
    expect(html).toMatch(/name="scopes" value="orders:read" checked=""/)
  })

  it('refuses a scope the page does not offer, even when the request is forged', async () => {
    const { post } = pageApp()
    const answer = await post(`${MOUNT}/new`, { name: 'x', environment: 'live', scopes: ['orders:read', 'admin:all'], expires: 'never' })
    expect(answer.status).toBe(400)
    expect(fieldErrorIn(await answer.text(), 'scopes')).toBe('Scopes cannot include admin:all: not a scope you can grant here.')
  })

  it('offers a person with limited scopes only the scopes it holds, and the API’s ceiling refuses the rest', async () => {
    const { post, request } = pageApp()
    const headers = { 'x-test-scopes': 'api_keys:read,api_keys:write,orders:read' }
    const form = await (await request(`${MOUNT}/new`, { headers })).text()
    expect(form).toContain('value="orders:read"')
    expect(form).not.toContain('value="orders:write"')
    expect(
      (await post(`${MOUNT}/new`, { name: 'x', environment: 'live', scopes: 'orders:write', expires: 'never' }, { headers })).status,
    ).toBe(400)
    expect(
      (await post(`${MOUNT}/new`, { name: 'x', environment: 'live', scopes: 'orders:read', expires: 'never' }, { headers })).status,
    ).toBe(201)
  })

  it('shows the API’s refusal in its own words next to the scopes when a limited person would grant full access', async () => {
    // The host declares no scopes: keys made on the page are full-access keys, which a limited person may not mint.
    const { post } = pageApp({ scopes: [] })
    const answer = await post(
      `${MOUNT}/new`,
      { name: 'x', environment: 'live', expires: 'never' },
      { headers: { 'x-test-scopes': 'api_keys:write' } },
    )
    expect(answer.status).toBe(403)
    expect(fieldErrorIn(await answer.text(), 'scopes')).toBe('A key with limited scopes cannot grant unrestricted access.')
  })

  it('offers a test-key person test keys only, and refuses a forged live one', async () => {
    const { post, request } = pageApp()
    const headers = { 'x-test-environment': 'test' }
    const form = await (await request(`${MOUNT}/new`, { headers })).text()
    expect(form).toContain('<option value="test"')
    expect(form).not.toContain('<option value="live"')
    const answer = await post(`${MOUNT}/new`, { name: 'x', environment: 'live', scopes: 'orders:read', expires: 'never' }, { headers })
    expect(answer.status).toBe(400)
    expect(fieldErrorIn(await answer.text(), 'environment')).toBe('Environment must be one of: test.')
  })

  it('does not let a read-only person create: no button, and 403 on the form', async () => {
    const { post, request } = pageApp()
    const headers = { 'x-test-scopes': 'api_keys:read' }
    const list = await (await request(MOUNT, { headers })).text()
    expect(list).not.toContain('Create key')
    expect((await request(`${MOUNT}/new`, { headers })).status).toBe(403)
    expect(
      (await post(`${MOUNT}/new`, { name: 'x', environment: 'live', scopes: 'orders:read', expires: 'never' }, { headers })).status,
    ).toBe(403)
  })

  it('creates a key with a rate limit, credits and allowed IP addresses, shown on the key’s page', async () => {
    const { post, request, kw } = pageApp()
    const answer = await post(`${MOUNT}/new`, {
      name: 'Limited',
      environment: 'live',
      scopes: 'orders:read',
      expires: 'never',
      rate_limit: '120',
      rate_limit_window: 'minute',
      credits: '5000',
      credits_refill: 'month',
      allowed_ips: '203.0.113.0/24\r\n2001:db8::/32',
    })
    expect(answer.status).toBe(201)
    // Not verified here: the key may be used only from the ranges above.
    const listed = await kw.listKeys({ tenantId: 'acme' })
    const id = listed.ok ? (listed.value.items[0]?.id ?? '') : ''
    const stored = await kw.getKey({ tenantId: 'acme' }, id)
    expect(stored.ok && stored.value).toMatchObject({
      rateLimits: [{ name: 'per-minute', limit: 120, windowMs: 60_000 }],
      credits: { remaining: 5000, refill: { amount: 5000, interval: 'month' } },
      allowedIps: ['203.0.113.0/24', '2001:db8::/32'],
    })
    const page = textOf(await (await request(`${MOUNT}/${id}`)).text())
    expect(page).toContain('Rate limit 120 requests per minute')
    expect(page).toContain('Credits 5,000 left, set back to 5,000 every month')
    expect(page).toContain('Allowed IP addresses 203.0.113.0/24 2001:db8::/32')
  })

  it('shows what is wrong with the limits next to them, in the form’s words and the API’s, and opens them', async () => {
    const { post, kw } = pageApp()
    const base = { name: 'x', environment: 'live', scopes: 'orders:read', expires: 'never' }
    const typed = await (await post(`${MOUNT}/new`, { ...base, rate_limit: 'lots', credits: '', credits_refill: 'day' })).text()
    expect(fieldErrorIn(typed, 'rate_limits')).toBe('Rate limit must be a whole number of requests.')
    expect(fieldErrorIn(typed, 'credits')).toBe('Credits must be given to be refilled.')
    expect(typed).toContain('<details class="more" open="">')
    const core = await post(`${MOUNT}/new`, { ...base, rate_limit: '0', allowed_ips: '203.0.113.0/24\n10.0.0.1/8' })
    expect(core.status).toBe(400)
    const html = await core.text()
    expect(fieldErrorIn(html, 'rate_limits')).toBe('Rate limit must be at least 1.')
    expect(fieldErrorIn(html, 'allowed_ips')).toBe(
      'Allowed IP addresses: “10.0.0.1/8” has bits set beyond the /8 prefix; did you mean 10.0.0.0/8?',
    )
    expect(html).toContain('10.0.0.1/8</textarea>')
    const listed = await kw.listKeys({ tenantId: 'acme' })
    expect(listed.ok && listed.value.items).toEqual([])
  })

  it('leaves the limits out of the form with controls: false, and ignores them if posted', async () => {
    const { post, request, kw } = pageApp({ controls: false })
    expect(await (await request(`${MOUNT}/new`)).text()).not.toContain('Rate limit')
    const answer = await post(`${MOUNT}/new`, { name: 'x', environment: 'live', scopes: 'orders:read', expires: 'never', rate_limit: '1' })
    expect(answer.status).toBe(201)
    const verified = await kw.verify(secretIn(await answer.text()) as string)
    const stored = await kw.getKey({ tenantId: 'acme' }, verified.ok ? verified.key.id : '')
    expect(stored.ok && stored.value.rateLimits).toEqual([])
  })

  it('escapes what people type: a name with markup is shown as text', async () => {
    const { post, request } = pageApp()
    const name = '<img src=x onerror=alert(1)>"'
    expect((await post(`${MOUNT}/new`, { name, environment: 'live', scopes: 'orders:read', expires: 'never' })).status).toBe(201)
    const html = await (await request(MOUNT)).text()
    expect(html).not.toContain('<img')
    expect(textOf(html)).toContain(name)
  })

  it('answers 415 to a body that is not a form, and 413 to a form too large', async () => {
    const { request } = pageApp()
    const json = await request(`${MOUNT}/new`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: ORIGIN },
      body: '{}',
    })
    expect(json.status).toBe(415)
    const large = await request(`${MOUNT}/new`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
      body: `name=${'x'.repeat(20_000)}`,
    })
    expect(large.status).toBe(413)
    expectPageHeaders(large)
  })
})

describe('the keys page: the list', () => {
  it('shows the tenant’s keys, one row per key, with their details and never a secret', async () => {
    const { request, kw } = pageApp()
    const server = await createdKey(kw, { tenantId: 'acme' }, 'Server', ['orders:read'])
    await createdKey(kw, { tenantId: 'globex' }, 'Globex key')
    const html = await (await request(MOUNT)).text()
    expect(keyIdsIn(html)).toEqual([server.apiKey.id])
    const row = textOf(/<tbody>(.*)<\/tbody>/s.exec(html)?.[1] ?? '')
    expect(row).toContain(`Server ${server.apiKey.keyPrefix}…${server.apiKey.keySuffix} Live orders:read Active`)
    expect(row).toContain('Never')
    expect(html).not.toContain(server.key)
    expect(html).not.toContain('Globex key')
  })

  it('filters by status and environment, and says what is wrong with a filter', async () => {
    const { request, kw } = pageApp()
    const revoked = await createdKey(kw, { tenantId: 'acme' }, 'Old')
    await kw.revokeKey({ tenantId: 'acme' }, revoked.apiKey.id)
    const live = await createdKey(kw, { tenantId: 'acme' }, 'Live one')
    const test = await kw.createKey({ tenantId: 'acme' }, { name: 'Test one', environment: 'test' })
    if (!test.ok) throw new Error(test.error.detail)
    expect(keyIdsIn(await (await request(`${MOUNT}?status=revoked`)).text())).toEqual([revoked.apiKey.id])
    expect(keyIdsIn(await (await request(`${MOUNT}?status=active&environment=live`)).text())).toEqual([live.apiKey.id])
    expect(keyIdsIn(await (await request(`${MOUNT}?environment=test`)).text())).toEqual([test.value.apiKey.id])
    const bad = await request(`${MOUNT}?status=sleeping`)
    expect(bad.status).toBe(400)
    expect(fieldErrorIn(await bad.text(), 'status')).toBe(`Status must be one of: ${KEY_STATUSES.join(', ')}.`)
  })

  it('pages through more than 50 keys with a Next page link that keeps the filters', async () => {
    const { request, kw } = pageApp()
    for (let index = 0; index < 52; index++) await createdKey(kw, { tenantId: 'acme' }, `Key ${index}`)
    const first = await (await request(`${MOUNT}?status=active`)).text()
    expect(keyIdsIn(first)).toHaveLength(50)
    const next = /<a href="([^"]+)">Next page<\/a>/.exec(first)?.[1]?.replace(/&amp;/g, '&')
    expect(next).toMatch(/^\/settings\/api-keys\?status=active&cursor=/)
    const second = await (await request(next as string)).text()
    expect(keyIdsIn(second)).toHaveLength(2)
    expect(second).not.toContain('Next page')
    expect(second).toContain('First page')
  })

  it('shows a project-bound person only its project’s keys, and creates keys in its project', async () => {
    const { request, post, kw } = pageApp()
    const other = await createdKey(kw, { tenantId: 'acme' }, 'Whole tenant')
    const headers = { 'x-test-project': 'web' }
    expect(keyIdsIn(await (await request(MOUNT, { headers })).text())).toEqual([])
    expect((await request(`${MOUNT}/${other.apiKey.id}`, { headers })).status).toBe(404)
    const created = await post(`${MOUNT}/new`, { name: 'Web', environment: 'live', scopes: 'orders:read', expires: 'never' }, { headers })
    const verified = await kw.verify(secretIn(await created.text()) as string)
    expect(verified.ok && verified.key.projectId).toBe('web')
  })
})

describe('the keys page: one key', () => {
  it('shows another tenant’s key as no key at all, and changes nothing of it', async () => {
    const { request, post, kw } = pageApp()
    const key = await createdKey(kw, { tenantId: 'acme' })
    const globex = { tenant: 'globex' }
    const page = await request(`${MOUNT}/${key.apiKey.id}`, globex)
    expect(page.status).toBe(404)
    expect(textOf(await page.text())).toContain('No such key')
    expect((await request(`${MOUNT}/${key.apiKey.id}/revoke`, globex)).status).toBe(404)
    expect((await post(`${MOUNT}/${key.apiKey.id}/revoke`, {}, globex)).status).toBe(404)
    expect((await post(`${MOUNT}/${key.apiKey.id}/rename`, { name: 'mine now' }, globex)).status).toBe(404)
    expect((await post(`${MOUNT}/${key.apiKey.id}/rotate`, { grace: '3600' }, globex)).status).toBe(404)
    const stored = await kw.getKey({ tenantId: 'acme' }, key.apiKey.id)
    expect(stored.ok && stored.value).toMatchObject({ name: 'Server', status: 'active' })
    expect((await kw.verify(key.key)).ok).toBe(true)
  })

  it('shows only its own confirmations, whatever the done parameter says', async () => {
    const { request, kw } = pageApp()
    const key = await createdKey(kw, { tenantId: 'acme' })
    for (const done of ['constructor', '__proto__', 'toString', '<b>hi</b>']) {
      const answer = await request(`${MOUNT}/${key.apiKey.id}?done=${encodeURIComponent(done)}`)
      expect(answer.status).toBe(200)
      expect(await answer.text()).not.toContain('class="flash"')
    }
  })

  it('renames a key and says so; a blank name is refused next to the field', async () => {
    const { request, post, kw } = pageApp()
    const key = await createdKey(kw, { tenantId: 'acme' })
    const renamed = await post(`${MOUNT}/${key.apiKey.id}/rename`, { name: '  Billing worker ' })
    expect(renamed.status).toBe(303)
    expect(renamed.headers.get('location')).toBe(`${MOUNT}/${key.apiKey.id}?done=renamed`)
    const page = textOf(await (await request(`${MOUNT}/${key.apiKey.id}?done=renamed`)).text())
    expect(page).toContain('Billing worker')
    expect(page).toContain('Renamed.')

    const blank = await post(`${MOUNT}/${key.apiKey.id}/rename`, { name: '' })
    expect(blank.status).toBe(400)
    expect(fieldErrorIn(await blank.text(), 'name')).toBe('Name must not be empty.')
    const stored = await kw.getKey({ tenantId: 'acme' }, key.apiKey.id)
    expect(stored.ok && stored.value.name).toBe('Billing worker')
  })

  it('rotates a key: the new secret once, the old key’s end of grace, and both work until then', async () => {
    const { post, kw } = pageApp()
    const key = await createdKey(kw, { tenantId: 'acme' })
    const answer = await post(`${MOUNT}/${key.apiKey.id}/rotate`, { grace: '86400' })
    expect(answer.status).toBe(201)
    expectPageHeaders(answer)
    const html = await answer.text()
    const secret = secretIn(html) as string
    expect(secret).toMatch(/^sk_live_/)
    const old = await kw.getKey({ tenantId: 'acme' }, key.apiKey.id)
    const graceEnds = old.ok ? old.value.graceExpiresAt : null
    expect(html).toContain(`<time datetime="${graceEnds?.toISOString()}">`)
    expect(textOf(html)).toContain(`The old key ${key.apiKey.keyPrefix}…${key.apiKey.keySuffix} keeps working until`)
    expect((await kw.verify(key.key)).ok).toBe(true)
    expect((await kw.verify(secret)).ok).toBe(true)
  })

  it('refuses a grace period it did not offer, and a rotation the API refuses, in words on the key’s page', async () => {
    const { post, kw } = pageApp()
    const key = await createdKey(kw, { tenantId: 'acme' })
    const odd = await post(`${MOUNT}/${key.apiKey.id}/rotate`, { grace: '5' })
    expect(odd.status).toBe(400)
    expect(fieldErrorIn(await odd.text(), 'grace')).toBe('Old key keeps working for must be one of the choices offered.')
    await kw.revokeKey({ tenantId: 'acme' }, key.apiKey.id)
    const revoked = await post(`${MOUNT}/${key.apiKey.id}/rotate`, { grace: '3600' })
    expect(revoked.status).toBe(409)
    expect(textOf(await revoked.text())).toContain('A revoked API key cannot be changed or rotated.')
  })

  it('revokes a key after a confirmation that names it, and the key is refused at once', async () => {
    const { request, post, kw } = pageApp()
    const key = await createdKey(kw, { tenantId: 'acme' }, 'CI deploy')
    const keyPage = await (await request(`${MOUNT}/${key.apiKey.id}`)).text()
    // With script: a dialog in the page; without: the form leads to a confirmation page.
    expect(keyPage).toContain(`<form method="get" action="${MOUNT}/${key.apiKey.id}/revoke" data-confirm="revoke-dialog"`)
    expect(keyPage).toMatch(/<dialog id="revoke-dialog"[^>]*>.*Revoke “CI deploy”\?.*Revoke key.*<\/dialog>/s)
    const confirm = await request(`${MOUNT}/${key.apiKey.id}/revoke`)
    const text = textOf(await confirm.text())
    expect(text).toContain('Revoke “CI deploy”?')
    expect(text).toContain(`${key.apiKey.keyPrefix}…${key.apiKey.keySuffix}`)
    expect(text).toContain('Revoke key')
    // Looking at the confirmation changes nothing.
    expect((await kw.verify(key.key)).ok).toBe(true)

    const revoked = await post(`${MOUNT}/${key.apiKey.id}/revoke`, {})
    expect(revoked.status).toBe(303)
    expect(revoked.headers.get('location')).toBe(`${MOUNT}/${key.apiKey.id}?done=revoked`)
    expect(await kw.verify(key.key)).toMatchObject({ ok: false, code: 'api_key_revoked' })
    const after = textOf(await (await request(`${MOUNT}/${key.apiKey.id}?done=revoked`)).text())
    expect(after).toContain('Revoked. Every request made with this key is refused from now on.')
    expect(after).not.toContain('Revoke key')
  })

  it('lets a read-only person look but not change: no actions, and the API’s refusal in words', async () => {
    const { request, post, kw } = pageApp()
    const key = await createdKey(kw, { tenantId: 'acme' })
    const headers = { 'x-test-scopes': 'api_keys:read' }
    const page = await (await request(`${MOUNT}/${key.apiKey.id}`, { headers })).text()
    expect(page).not.toContain('>Rotate<')
    expect(page).not.toContain('>Revoke<')
    const refused = await post(`${MOUNT}/${key.apiKey.id}/revoke`, {}, { headers })
    expect(refused.status).toBe(403)
    expect(textOf(await refused.text())).toContain('This call needs the api_keys:write scope.')
    expect((await kw.verify(key.key)).ok).toBe(true)
  })

  it('draws the key’s usage of the last 30 days as an SVG bar chart', async () => {
    const { request, kw } = pageApp()
    const key = await createdKey(kw, { tenantId: 'acme' })
    for (let index = 0; index < 3; index++) expect((await kw.verify(key.key)).ok).toBe(true)
    await kw.flushUsage()
    const html = await (await request(`${MOUNT}/${key.apiKey.id}`)).text()
    const svg = /<svg class="chart"[^>]*>.*<\/svg>/s.exec(html)?.[0] ?? ''
    expect(svg).toContain('role="img"')
    expect(svg.match(/<rect class="bar"/g)).toHaveLength(30)
    expect(svg).toMatch(/<title>\d+ [A-Z][a-z]{2}: 3 requests<\/title><\/rect>/)
    expect(textOf(html)).toContain('3 requests in 30 days')
  })

  it('draws the requests a rate limit refused as a second series beside the requests', async () => {
    const { request, kw } = pageApp()
    const created = await kw.createKey(
      { tenantId: 'acme' },
      { name: 'Limited', rateLimits: [{ name: 'per-minute', limit: 2, windowMs: 60_000 }] },
    )
    if (!created.ok) throw new Error(created.error.detail)
    const outcomes = []
    for (let index = 0; index < 3; index++) outcomes.push((await kw.verify(created.value.key)).ok)
    expect(outcomes).toEqual([true, true, false])
    await kw.flushUsage()
    const html = await (await request(`${MOUNT}/${created.value.apiKey.id}`)).text()
    expect(html.match(/<rect class="bar second"/g)).toHaveLength(30)
    expect(html).toMatch(/<title>\d+ [A-Z][a-z]{2}: 1 rate-limited request<\/title>/)
    expect(html).toMatch(/<title>\d+ [A-Z][a-z]{2}: 2 requests<\/title>/)
    expect(textOf(html)).toContain('Rate-limited requests')
  })

  it('shows the key’s audit log as its History by default, the host’s own history when given, none with false, and survives a failing one', async () => {
    const at = new Date('2026-03-01T12:00:00Z')
    const audited = pageApp()
    const key = await createdKey(audited.kw, { tenantId: 'acme' })
    await audited.kw.updateKey({ tenantId: 'acme', type: 'user', subject: 'jane@acme.example' }, key.apiKey.id, { name: 'Renamed' })
    const page = textOf(await (await audited.request(`${MOUNT}/${key.apiKey.id}`)).text())
    expect(page).toContain('History')
    expect(page).toMatch(/Renamed to “Renamed” · jane@acme\.example.*Created · System/)
    const none = pageApp({ history: false })
    const quiet = await createdKey(none.kw, { tenantId: 'acme' })
    expect(await (await none.request(`${MOUNT}/${quiet.apiKey.id}`)).text()).not.toContain('History')

    const seen: string[] = []
    const withHistory = pageApp({
      history: (actor, apiKey) => {
        seen.push(`${actor.tenantId}/${apiKey.name}`)
        return [{ at, what: 'Created', who: 'jane@acme.example' }]
      },
    })
    const other = await createdKey(withHistory.kw, { tenantId: 'acme' }, 'Audited')
    const text = textOf(await (await withHistory.request(`${MOUNT}/${other.apiKey.id}`)).text())
    expect(text).toContain('History 1 Mar 2026, 12:00 UTC — Created · jane@acme.example')
    expect(seen).toEqual(['acme/Audited'])

    vi.spyOn(console, 'error').mockImplementation(() => {})
    const failing = pageApp({
      history: () => {
        throw new Error('audit log offline')
      },
    })
    const third = await createdKey(failing.kw, { tenantId: 'acme' })
    const answer = await failing.request(`${MOUNT}/${third.apiKey.id}`)
    expect(answer.status).toBe(200)
    expect(textOf(await answer.text())).toContain('The history of this key cannot be shown right now.')
  })

  it('answers 503 with a page saying to try again when the store is unreachable, without internals', async () => {
    const { request, store } = pageApp()
    store.before.listKeys = () => {
      throw new StoreUnavailableError('connect ECONNREFUSED 10.0.0.5:5432')
    }
    const answer = await request(MOUNT)
    expect(answer.status).toBe(503)
    expect(answer.headers.get('retry-after')).toBe('5')
    const text = await answer.text()
    expect(textOf(text)).toContain('Try again shortly')
    expect(text).not.toContain('ECONNREFUSED')
  })
})

describe('the keys page: mounting', () => {
  it('links under any mount path, a parameterised one included, and sends the mount with a slash to the list', async () => {
    const kw = keyward({ database: tempSqlitePath() })
    cleanups.push(() => kw.close())
    const key = await createdKey(kw, { tenantId: 'acme' })
    const page = createKeysPage({ keyward: kw, authenticate: () => ({ tenantId: 'acme' }) })
    const app = new Hono().route('/t/:team/keys', page).route('/', new Hono().route('/', page))
    const html = await (await app.request('/t/blue/keys')).text()
    expect(html).toContain(`href="/t/blue/keys/${key.apiKey.id}"`)
    expect(html).toContain('href="/t/blue/keys/new"')
    expect(html).toMatch(/href="\/t\/blue\/keys\/assets\/page\.[0-9a-f]+\.css"/)
    const slash = await app.request('/t/blue/keys/?status=active')
    expect(slash.status).toBe(308)
    expect(slash.headers.get('location')).toBe('/t/blue/keys?status=active')

    const root = await (await app.request('/')).text()
    expect(root).toContain(`href="/${key.apiKey.id}"`)
    expect(root).toContain('<a class="brand" href="/">')
  })

  it('checks its options when created, naming the option', () => {
    const authenticate = () => null
    expect(() => createKeysPage({} as KeysPageOptions)).toThrow(/`authenticate` is required/)
    expect(() => createKeysPage({ authenticate, scopes: ['ok', 'not ok'] })).toThrow(/`scopes\[1\]`/)
    expect(() => createKeysPage({ authenticate, environments: [] })).toThrow(/`environments`/)
    expect(() => createKeysPage({ authenticate, expiryDays: [0] })).toThrow(/`expiryDays`/)
    expect(() => createKeysPage({ authenticate, gracePeriods: [-1] })).toThrow(/`gracePeriods`/)
    expect(() => createKeysPage({ authenticate, trustedOrigins: ['https://a.example/path'] })).toThrow(/`trustedOrigins`/)
  })
})
