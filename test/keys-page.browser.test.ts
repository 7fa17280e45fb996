import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Hono } from 'hono'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createExampleApp } from '../example-app/hono.js'
import { type Keyward, keyward } from '../src/index.js'
import { REPO_ROOT } from './helpers/build.js'
import { hasChromium, launchChromium, requireChromium } from './helpers/chromium.js'
import { listen } from './helpers/listen.js'
import { tempSqlitePath } from './helpers/sqlite.js'

/**
 * The keys page in a real browser (Debian's Chromium through playwright-core), as the example app
 * serves it behind its demo sign-in: what a customer does with it, with a mouse, with the keyboard
 * alone and without JavaScript; that another site cannot post its forms; that it keeps to its own
 * Content-Security-Policy; and an axe-core scan in light and dark. It also saves the README's
 * screenshots (to docs/screenshots/ with KEYWARD_UPDATE_SCREENSHOTS=1, else to a temporary folder).
 */

requireChromium('the keys page browser tests')

const MOUNT = '/settings/api-keys'
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

let browser: Browser | undefined
beforeAll(async () => {
  if (hasChromium) browser = await launchChromium()
}, 40_000)
afterAll(async () => {
  await browser?.close()
})

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

interface Example {
  kw: Keyward
  url: string
}

/** The Hono example app on a fresh SQLite file and a free port. */
async function startExample(now?: () => number): Promise<Example> {
  const kw = keyward({ database: tempSqlitePath('page.db'), ...(now === undefined ? {} : { now }) })
  cleanups.push(() => kw.close())
  const server = await listen(createExampleApp(kw, { sessionSecret: 'browser test secret' }))
  cleanups.push(() => server.close())
  return { kw, url: server.url }
}

interface Watched {
  page: Page
  context: BrowserContext
  /** Console reports of the page breaking its own Content-Security-Policy. */
  cspViolations: string[]
  /** Requests to anywhere but the example app. */
  foreign: string[]
}

async function newPage(example: Example, options: Parameters<Browser['newContext']>[0] = {}): Promise<Watched> {
  const context = await (browser as Browser).newContext({ viewport: { width: 1200, height: 860 }, ...options })
  cleanups.push(() => context.close())
  const page = await context.newPage()
  page.setDefaultTimeout(15_000)
  const cspViolations: string[] = []
  const foreign: string[] = []
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text())
  })
  page.on('request', (request) => {
    if (!request.url().startsWith(example.url)) foreign.push(request.url())
  })
  return { page, context, cspViolations, foreign }
}

/** The demo sign-in: `/login?tenant=…` sets the signed cookie and lands on the keys page. */
async function signIn(page: Page, example: Example, tenant: string): Promise<void> {
  const response = await page.goto(`${example.url}/login?tenant=${tenant}`)
  expect(response?.status()).toBe(200)
  expect(new URL(page.url()).pathname).toBe(MOUNT)
  expect(await page.getByRole('heading', { level: 1, name: 'API keys' }).isVisible()).toBe(true)
}

/** What `/v1/whoami` of the example answers to a key: the API the customer's programs call. */
async function whoami(
  example: Example,
  key: string,
): Promise<{ status: number; body: { tenantId?: string; name?: string; code?: string } }> {
  const response = await fetch(`${example.url}/v1/whoami`, { headers: { 'x-api-key': key } })
  return { status: response.status, body: (await response.json()) as { tenantId?: string; name?: string; code?: string } }
}

async function secretOnPage(page: Page): Promise<string> {
  const secret = ((await page.locator('#secret-value').textContent()) ?? '').trim()
  expect(secret).toMatch(/^sk_(live|test)_[A-Za-z0-9]{36}$/)
  return secret
}

/** From the list (where it goes first): the Create key link, the form filled in with the mouse, the secret read. */
async function createKeyWithMouse(page: Page, name: string): Promise<string> {
  if (new URL(page.url()).pathname !== MOUNT) await page.goto(new URL(MOUNT, page.url()).href)
  await page.getByRole('link', { name: 'Create key' }).click()
  await page.getByLabel('Name').fill(name)
  await page.getByLabel('Environment').selectOption('live')
  await page.getByRole('group', { name: 'Scopes' }).getByLabel('orders:read').check()
  await page.getByLabel('Expires').selectOption('30')
  await page.getByRole('button', { name: 'Create key' }).click()
  await page.getByRole('heading', { level: 1, name: 'Key created' }).waitFor()
  return secretOnPage(page)
}

