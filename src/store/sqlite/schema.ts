import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core'
import type { RefillInterval } from '../../core/controls/credits.js'
import type { RateLimit } from '../../core/controls/rate-limit.js'
import type { DeliveryAttempt, Environment, Metadata } from '../../core/types.js'

/**
 * The SQLite schema. Column names are the same in every dialect (see ../postgres/schema.ts);
 * instants are epoch milliseconds. Migrations are generated from this file by drizzle-kit into
 * drizzle/sqlite and only ever add.
 */
export const apiKeys = sqliteTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull(),
    projectId: text('project_id'),
    name: text('name').notNull(),
    environment: text('environment').$type<Environment>().notNull(),
    scopes: text('scopes', { mode: 'json' }).$type<string[]>().notNull(),
    metadata: text('metadata', { mode: 'json' }).$type<Metadata>().notNull(),
    keyHash: text('key_hash').notNull(),
    keyPrefix: text('key_prefix').notNull(),
    keySuffix: text('key_suffix').notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
    lastUsedAt: integer('last_used_at', { mode: 'timestamp_ms' }),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }),
    revokedAt: integer('revoked_at', { mode: 'timestamp_ms' }),
    replacedByKeyId: text('replaced_by_key_id'),
    rotatedFromKeyId: text('rotated_from_key_id'),
    graceExpiresAt: integer('grace_expires_at', { mode: 'timestamp_ms' }),
    rotationIntervalDays: integer('rotation_interval_days'),
    nextRotationAt: integer('next_rotation_at', { mode: 'timestamp_ms' }),
    rotationWebhookUrl: text('rotation_webhook_url'),
    rotationWebhookSecret: text('rotation_webhook_secret'),
    // Per-key controls (issue 14). Credits: `credits_remaining` null means no credits; the refill
    // puts it back to the amount when a new period begins after `credits_refilled_at` (the start
    // of the period the stored value belongs to); `credits_version` changes whenever credits are
    // set, so counters of an earlier setting are never added back.
    rateLimits: text('rate_limits', { mode: 'json' }).$type<RateLimit[]>().notNull().default([]),
    allowedIps: text('allowed_ips', { mode: 'json' }).$type<string[]>().notNull().default([]),
    creditsRemaining: integer('credits_remaining'),
    creditsRefillAmount: integer('credits_refill_amount'),
    creditsRefillInterval: text('credits_refill_interval').$type<RefillInterval>(),
    creditsRefilledAt: integer('credits_refilled_at', { mode: 'timestamp_ms' }),
    creditsVersion: integer('credits_version').notNull().default(0),
    disabledAt: integer('disabled_at', { mode: 'timestamp_ms' }),
  },
  (table) => [
    uniqueIndex('api_keys_key_hash_idx').on(table.keyHash),
    index('api_keys_tenant_created_idx').on(table.tenantId, table.createdAt, table.id),
    index('api_keys_next_rotation_idx').on(table.nextRotationAt),
  ],
)

/** Requests per key per UTC day; written only by the bulk usage flush. */
export const apiKeyUsage = sqliteTable(
  'api_key_usage',
  {
    keyId: text('key_id').notNull(),
    day: text('day').notNull(),
    requestCount: integer('request_count').notNull(),
    /**
     * The latest use on that day. A trigger (drizzle/sqlite/0001) moves `api_keys.last_used_at`
     * forward from it, so a usage flush is one statement that writes both.
     */
    lastUsedAt: integer('last_used_at', { mode: 'timestamp_ms' }),
    /** Requests refused that day for a rate limit, and for lack of credits (counted, not admitted). */
    rateLimitedCount: integer('rate_limited_count').notNull().default(0),
    creditsRefusedCount: integer('credits_refused_count').notNull().default(0),
  },
  (table) => [primaryKey({ columns: [table.keyId, table.day] })],
)

/** The change log other processes poll to evict their caches. */
export const apiKeyChanges = sqliteTable(
  'api_key_changes',
  {
    seq: integer('seq').primaryKey({ autoIncrement: true }),
    keyHash: text('key_hash').notNull(),
    changedAt: integer('changed_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (table) => [index('api_key_changes_changed_at_idx').on(table.changedAt)],
)

export const webhookDeliveries = sqliteTable(
  'webhook_deliveries',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull(),
    keyId: text('key_id').notNull(),
    newKeyId: text('new_key_id'),
    eventType: text('event_type').notNull(),
    url: text('url').notNull(),
    payload: text('payload'),
    status: text('status').$type<'pending' | 'succeeded' | 'failed'>().notNull(),
    attempts: text('attempts', { mode: 'json' }).$type<DeliveryAttempt[]>().notNull(),
    nextAttemptAt: integer('next_attempt_at', { mode: 'timestamp_ms' }),
    lockedUntil: integer('locked_until', { mode: 'timestamp_ms' }),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
  },
  (table) => [
    index('webhook_deliveries_due_idx').on(table.status, table.nextAttemptAt),
    index('webhook_deliveries_key_idx').on(table.tenantId, table.keyId),
  ],
)
