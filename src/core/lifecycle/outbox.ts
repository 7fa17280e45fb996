import { schedulerActor } from '../audit/events.js'
import type { AuditLog } from '../audit/log.js'
import { fail, ok, type Result } from '../errors.js'
import { checkActor } from '../management/inputs.js'
import { findVisible } from '../management/lookup.js'
import { requireScope } from '../management/policy.js'
import { errorMessage } from '../options.js'
import type { Runtime } from '../runtime.js'
import type { KeyStore } from '../store.js'
import type { Actor, DeliveryView, WebhookDelivery } from '../types.js'
import { openPayload, webhookHeaders } from './signing.js'
import { WebhookRefusedError, type WebhookTransport } from './transport.js'

/**
 * The webhook outbox: deliveries are rows written in the same transaction as the change they
 * announce, claimed by one process at a time, retried with backoff and jitter, and settled once
 * (the payload, which may hold a secret, is wiped then). A delivery carries either a key's
 * rotation webhook (signed with the key's secret) or an audit event for a tenant's webhook endpoint
 * (signed with the endpoint's).
 */
export class Outbox {
  readonly #runtime: Runtime
  readonly #send: WebhookTransport
  /** Records the changes the outbox makes itself (a schedule turned off after 410 Gone). */
  readonly #audit: AuditLog
  readonly #inFlight = new Set<Promise<unknown>>()

  constructor(runtime: Runtime, send: WebhookTransport, audit: AuditLog) {
    this.#runtime = runtime
    this.#send = send
    this.#audit = audit
  }

  /** Sends every due delivery once (claimed, so concurrent schedulers never double-send). */
  deliverDue(): Promise<{ delivered: number; failed: number }> {
    return this.#deliver()
  }

  /**
   * The first attempt of deliveries just committed, from the instance that made the change, without
   * waiting for the scheduler. Fire and forget: failures go to `onError`, and a delivery another
   * instance claimed first is simply skipped (the claim is the same as the scheduler's).
   */
  deliverNow(ids: string[]): void {
    if (ids.length === 0 || this.#runtime.closed) return
    const attempt = this.#deliver(ids)
      .catch((error: unknown) => this.#runtime.options.onError(error, 'webhook delivery'))
      .finally(() => this.#inFlight.delete(attempt))
    this.#inFlight.add(attempt)
  }

  /** Resolves when the first attempts started by `deliverNow` have finished (before closing the store). */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight])
  }