describe.skipIf(!hasChromium)('the keys page in a browser', () => {
  it('lets a customer sign in, create a key, use it, rotate it and revoke it, and another tenant never sees it', async () => {
    const example = await startExample()
    const { page, context, cspViolations, foreign } = await newPage(example)
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: example.url })
    await signIn(page, example, 'acme')
    expect(await page.getByRole('note').textContent()).toContain('for this example only')

    const secret = await createKeyWithMouse(page, 'CI deploy')
    expect(await page.getByText('It will not be shown again.').isVisible()).toBe(true)
    // The secret is in no URL: the page that shows it answers the form post itself.
    expect(page.url()).toBe(`${example.url}${MOUNT}/new`)
    await page.getByRole('button', { name: 'Copy' }).click()
    await page.getByRole('status').filter({ hasText: 'Copied to the clipboard.' }).waitFor()
    expect(
      await page.evaluate(() =>
        (globalThis as unknown as { navigator: { clipboard: { readText(): Promise<string> } } }).navigator.clipboard.readText(),
      ),
    ).toBe(secret)

    expect(await whoami(example, secret)).toMatchObject({ status: 200, body: { tenantId: 'acme', name: 'CI deploy' } })

    // The list: one row per key, named by the key's name.
    await page.goto(`${example.url}${MOUNT}`)
    const row = page.getByRole('row', { name: /CI deploy/ })
    expect(await row.count()).toBe(1)
    expect(await row.textContent()).toContain('Active')
    expect(await page.content()).not.toContain(secret)

    // Rotate: a new secret once, the old key's end of grace, and both keys work meanwhile.
    await row.getByRole('link', { name: 'CI deploy' }).click()
    await page.getByRole('heading', { level: 1, name: 'CI deploy' }).waitFor()
    expect(await page.getByRole('img', { name: 'Requests per day' }).isVisible()).toBe(true)
    await page.getByRole('button', { name: 'Rotate', exact: true }).click()
    await page.getByRole('heading', { level: 1, name: 'Key rotated' }).waitFor()
    const rotated = await secretOnPage(page)
    expect(rotated).not.toBe(secret)
    expect(await page.locator('#grace-note').textContent()).toMatch(/keeps working until \d+ [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC/)
    expect((await whoami(example, secret)).status).toBe(200)
    expect((await whoami(example, rotated)).status).toBe(200)

    // Revoke the new key: the dialog names it; Cancel changes nothing; "Revoke key" refuses it at once.
    await page.getByRole('link', { name: 'Done' }).click()
    await page.getByRole('button', { name: 'Revoke', exact: true }).click()
    const dialog = page.getByRole('dialog', { name: 'Revoke “CI deploy”?' })
    await dialog.waitFor()
    await dialog.getByRole('button', { name: 'Cancel' }).click()
    await dialog.waitFor({ state: 'hidden' })
    expect((await whoami(example, rotated)).status).toBe(200)
    await page.getByRole('button', { name: 'Revoke', exact: true }).click()
    await dialog.getByRole('button', { name: 'Revoke key' }).click()
    await page.getByRole('status').filter({ hasText: 'Revoked.' }).waitFor()
    expect(await whoami(example, rotated)).toMatchObject({ status: 401, body: { code: 'api_key_revoked' } })

    // Another tenant: not on its list, and its address is no key at all.
    const keyUrl = page.url().replace(/\?.*$/, '')
    const globex = await newPage(example)
    await signIn(globex.page, example, 'globex')
    expect(await globex.page.getByRole('row', { name: /CI deploy/ }).count()).toBe(0)
    const peek = await globex.page.goto(keyUrl)
    expect(peek?.status()).toBe(404)
    expect(await globex.page.getByRole('heading', { level: 1 }).textContent()).toBe('No such key')

    expect(cspViolations).toEqual([])
    expect(globex.cspViolations).toEqual([])
    expect(foreign).toEqual([])
  }, 60_000)

  it('works without JavaScript: the create form posts, and revoking goes through a confirmation page', async () => {
    const example = await startExample()
    const { page } = await newPage(example, { javaScriptEnabled: false })
    await signIn(page, example, 'acme')
    const secret = await createKeyWithMouse(page, 'No script')
    // The copy button needs script; without it, it is not there to mislead.
    expect(await page.getByRole('button', { name: 'Copy' }).count()).toBe(0)
    expect((await whoami(example, secret)).status).toBe(200)

    await page.getByRole('link', { name: 'Done' }).click()
    await page.getByRole('button', { name: 'Revoke', exact: true }).click()
    await page.getByRole('heading', { level: 1, name: 'Revoke “No script”?' }).waitFor()
    expect(new URL(page.url()).pathname).toMatch(/\/key_[A-Za-z0-9]+\/revoke$/)
    expect((await whoami(example, secret)).status).toBe(200)
    await page.getByRole('button', { name: 'Revoke key' }).click()
    await page.getByRole('status').filter({ hasText: 'Revoked.' }).waitFor()
    expect((await whoami(example, secret)).status).toBe(401)
  }, 60_000)

  it('creates a key with the keyboard alone, every stop with a visible focus ring', async () => {
    const example = await startExample()
    const { page } = await newPage(example)
    await signIn(page, example, 'acme')

    /** Presses Tab until `matches` says the focused element is the one wanted; checks its focus ring. */
    async function tabTo(what: string, matches: (focused: Focused) => boolean): Promise<void> {
      for (let presses = 0; presses < 40; presses++) {
        await page.keyboard.press('Tab')
        const focused = await focusedElement(page)
        if (matches(focused)) {
          expect(focused.outlineStyle, `${what} shows where the focus is`).toBe('solid')
          expect(Number.parseFloat(focused.outlineWidth), `${what} has a focus ring of 2px or more`).toBeGreaterThanOrEqual(2)
          return
        }
      }
      throw new Error(`Tab never reached ${what}`)
    }

    await tabTo('the Create key link', (focused) => focused.tag === 'A' && focused.text === 'Create key')
    await page.keyboard.press('Enter')
    await page.getByRole('heading', { level: 1, name: 'Create key' }).waitFor()
    await tabTo('the Name field', (focused) => focused.id === 'name')
    await page.keyboard.type('Typed with keys')
    await tabTo('the Environment select', (focused) => focused.id === 'environment')
    await tabTo('the orders:write checkbox', (focused) => focused.id === 'scope-1')
    await page.keyboard.press('Space')
    await tabTo('the Create key button', (focused) => focused.tag === 'BUTTON' && focused.text === 'Create key')
    await page.keyboard.press('Enter')
    await page.getByRole('heading', { level: 1, name: 'Key created' }).waitFor()
    const secret = await secretOnPage(page)
    expect(await whoami(example, secret)).toMatchObject({ status: 200, body: { name: 'Typed with keys' } })
    const verified = await example.kw.verify(secret)
    expect(verified.ok && verified.key.scopes).toEqual(['orders:write'])
  }, 60_000)

  it('refuses a form another site posts with the signed-in person’s cookie, and nothing is created', async () => {
    const example = await startExample()
    const { page } = await newPage(example)
    await signIn(page, example, 'acme')
    const target = `${example.url}${MOUNT}/new`
    const evil = await listen(
      new Hono().get('/', (c) =>
        c.html(
          `<!doctype html><form method="post" action="${target}"><input name="name" value="planted"><input name="environment" value="live"><input name="scopes" value="orders:read"><input name="expires" value="never"><button>Win a prize</button></form>`,
        ),
      ),
    )
    cleanups.push(() => evil.close())
    const port = new URL(evil.url).port
    // localhost is another site than 127.0.0.1 (the cookie is not even sent); 127.0.0.1 on another
    // port is the same site, another origin: the SameSite=Lax cookie is sent, and only the check stops it.
    for (const origin of [`http://localhost:${port}`, `http://127.0.0.1:${port}`]) {
      await page.goto(origin)
      const [response] = await Promise.all([page.waitForResponse(target), page.getByRole('button', { name: 'Win a prize' }).click()])
      expect(response.status(), `a form posted from ${origin}`).toBe(403)
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Form refused')
    }
    const listed = await example.kw.listKeys({ tenantId: 'acme' })
    expect(listed.ok && listed.value.items).toEqual([])
  }, 60_000)

  it('answers every page with its strict Content-Security-Policy and breaks none of it', async () => {
    const example = await startExample()
    const { page, cspViolations } = await newPage(example)
    await signIn(page, example, 'acme')
    const response = await page.goto(`${example.url}${MOUNT}/new`)
    const headers = response?.headers() ?? {}
    expect(headers['content-security-policy']).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    expect(headers['x-frame-options']).toBe('DENY')
    expect(headers['cache-control']).toBe('no-store')
    // The stylesheet applied (a rule from it, not the browser's default) and the script ran (the copy button shows).
    const fontWeight = await page.getByRole('button', { name: 'Create key' }).evaluate((button) => {
      const view = globalThis as unknown as { getComputedStyle(element: unknown): { fontWeight: string } }
      return view.getComputedStyle(button).fontWeight
    })
    expect(fontWeight).toBe('600')
    await createKeyWithMouse(page, 'CSP')
    expect(await page.getByRole('button', { name: 'Copy' }).isVisible()).toBe(true)
    // An inline script is refused by the policy, as an attacker's would be.
    await page.evaluate(() => {
      const doc = (globalThis as unknown as { document: DocumentLike }).document
      const script = doc.createElement('script')
      script.textContent = 'document.title = "pwned"'
      doc.body.appendChild(script)
    })
    expect(await page.title()).not.toBe('pwned')
    expect(cspViolations.length).toBe(1)
  }, 60_000)

  it('passes an axe-core scan with no serious or critical violations, in light and in dark', async () => {
    const example = await startExample()
    const seeded = await example.kw.createKey({ tenantId: 'acme' }, { name: 'Reporting', scopes: ['orders:read'] })
    if (!seeded.ok) throw new Error(seeded.error.detail)
    for (let index = 0; index < 4; index++) await example.kw.verify(seeded.value.key)
    await example.kw.flushUsage()
    // The scan injects axe's script, which the page's own policy would rightly refuse.
    const { page } = await newPage(example, { bypassCSP: true })
    await signIn(page, example, 'acme')
    const keyPage = `${example.url}${MOUNT}/${seeded.value.apiKey.id}`

    const states: [string, () => Promise<unknown>][] = [
      ['the list', () => page.goto(`${example.url}${MOUNT}`)],
      ['the create form', () => page.goto(`${example.url}${MOUNT}/new`)],
      ['the create form with errors', () => page.getByRole('button', { name: 'Create key' }).click()],
      ['the limits, unfolded', () => page.getByText('Limits: requests, credits and IP addresses (optional)').click()],
      ['the secret, once', () => createKeyWithMouse(page, 'Scanned')],
      ['a key’s page with its chart', () => page.goto(keyPage)],
      ['the revoke dialog', () => page.getByRole('button', { name: 'Revoke', exact: true }).click()],
      ['the revoke confirmation page', () => page.goto(`${keyPage}/revoke`)],
      ['no such key', () => page.goto(`${example.url}${MOUNT}/key_doesnotexist`)],
    ]
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme })
      for (const [state, reach] of states) {
        await reach()
        await page.waitForLoadState()
        const violations = await axeViolations(page)
        const serious = violations.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
        expect(serious, `${state} (${scheme}): ${JSON.stringify(serious, null, 1)}`).toEqual([])
        expect(violations, `${state} (${scheme}) has only minor findings left`).toEqual([])
      }
    }
  }, 120_000)

  it('saves the README’s screenshots: the list, the secret shown once and a key’s usage chart', async () => {
    // A fixed clock: the dates in the pictures do not change from one run to the next.
    const now = Date.parse('2026-03-14T09:30:00Z')
    let clock = now
    const example = await startExample(() => clock)
    const store = await example.kw.ready()
    const acme = { tenantId: 'acme' }
    const make = async (daysAgo: number, name: string, input: Omit<Parameters<Keyward['createKey']>[1], 'name'>) => {
      clock = now - daysAgo * 86_400_000
      const created = await example.kw.createKey(acme, { ...input, name })
      if (!created.ok) throw new Error(created.error.detail)
      return created.value
    }
    const production = await make(62, 'Production server', {
      scopes: ['orders:read', 'orders:write'],
      rateLimits: [{ name: 'per-minute', limit: 600, windowMs: 60_000 }],
    })
    const laptop = await make(45, 'Old laptop', { scopes: ['orders:write'] })
    const old = await make(40, 'Nightly export', { scopes: ['orders:read'] })
    await make(21, 'Staging', { environment: 'test', scopes: ['orders:read', 'orders:write'] })
    await make(9, 'Reporting', { scopes: ['orders:read'], expiresInSeconds: 90 * 86_400 })
    clock = now - 3600_000
    await example.kw.rotateKey(acme, old.apiKey.id, { gracePeriodSeconds: 86_400 })
    await example.kw.revokeKey(acme, laptop.apiKey.id)
    clock = now
    // Two months of traffic on the production key, written as the usage flush writes it.
    const day = (offset: number) => new Date(now - offset * 86_400_000).toISOString().slice(0, 10)
    await store.recordUsage(
      Array.from({ length: 62 }, (_, offset) => ({
        keyId: production.apiKey.id,
        day: day(offset),
        count: Math.round(900 + 500 * Math.sin(offset / 2.2) + (offset % 7 === 1 ? -600 : 0) + offset * 12),
        // A few busy days ran into the rate limit.
        rateLimited: Math.max(0, Math.round(400 * Math.sin(offset / 2.2) - 150)),
        lastUsedAt: new Date(now - offset * 86_400_000),
      })),
    )

    const folder =
      process.env.KEYWARD_UPDATE_SCREENSHOTS === '1' ? join(REPO_ROOT, 'docs/screenshots') : mkdtempSync(join(tmpdir(), 'keyward-shots-'))
    mkdirSync(folder, { recursive: true })
    const { page } = await newPage(example, { viewport: { width: 1180, height: 760 } })
    await signIn(page, example, 'acme')
    const shots: [string, Buffer][] = []
    shots.push(['keys-list.png', await page.screenshot({ fullPage: true })])
    await page.emulateMedia({ colorScheme: 'dark' })
    shots.push(['keys-list-dark.png', await page.screenshot({ fullPage: true })])
    await page.emulateMedia({ colorScheme: 'light' })
    await createKeyWithMouse(page, 'CI deploy')
    shots.push(['secret-once.png', await page.locator('.secret-card').screenshot()])
    await page.goto(`${example.url}${MOUNT}/${production.apiKey.id}`)
    shots.push(['usage-chart.png', await page.getByRole('region', { name: 'Usage in the last 30 days' }).screenshot()])
    for (const [file, png] of shots) {
      // A PNG of a real size, not an empty capture.
      expect(png.subarray(1, 4).toString()).toBe('PNG')
      expect(png.readUInt32BE(16)).toBeGreaterThan(400)
      writeFileSync(join(folder, file), png)
    }
  }, 60_000)
})

