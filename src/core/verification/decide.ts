import type { KeyControls, LimitReport } from '../controls/enforcer.js'
import type { VerifyErrorCode } from '../errors.js'
import type { StoredKey } from '../store.js'
import type { VerifiedKey } from '../types.js'

/**
 * What verification needs of a key row, precomputed once per cache fill: the frozen value handed
 * to request handlers and the instants (epoch ms) that decide whether it is still good.
 */
export interface KeyVerdictInput {
  key: VerifiedKey
  /** The accepting decision, built once per fill so a cache hit allocates nothing for it. */
  accepted: Decision
  revokedAtMs: number | null
  expiresAtMs: number | null
  /** Set only for a rotated-out key: the end of its grace period. */
  graceEndsAtMs: number | null
  disabled: boolean
  /** Rate limits, credits and IP allowlist, compiled once per fill; null for a key without any. */
  controls: KeyControls | null
}

/**
 * The answer of a verification: the key, or why not. For a key with controls, `limits` carries
 * what the `RateLimit` headers of the response report, admitted or refused.
 */
export type Decision =
  | { ok: true; key: VerifiedKey; limits?: LimitReport }
  | { ok: false; code: VerifyErrorCode; limits?: LimitReport; detail?: string }

/**
 * The one verdict function. The cache path and the database path both call it with the clock
 * reading of the request, so expiry, revocation and grace are never skipped on a cache hit
 * (the bug of ding113/claude-code-hub#734).
 */
export function decide(input: KeyVerdictInput, nowMs: number): Decision {
  if (input.revokedAtMs !== null) return { ok: false, code: 'api_key_revoked' }
  if (input.expiresAtMs !== null && nowMs >= input.expiresAtMs) return { ok: false, code: 'api_key_expired' }
  if (input.disabled) return DISABLED
  if (input.graceEndsAtMs !== null && nowMs >= input.graceEndsAtMs) return { ok: false, code: 'api_key_rotated' }
  return input.accepted
}

const DISABLED: Decision = Object.freeze({ ok: false, code: 'api_key_disabled' }) as Decision

/**
 * @param controls the key's compiled controls (see `compileControls`): a rotated-out key in its
 * grace period gets its successor's, so rotating never doubles what a client may do
 */
export function verdictInput(record: StoredKey, controls: KeyControls | null = null): KeyVerdictInput {
  const key: VerifiedKey = Object.freeze({
    id: record.id,
    tenantId: record.tenantId,
    projectId: record.projectId,
    name: record.name,
    environment: record.environment,
    scopes: Object.freeze([...record.scopes]),
    metadata: deepFreeze(structuredClone(record.metadata)),
    expiresAt: record.expiresAt,
  })
  return {
    key,
    accepted: Object.freeze({ ok: true, key }),
    revokedAtMs: record.revokedAt?.getTime() ?? null,
    expiresAtMs: record.expiresAt?.getTime() ?? null,
    graceEndsAtMs: record.replacedByKeyId !== null ? (record.graceExpiresAt?.getTime() ?? 0) : null,
    disabled: record.disabledAt !== null,
    controls,
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}
