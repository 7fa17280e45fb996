import { createHash } from 'node:crypto'
import { newId } from '../key-format.js'
import { toApiKey } from '../records.js'
import type { Actor, ApiKeyRecord, AuditActor, Environment } from '../types.js'
import type { AuditEvent, EventType, JsonValue, WebhookEndpoint } from './types.js'

/**
 * How an audit event is built from a change: who made it (the actor, with its request), what it is
 * about (a key or a webhook endpoint) and what changed. Pure but for the random ids.
 */

/** The longest user agent and subject kept: enough to recognise, bounded so no caller fills the log. */
const MAX_TEXT = 512

/** The scheduler as a caller: scheduled rotations, expiry notices and schedules it turns off. */
export function schedulerActor(tenantId: string): Actor {
  return { tenantId, type: 'system', subject: 'scheduler' }
}

/** The actor of an event: the key for API-key callers, the subject for users and the CLI. */
export function auditActorOf(actor: Actor): AuditActor {
  const type = actor.type ?? (actor.keyId !== undefined ? 'api_key' : typeof actor.subject === 'string' ? 'user' : 'system')
  const id = type === 'api_key' ? (actor.keyId ?? null) : typeof actor.subject === 'string' ? actor.subject.slice(0, MAX_TEXT) : null
  return { type, id }
}

/** What an event is about: its visibility (tenant, project, environment) and the key, if any. */
export interface EventSubject {
  tenantId: string
  projectId: string | null
  environment: Environment | null
  keyId: string | null
}

export function keySubject(record: Pick<ApiKeyRecord, 'tenantId' | 'projectId' | 'environment' | 'id'>): EventSubject {
  return { tenantId: record.tenantId, projectId: record.projectId, environment: record.environment, keyId: record.id }
}

/** An endpoint's own events are seen by whoever may see the endpoint (see `canSeeEndpoint`). */
export function endpointSubject(endpoint: Pick<WebhookEndpoint, 'tenantId' | 'projectId' | 'environment'>): EventSubject {
  return { tenantId: endpoint.tenantId, projectId: endpoint.projectId, environment: endpoint.environment, keyId: null }
}

export interface NewEvent {
  type: EventType
  subject: EventSubject
  actor: Actor
  now: Date
  details: { [key: string]: JsonValue }
  /** A deterministic id (see `noticeId`), so two instances computing the same notice write one. */
  id?: string
}

export function newEvent({ type, subject, actor, now, details, id }: NewEvent): AuditEvent {
  const request = actor.request
  return {
    id: id ?? newId('evt'),
    type,
    ...subject,
    actor: auditActorOf(actor),
    occurredAt: now,
    ip: request?.ip ?? null,
    userAgent: typeof request?.userAgent === 'string' ? request.userAgent.slice(0, MAX_TEXT) : null,
    requestId: request?.requestId ?? null,
    details,
  }
}

/**
 * The id of a notice the scheduler sends once (`api_key.expiring` per key, threshold and deadline):
 * derived from what it is about, so the store's primary key turns a second write into a no-op.
 */
export function noticeId(...parts: (string | number)[]): string {
  const digest = createHash('sha256').update(parts.join('\u0000')).digest()
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
  let id = ''
  for (let i = 0; i < 22; i++) id += alphabet[(digest[i] as number) % 62]
  return `evt_${id}`
}

/** What a key event says about the key, whatever happened to it. */
export function keyDetails(record: ApiKeyRecord): { [key: string]: JsonValue } {
  return { name: record.name }
}

/** The fields of a key the audit log does not report as changes: bookkeeping, or derived. */
const NOT_AUDITED = new Set(['updatedAt', 'lastUsedAt', 'status', 'createdBy', 'revokedBy'])

export type Changes = { [field: string]: { before: JsonValue; after: JsonValue } }

/**
 * The non-secret fields that differ between two versions of a key, with wire names and values
 * (`expires_at: { before: null, after: "2026-…Z" }`). Compared as a tenant sees the key
 * (`toApiKey`), so the hash and the webhook signing secret never appear, and a field added to
 * keys later is reported without a change here.
 */
export function keyChanges(before: ApiKeyRecord, after: ApiKeyRecord, now: Date): Changes {
  const old = toApiKey(before, now) as unknown as Record<string, unknown>
  const current = toApiKey(after, now) as unknown as Record<string, unknown>
  const changes: Changes = {}
  for (const field of Object.keys(current)) {
    if (NOT_AUDITED.has(field)) continue
    const was = jsonOf(old[field])
    const is = jsonOf(current[field])
    if (canonical(was) !== canonical(is)) changes[snakeCase(field)] = { before: was, after: is }
  }
  return changes
}

/**
 * The one place an update's event type is chosen: a change of `enabled` is `api_key.disabled` or
 * `api_key.enabled` (its details still list every field that changed), any other PATCH
 * `api_key.updated`.
 */
export function updateEventType(changes: Changes): EventType {
  const enabled = changes.enabled
  if (enabled !== undefined) return enabled.after === false ? 'api_key.disabled' : 'api_key.enabled'
  return 'api_key.updated'
}

/** A domain value as JSON: instants as ISO 8601 strings. */
export function jsonOf(value: unknown): JsonValue {
  if (value === undefined || value === null) return null
  if (value instanceof Date) return value.toISOString()
  if (Array.isArray(value)) return value.map(jsonOf)
  if (typeof value === 'object') {
    const object: { [key: string]: JsonValue } = {}
    for (const [key, entry] of Object.entries(value)) object[key] = jsonOf(entry)
    return object
  }
  return value as JsonValue
}

/** JSON with object keys sorted: jsonb reorders an object's keys, which is no change. */
function canonical(value: JsonValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  return `{${Object.keys(value)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonical(value[key] as JsonValue)}`)
    .join(',')}}`
}

function snakeCase(field: string): string {
  return field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)
}
