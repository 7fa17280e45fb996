import type { Browser, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createExampleApp } from '../example-app/hono.js'
import { addApiReference, findScalarBundle } from '../example-app/reference.js'
import { keyward } from '../src/index.js'
import { hasChromium, launchChromium, requireChromium } from './helpers/chromium.js'
import { listen } from './helpers/listen.js'
import { tempSqlitePath } from './helpers/sqlite.js'

/**
 * The example app's API reference page in a real browser: Debian's Chromium (never a downloaded
 * build), driven by playwright-core. The test installs nothing; CI installs chromium with apt.
 */

const inCi = process.env.CI === 'true'
const scalarBundle = findScalarBundle()

// A skipped browser test must not turn CI green: there, a missing browser is a failure.
requireChromium('the browser tests')
const NO_SCALAR = 'The reference page needs @scalar/api-reference installed to render offline (npm install -D @scalar/api-reference).'
if (hasChromium && scalarBundle === undefined && !inCi)
  console.warn(`\n[keyward tests] SKIPPING the reference rendering test: ${NO_SCALAR}\n`)

let browser: Browser | undefined

beforeAll(async () => {
  if (!hasChromium) return
  browser = await launchChromium()
}, 40_000)

afterAll(async () => {
  await browser?.close()
})

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** The example app with its reference page, on a fresh SQLite file and a free port, and a page on it. */
async function openReference() {
  const kw = keyward({ database: tempSqlitePath('example.db') })
  cleanups.push(() => kw.close())
  const admin = await kw.createKey({ tenantId: 'acme' }, { name: 'acme admin' })
  if (!admin.ok) throw new Error(admin.error.detail)
  const server = await listen(addApiReference(createExampleApp(kw)))
  cleanups.push(() => server.close())

  const context = await (browser as Browser).newContext()
  cleanups.push(() => context.close())
  const page = await context.newPage()
  page.setDefaultTimeout(15_000)
  // What the page needs to render (scripts, styles, fonts) must come from the example app itself.
  const foreign: string[] = []
  page.on('request', (request) => {
    const url = request.url()
    const needed = ['script', 'stylesheet', 'font', 'fetch', 'xhr'].includes(request.resourceType())
    if (needed && !url.startsWith(server.url) && !url.startsWith('data:') && !url.startsWith('blob:')) foreign.push(url)
  })
  const response = await page.goto(`${server.url}/reference`)
  expect(response?.status()).toBe(200)
  return { page, base: server.url, adminKey: admin.value.key, foreign }
}

interface Answer {
  status: number
  body: unknown
}

/** A request made by the reference page itself (its origin, its fetch), as its "try it" would. */
function fromPage(page: Page, path: string, init: { method?: string; key: string; body?: unknown }): Promise<Answer> {
  return page.evaluate(
    async ({ path, init }) => {
      const headers: Record<string, string> = { 'x-api-key': init.key }
      if (init.body !== undefined) headers['content-type'] = 'application/json'
      const response = await fetch(path, {
        method: init.method ?? 'GET',
        headers,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      })
      return { status: response.status, body: await response.json() }
    },
    { path, init },
  )
}

describe.skipIf(!hasChromium)('the example app’s API reference page', () => {
  // In CI a missing bundle fails this test instead of skipping it, like a missing browser.
  it.skipIf(scalarBundle === undefined && !inCi)(
    'renders every operation of the orders API and of /api-keys, loading nothing from other hosts',
    async () => {
      if (scalarBundle === undefined) throw new Error(NO_SCALAR)
      const { page, foreign } = await openReference()
      const summaries = ['List orders', 'Create an order', 'Create an API key', 'List API keys', 'Revoke an API key', 'Rotate an API key']
      // innerText holds only what is rendered and shown, whatever Scalar's DOM looks like.
      await page.waitForFunction(
        (expected) => {
          // Runs in the page; the tests are compiled without the DOM library.
          // innerText, not textContent: what is shown, without hidden text.
          const text = (globalThis as unknown as { document: { body: { innerText: string } } }).document.body.innerText
          return expected.every((summary) => text.includes(summary))
        },
        summaries,
        { timeout: 20_000 },
      )
      expect(await page.title()).toBe('keyward example: orders API')
      expect(foreign).toEqual([])
    },
  )

  it('creates, lists and revokes a key from the reference page, and the revoked key is refused at once', async () => {
    const { page, adminKey } = await openReference()

    const created = await fromPage(page, '/api-keys', {
      method: 'POST',
      key: adminKey,
      body: { name: 'from the browser', scopes: ['orders:read'] },
    })
    expect(created.status).toBe(201)
    const key = created.body as { id: string; key: string; name: string; scopes: string[]; status: string }
    expect(key).toMatchObject({
      name: 'from the browser',
      scopes: ['orders:read'],
      status: 'active',
      key: expect.stringMatching(/^sk_live_/),
    })
    expect((await fromPage(page, '/v1/orders', { key: key.key })).status).toBe(200)

    const listed = await fromPage(page, '/api-keys', { key: adminKey })
    expect(listed.status).toBe(200)
    const items = listed.body as { id: string; name: string; status: string }[]
    expect(items.map((item) => [item.name, item.status])).toEqual([
      ['from the browser', 'active'],
      ['acme admin', 'active'],
    ])
    expect(JSON.stringify(items)).not.toContain(key.key)

    const revoked = await fromPage(page, `/api-keys/${key.id}`, { method: 'DELETE', key: adminKey })
    expect(revoked.status).toBe(200)
    expect(revoked.body).toMatchObject({ id: key.id, status: 'revoked', revoked_at: expect.any(String) })

    const refused = await fromPage(page, '/v1/orders', { key: key.key })
    expect(refused).toMatchObject({ status: 401, body: { code: 'api_key_revoked' } })
    const relisted = (await fromPage(page, '/api-keys?status=revoked', { key: adminKey })).body as { id: string }[]
    expect(relisted.map((item) => item.id)).toEqual([key.id])
  })
})