interface Focused {
  tag: string
  id: string
  text: string
  outlineStyle: string
  outlineWidth: string
}

/** The tests compile without the DOM library: the little of it they use, typed here. */
interface ElementLike {
  tagName: string
  id: string
  textContent: string | null
}
interface DocumentLike {
  activeElement: ElementLike | null
  body: { appendChild(node: unknown): void }
  createElement(tag: string): { textContent: string }
}

function focusedElement(page: Page): Promise<Focused> {
  return page.evaluate(() => {
    const view = globalThis as unknown as {
      document: DocumentLike
      getComputedStyle(element: unknown): { outlineStyle: string; outlineWidth: string }
    }
    const element = view.document.activeElement
    if (element === null) return { tag: '', id: '', text: '', outlineStyle: '', outlineWidth: '' }
    const style = view.getComputedStyle(element)
    return {
      tag: element.tagName,
      id: element.id,
      text: (element.textContent ?? '').trim(),
      outlineStyle: style.outlineStyle,
      outlineWidth: style.outlineWidth,
    }
  })
}

interface AxeViolation {
  id: string
  impact: string | null
  help: string
  nodes: { target: string[] }[]
}

/** axe-core's findings against WCAG 2.1 A/AA and its best practices, injected from node_modules. */
async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.addScriptTag({ content: axeSource })
  return page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(context: unknown, options: unknown): Promise<{ violations: AxeViolation[] }> } }).axe
    const result = await axe.run((globalThis as unknown as { document: unknown }).document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    })
    return result.violations.map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      nodes: violation.nodes.map((node) => ({ target: node.target })),
    }))
  })
}
