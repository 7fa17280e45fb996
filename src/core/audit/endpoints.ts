import { z } from 'zod'
import { fail, ok, type Result } from '../errors.js'
import { newId } from '../key-format.js'
import { newWebhookSecret, sealPayload } from '../lifecycle/signing.js'
import { checkWebhookUrl } from '../lifecycle/ssrf.js'
import { checkActor, parseInput } from '../management/inputs.js'
import { canSee, listFilter, requireScope } from '../management/policy.js'
import type { Runtime } from '../runtime.js'
import { environmentSchema, fieldWording, projectIdSchema, webhookUrlSchema } from '../schemas.js'
import type { AuditWrite } from '../store.js'
import type { Actor, Environment, WebhookDelivery } from '../types.js'
import { auditActorOf, endpointSubject } from './events.js'
import type { AuditLog } from './log.js'
import { EVENT_TYPES, type EventType, type WebhookEndpoint, type WebhookEndpointRecord } from './types.js'

export interface CreateWebhookEndpointInput {
  /** Where events are POSTed: https and a public address unless the outbound policy allows more. */
  url: string
  /** The event types it receives (at least one). */
  events: EventType[]
  /** Only events of this project's keys. @default the caller's project, if it is bound to one */
  projectId?: string
  /** Only events of this environment's keys. @default 'test' for a test key, else every environment */
  environment?: Environment
}

export interface CreatedWebhookEndpoint {
  endpoint: WebhookEndpoint
  /** `whsec_...` for verifying its deliveries (Standard Webhooks). Shown once. */
  secret: string
}

/** An endpoint's delivery as a tenant may see it: outcome and attempts, never the payload. */
export type EndpointDeliveryView = Omit<WebhookDelivery, 'payload' | 'lockedUntil' | 'tenantId' | 'keyId' | 'newKeyId'>

/** More endpoints than this per tenant is refused: every event is sent to each subscribed one. */
export const MAX_ENDPOINTS_PER_TENANT = 20
/** The newest deliveries shown for an endpoint. */
const DELIVERIES_SHOWN = 100

export const createEndpointInputSchema = z.strictObject({
  url: webhookUrlSchema,
  events: z
    .array(z.enum(EVENT_TYPES, fieldWording), fieldWording)
    .min(1, 'must name at least one event type')
    .max(EVENT_TYPES.length, `must hold at most ${EVENT_TYPES.length} event types`)
    .transform((events) => [...new Set(events)]),
  projectId: projectIdSchema.optional(),
  environment: environmentSchema.optional(),
})

/**
 * Tenants' webhook endpoints for audit events. An endpoint is bound like its creator: a
 * project-bound caller's endpoints receive that project's events only, a test key's endpoints
 * test-key events only (`listFilter`, management/policy.ts); and a caller sees, lists and deletes
 * only endpoints it could have created (`canSee`). Creating and deleting one are audit events too.
 */
export class WebhookEndpoints {
  readonly #runtime: Runtime
  readonly #audit: AuditLog

  constructor(runtime: Runtime, audit: AuditLog) {
    this.#runtime = runtime
    this.#audit = audit
  }

  async create(actor: Actor, input: CreateWebhookEndpointInput): Promise<Result<CreatedWebhookEndpoint>> {
    const denied = checkActor(actor) ?? requireScope(actor, 'api_keys:write')
    if (denied) return denied
    const parsed = parseInput(createEndpointInputSchema, input)
    if (!parsed.ok) return parsed
    const { url, events, projectId, environment } = parsed.value
    const unsafe = checkWebhookUrl(url, this.#runtime.options.outboundPolicy)
    if (unsafe !== undefined) return fail('validation_error', 'The request has invalid fields.', [{ field: 'url', message: unsafe }])
    const bound = listFilter(actor, { projectId, environment })
    if (bound === null) return fail('forbidden', 'A caller can only subscribe to events it may see (its own project and environment).')
    const now = this.#runtime.now()
    const secret = newWebhookSecret()
    const record: WebhookEndpointRecord = {
      id: newId('whe'),
      tenantId: actor.tenantId,
      projectId: bound.projectId ?? null,
      environment: bound.environment ?? null,
      url,
      events,
      createdAt: now,
      createdBy: auditActorOf(actor),
      disabledAt: null,
      // Needed in clear to sign each delivery; sealed under the pepper when one is set.
      secret: sealPayload(secret, this.#runtime.options.pepper),
    }
    return this.#runtime.guard(async (store) => {
      const recorder = await this.#audit.recorder(store, actor, now)
      if (recorder.endpoints.length >= MAX_ENDPOINTS_PER_TENANT) {
        return fail('forbidden', `A tenant may register at most ${MAX_ENDPOINTS_PER_TENANT} webhook endpoints.`)
      }
      // The new endpoint receives its own creation event when it subscribed to it.
      const withNew = recorder.withEndpoints([...recorder.endpoints, record])
      const audit = withNew.write([withNew.event('webhook_endpoint.created', endpointSubject(record), endpointDetails(record))])
      await store.insertWebhookEndpoint(record, audit)
      this.#audit.publish(audit)
      return ok({ endpoint: publicEndpoint(record), secret })
    })
  }

