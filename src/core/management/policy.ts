import { isWithin } from '../controls/ip.js'
import { fail, type KeywardError, type Result } from '../errors.js'
import { creditsOf } from '../records.js'
import type { Actor, ApiKeyRecord, CallerControls, Environment } from '../types.js'

/**
 * Who may see and change which key, in one place: every management call (HTTP router, CLI, code)
 * asks these functions, so a rule cannot be forgotten on one route.
 *
 * - Visibility: the caller's tenant, its project when it is project-bound, and its environment when
 *   it is a test key (Stripe's model: a test key sees test keys only). What a caller may not see is
 *   answered exactly like a key that does not exist: 404, never 403.
 * - Scope ceilings (decocms/studio#4119, microclaw/microclaw#90): a caller grants only scopes it
 *   has, and changes, revokes or rotates only keys whose scopes are within its own; an unrestricted
 *   key is above every scoped key. A key may always revoke itself.
 * - Lifecycle: revoked, expired and rotated-out keys are read-only.
 */

/** The one rule for "no scopes": an empty (or absent) list means unrestricted within the tenant. */
export function isUnrestricted(scopes: readonly string[] | null | undefined): boolean {
  return scopes === undefined || scopes === null || scopes.length === 0
}

/** Whether `inner` grants nothing `outer` does not. */
export function scopesWithin(inner: readonly string[], outer: readonly string[] | null | undefined): boolean {
  if (isUnrestricted(outer)) return true
  if (isUnrestricted(inner)) return false
  return inner.every((scope) => (outer as readonly string[]).includes(scope))
}

export function requireScope(actor: Actor, scope: 'api_keys:read' | 'api_keys:write'): { ok: false; error: KeywardError } | undefined {
  if (isUnrestricted(actor.scopes) || actor.scopes?.includes(scope)) return undefined
  return fail('insufficient_scope', `This call needs the ${scope} scope.`)
}

/** Whether the caller may see this key at all. */
export function canSee(actor: Actor, record: ApiKeyRecord): boolean {
  if (record.tenantId !== actor.tenantId) return false
  if (actor.projectId && record.projectId !== actor.projectId) return false
  if (actor.environment === 'test' && record.environment !== 'test') return false
  return true
}

/**
 * The filters a listing must apply for this caller, narrowed by what it asked for; `null` when what
 * it asked for is outside what it may see (an empty page, not an error).
 */
export function listFilter(
  actor: Actor,
  asked: { projectId?: string; environment?: Environment },
): { projectId?: string; environment?: Environment } | null {
  if (actor.projectId && asked.projectId !== undefined && asked.projectId !== actor.projectId) return null
  if (actor.environment === 'test' && asked.environment === 'live') return null
  return {
    projectId: actor.projectId || asked.projectId,
    environment: actor.environment === 'test' ? 'test' : asked.environment,
  }
}

/** The project a new key goes into: a project-bound caller creates keys in its own project only. */
export function projectForNewKey(actor: Actor, asked: string | undefined): Result<string | null> {
  if (!actor.projectId) return { ok: true, value: asked ?? null }
  if (asked !== undefined && asked !== actor.projectId)
    return fail('forbidden', 'A project-bound caller can only create keys in its own project.')
  return { ok: true, value: actor.projectId }
}

/** The environment a new key gets: a key created by a test key is a test key, and may not be live. */
export function environmentForNewKey(actor: Actor, asked: Environment | undefined): Result<Environment> {
  const environment = asked ?? actor.environment ?? 'live'
  if (actor.environment === 'test' && environment === 'live') return fail('forbidden', 'A test key cannot create live keys.')
  return { ok: true, value: environment }
}

/** Granted ⊆ caller's, on create and update (an empty list is "unrestricted", so a scoped caller cannot grant it). */
export function grantCeiling(actor: Actor, granted: readonly string[]): { ok: false; error: KeywardError } | undefined {
  if (scopesWithin(granted, actor.scopes)) return undefined
  if (isUnrestricted(granted)) return fail('insufficient_scope', 'A key with limited scopes cannot grant unrestricted access.')
  const missing = granted.filter((scope) => !actor.scopes?.includes(scope))
  return fail('insufficient_scope', `Cannot grant scopes the caller does not have: ${missing.join(', ')}.`)
}

