import { type Context, Hono } from 'hono'
import type { Child } from 'hono/jsx'
import { ERRORS, type KeywardError } from '../core/errors.js'
import type { Keyward } from '../core/keyward.js'
import { checkActor } from '../core/management/inputs.js'
import type { Actor, ApiKey, Environment, KeyStatus } from '../core/types.js'
import { answerBeforeBody, readBodyFirst } from '../hono/body.js'
import { type KeysRouterBindings, PATH_BINDING } from '../hono/fallback.js'
import { defaultKeyward } from '../index.js'
import { ASSETS } from './assets/index.js'
import {
  allowedIpEntries,
  emptyCreateForm,
  type FormProblem,
  isPageError,
  parseForm,
  problemFromError,
  problemOf,
  readCreateForm,
} from './forms.js'
import { abilitiesOf, type KeysPageOptions, type ResolvedPageOptions, resolvePageOptions } from './options.js'
import { isCrossSite, pageHeaders } from './security.js'
import { CreateView } from './views/create.js'
import { type HistoryState, KeyView } from './views/key.js'
import { links, type ViewContext } from './views/layout.js'
import { ListView } from './views/list.js'
import { CrossSitePage, FailurePage, NotFoundPage, SignInPage, UnavailablePage } from './views/messages.js'
import { RevokePage } from './views/revoke.js'
import { SecretView } from './views/secret.js'

/**
 * What a bridge passes in `env` (the Express adapter): the host's `authenticate(req)`, called only
 * once the request passed the cross-site check, as on Hono; and the path below the mount point.
 */
export const PAGE_AUTHENTICATE_BINDING = 'keywardPageAuthenticate'
export type KeysPageBindings = KeysRouterBindings & { [PAGE_AUTHENTICATE_BINDING]?: () => Promise<Actor | null | undefined> }

export type KeysPageEnv = { Bindings: KeysPageBindings; Variables: { actor: Actor; mount: string } }

/** A form is a few hundred bytes; 16 KB leaves room for every scope a host declares. */
const MAX_FORM_BYTES = 16_384
const LIST_PAGE_SIZE = 50
const USAGE_DAYS = 30

/** The one-line confirmations after a change, by the `done` query parameter the redirect carries. */
const FLASHES = new Map([
  ['renamed', 'Renamed.'],
  ['revoked', 'Revoked. Every request made with this key is refused from now on.'],
])

/**
 * The self-serve API keys page, server-rendered, for a host app to mount behind its own sign-in:
 * `app.route('/settings/api-keys', createKeysPage({ keyward: kw, authenticate }))`. A signed-in
 * customer sees the tenant's keys, creates one (its secret shown once), renames, rotates with a grace
 * period and revokes after a confirmation, and sees a key's usage over the last 30 days.
 *
 * Every action is a call of keyward's management API with the actor `authenticate` returns, so the
 * API's rules hold here too: tenant, project and environment visibility, scope ceilings, read-only
 * revoked keys. Forms work without JavaScript; a small script served by the page adds the copy
 * button and the confirmation dialog. Every answer carries a strict Content-Security-Policy,
 * `X-Frame-Options: DENY` and `Cache-Control: no-store`; every state-changing request from another
 * site is refused with 403 before it is routed.
 *
 * @example
 * import { getSignedCookie } from 'hono/cookie'
 *
 * app.route('/settings/api-keys', createKeysPage({
 *   keyward: kw,
 *   authenticate: async (c) => {
 *     const tenantId = await getSignedCookie(c, SESSION_SECRET, 'session')
 *     return tenantId ? { tenantId } : null
 *   },
 *   loginUrl: (returnTo) => `/login?next=${encodeURIComponent(returnTo)}`,
 *   scopes: [{ name: 'orders:read', description: 'Read orders' }, { name: 'orders:write', description: 'Create orders' }],
 * }))
 */
