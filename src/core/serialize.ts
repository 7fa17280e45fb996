import { statusOf } from './decide.js'
import type { ApiKeyRecord, KeyStatus, Metadata, WebhookDelivery } from './types.js'

/**
 * The public key object, snake_case as in the seeds. It never holds the secret, its hash or the
 * webhook signing secret.
 */
export interface KeyObject {
  id: string
  tenant_id: string
  project_id: string | null
  name: string
  environment: 'live' | 'test'
  key_prefix: string
  key_suffix: string
  scopes: string[]
  metadata: Metadata
  status: KeyStatus
  created_at: string
  updated_at: string
  last_used_at: string | null
  expires_at: string | null
  revoked_at: string | null
  replaced_by_key_id: string | null
  rotated_from_key_id: string | null
  grace_expires_at: string | null
  rotation_interval_days: number | null
  next_rotation_at: string | null
  rotation_webhook_url: string | null
}

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString())

export function toKeyObject(record: ApiKeyRecord, now: Date): KeyObject {
  return {
    id: record.id,
    tenant_id: record.tenantId,
    project_id: record.projectId,
    name: record.name,
    environment: record.environment,
    key_prefix: record.keyPrefix,
    key_suffix: record.keySuffix,
    scopes: record.scopes,
    metadata: record.metadata,
    status: statusOf(record, now),
    created_at: record.createdAt.toISOString(),
    updated_at: record.updatedAt.toISOString(),
    last_used_at: iso(record.lastUsedAt),
    expires_at: iso(record.expiresAt),
    revoked_at: iso(record.revokedAt),
    replaced_by_key_id: record.replacedByKeyId,
    rotated_from_key_id: record.rotatedFromKeyId,
    grace_expires_at: iso(record.graceExpiresAt),
    rotation_interval_days: record.rotationIntervalDays,
    next_rotation_at: iso(record.nextRotationAt),
    rotation_webhook_url: record.rotationWebhookUrl,
  }
}

export interface DeliveryObject {
  id: string
  key_id: string
  new_key_id: string | null
  event_type: string
  url: string
  status: WebhookDelivery['status']
  attempts: { at: string; status: number | null; error: string | null; duration_ms: number }[]
  next_attempt_at: string | null
  created_at: string
  updated_at: string
}

/** A webhook delivery as the API shows it: outcome and attempts, never the payload (it holds a secret). */
export function toDeliveryObject(delivery: WebhookDelivery): DeliveryObject {
  return {
    id: delivery.id,
    key_id: delivery.keyId,
    new_key_id: delivery.newKeyId,
    event_type: delivery.eventType,
    url: delivery.url,
    status: delivery.status,
    attempts: delivery.attempts.map((attempt) => ({
      at: attempt.at,
      status: attempt.status,
      error: attempt.error,
      duration_ms: attempt.durationMs,
    })),
    next_attempt_at: iso(delivery.nextAttemptAt),
    created_at: delivery.createdAt.toISOString(),
    updated_at: delivery.updatedAt.toISOString(),
  }
}
