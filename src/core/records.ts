import { type Credits, currentRemaining, periodStart } from './controls/credits.js'
import type { RateLimit } from './controls/rate-limit.js'
import { generateKey, hashKey, newId } from './key-format.js'
import type { StoredKey } from './store.js'
import type { ApiKey, ApiKeyRecord, AuditActor, Environment, KeyStatus, Metadata, WebhookDelivery } from './types.js'

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
  /** Who creates it (or rotates its predecessor). */
  createdBy: AuditActor | null
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
    lineageId: null,
    id: newId('key'),
    keyHash: hashKey(generated.key, pepper),
    keyPrefix: generated.keyPrefix,
    keySuffix: generated.keySuffix,
    createdAt: now,
    updatedAt: now,
    lastUsedAt: null,
    revokedAt: null,
    revokedBy: null,
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
export function mintSuccessor(
  current: ApiKeyRecord,
  now: Date,
  prefix: string,
  pepper: string | undefined,
  createdBy: AuditActor | null,
): MintedKey {
  const lifetimeMs = current.expiresAt === null ? null : current.expiresAt.getTime() - current.createdAt.getTime()
  // Credits are not minted anew: the successor continues the old key's (see `inheritLineage`).
  const minted = mintKeyRecord(
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
      credits: null,
      createdBy,
    },
    now,
    prefix,
    pepper,
  )
  return { key: minted.key, record: inheritLineage(current, minted.record) }
}

/**
 * The lineage of a key: the id of the key its chain of rotations began with. Rate-limit subjects,
 * credit counters and the database's credit operations are named by it, so a rotation keeps the
 * window's count and the credits spent, and a rotated-out key in its grace period shares both
 * with its successor.
 */
export function lineageOf(record: Pick<ApiKeyRecord, 'id' | 'lineageId'>): string {
  return record.lineageId ?? record.id
}

/**
 * A successor as it continues `old`: the same lineage, and the old row's credit columns verbatim —
 * remaining, refill, period start and version. Same version and period means the same credit epoch
 * (`storedCreditEpoch`), so a Redis counter and a process's leased credits go on as they were:
 * nothing is seeded again (that would spend the credits twice) and nothing is dropped. Stores apply
 * it again to the old row as read under the rotation's lock, so a lease or settlement that landed
 * between the caller's read and the rotation is not lost.
 */
export function inheritLineage(old: ApiKeyRecord, successor: ApiKeyRecord): ApiKeyRecord {
  return {
    ...successor,
    lineageId: lineageOf(old),
    creditsRemaining: old.creditsRemaining,
    creditsRefillAmount: old.creditsRefillAmount,
    creditsRefillInterval: old.creditsRefillInterval,
    creditsRefilledAt: old.creditsRefilledAt,
    creditsVersion: old.creditsVersion,
  }
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
export function creditsOf(record: StoredKey, now: Date): Credits | null {
  if (record.creditsRemaining === null) return null
  const refill =
    record.creditsRefillAmount !== null && record.creditsRefillInterval !== null
      ? { amount: record.creditsRefillAmount, interval: record.creditsRefillInterval }
      : null
  const stored: Credits = { remaining: record.creditsRemaining, refill }
  return { remaining: currentRemaining(stored, record.creditsRefilledAt?.getTime() ?? 0, now.getTime()), refill }
}

/** The status shown in listings. It must agree with `decide` and with the stores' status filter. */
export function statusOf(record: StoredKey, now: Date): KeyStatus {
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
    createdBy: record.createdBy,
    revokedBy: record.revokedBy,
  }
}

/** What a new delivery says; the rest (id, pending status, no attempts, due now) is the same for every one. */
export type DeliveryFields = Pick<
  WebhookDelivery,
  'tenantId' | 'keyId' | 'newKeyId' | 'endpointId' | 'eventId' | 'eventType' | 'url' | 'payload'
>

/** A delivery of the outbox, pending and due at once: rotation webhooks and event webhooks alike. */
export function pendingDelivery(fields: DeliveryFields, now: Date): WebhookDelivery {
  return {
    ...fields,
    id: newId('msg'),
    status: 'pending',
    attempts: [],
    nextAttemptAt: now,
    lockedUntil: null,
    createdAt: now,
    updatedAt: now,
  }
}
