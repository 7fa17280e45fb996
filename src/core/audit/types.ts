import type { AuditActor, Environment } from '../types.js'

/**
 * The audit log's domain types (issue 15). An event records one change to one key (or to one
 * webhook endpoint) and who made it; it never holds a secret or a hash.
 */

/** Every event type, in one list (zod enums, the OpenAPI document and the CLI use it). */
export const EVENT_TYPES = [
  'api_key.created',
  'api_key.updated',
  'api_key.revoked',
  'api_key.rotated',
  'api_key.disabled',
  'api_key.enabled',
  'api_key.expiring',
  'api_key.expired',
  'webhook_endpoint.created',
  'webhook_endpoint.deleted',
] as const
export type EventType = (typeof EVENT_TYPES)[number]

/** A JSON value (what an event's details hold: wire field names, ISO 8601 instants). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

export interface AuditEvent {
  /** `evt_...`; the same for a scheduler notice computed by two instances (so it is written once). */
  id: string
  type: EventType
  tenantId: string
  projectId: string | null
  /** The environment of the key the event is about; null for a tenant-wide webhook endpoint's events. */
  environment: Environment | null
  /** The key the event is about; null for webhook endpoint events. */
  keyId: string | null
  actor: AuditActor
  occurredAt: Date
  ip: string | null
  userAgent: string | null
  requestId: string | null
  /**
   * What changed, with wire (snake_case) names: `changes: { name: { before, after } }` for
   * `api_key.updated`, `new_key_id` for `api_key.rotated`, `expires_at` for `api_key.expiring`, …
   */
  details: { [key: string]: JsonValue }
}

/** An event as the store returns it: with its insertion sequence, the tie-break of a page. */
export interface StoredEvent extends AuditEvent {
  seq: number
}

/** What a listing of events asks the store for (visibility already applied by the policy). */
export interface ListEventsQuery {
  tenantId: string
  projectId?: string
  environment?: Environment
  keyId?: string
  type?: EventType
  /** Events at or after this instant. */
  since?: Date
  /** Events strictly older than this position (newest first: occurred_at desc, seq desc). */
  after?: { occurredAt: Date; seq: number }
  limit: number
}

/**
 * A tenant's webhook endpoint: receives the events it subscribed to, signed with its own secret.
 * Bound like a caller: to a project (only that project's events) and to an environment (only that
 * environment's events) when set.
 */
export interface WebhookEndpoint {
  /** `whe_...` */
  id: string
  tenantId: string
  projectId: string | null
  environment: Environment | null
  url: string
  events: EventType[]
  createdAt: Date
  createdBy: AuditActor | null
  /** Set when the receiver answered 410 Gone (Standard Webhooks): nothing more is sent to it. */
  disabledAt: Date | null
}

/** An endpoint row: the signing secret, sealed under the pepper when one is set. Never leaves the core. */
export interface WebhookEndpointRecord extends WebhookEndpoint {
  secret: string
}
