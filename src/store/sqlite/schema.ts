import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core'
import type { EventType, JsonValue } from '../../core/audit/types.js'
import type { RefillInterval } from '../../core/controls/credits.js'
import type { RateLimit } from '../../core/controls/rate-limit.js'
import type { ActorType, AuditActor, DeliveryAttempt, Environment, Metadata } from '../../core/types.js'

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
    // Written by usage flushes before migration 0005 only; stores read a key's last use through
    // `latestUse` (../conditions.ts), which takes the later of this and api_key_usage's.
    lastUsedAt: integer('last_used_at', { mode: 'timestamp_ms' }),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }),
    revokedAt: integer('revoked_at', { mode: 'timestamp_ms' }),
    replacedByKeyId: text('replaced_by_key_id'),
    rotatedFromKeyId: text('rotated_from_key_id'),
    // The key a chain of rotations began with (null: this key's own id). Rate-limit counters and
    // credits belong to the lineage, not the row, so a rotation neither resets nor doubles them;
    // the database's credits are those of the lineage's head (replaced_by_key_id null).
    lineageId: text('lineage_id'),
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
    // Audit log (issue 15): who created and who revoked the key.
    createdBy: text('created_by', { mode: 'json' }).$type<AuditActor>(),
    revokedBy: text('revoked_by', { mode: 'json' }).$type<AuditActor>(),
  },
  (table) => [
    uniqueIndex('api_keys_key_hash_idx').on(table.keyHash),
    index('api_keys_tenant_created_idx').on(table.tenantId, table.createdAt, table.id),
    index('api_keys_next_rotation_idx').on(table.nextRotationAt),
    // The scheduler's expiry notices find keys by when they stop working (issue 15).
    index('api_keys_expires_idx').on(table.expiresAt),
    index('api_keys_grace_expires_idx').on(table.graceExpiresAt),
    // Credit operations find a lineage's head by `lineage_id` (successors) or `id` (a key never
    // rotated, whose lineage_id is null); see `lineageHead` in ../conditions.ts.
    index('api_keys_lineage_idx').on(table.lineageId),
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
     * The latest use on that day. A key's `last_used_at` is read from its latest day's row
     * (`latestUse` in ../conditions.ts); `api_keys.last_used_at` holds only what was recorded before
     * migration 0005. The table is WITHOUT ROWID since 0005 (hand-written; drizzle-kit does not model it).
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
    // Event webhooks (issue 15): the endpoint and the event of a delivery; null for a rotation webhook.
    endpointId: text('endpoint_id'),
    eventId: text('event_id'),
  },
  (table) => [
    index('webhook_deliveries_due_idx').on(table.status, table.nextAttemptAt),
    index('webhook_deliveries_key_idx').on(table.tenantId, table.keyId),
    // Exactly one delivery per (event, endpoint), whatever writes it; rotation webhooks (nulls) are not constrained.
    uniqueIndex('webhook_deliveries_event_endpoint_idx').on(table.eventId, table.endpointId),
    index('webhook_deliveries_endpoint_idx').on(table.endpointId, table.createdAt),
    index('webhook_deliveries_created_idx').on(table.createdAt),
  ],
)

/**
 * The audit log (issue 15): one row per change, written in the change's transaction. `seq` orders
 * events of one instant in the order they were written; `id` is unique, so a notice two schedulers
 * compute (same id) is written once.
 */
export const auditEvents = sqliteTable(
  'audit_events',
  {
    seq: integer('seq').primaryKey({ autoIncrement: true }),
    id: text('id').notNull(),
    type: text('type').$type<EventType>().notNull(),
    tenantId: text('tenant_id').notNull(),
    projectId: text('project_id'),
    environment: text('environment').$type<Environment>(),
    keyId: text('key_id'),
    actorType: text('actor_type').$type<ActorType>().notNull(),
    actorId: text('actor_id'),
    occurredAt: integer('occurred_at', { mode: 'timestamp_ms' }).notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
    requestId: text('request_id'),
    details: text('details', { mode: 'json' }).$type<{ [key: string]: JsonValue }>().notNull(),
  },
  (table) => [
    uniqueIndex('audit_events_id_idx').on(table.id),
    index('audit_events_tenant_idx').on(table.tenantId, table.occurredAt, table.seq),
    index('audit_events_key_idx').on(table.keyId, table.occurredAt),
    index('audit_events_occurred_idx').on(table.occurredAt),
  ],
)

/** Tenants' webhook endpoints for audit events (issue 15). `secret` is sealed under the pepper when one is set. */
export const webhookEndpoints = sqliteTable(
  'webhook_endpoints',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull(),
    projectId: text('project_id'),
    environment: text('environment').$type<Environment>(),
    url: text('url').notNull(),
    events: text('events', { mode: 'json' }).$type<EventType[]>().notNull(),
    secret: text('secret').notNull(),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    createdBy: text('created_by', { mode: 'json' }).$type<AuditActor>(),
    disabledAt: integer('disabled_at', { mode: 'timestamp_ms' }),
  },
  (table) => [index('webhook_endpoints_tenant_idx').on(table.tenantId, table.createdAt)],
)
