import { auditActorOf, schedulerActor } from '../audit/events.js'
import { ExpiryNotices } from '../audit/expiry.js'
import type { AuditLog } from '../audit/log.js'
import { pruneAuditLog } from '../audit/retention.js'
import { positive } from '../options.js'
import { mintSuccessor, pendingDelivery } from '../records.js'
import type { Runtime } from '../runtime.js'
import type { Outbox } from './outbox.js'
import { sealPayload } from './signing.js'
import { checkWebhookUrl } from './ssrf.js'

export interface SchedulerRun {
  rotated: number
  delivered: number
  failed: number
  /** `api_key.expiring` notices this run wrote (another instance may have written the rest). */
  expiring: number
  /** `api_key.expired` notices this run wrote. */
  expired: number
  /** Audit events deleted past the retention period. */
  pruned: number
}

/**
 * Scheduled rotation: every key whose `next_rotation_at` has passed is rotated and its new secret
 * queued for its webhook, in one transaction. Safe to run from several processes at once: each due
 * time rotates once (the store's conditional update) and each delivery attempt is claimed by one
 * process. Each run also sends the expiry notices that are due (../audit/expiry.ts) and prunes audit
 * events past their retention. Nothing runs on a hidden timer: the host calls `run()` from cron or
 * starts the loop.
 */
export class RotationScheduler {
  readonly #runtime: Runtime
  readonly #outbox: Outbox
  readonly #audit: AuditLog
  readonly #notices: ExpiryNotices
  #timer: NodeJS.Timeout | undefined
  #running: Promise<unknown> | undefined

  constructor(runtime: Runtime, outbox: Outbox, audit: AuditLog) {
    this.#runtime = runtime
    this.#outbox = outbox
    this.#audit = audit
    this.#notices = new ExpiryNotices(runtime, audit)
  }

  async run(options: { limit?: number } = {}): Promise<SchedulerRun> {
    const store = await this.#runtime.openStore()
    const { prefix, pepper, defaultGraceSeconds, outboundPolicy } = this.#runtime.options
    const now = this.#runtime.now()
    let rotated = 0
    for (const due of await store.findDueRotations(now, options.limit ?? 100)) {
      if (due.nextRotationAt === null || due.rotationWebhookUrl === null || due.rotationWebhookSecret === null) continue
      const actor = schedulerActor(due.tenantId)
      const recorder = await this.#audit.recorder(store, actor, now)
      if (checkWebhookUrl(due.rotationWebhookUrl, outboundPolicy) !== undefined) {
        // Saved before the policy refused it (an http:// or private URL): the new secret could never
        // be delivered, so the key is not rotated out from under its owner; its schedule stops.
        await this.#audit.updateKey(store, recorder, due.id, { rotationIntervalDays: null, nextRotationAt: null })
        this.#runtime.options.onError(
          new Error(`the rotation webhook URL of key ${due.id} is refused by the outbound policy`),
          'scheduled rotation',
        )
        continue
      }
      const graceExpiresAt = new Date(now.getTime() + defaultGraceSeconds * 1000)
      const { record: newKey, key } = mintSuccessor(due, now, prefix, pepper, auditActorOf(actor))
      const body = JSON.stringify({
        type: 'api_key.rotated',
        timestamp: now.toISOString(),
        data: {
          old_key_id: due.id,
          new_key_id: newKey.id,
          key,
          key_prefix: newKey.keyPrefix,
          grace_expires_at: graceExpiresAt.toISOString(),
          tenant_id: due.tenantId,
          project_id: due.projectId,
          name: due.name,
          next_rotation_at: newKey.nextRotationAt?.toISOString() ?? null,
        },
      })
      const delivery = pendingDelivery(
        {
          tenantId: due.tenantId,
          keyId: due.id,
          newKeyId: newKey.id,
          endpointId: null,
          eventId: null,
          eventType: 'api_key.rotated',
          url: due.rotationWebhookUrl,
          payload: sealPayload(body, pepper),
        },
        now,
      )
      const audit = recorder.write([
        recorder.keyEvent('api_key.rotated', due, {
          new_key_id: newKey.id,
          grace_expires_at: graceExpiresAt.toISOString(),
          scheduled: true,
        }),
      ])
      const outcome = await store.rotateKey({
        tenantId: due.tenantId,
        oldKeyId: due.id,
        newKey,
        graceExpiresAt,
        now,
        expectedNextRotationAt: due.nextRotationAt,
        delivery,
        audit,
      })
      if (outcome.ok) {
        rotated++
        this.#runtime.evict(outcome.oldKey.keyHash)
        this.#audit.publish(audit)
      }
    }
    const notices = await this.#notices.run(store, now)
    const deliveries = await this.#outbox.deliverDue()
    const pruned = await pruneAuditLog(store, now, this.#runtime.options.retentionDays)
    return { rotated, ...deliveries, ...notices, pruned }
  }

  /** Runs `run()` now and then every `intervalMs` until `stop()`. */
  start(options: { intervalMs?: number } = {}): void {
    if (this.#timer !== undefined) return
    const intervalMs = positive(options.intervalMs ?? 30_000, 'intervalMs')
    const tick = () => {
      this.#running ??= this.run()
        .catch((error) => this.#runtime.options.onError(error, 'scheduled rotation'))
        .finally(() => {
          this.#running = undefined
        })
    }
    this.#timer = setInterval(tick, intervalMs)
    tick()
  }

  /** Stops the loop and waits for a run in progress. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#running
  }
}
