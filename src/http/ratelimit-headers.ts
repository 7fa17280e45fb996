import { type Credits, type CreditsRefill, nextPeriodStart, periodStart } from '../core/controls/credits.js'
import type { LimitReport } from '../core/controls/enforcer.js'
import type { LimitResult, LimitState, LimitSubject } from '../core/controls/rate-limit.js'
import { CREDITS_POLICY_NAME } from '../core/controls/schemas.js'

/**
 * The `RateLimit-Policy` and `RateLimit` response header fields of
 * draft-ietf-httpapi-ratelimit-headers-11 (May 2026), and `Retry-After` (RFC 9110 §10.2.3).
 *
 * Both fields are Structured Field Lists (RFC 9651) of String items named after the policy:
 *   RateLimit-Policy: "burst";q=10;w=1, "daily";q=1000;w=86400       (§3: quota q, window w in s)
 *   RateLimit: "burst";r=3;t=1, "daily";r=999;t=86400               (§4: remaining r, window t in s)
 * The draft allows whole seconds only: `w` and `t` are rounded up, which never advertises more
 * than the limit allows (n units in any ⌈w⌉ s implies n in any w s).
 *
 * Credits are a quota policy named `credits`: `r` is what is left; with a refill, the policy
 * carries `q` (the refill amount) and `w` (the period), and `t` counts down to the next refill.
 * Without a refill there is no policy to announce (the quota does not come back), only `r`.
 */

export interface CreditsHeaderState {
  remaining: number
  /** Ms until the next refill, `null` without refill. */
  resetMs: number | null
}

/**
 * `RateLimit-Policy` for a key's limits (and credits refill). Depends only on configuration (and,
 * for a monthly refill, on the month's length), so compute it once per cache fill.
 *
 * @returns `undefined` when there is nothing to announce
 */
export function rateLimitPolicyHeader(
  subjects: readonly LimitSubject[],
  credits: Pick<Credits, 'refill'> | null,
  nowMs: number,
): string | undefined {
  const items: string[] = []
  for (const subject of subjects) {
    for (const limit of subject.limits) items.push(`${quoted(limit.name)};q=${limit.limit};w=${seconds(limit.windowMs)}`)
  }
  if (credits?.refill) {
    const { amount, interval } = credits.refill
    const periodMs = nextPeriodStart(interval, nowMs) - periodStart(interval, nowMs)
    items.push(`${quoted(CREDITS_POLICY_NAME)};q=${amount};w=${seconds(periodMs)}`)
  }
  return items.length === 0 ? undefined : items.join(', ')
}

/** `RateLimit` from a limiter's states (and the key's credits). `undefined` when empty. */
export function rateLimitHeader(states: readonly LimitState[], credits?: CreditsHeaderState): string | undefined {
  // Concatenated, not joined: this runs on every response of a limited key.
  let value = ''
  for (const state of states) value += `${value === '' ? '' : ', '}${quoted(state.name)};r=${state.remaining};t=${seconds(state.resetMs)}`
  if (credits !== undefined) {
    value += `${value === '' ? '' : ', '}${quoted(CREDITS_POLICY_NAME)};r=${credits.remaining}${credits.resetMs === null ? '' : `;t=${seconds(credits.resetMs)}`}`
  }
  return value === '' ? undefined : value
}

/** `Retry-After` in whole seconds: rounded up, and at least 1 (a refusal never says "now"). */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}

/**
 * Every rate-limit header of a response of a limited key, 2xx or 429: `RateLimit-Policy` (as
 * precomputed), `RateLimit`, and on a refusal `Retry-After` (for credits only with a refill).
 *
 * @param creditsResetMs ms until the next refill (`creditsRetryAfterMs`), `null` without refill
 */
export function limitResultHeaders(
  result: LimitResult,
  policy: string | undefined,
  creditsResetMs: number | null = null,
): Record<string, string> {
  const headers: Record<string, string> = {}
  if (policy !== undefined) headers['RateLimit-Policy'] = policy
  const credits =
    'credits' in result && result.credits !== undefined ? { remaining: result.credits.remaining, resetMs: creditsResetMs } : undefined
  const current = rateLimitHeader(result.states, credits)
  if (current !== undefined) headers.RateLimit = current
  if (!result.ok) {
    if (result.code === 'rate_limited') headers['Retry-After'] = String(retryAfterSeconds(result.retryAfterMs))
    else if (result.code === 'credits_exhausted' && creditsResetMs !== null)
      headers['Retry-After'] = String(retryAfterSeconds(creditsResetMs))
  }
  return headers
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}

/** An sf-string (RFC 9651 §3.3.3): printable ASCII, `"` and `\` escaped. Names are validated to a safe charset before they get here. */
function sfString(text: string): string {
  return `"${text.replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, '\\$&')}"`
}

/**
 * Policy names as sf-strings, kept: a limited key's every response names its limits, and the
 * names are few (a handful per key, shared by every request of it). Bounded all the same.
 */
const quotedNames = new Map<string, string>()
function quoted(name: string): string {
  let value = quotedNames.get(name)
  if (value === undefined) {
    if (quotedNames.size >= 10_000) quotedNames.clear()
    value = sfString(name)
    quotedNames.set(name, value)
  }
  return value
}

/** `RateLimit-Policy` of each key's subjects, built once (they are frozen per cache fill). */
const policies = new WeakMap<readonly LimitSubject[], string | undefined>()
/** With a credits refill: the whole `RateLimit-Policy`, valid for the refill period it was built in. */
const refillPolicies = new WeakMap<CreditsRefill, { subjects: readonly LimitSubject[]; fromMs: number; untilMs: number; value: string }>()