  /** The endpoints the caller may see, oldest first, without their secrets. */
  async list(actor: Actor): Promise<Result<WebhookEndpoint[]>> {
    const denied = checkActor(actor) ?? requireScope(actor, 'api_keys:read')
    if (denied) return denied
    return this.#runtime.guard(async (store) => {
      const endpoints = await store.listWebhookEndpoints(actor.tenantId)
      return ok(endpoints.filter((endpoint) => canSee(actor, endpoint)).map(publicEndpoint))
    })
  }

  /** Deletes an endpoint and its deliveries: nothing more is sent to it. */
  async delete(actor: Actor, id: string): Promise<Result<WebhookEndpoint>> {
    const denied = checkActor(actor) ?? requireScope(actor, 'api_keys:write')
    if (denied) return denied
    return this.#runtime.guard(async (store) => {
      const found = await this.#findVisible(actor, id)
      if (found === null) return notFound()
      const recorder = await this.#audit.recorder(store, actor, this.#runtime.now())
      let audit: AuditWrite | undefined
      const deleted = await store.deleteWebhookEndpoint(actor.tenantId, id, (row) => {
        // The deleted endpoint is gone with its deliveries: it is not told of its own deletion.
        const others = recorder.withEndpoints(recorder.endpoints.filter((endpoint) => endpoint.id !== row.id))
        audit = others.write([others.event('webhook_endpoint.deleted', endpointSubject(row), endpointDetails(row))])
        return audit
      })
      if (deleted === null) return notFound()
      this.#audit.publish(audit)
      return ok(publicEndpoint(deleted))
    })
  }

  /** An endpoint's newest deliveries, with every attempt and its outcome. */
  async deliveries(actor: Actor, id: string): Promise<Result<EndpointDeliveryView[]>> {
    const denied = checkActor(actor) ?? requireScope(actor, 'api_keys:read')
    if (denied) return denied
    return this.#runtime.guard(async (store) => {
      const endpoint = await this.#findVisible(actor, id)
      if (endpoint === null) return notFound()
      const deliveries = await store.listEndpointDeliveries(endpoint.tenantId, endpoint.id, DELIVERIES_SHOWN)
      return ok(
        deliveries.map(
          ({ payload: _payload, lockedUntil: _lockedUntil, tenantId: _tenantId, keyId: _keyId, newKeyId: _newKeyId, ...view }) => view,
        ),
      )
    })
  }

  async #findVisible(actor: Actor, id: string): Promise<WebhookEndpointRecord | null> {
    if (typeof id !== 'string' || id.length > 64) return null
    const store = await this.#runtime.openStore()
    const endpoint = await store.findWebhookEndpoint(actor.tenantId, id)
    return endpoint !== null && canSee(actor, endpoint) ? endpoint : null
  }
}

function notFound() {
  return fail('not_found', 'No such webhook endpoint.')
}

function publicEndpoint({ secret: _secret, ...endpoint }: WebhookEndpointRecord): WebhookEndpoint {
  return endpoint
}

function endpointDetails(endpoint: WebhookEndpointRecord) {
  return { endpoint_id: endpoint.id, url: endpoint.url, events: endpoint.events }
}