/**
 * A caller changes, revokes or rotates only keys whose powers — scopes, rate limits, credits, IP
 * ranges — are within its own (rotation hands over a fresh secret with the old key's powers). A key
 * may always act on itself.
 */
export function targetCeiling(actor: Actor, target: ApiKeyRecord, now: Date): { ok: false; error: KeywardError } | undefined {
  if (actor.keyId !== undefined && actor.keyId === target.id) return undefined
  if (scopesWithin(target.scopes, actor.scopes) && controlsWithin(controlsOf(target, now), actor.controls) === undefined) return undefined
  return fail('forbidden', 'This key has powers the caller does not have; only a caller with at least its powers may change it.')
}

/** The controls a key has, in the shape a ceiling compares. */
export function controlsOf(record: ApiKeyRecord, now: Date): CallerControls {
  return { rateLimits: record.rateLimits, credits: creditsOf(record, now), allowedIps: record.allowedIps }
}

/**
 * Granted controls ⊆ caller's, on create and update: a caller with limits, credits or an IP
 * allowlist cannot mint or make a key with looser ones (equal or tighter is fine).
 */
export function controlsCeiling(actor: Actor, granted: CallerControls): { ok: false; error: KeywardError } | undefined {
  const looser = controlsWithin(granted, actor.controls)
  return looser === undefined ? undefined : fail('forbidden', `A key cannot grant looser controls than its own: ${looser}.`)
}

/**
 * Why `inner` is looser than `outer`, or undefined when it is not. `outer` undefined (a caller
 * without controls: the host's own user, or an uncontrolled key) bounds nothing.
 *
 * - Each of the caller's limits must be matched by one of the key's that allows no more over the
 *   caller's window: `limit × ⌈outer window / inner window⌉ ≤ outer limit` (a sliding window admits at
 *   most its limit in any window, so k consecutive windows at most k × limit).
 * - A caller with credits grants credits, at most what it has left, refilled (if at all) on the
 *   same interval by at most as much.
 * - A caller with an IP allowlist grants a non-empty one inside it.
 */
export function controlsWithin(inner: CallerControls, outer: CallerControls | undefined): string | undefined {
  if (outer === undefined) return undefined
  for (const bound of outer.rateLimits) {
    const covered = inner.rateLimits.some((limit) => limit.limit * Math.ceil(bound.windowMs / limit.windowMs) <= bound.limit)
    if (!covered) return `no rate limit as tight as "${bound.name}" (${bound.limit} per ${bound.windowMs} ms)`
  }
  if (outer.credits !== null) {
    if (inner.credits === null) return 'no credits, while the caller has credits'
    if (inner.credits.remaining > outer.credits.remaining)
      return `more credits (${inner.credits.remaining}) than the caller has left (${outer.credits.remaining})`
    const innerRefill = inner.credits.refill
    const outerRefill = outer.credits.refill
    if (
      innerRefill !== null &&
      (outerRefill === null || innerRefill.interval !== outerRefill.interval || innerRefill.amount > outerRefill.amount)
    ) {
      return 'a credits refill larger than the caller’s'
    }
  }
  if (outer.allowedIps.length > 0 && (inner.allowedIps.length === 0 || !isWithin(inner.allowedIps, outer.allowedIps))) {
    return 'IP ranges outside the caller’s'
  }
  return undefined
}

/** Revoked, expired and rotated-out keys are read-only: changing them could revive them. A disabled key is not: enabling it is a PATCH. */
export function writable(record: ApiKeyRecord, now: Date): { ok: false; error: KeywardError } | undefined {
  if (record.revokedAt !== null) return fail('key_revoked')
  if (record.expiresAt !== null && now.getTime() >= record.expiresAt.getTime()) return fail('key_expired')
  if (record.replacedByKeyId !== null) return fail('key_rotated')
  return undefined
}