/**
 * The `RateLimit-Policy` of a report: built once per cache fill (subjects and refill are frozen
 * with it) and, with a monthly refill, once per month, whose length is the window.
 */
function policyOf(report: LimitReport): string | undefined {
  let policy = policies.get(report.subjects)
  if (policy === undefined && !policies.has(report.subjects)) {
    policy = rateLimitPolicyHeader(report.subjects, null, 0)
    policies.set(report.subjects, policy)
  }
  const { refill, nowMs } = report
  if (refill === null) return policy
  const memo = refillPolicies.get(refill)
  if (memo !== undefined && memo.subjects === report.subjects && nowMs >= memo.fromMs && nowMs < memo.untilMs) return memo.value
  const credits = rateLimitPolicyHeader([], { refill }, nowMs) as string
  const value = policy === undefined ? credits : `${policy}, ${credits}`
  refillPolicies.set(refill, {
    subjects: report.subjects,
    fromMs: periodStart(refill.interval, nowMs),
    untilMs: nextPeriodStart(refill.interval, nowMs),
    value,
  })
  return value
}

/** Where `setLimitHeaders` writes: Node's `ServerResponse` and Express's `res` are such targets. */
export interface HeaderTarget {
  setHeader(name: string, value: string): unknown
}

/**
 * Sets the rate-limit headers of an admitted request of a limited key (`RateLimit-Policy` and
 * `RateLimit`; an admitted request has no `Retry-After`). The hot path of every limited request:
 * no intermediate records, and the policy and the quoted names are built once.
 */
export function setLimitHeaders(report: LimitReport, target: HeaderTarget): void {
  const policy = policyOf(report)
  if (policy !== undefined) target.setHeader('ratelimit-policy', policy)
  const current = currentOf(report)
  if (current !== undefined) target.setHeader('ratelimit', current)
}

function currentOf(report: LimitReport): string | undefined {
  const { result } = report
  const credits =
    'credits' in result && result.credits !== undefined
      ? { remaining: result.credits.remaining, resetMs: report.creditsResetMs }
      : undefined
  return rateLimitHeader(result.states, credits)
}

/** The part of Node's `ServerResponse` (or `Http2ServerResponse`) the deferred headers use. */
export interface NodeResponseLike {
  writeHead(...args: never[]): unknown
  setHeader(name: string, value: string): unknown
  hasHeader(name: string): boolean
  headersSent: boolean
}

const POLICY = Symbol('keyward.ratelimitPolicy')
const CURRENT = Symbol('keyward.ratelimit')
const WRITE_HEAD = Symbol('keyward.writeHead')

interface Deferred {
  [POLICY]?: string
  [CURRENT]?: string
  [WRITE_HEAD]?: (...args: unknown[]) => unknown
  writeHead: (...args: unknown[]) => unknown
  setHeader(name: string, value: string): unknown
  hasHeader(name: string): boolean
}

/**
 * The limit headers of a response Node writes, handed over with the status line: `writeHead`
 * receives them in the same object as the handler's headers. Set with `setHeader` instead, they
 * made Node take its slow path for every header of the response (each one validated and stored
 * once more), measured at about 0.7 µs of a limited key's request against 0.25 µs this way. The
 * handler's headers are copied, never changed (a Response may share one headers object across
 * requests), and a RateLimit header the handler sets itself wins, as it did through `setHeader`.
 * Whatever `writeHead` the response had (another library may wrap it too) is the one called.
 */
export function deferLimitHeaders(report: LimitReport, response: NodeResponseLike): void {
  const deferred = response as unknown as Deferred
  deferred[POLICY] = policyOf(report)
  deferred[CURRENT] = currentOf(report)
  if (deferred.writeHead !== writeHeadWithLimits) {
    deferred[WRITE_HEAD] = deferred.writeHead
    deferred.writeHead = writeHeadWithLimits
  }
}

function writeHeadWithLimits(this: Deferred, ...args: unknown[]): unknown {
  const at = typeof args[1] === 'string' ? 2 : 1
  const given = args[at]
  const policy = this[POLICY]
  const current = this[CURRENT]
  if (given === undefined || given === null || (typeof given === 'object' && !Array.isArray(given))) {
    const headers: Record<string, unknown> = {}
    let ownPolicy = false
    let ownCurrent = false
    if (given !== undefined && given !== null) {
      for (const name in given) {
        headers[name] = (given as Record<string, unknown>)[name]
        if (name.length === 16 && name.toLowerCase() === 'ratelimit-policy') ownPolicy = true
        else if (name.length === 9 && name.toLowerCase() === 'ratelimit') ownCurrent = true
      }
    }
    if (policy !== undefined && !ownPolicy && !this.hasHeader('ratelimit-policy')) headers['RateLimit-Policy'] = policy
    if (current !== undefined && !ownCurrent && !this.hasHeader('ratelimit')) headers.RateLimit = current
    args[at] = headers
  } else {
    // Headers as a raw array: added the ordinary way, before them (theirs win, as above).
    if (policy !== undefined && !this.hasHeader('ratelimit-policy')) this.setHeader('ratelimit-policy', policy)
    if (current !== undefined && !this.hasHeader('ratelimit')) this.setHeader('ratelimit', current)
  }
  return (this[WRITE_HEAD] as (...args: unknown[]) => unknown).apply(this, args)
}

/**
 * The rate-limit headers of a limited key's response, from what verification reported (a refusal
 * included: `Retry-After` too). Header names are lower-case, as both adapters set them.
 */
export function limitHeaders(report: LimitReport): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(limitResultHeaders(report.result, policyOf(report), report.creditsResetMs)))
    headers[name.toLowerCase()] = value
  return headers
}
