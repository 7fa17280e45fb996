import { pendingDelivery } from '../records.js'
import type { Runtime } from '../runtime.js'
import type { AuditOf, AuditWrite, KeyStore } from '../store.js'
import type { Actor, ApiKeyRecord, KeyPatch, WebhookDelivery } from '../types.js'
import { type EventSubject, keyChanges, keyDetails, keySubject, newEvent, updateEventType } from './events.js'
import type { AuditEvent, EventType, JsonValue, WebhookEndpointRecord } from './types.js'
import { eventWebhookBody } from './wire.js'

/**
 * The audit log's write side. A change asks for a `Recorder` before it writes (which reads the
 * tenant's webhook endpoints, so the deliveries of its events go into the same transaction), hands
 * the recorder's `AuditWrite` to the store with the change, and calls `publish` once the store has
 * committed: the in-process `onEvent` hook runs then, and the first delivery attempt goes out at
 * once from this instance (the outbox retries, claimed, from any instance).
 */
export class AuditLog {
  readonly #runtime: Runtime
  readonly #deliverNow: (deliveryIds: string[]) => void

  constructor(runtime: Runtime, deliverNow: (deliveryIds: string[]) => void) {
    this.#runtime = runtime
    this.#deliverNow = deliverNow
  }

  /** A recorder for changes `actor` makes in its tenant at `now`. */
  async recorder(store: KeyStore, actor: Actor, now: Date): Promise<Recorder> {
    return new Recorder(actor, now, await store.listWebhookEndpoints(actor.tenantId))
  }

  /**
   * Updates a key with its `api_key.updated` event (built inside the store's transaction from the
   * row before and after), and publishes the event once committed. Null when the key is not there.
   */
  async updateKey(store: KeyStore, recorder: Recorder, id: string, patch: KeyPatch): Promise<ApiKeyRecord | null> {
    let audit: AuditWrite | undefined
    const updated = await store.updateKey(recorder.actor.tenantId, id, patch, recorder.now, (before, after) => {
      audit = recorder.updated(before, after)
      return audit
    })
    if (updated !== null) this.publish(audit)
    return updated
  }

  /**
   * After commit: `onEvent` for each event (a throwing or rejecting hook goes to `onError` and never
   * undoes the change) and the first attempt of each delivery.
   */
  publish(write: AuditWrite | undefined): void {
    if (write === undefined) return
    const { onEvent, onError } = this.#runtime.options
    if (onEvent !== undefined) {
      for (const event of write.events) {
        try {
          const outcome = onEvent(event)
          if (outcome instanceof Promise) outcome.catch((error: unknown) => onError(error, 'onEvent'))
        } catch (error) {
          onError(error, 'onEvent')
        }
      }
    }
    if (write.deliveries.length > 0) this.#deliverNow(write.deliveries.map((delivery) => delivery.id))
  }
}

/** Builds the events of one actor's changes, and the deliveries to the endpoints subscribed to them. */
export class Recorder {
  constructor(
    readonly actor: Actor,
    readonly now: Date,
    readonly endpoints: readonly WebhookEndpointRecord[],
  ) {}

  /** The same recorder, sending to other endpoints (an endpoint being created or deleted). */
  withEndpoints(endpoints: readonly WebhookEndpointRecord[]): Recorder {
    return new Recorder(this.actor, this.now, endpoints)
  }

  /** `id`: a notice's deterministic id (`noticeId`); a fresh random one otherwise. */
  event(type: EventType, subject: EventSubject, details: { [key: string]: JsonValue }, id?: string): AuditEvent {
    return newEvent({ type, subject, actor: this.actor, now: this.now, details, id })
  }

  /** An event about a key, with the key's name among its details. */
  keyEvent(type: EventType, record: ApiKeyRecord, details: { [key: string]: JsonValue } = {}, id?: string): AuditEvent {
    return this.event(type, keySubject(record), { ...keyDetails(record), ...details }, id)
  }

  /** The events with one delivery for each endpoint that receives each. */
  write(events: AuditEvent[]): AuditWrite {
    return { events, deliveries: events.flatMap((event) => deliveriesOf(event, this.endpoints, this.now)) }
  }

  /**
   * An update's audit write, for the store to call inside its transaction: `api_key.updated` with
   * each changed field before and after, or nothing when no field changed.
   */
  readonly updated: AuditOf = (before, after) => {
    const changes = keyChanges(before, after, this.now)
    if (Object.keys(changes).length === 0) return undefined
    return this.write([this.keyEvent(updateEventType(changes), after, { changes })])
  }
}

/**
 * Whether an endpoint receives an event: it subscribed to the type, is not disabled, and could see
 * the event — its tenant, its project when bound to one, its environment when bound to one.
 */
export function receives(endpoint: WebhookEndpointRecord, event: AuditEvent): boolean {
  return (
    endpoint.disabledAt === null &&
    endpoint.tenantId === event.tenantId &&
    endpoint.events.includes(event.type) &&
    (endpoint.projectId === null || endpoint.projectId === event.projectId) &&
    (endpoint.environment === null || endpoint.environment === event.environment)
  )
}

function deliveriesOf(event: AuditEvent, endpoints: readonly WebhookEndpointRecord[], now: Date): WebhookDelivery[] {
  const matching = endpoints.filter((endpoint) => receives(endpoint, event))
  if (matching.length === 0) return []
  const body = eventWebhookBody(event)
  return matching.map((endpoint) => eventDelivery(event, endpoint, body, now))
}

/** The pending delivery of one event to one endpoint. */
export function eventDelivery(event: AuditEvent, endpoint: WebhookEndpointRecord, payload: string, now: Date): WebhookDelivery {
  return pendingDelivery(
    {
      tenantId: event.tenantId,
      keyId: event.keyId ?? '',
      newKeyId: null,
      endpointId: endpoint.id,
      eventId: event.id,
      eventType: event.type,
      url: endpoint.url,
      // An event holds no secret: its body waits in clear, and is wiped once settled like any other.
      payload,
    },
    now,
  )
}
