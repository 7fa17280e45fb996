import { sql } from 'drizzle-orm'
import { bigint, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core'
import type { EventType, JsonValue } from '../../core/audit/types.js'
import type { RefillInterval } from '../../core/controls/credits.js'
import type { RateLimit } from '../../core/controls/rate-limit.js'
import type { ActorType, AuditActor, DeliveryAttempt, Environment, Metadata } from '../../core/types.js'

/**
 * The PostgreSQL schema. Table and column names are the same as in ../sqlite/schema.ts; instants
 * are `timestamp with time zone` at millisecond precision (what a JS `Date` holds), JSON is
 * `jsonb`. Migrations are generated from this file by drizzle-kit into drizzle/postgres and only
 * ever add.
 */
const instant = (name: string) => timestamp(name, { withTimezone: true, precision: 3, mode: 'date' })

export const apiKeys = pgTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull(),
    projectId: text('project_id'),
    name: text('name').notNull(),
    environment: text('environment').$type<Environment>().notNull(),
    scopes: jsonb('scopes').$type<string[]>().notNull(),
    metadata: jsonb('metadata').$type<Metadata>().notNull(),
    keyHash: text('key_hash').notNull(),
    keyPrefix: text('key_prefix').notNull(),
    keySuffix: text('key_suffix').notNull(),
    createdAt: instant('created_at').notNull(),
    updatedAt: instant('updated_at').notNull(),
    // Written only by the usage flushes of earlier versions (which also moved this column); stores
    // read a key's last use through `latestUse` (../conditions.ts): the later of this and api_key_usage's.
    lastUsedAt: instant('last_used_at'),
    expiresAt: instant('expires_at'),
    revokedAt: instant('revoked_at'),
    replacedByKeyId: text('replaced_by_key_id'),
    rotatedFromKeyId: text('rotated_from_key_id'),
    // The key a chain of rotations began with: see ../sqlite/schema.ts.
    lineageId: text('lineage_id'),
    graceExpiresAt: instant('grace_expires_at'),
    rotationIntervalDays: integer('rotation_interval_days'),
    nextRotationAt: instant('next_rotation_at'),
    rotationWebhookUrl: text('rotation_webhook_url'),
    rotationWebhookSecret: text('rotation_webhook_secret'),
    // Per-key controls: see ../sqlite/schema.ts.
    rateLimits: jsonb('rate_limits').$type<RateLimit[]>().notNull().default([]),
    allowedIps: jsonb('allowed_ips').$type<string[]>().notNull().default([]),
    creditsRemaining: bigint('credits_remaining', { mode: 'number' }),
    creditsRefillAmount: bigint('credits_refill_amount', { mode: 'number' }),
    creditsRefillInterval: text('credits_refill_interval').$type<RefillInterval>(),
    creditsRefilledAt: instant('credits_refilled_at'),
    creditsVersion: integer('credits_version').notNull().default(0),
    disabledAt: instant('disabled_at'),
    // Audit log (issue 15): who created and who revoked the key.
    createdBy: jsonb('created_by').$type<AuditActor>(),
    revokedBy: jsonb('revoked_by').$type<AuditActor>(),
  },
  (table) => [
    uniqueIndex('api_keys_key_hash_idx').on(table.keyHash),
    // Pages are ordered by id byte-wise (as in SQLite), whatever the database's collation; the
    // index holds the same expression so a page is an index range scan.
    index('api_keys_tenant_created_idx').on(table.tenantId, table.createdAt, sql`${table.id} collate "C"`),
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
export const apiKeyUsage = pgTable(
  'api_key_usage',
  {
    keyId: text('key_id').notNull(),
    day: text('day').notNull(),
    requestCount: bigint('request_count', { mode: 'number' }).notNull(),
    /** The latest use on that day; a key's `last_used_at` is read from its latest day's row. */
    lastUsedAt: instant('last_used_at'),
    rateLimitedCount: bigint('rate_limited_count', { mode: 'number' }).notNull().default(0),
    creditsRefusedCount: bigint('credits_refused_count', { mode: 'number' }).notNull().default(0),
  },
  (table) => [primaryKey({ columns: [table.keyId, table.day] })],
)

/** The change log other processes read (on a NOTIFY, or every poll) to evict their caches. */
export const apiKeyChanges = pgTable(
  'api_key_changes',
  {
    seq: bigint('seq', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    keyHash: text('key_hash').notNull(),
    changedAt: instant('changed_at').notNull(),
  },
  (table) => [index('api_key_changes_changed_at_idx').on(table.changedAt)],
)

export const webhookDeliveries = pgTable(
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
    attempts: jsonb('attempts').$type<DeliveryAttempt[]>().notNull(),
    nextAttemptAt: instant('next_attempt_at'),
    lockedUntil: instant('locked_until'),
    createdAt: instant('created_at').notNull(),
    updatedAt: instant('updated_at').notNull(),
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
export const auditEvents = pgTable(
  'audit_events',
  {
    seq: bigint('seq', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    id: text('id').notNull(),
    type: text('type').$type<EventType>().notNull(),
    tenantId: text('tenant_id').notNull(),
    projectId: text('project_id'),
    environment: text('environment').$type<Environment>(),
    keyId: text('key_id'),
    actorType: text('actor_type').$type<ActorType>().notNull(),
    actorId: text('actor_id'),
    occurredAt: instant('occurred_at').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
    requestId: text('request_id'),
    details: jsonb('details').$type<{ [key: string]: JsonValue }>().notNull(),
  },
  (table) => [
    uniqueIndex('audit_events_id_idx').on(table.id),
    index('audit_events_tenant_idx').on(table.tenantId, table.occurredAt, table.seq),
    index('audit_events_key_idx').on(table.keyId, table.occurredAt),
    index('audit_events_occurred_idx').on(table.occurredAt),
  ],
)

/** Tenants' webhook endpoints for audit events (issue 15). `secret` is sealed under the pepper when one is set. */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull(),
    projectId: text('project_id'),
    environment: text('environment').$type<Environment>(),
    url: text('url').notNull(),
    events: jsonb('events').$type<EventType[]>().notNull(),
    secret: text('secret').notNull(),
    createdAt: instant('created_at').notNull(),
    createdBy: jsonb('created_by').$type<AuditActor>(),
    disabledAt: instant('disabled_at'),
  },
  (table) => [index('webhook_endpoints_tenant_idx').on(table.tenantId, table.createdAt)],
)
