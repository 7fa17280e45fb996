import { type Credits, currentRemaining, periodStart } from './controls/credits.js'
import type { RateLimit } from './controls/rate-limit.js'
import { generateKey, hashKey, newId } from './key-format.js'
import type { ApiKey, ApiKeyRecord, Environment, KeyStatus, Metadata } from './types.js'

/**
 * How a key row is built and what it shows, written once: creation and both kinds of rotation
 * (manual and scheduled) build rows here, and every answer derives its status here.
 */

export const DAY_MS = 86_400_000

/** When a key on a rotation schedule is next due, counted from `from`. */
export function nextRotationAt(from: Date, rotationIntervalDays: number | null): Date | null {
  return rotationIntervalDays === null ? null : new Date(from.getTime() + rotationIntervalDays * DAY_MS)
}

/** What a new key row needs beyond the secret; everything else starts empty. */
export interface NewKeyFields {
  tenantId: string
  projectId: string | null
  name: string
  environment: Environment
  scopes: string[]
  metadata: Metadata
  expiresAt: Date | null
  rotationIntervalDays: number | null
  rotationWebhookUrl: string | null
  rotationWebhookSecret: string | null
  rotatedFromKeyId: string | null
  rateLimits: RateLimit[]
  allowedIps: string[]
  credits: Credits | null
}

/** A freshly minted secret and the row that stores only its hash. */
export interface MintedKey {
  /** The full secret: returned once, never stored. */
  key: string
  record: ApiKeyRecord
}

/** Mints a secret and builds its row. Pure but for the randomness. */
export function mintKeyRecord(fields: NewKeyFields, now: Date, prefix: string, pepper: string | undefined): MintedKey {
  const generated = generateKey(prefix, fields.environment)
  const { credits, ...rest } = fields
  const record: ApiKeyRecord = {
    ...rest,
    ...creditColumns(credits, now),
    creditsVersion: 0,
    disabledAt: null,
    id: newId('key'),
    keyHash: hashKey(generated.key, pepper),
    keyPrefix: generated.keyPrefix,
    keySuffix: generated.keySuffix,
    createdAt: now,
    updatedAt: now,
    lastUsedAt: null,
    revokedAt: null,
    replacedByKeyId: null,
    graceExpiresAt: null,
    nextRotationAt: nextRotationAt(now, fields.rotationIntervalDays),
  }
  return { key: generated.key, record }
}

/**
 * The replacement of a key: everything but the secret is inherited, and its lifetime (an old key
 * created to live 30 days yields a successor that lives 30 days from the rotation).
 */
export function mintSuccessor(current: ApiKeyRecord, now: Date, prefix: string, pepper: string | undefined): MintedKey {
  const lifetimeMs = current.expiresAt === null ? null : current.expiresAt.getTime() - current.createdAt.getTime()
  return mintKeyRecord(
    {
      tenantId: current.tenantId,
      projectId: current.projectId,
      name: current.name,
      environment: current.environment,
      scopes: current.scopes,
      metadata: current.metadata,
      expiresAt: lifetimeMs === null ? null : new Date(now.getTime() + lifetimeMs),
      rotationIntervalDays: current.rotationIntervalDays,
      rotationWebhookUrl: current.rotationWebhookUrl,
      rotationWebhookSecret: current.rotationWebhookSecret,
      rotatedFromKeyId: current.id,
      rateLimits: current.rateLimits,
      allowedIps: current.allowedIps,
      // What the old key had left moves on; during the grace period both keys spend from the
      // successor's credits and count against its limits (see `controlOwner`).
      credits: creditsOf(current, now),
    },
    now,
    prefix,
    pepper,
  )
}

/** The credit columns of a key given `credits` at `now` (null: no credits). */
export function creditColumns(
  credits: Credits | null,
  now: Date,
): Pick<ApiKeyRecord, 'creditsRemaining' | 'creditsRefillAmount' | 'creditsRefillInterval' | 'creditsRefilledAt'> {
  if (credits === null) return { creditsRemaining: null, creditsRefillAmount: null, creditsRefillInterval: null, creditsRefilledAt: null }
  return {
    creditsRemaining: credits.remaining,
    creditsRefillAmount: credits.refill?.amount ?? null,
    creditsRefillInterval: credits.refill?.interval ?? null,
    // The given remaining belongs to the current period; the next refill comes with the next one.
    creditsRefilledAt: new Date(credits.refill === null ? now.getTime() : periodStart(credits.refill.interval, now.getTime())),
  }
}

/** A key's credits as of `now`, as the database knows them (a refill due since it was last written counts as done). */
export function creditsOf(record: ApiKeyRecord, now: Date): Credits | null {
  if (record.creditsRemaining === null) return null
  const refill =
    record.creditsRefillAmount !== null && record.creditsRefillInterval !== null
      ? { amount: record.creditsRefillAmount, interval: record.creditsRefillInterval }
      : null
  const stored: Credits = { remaining: record.creditsRemaining, refill }
  return { remaining: currentRemaining(stored, record.creditsRefilledAt?.getTime() ?? 0, now.getTime()), refill }
}

/**
 * Whose limits and credits a request spends: a rotated-out key in its grace period spends its
 * successor's, so rotating never doubles what a client may do.
 */
export function controlOwner(record: Pick<ApiKeyRecord, 'id' | 'replacedByKeyId'>): string {
  return record.replacedByKeyId ?? record.id
}

/** The status shown in listings. It must agree with `decide` and with the stores' status filter. */
export function statusOf(record: ApiKeyRecord, now: Date): KeyStatus {
  const nowMs = now.getTime()
  if (record.revokedAt !== null) return 'revoked'
  if (record.expiresAt !== null && nowMs >= record.expiresAt.getTime()) return 'expired'
  if (record.disabledAt !== null) return 'disabled'
  if (record.replacedByKeyId !== null) {
    return record.graceExpiresAt !== null && nowMs < record.graceExpiresAt.getTime() ? 'rotating' : 'rotated'
  }
  return 'active'
}

/** A row as a tenant may see it: no hash, no webhook signing secret, its status derived at `now`. */
export function toApiKey(record: ApiKeyRecord, now: Date): ApiKey {
  return {
    id: record.id,
    tenantId: record.tenantId,
    projectId: record.projectId,
    name: record.name,
    environment: record.environment,
    keyPrefix: record.keyPrefix,
    keySuffix: record.keySuffix,
    scopes: record.scopes,
    metadata: record.metadata,
    status: statusOf(record, now),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    lastUsedAt: record.lastUsedAt,
    expiresAt: record.expiresAt,
    revokedAt: record.revokedAt,
    replacedByKeyId: record.replacedByKeyId,
    rotatedFromKeyId: record.rotatedFromKeyId,
    graceExpiresAt: record.graceExpiresAt,
    rotationIntervalDays: record.rotationIntervalDays,
    nextRotationAt: record.nextRotationAt,
    rotationWebhookUrl: record.rotationWebhookUrl,
    rateLimits: record.rateLimits,
    credits: creditsOf(record, now),
    allowedIps: record.allowedIps,
    enabled: record.disabledAt === null,
  }
}