export function createKeysPage(options: KeysPageOptions): Hono<KeysPageEnv> {
  const resolved = resolvePageOptions(options, defaultKeyward)
  const app = new Hono<KeysPageEnv>()

  app.use('*', pageHeaders())
  app.use('*', async (c, next) => {
    c.set('mount', mountOf(c))
    await next()
  })
  // Before routing and before the host's `authenticate`: a cross-site form changes nothing.
  app.use('*', async (c, next) => {
    if (!isCrossSite(c.req.raw, resolved.trustedOrigins)) return next()
    return answerBeforeBody(c, await render(c, <CrossSitePage view={viewOf(c, resolved, null)} />, 403))
  })
  app.get('/assets/:file', (c) => {
    const asset = ASSETS.get(c.req.param('file'))
    if (asset === undefined) return render(c, <NotFoundPage view={viewOf(c, resolved, null)} what="page" />, 404)
    // Named after their content: a changed file gets a new name, so caching it for a year is safe.
    return c.body(asset.body, 200, { 'content-type': asset.contentType, 'cache-control': 'public, max-age=31536000, immutable' })
  })
  app.use('*', async (c, next) => {
    const bridged = c.env?.[PAGE_AUTHENTICATE_BINDING]
    const actor = (await (bridged === undefined ? resolved.authenticate(c) : bridged())) ?? null
    if (actor === null) return answerBeforeBody(c, await signIn(c, resolved))
    // A host bug, not the visitor's: the page's error handler logs it and answers 500.
    if (checkActor(actor) !== undefined) throw new Error('createKeysPage: authenticate returned a caller without a valid tenantId.')
    c.set('actor', actor)
    await next()
  })
  app.use(
    '*',
    readBodyFirst(MAX_FORM_BYTES, (c) =>
      renderSync(c, <FailurePage view={viewOf(c, resolved, c.var.actor)} title="Form too large" detail="Nothing was changed." />, 413),
    ),
  )

  app.get('/', async (c) => {
    const view = viewOf(c, resolved, c.var.actor)
    const query = c.req.query()
    const filters = { status: query.status ?? '', environment: query.environment ?? '', cursor: query.cursor ?? '' }
    const result = await instance(resolved).listKeys(c.var.actor, {
      limit: LIST_PAGE_SIZE,
      // The core checks every value, and its field errors go next to the filters.
      status: filters.status === '' ? undefined : (filters.status as KeyStatus),
      environment: filters.environment === '' ? undefined : (filters.environment as Environment),
      cursor: filters.cursor === '' ? undefined : filters.cursor,
    })
    const canWrite = abilitiesOf(c.var.actor, resolved).write
    if (!result.ok) {
      if (isPageError(result.error.code)) return errorPage(c, resolved, result.error)
      const problem = problemFromError(result.error)
      return render(
        c,
        <ListView view={view} keys={[]} filters={filters} nextCursor={null} canWrite={canWrite} problem={problem} />,
        problem.status,
      )
    }
    return render(
      c,
      <ListView view={view} keys={result.value.items} filters={filters} nextCursor={result.value.nextCursor} canWrite={canWrite} />,
    )
  })

  app.get('/new', (c) => {
    const abilities = abilitiesOf(c.var.actor, resolved)
    if (!abilities.write) return cannotWrite(c, resolved)
    const view = viewOf(c, resolved, c.var.actor)
    return render(c, <CreateView view={view} abilities={abilities} values={emptyCreateForm(abilities)} expiryDays={resolved.expiryDays} />)
  })

  app.post('/new', async (c) => {
    const form = await formOf(c)
    if (form === undefined) return notAForm(c, resolved)
    const abilities = abilitiesOf(c.var.actor, resolved)
    if (!abilities.write) return cannotWrite(c, resolved)
    const view = viewOf(c, resolved, c.var.actor)
    const read = readCreateForm(form, abilities, resolved.expiryDays, resolved.controls)
    const again = (problem: FormProblem) =>
      render(
        c,
        <CreateView view={view} abilities={abilities} values={read.values} expiryDays={resolved.expiryDays} problem={problem} />,
        problem.status,
      )
    if (read.input === undefined) return again(read.problem ?? problemOf(400, []))
    const created = await instance(resolved).createKey(c.var.actor, read.input)
    if (!created.ok) {
      if (isPageError(created.error.code)) return errorPage(c, resolved, created.error)
      return again(problemFromError(created.error, 'scopes', { allowed_ips: allowedIpEntries(read.values.allowedIps) }))
    }
    // The secret goes out in this answer's body only: no redirect carries it, no cache keeps it.
    return render(c, <SecretView view={view} secret={created.value.key} apiKey={created.value.apiKey} />, 201)
  })

  app.get('/:id', async (c) => {
    const flash = FLASHES.get(c.req.query('done') ?? '')
    return keyPage(c, resolved, c.req.param('id'), { flash })
  })

  app.post('/:id/rename', async (c) => {
    const form = await formOf(c)
    if (form === undefined) return notAForm(c, resolved)
    const id = c.req.param('id')
    const name = (form.get('name') ?? '').trim()
    const updated = await instance(resolved).updateKey(c.var.actor, id, { name })
    if (updated.ok) return c.redirect(`${links(c.var.mount).key(id)}?done=renamed`, 303)
    if (isPageError(updated.error.code)) return errorPage(c, resolved, updated.error)
    return keyPage(c, resolved, id, { problem: problemFromError(updated.error), nameValue: name })
  })

  app.post('/:id/rotate', async (c) => {
    const form = await formOf(c)
    if (form === undefined) return notAForm(c, resolved)
    const id = c.req.param('id')
    const grace = Number(form.get('grace') ?? Number.NaN)
    if (!resolved.gracePeriods.includes(grace)) {
      return keyPage(c, resolved, id, { problem: problemOf(400, [{ field: 'grace', message: 'must be one of the choices offered' }]) })
    }
    const rotated = await instance(resolved).rotateKey(c.var.actor, id, { gracePeriodSeconds: grace })
    if (!rotated.ok) {
      if (isPageError(rotated.error.code)) return errorPage(c, resolved, rotated.error)
      return keyPage(c, resolved, id, { problem: problemFromError(rotated.error) })
    }
    const view = viewOf(c, resolved, c.var.actor)
    return render(
      c,
      <SecretView view={view} secret={rotated.value.key} apiKey={rotated.value.newKey} replaced={rotated.value.oldKey} />,
      201,
    )
  })

  app.get('/:id/revoke', async (c) => {
    const id = c.req.param('id')
    const got = await instance(resolved).getKey(c.var.actor, id)
    if (!got.ok) return errorPage(c, resolved, got.error)
    if (!abilitiesOf(c.var.actor, resolved).write) return cannotWrite(c, resolved)
    // Nothing left to revoke: the key's page says what state it is in.
    if (got.value.status !== 'active' && got.value.status !== 'rotating') return c.redirect(links(c.var.mount).key(id), 303)
    return render(c, <RevokePage view={viewOf(c, resolved, c.var.actor)} apiKey={got.value} />)
  })

  app.post('/:id/revoke', async (c) => {
    const id = c.req.param('id')
    const revoked = await instance(resolved).revokeKey(c.var.actor, id)
    if (revoked.ok) return c.redirect(`${links(c.var.mount).key(id)}?done=revoked`, 303)
    if (isPageError(revoked.error.code)) return errorPage(c, resolved, revoked.error)
    return keyPage(c, resolved, id, { problem: problemFromError(revoked.error) })
  })

  app.all('*', (c) => {
    // `/settings/api-keys/` is the list; the redirect is built from the mount path alone, never from
    // the request's path (`//evil.example/` must not turn into a protocol-relative Location).
    const url = new URL(c.req.url)
    if (c.req.method === 'GET' && c.var.mount !== '' && url.pathname === `${c.var.mount}/`)
      return c.redirect(`${c.var.mount}${url.search}`, 308)
    return render(c, <NotFoundPage view={viewOf(c, resolved, c.var.actor ?? null)} what="page" />, 404)
  })

  app.onError((error, c) => {
    // Never a stack trace on the page; the host sees the message in its logs.
    console.error('keyward: unexpected error in the keys page:', error instanceof Error ? error.message : error)
    const view = viewOf(c, resolved, c.var.actor ?? null)
    return renderSync(c, <FailurePage view={view} title="Something went wrong" detail={ERRORS.internal_error.detail} />, 500)
  })
  return app
}