  async #deliver(ids?: string[]): Promise<{ delivered: number; failed: number }> {
    const store = await this.#runtime.openStore()
    const now = this.#runtime.now()
    const timeoutMs = this.#runtime.options.webhookTimeoutMs
    const claimed = await store.claimDeliveries(now, new Date(now.getTime() + timeoutMs * 3), ids?.length ?? 50, ids)
    let delivered = 0
    let failed = 0
    await Promise.all(
      claimed.map(async (delivery) => {
        const settled = await this.#attempt(store, delivery)
        if (settled === 'succeeded') delivered++
        if (settled === 'failed') failed++
      }),
    )
    return { delivered, failed }
  }

  /** Rotation webhook deliveries for a key (and the rotation that produced it), newest first. */
  async listDeliveries(actor: Actor, id: string): Promise<Result<DeliveryView[]>> {
    const denied = checkActor(actor) ?? requireScope(actor, 'api_keys:read')
    if (denied) return denied
    return this.#runtime.guard(async (store) => {
      const record = await findVisible(store, actor, id)
      if (record === null) return fail('not_found')
      const keyIds = record.rotatedFromKeyId === null ? [record.id] : [record.id, record.rotatedFromKeyId]
      const deliveries = await store.listDeliveries(record.tenantId, keyIds)
      return ok(deliveries.map(({ payload: _payload, lockedUntil: _lockedUntil, tenantId: _tenantId, ...view }) => view))
    })
  }

  async #attempt(store: KeyStore, delivery: WebhookDelivery): Promise<WebhookDelivery['status']> {
    const { clock, pepper, webhookTimeoutMs, retryScheduleSeconds } = this.#runtime.options
    const startedAt = clock.monotonic()
    const attemptAt = this.#runtime.now()
    let status: number | null = null
    let error: string | null = null
    let gone = false
    const signer = await this.#signerOf(store, delivery)
    const secret = signer.secret
    if (delivery.payload === null || secret === null) {
      error = signer.missing ?? 'the payload or the signing secret is no longer available'
      gone = true
    } else {
      try {
        const body = openPayload(delivery.payload, pepper)
        // The receiver checks this against its own wall clock (replay tolerance), so it is real
        // time, not the injected business clock.
        const timestamp = Math.floor(Date.now() / 1000)
        const headers = webhookHeaders(secret, delivery.id, timestamp, body)
        status = (await this.#send({ url: delivery.url, headers, body, timeoutMs: webhookTimeoutMs })).status
        // Standard Webhooks: only 2xx is success; a redirect is a failure; 410 disables the endpoint.
        if (status < 200 || status >= 300) error = `HTTP ${status}`
        gone = status === 410
      } catch (cause) {
        error = errorMessage(cause)
        // Refused by the outbound policy (a name that now resolves into a private network): every
        // retry would be refused too, so the delivery fails at once.
        if (cause instanceof WebhookRefusedError) gone = true
      }
    }
    const attempts = [
      ...delivery.attempts,
      { at: attemptAt.toISOString(), status, error, durationMs: Math.round(clock.monotonic() - startedAt) },
    ]
    const succeeded = error === null
    const exhausted = gone || attempts.length > retryScheduleSeconds.length
    const next: WebhookDelivery = {
      ...delivery,
      attempts,
      status: succeeded ? 'succeeded' : exhausted ? 'failed' : 'pending',
      nextAttemptAt:
        succeeded || exhausted ? null : new Date(attemptAt.getTime() + jitter(retryScheduleSeconds[attempts.length - 1] ?? 60) * 1000),
      lockedUntil: null,
      updatedAt: attemptAt,
      // Once settled, the copy of the new secret is wiped.
      payload: succeeded || exhausted ? null : delivery.payload,
    }
    await store.saveDelivery(next)
    if (gone) await signer.gone?.(attemptAt)
    return next.status
  }

  /**
   * The secret a delivery is signed with, and what a 410 Gone (or a refusal) stops: a rotation
   * webhook's key stops rotating on a schedule (nobody would receive the next secret); an endpoint
   * is disabled (Standard Webhooks).
   */
  async #signerOf(
    store: KeyStore,
    delivery: WebhookDelivery,
  ): Promise<{ secret: string | null; missing?: string; gone?: (at: Date) => Promise<void> }> {
    const { pepper } = this.#runtime.options
    if (delivery.endpointId !== null) {
      const endpoint = await store.findWebhookEndpoint(delivery.tenantId, delivery.endpointId)
      if (endpoint === null) return { secret: null, missing: 'the webhook endpoint no longer exists' }
      if (endpoint.disabledAt !== null) return { secret: null, missing: 'the webhook endpoint is disabled' }
      return {
        secret: openPayload(endpoint.secret, pepper),
        gone: (at) => store.disableWebhookEndpoint(endpoint.tenantId, endpoint.id, at),
      }
    }
    const key = delivery.newKeyId === null ? null : await store.findKey(delivery.tenantId, delivery.newKeyId)
    return {
      secret: key?.rotationWebhookSecret ?? null,
      gone: async (at) => {
        if (key === null || key.rotationIntervalDays === null) return
        const recorder = await this.#audit.recorder(store, schedulerActor(key.tenantId), at)
        await this.#audit.updateKey(store, recorder, key.id, { rotationIntervalDays: null, nextRotationAt: null })
      },
    }
  }
}

/** Up to 20 % more, so retries of many deliveries spread out. */
function jitter(seconds: number): number {
  return seconds * (1 + Math.random() * 0.2)
}
