import type { Context } from 'hono'
import type { Keyward } from '../core/keyward.js'
import { isUnrestricted } from '../core/management/policy.js'
import { MAX_GRACE_PERIOD_SECONDS, scopeSchema } from '../core/schemas.js'
import { type Actor, type ApiKey, ENVIRONMENTS, type Environment } from '../core/types.js'
import { auditHistory } from './history.js'

/** A scope the page offers on its create form. */
export interface ScopeChoice {
  /** The scope itself, e.g. `orders:read`: what `requireScopes()` checks. */
  name: string
  /** What it allows, in a few words a customer understands, e.g. "Read orders". */
  description?: string
}

/** One line of a key's history: what happened, when, and who did it. */
export interface KeyHistoryEntry {
  at: Date
  /** e.g. "Created", "Renamed to “CI”", "Rotated", "Revoked". */
  what: string
  /** e.g. "jane@acme.example", "API key sk_live_ab…wxyz", "Scheduled rotation". */
  who?: string | null
}

export interface KeysPageOptions {
  /** @default the shared zero-config instance */
  keyward?: Keyward
  /**
   * Who is looking at the page, from the host app's own sign-in (a session cookie, usually): the
   * tenant (and optionally project and scopes) the person acts for, exactly as the keys router's
   * `authenticate`. Return null when nobody is signed in. The page never asks for an API key.
   *
   * @example
   * authenticate: async (c) => {
   *   const tenantId = await getSignedCookie(c, secret, 'session')
   *   return tenantId ? { tenantId } : null
   * }
   */
  authenticate: (c: Context) => Actor | null | undefined | Promise<Actor | null | undefined>
  /**
   * Where a visitor who is not signed in is sent (303). A function receives the path and query the
   * visitor asked for, to come back to after signing in.
   * @default undefined (a 401 page)
   *
   * @example
   * loginUrl: (returnTo) => `/login?next=${encodeURIComponent(returnTo)}`
   */
  loginUrl?: string | ((returnTo: string) => string)
  /**
   * The scopes a customer may choose from when creating a key, in the order shown. A signed-in
   * person with limited scopes is offered only the ones it has (the API's ceiling applies either way).
   * @default [] (the create form offers no scopes, and keys created on the page have full access)
   */
  scopes?: readonly (string | ScopeChoice)[]
  /**
   * Offer "Full access" (a key without scopes, unrestricted within the tenant) beside the scopes.
   * Only a person with full access sees it.
   * @default true when `scopes` is empty, false otherwise
   */
  fullAccess?: boolean
  /**
   * The environments a key can be created in, the first preselected. A person acting as a test key
   * gets `test` only.
   * @default ['live', 'test']
   */
  environments?: readonly Environment[]
  /**
   * The expiry choices of the create form, in days from creation ("Never" is always offered first).
   * @default [7, 30, 90, 365]
   */
  expiryDays?: readonly number[]
  /**
   * Offer the per-key controls on the create form: a rate limit (requests per second, minute, hour
   * or day), credits (with a daily or monthly refill) and allowed IP addresses. keyward's API accepts
   * more (up to 5 named limits); the page offers the common case.
   * @default true
   */
  controls?: boolean
  /**
   * The grace periods offered when rotating, in seconds: how long the old key keeps working. The
   * first is preselected.
   * @default [3600, 0, 86400, 604800]
   */
  gracePeriods?: readonly number[]
  /**
   * Origins besides the page's own that may post its forms (the CSRF check), e.g. the public origin
   * when a proxy in front rewrites the `Host` header. Browsers that send `Sec-Fetch-Site: same-origin`
   * need no entry.
   * @default []
   */
  trustedOrigins?: readonly string[]
  /**
   * The page's heading and title.
   * @default 'API keys'
   */
  title?: string
  /**
   * A sentence shown at the top of every page, e.g. that the sign-in is a demo.
   * @default undefined
   */
  notice?: string
  /**
   * A link back to the host app, shown in the header.
   * @default undefined
   */
  homeUrl?: string
  /**
   * A key's history, shown on its page under "History": keyward's own audit log by default (the
   * events the person may see, newest first); a function for another source; `false` for none.
   * @default the audit log's events of the key
   *
   * @example
   * history: async (actor, key) => (await myAudit.eventsFor(actor.tenantId, key.id)).map((event) => ({ at: event.at, what: event.title, who: event.user }))
   */
  history?: ((actor: Actor, key: ApiKey) => readonly KeyHistoryEntry[] | null | Promise<readonly KeyHistoryEntry[] | null>) | false
}