function instance(options: ResolvedPageOptions): Keyward {
  return options.keyward()
}

function viewOf(c: Context<KeysPageEnv>, options: ResolvedPageOptions, actor: Actor | null): ViewContext {
  return { mount: c.var.mount ?? '', options, actor }
}

/**
 * Where the page is mounted, without a trailing slash: below it, the routes. Mounted on Hono, the
 * middleware's route pattern (`/settings/api-keys/*`, or `/t/:tenant/keys/*`) has as many segments
 * before its `*` as the mount path has. Bridged (Express), the URL keeps the full path and the bridge
 * names the part below the mount point.
 */
function mountOf(c: Context<KeysPageEnv>): string {
  const path = new URL(c.req.url).pathname
  const routed = c.env?.[PATH_BINDING]
  if (typeof routed === 'string') {
    const below = routed.replace(/\/$/, '')
    const full = path.replace(/\/$/, '')
    return below === '' ? full : full.endsWith(below) ? full.slice(0, full.length - below.length) : ''
  }
  const depth = c.req.routePath.split('/').filter((segment) => segment !== '' && segment !== '*').length
  return depth === 0 ? '' : `/${path.split('/').filter(Boolean).slice(0, depth).join('/')}`
}

async function render(c: Context, element: Child, status = 200): Promise<Response> {
  return c.html(`<!doctype html>${await element}`, status as 200)
}

