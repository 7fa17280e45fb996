import type { AuditActor } from '../types.js'
import type { AuditEvent, EventType, JsonValue } from './types.js'

/**
 * An event as tenants read it: in `GET /api-keys/events` (through `toEventObject` in
 * src/http/serialize.ts) and as the `data` of an event webhook. The webhook body is built by the
 * core when the change is committed, so the one wire form of an event lives here, next to it.
 */
export interface EventWireObject {
  id: string
  type: EventType
  tenant_id: string
  project_id: string | null
  environment: 'live' | 'test' | null
  key_id: string | null
  actor: AuditActor
  occurred_at: string
  ip: string | null
  user_agent: string | null
  request_id: string | null
  details: { [key: string]: JsonValue }
}

export function eventWireObject(event: AuditEvent): EventWireObject {
  return {
    id: event.id,
    type: event.type,
    tenant_id: event.tenantId,
    project_id: event.projectId,
    environment: event.environment,
    key_id: event.keyId,
    actor: { type: event.actor.type, id: event.actor.id },
    occurred_at: event.occurredAt.toISOString(),
    ip: event.ip,
    user_agent: event.userAgent,
    request_id: event.requestId,
    details: event.details,
  }
}

/** The Standard Webhooks body of an event: `{ type, timestamp, data }`, `data` the event itself. */
export function eventWebhookBody(event: AuditEvent): string {
  return JSON.stringify({ type: event.type, timestamp: event.occurredAt.toISOString(), data: eventWireObject(event) })
}