export interface ResolvedPageOptions {
  keyward: () => Keyward
  authenticate: KeysPageOptions['authenticate']
  loginUrl: ((returnTo: string) => string) | undefined
  scopes: readonly ScopeChoice[]
  fullAccess: boolean
  environments: readonly Environment[]
  expiryDays: readonly number[]
  controls: boolean
  gracePeriods: readonly number[]
  trustedOrigins: ReadonlySet<string>
  title: string
  notice: string | undefined
  homeUrl: string | undefined
  history: Exclude<KeysPageOptions['history'], false>
}

/** Checks the options when the page is created, so a mistake fails at start-up, naming the option. */
export function resolvePageOptions(options: KeysPageOptions, defaultKeyward: () => Keyward): ResolvedPageOptions {
  if (typeof options?.authenticate !== 'function') {
    throw new Error('createKeysPage: `authenticate` is required: a function of the request that returns the signed-in tenant, or null.')
  }
  const scopes = (options.scopes ?? []).map((entry, index) => {
    const choice = typeof entry === 'string' ? { name: entry } : entry
    if (!scopeSchema.safeParse(choice?.name).success) {
      throw new Error(`createKeysPage: \`scopes[${index}]\` must be a scope of 1-64 characters of A-Z a-z 0-9 _ . : * / -.`)
    }
    return choice
  })
  const environments = options.environments ?? ENVIRONMENTS
  if (environments.length === 0 || environments.some((environment) => !ENVIRONMENTS.includes(environment))) {
    throw new Error(`createKeysPage: \`environments\` must list one or more of: ${ENVIRONMENTS.join(', ')}.`)
  }
  const expiryDays = options.expiryDays ?? [7, 30, 90, 365]
  if (expiryDays.some((days) => !Number.isInteger(days) || days < 1 || days > 3650)) {
    throw new Error('createKeysPage: `expiryDays` must hold whole numbers of days from 1 to 3650.')
  }
  const gracePeriods = options.gracePeriods ?? [3600, 0, 86_400, 604_800]
  if (
    gracePeriods.length === 0 ||
    gracePeriods.some((seconds) => !Number.isInteger(seconds) || seconds < 0 || seconds > MAX_GRACE_PERIOD_SECONDS)
  ) {
    throw new Error(
      `createKeysPage: \`gracePeriods\` must hold one or more whole numbers of seconds from 0 to ${MAX_GRACE_PERIOD_SECONDS}.`,
    )
  }
  const trustedOrigins = new Set<string>()
  for (const origin of options.trustedOrigins ?? []) {
    if (!URL.canParse(origin) || new URL(origin).origin !== origin) {
      throw new Error(`createKeysPage: \`trustedOrigins\` entry "${origin}" is not an origin (scheme://host[:port], no path).`)
    }
    trustedOrigins.add(origin)
  }
  const { loginUrl } = options
  const resolveKeyward = () => options.keyward ?? defaultKeyward()
  return {
    keyward: resolveKeyward,
    authenticate: options.authenticate,
    loginUrl: loginUrl === undefined ? undefined : typeof loginUrl === 'function' ? loginUrl : () => loginUrl,
    scopes,
    fullAccess: options.fullAccess ?? scopes.length === 0,
    environments: [...new Set(environments)],
    expiryDays: [...new Set(expiryDays)],
    controls: options.controls !== false,
    gracePeriods: [...new Set(gracePeriods)],
    trustedOrigins,
    title: options.title ?? 'API keys',
    notice: options.notice,
    homeUrl: options.homeUrl,
    history: options.history === false ? undefined : (options.history ?? ((actor, key) => auditHistory(resolveKeyward(), actor, key))),
  }
}

/** What the signed-in person may do on the page: the API's scope rules, read once per request. */
export interface Abilities {
  /** May create, rename, rotate and revoke (`api_keys:write`, or full access). */
  write: boolean
  /** The scopes the create form offers this person: the declared ones it holds. */
  scopes: readonly ScopeChoice[]
  /** May create a key without scopes: only a person with full access. */
  fullAccess: boolean
  environments: readonly Environment[]
}

export function abilitiesOf(actor: Actor, options: ResolvedPageOptions): Abilities {
  const unrestricted = isUnrestricted(actor.scopes)
  const held = new Set(actor.scopes ?? [])
  return {
    write: unrestricted || held.has('api_keys:write'),
    scopes: unrestricted ? options.scopes : options.scopes.filter((scope) => held.has(scope.name)),
    fullAccess: unrestricted && options.fullAccess,
    environments:
      actor.environment === 'test' ? options.environments.filter((environment) => environment === 'test') : options.environments,
  }
}