/** For handlers that must answer synchronously (Hono's body-limit and error hooks); views are synchronous. */
function renderSync(c: Context, element: Child, status: number): Response {
  return c.html(`<!doctype html>${String(element)}`, status as 200)
}

async function signIn(c: Context<KeysPageEnv>, options: ResolvedPageOptions): Promise<Response> {
  if (options.loginUrl === undefined) return render(c, <SignInPage view={viewOf(c, options, null)} />, 401)
  // Back to the page asked for; after a form post, to the list (a POST cannot be replayed by a link).
  const url = new URL(c.req.url)
  const returnTo = c.req.method === 'GET' || c.req.method === 'HEAD' ? `${url.pathname}${url.search}` : links(c.var.mount).list
  return c.redirect(options.loginUrl(returnTo), 303)
}

/** The posted form, or undefined when the body is not a form (the page's forms are urlencoded). */
async function formOf(c: Context<KeysPageEnv>): Promise<URLSearchParams | undefined> {
  const type = (c.req.header('content-type') ?? '').toLowerCase()
  if (!type.startsWith('application/x-www-form-urlencoded')) return undefined
  return parseForm(new Uint8Array(await c.req.arrayBuffer()))
}

function notAForm(c: Context<KeysPageEnv>, options: ResolvedPageOptions): Promise<Response> {
  const view = viewOf(c, options, c.var.actor)
  return render(
    c,
    <FailurePage view={view} title="Not a form" detail="Send this page’s forms as the page sends them. Nothing was changed." />,
    415,
  )
}

function cannotWrite(c: Context<KeysPageEnv>, options: ResolvedPageOptions): Promise<Response> {
  const view = viewOf(c, options, c.var.actor)
  return render(
    c,
    <FailurePage view={view} title="You can look, not change" detail="Your sign-in may see these keys but not create or change them." />,
    ERRORS.insufficient_scope.status,
  )
}

/** A core error that concerns the whole request: no such key (404), the store is down (503). */
function errorPage(c: Context<KeysPageEnv>, options: ResolvedPageOptions, error: KeywardError): Promise<Response> {
  const view = viewOf(c, options, c.var.actor ?? null)
  const status = ERRORS[error.code].status
  if (error.code === 'not_found') return render(c, <NotFoundPage view={view} />, status)
  if (error.code === 'store_unavailable') {
    c.header('Retry-After', '5')
    return render(c, <UnavailablePage view={view} detail={error.detail} />, status)
  }
  return render(c, <FailurePage view={view} title={ERRORS[error.code].title} detail={error.detail} />, status)
}

/**
 * A key's page: the key, its usage and its history, with a flash after a change, or a form problem
 * (and the status that goes with it) when a change was refused.
 */
async function keyPage(
  c: Context<KeysPageEnv>,
  options: ResolvedPageOptions,
  id: string,
  extra: { flash?: string; problem?: FormProblem; nameValue?: string },
): Promise<Response> {
  const kw = instance(options)
  const actor = c.var.actor
  const got = await kw.getKey(actor, id)
  if (!got.ok) return errorPage(c, options, got.error)
  const usage = await kw.getUsage(actor, id, { days: USAGE_DAYS, includePredecessors: true })
  const view = viewOf(c, options, actor)
  return render(
    c,
    <KeyView
      view={view}
      apiKey={got.value}
      usage={usage.ok ? usage.value : undefined}
      history={await historyOf(options, actor, got.value)}
      canWrite={abilitiesOf(actor, options).write}
      gracePeriods={options.gracePeriods}
      flash={extra.flash}
      problem={extra.problem}
      nameValue={extra.nameValue}
    />,
    extra.problem?.status ?? 200,
  )
}

/** The host's history of a key; a failing history is a note on the page, not a failed page. */
async function historyOf(options: ResolvedPageOptions, actor: Actor, key: ApiKey): Promise<HistoryState> {
  if (options.history === undefined) return undefined
  try {
    const entries = await options.history(actor, key)
    return entries === null ? undefined : { entries }
  } catch (error) {
    console.error('keyward: the keys page could not read a key’s history:', error instanceof Error ? error.message : error)
    return { unavailable: true }
  }
}
