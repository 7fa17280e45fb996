import type { z } from 'zod'
import { toWireRateLimits } from '../core/controls/schemas.js'
import type { CreatedKey, RotatedKey } from '../core/management/keys.js'
import type { ApiKey, DeliveryView, KeyUsage } from '../core/types.js'
import type { createdKeySchema, deliverySchema, keyObjectSchema, rotatedKeySchema, usageSchema } from './schemas.js'

/**
 * The core's domain values as the wire shows them (snake_case, ISO 8601 instants, as in the
 * seeds): one serializer per object, used by the router and the CLI's `--json` alike. The types
 * are inferred from the response schemas, so the OpenAPI document, the router's typed responses
 * and these functions cannot disagree.
 */

export type KeyObject = z.infer<typeof keyObjectSchema>
export type CreatedKeyObject = z.infer<typeof createdKeySchema>
export type RotatedKeyObject = z.infer<typeof rotatedKeySchema>
export type UsageObject = z.infer<typeof usageSchema>
export type DeliveryObject = z.infer<typeof deliverySchema>

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString())

export function toKeyObject(key: ApiKey): KeyObject {
  return {
    id: key.id,
    tenant_id: key.tenantId,
    project_id: key.projectId,
    name: key.name,
    environment: key.environment,
    key_prefix: key.keyPrefix,
    key_suffix: key.keySuffix,
    scopes: key.scopes,
    metadata: key.metadata,
    status: key.status,
    created_at: key.createdAt.toISOString(),
    updated_at: key.updatedAt.toISOString(),
    last_used_at: iso(key.lastUsedAt),
    expires_at: iso(key.expiresAt),
    revoked_at: iso(key.revokedAt),
    replaced_by_key_id: key.replacedByKeyId,
    rotated_from_key_id: key.rotatedFromKeyId,
    grace_expires_at: iso(key.graceExpiresAt),
    rotation_interval_days: key.rotationIntervalDays,
    next_rotation_at: iso(key.nextRotationAt),
    rotation_webhook_url: key.rotationWebhookUrl,
    rate_limits: toWireRateLimits(key.rateLimits),
    credits: key.credits,
    allowed_ips: key.allowedIps,
    enabled: key.enabled,
  }
}

/** The created key with its secret (and webhook signing secret), shown this once. */
export function toCreatedObject(created: CreatedKey): CreatedKeyObject {
  const object: CreatedKeyObject = { ...toKeyObject(created.apiKey), key: created.key }
  if (created.rotationWebhookSecret !== undefined) object.rotation_webhook_secret = created.rotationWebhookSecret
  return object
}

/**
 * The replacement with its secret, and the old key as an object of its own: each object describes
 * itself only (the old key's end of grace is `old_key.grace_expires_at`).
 */
export function toRotatedObject(rotated: RotatedKey): RotatedKeyObject {
  return {
    ...toKeyObject(rotated.newKey),
    key: rotated.key,
    old_key_id: rotated.oldKey.id,
    new_key_id: rotated.newKey.id,
    old_key: toKeyObject(rotated.oldKey),
  }
}

export function toUsageObject(usage: KeyUsage): UsageObject {
  return {
    key_id: usage.keyId,
    name: usage.name,
    created_at: usage.createdAt.toISOString(),
    last_used_at: iso(usage.lastUsedAt),
    days_since_creation: usage.daysSinceCreation,
    days_since_last_use: usage.daysSinceLastUse,
    total_requests: usage.totalRequests,
    key_ids: usage.keyIds,
    daily: usage.daily.map((day) => ({
      date: day.date,
      requests: day.requests,
      rate_limited: day.rateLimited,
      credits_refused: day.creditsRefused,
    })),
  }
}

/** A webhook delivery: outcome and attempts, never the payload (it holds a secret). */
export function toDeliveryObject(delivery: DeliveryView): DeliveryObject {
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
