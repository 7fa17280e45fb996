import type { Runtime } from '../runtime.js'
import type { EndingKeysQuery, KeyStore } from '../store.js'
import type { ApiKeyRecord } from '../types.js'
import { noticeId, schedulerActor } from './events.js'
import type { AuditLog, Recorder } from './log.js'
import type { AuditEvent } from './types.js'

/** How far back a scheduler run looks for keys that stopped working since it last ran (or ever ran). */
export const EXPIRED_LOOKBACK_MS = 7 * 86_400_000
const PAGE = 500

/** Why a key stops working: its own expiry, or the end of the grace period of its rotation. */
type Reason = 'expires_at' | 'rotation_grace'

interface Notice {
  key: ApiKeyRecord
  event: (recorder: Recorder) => AuditEvent
}

/**
 * The scheduler's expiry notices: `api_key.expiring` once per key and threshold (7 days and 1 day
 * before it stops working, by default), and `api_key.expired` once it has. Both for a key's
 * `expires_at` and for the end of a rotated key's grace period, whichever comes first.
 *
 * Exactly once across instances, structurally: a notice's event id is derived from the key, the
 * threshold and the deadline (`noticeId`), and the store writes an id it already holds as a no-op,
 * with its deliveries. A key whose deadline moves (a PATCHed `expires_at`) is warned again for the
 * new one. When a key enters several thresholds at once (created 12 hours before it expires), only
 * the nearest is sent: a 7-day warning after a 1-day one would mislead.
 */
export class ExpiryNotices {
  readonly #runtime: Runtime
  readonly #audit: AuditLog

  constructor(runtime: Runtime, audit: AuditLog) {
    this.#runtime = runtime
    this.#audit = audit
  }

  async run(store: KeyStore, now: Date): Promise<{ expiring: number; expired: number }> {
    const thresholds = [...this.#runtime.options.expiryWarningSeconds].sort((a, b) => a - b)
    const horizonMs = (thresholds.at(-1) ?? 0) * 1000
    let expiring = 0
    let expired = 0
    for (const deadline of ['expiresAt', 'graceExpiresAt'] as const) {
      const soon = { deadline, from: now, to: new Date(now.getTime() + horizonMs) }
      for await (const keys of pages(store, soon)) {
        const notices: Notice[] = []
        for (const key of keys) {
          const ending = endOf(key, deadline)
          if (ending === undefined) continue
          const leftMs = ending.at.getTime() - now.getTime()
          const threshold = thresholds.find((seconds) => leftMs <= seconds * 1000)
          if (threshold === undefined) continue
          const details = { expires_at: ending.at.toISOString(), reason: ending.reason, threshold_seconds: threshold }
          const id = noticeId('api_key.expiring', key.id, threshold, ending.at.getTime())
          notices.push({ key, event: (recorder) => recorder.keyEvent('api_key.expiring', key, details, id) })
        }
        expiring += await this.#record(store, notices, now)
      }
      const past = { deadline, from: new Date(now.getTime() - EXPIRED_LOOKBACK_MS), to: now }
      for await (const keys of pages(store, past)) {
        const notices: Notice[] = []
        for (const key of keys) {
          const ending = endOf(key, deadline)
          if (ending === undefined) continue
          const details = { expired_at: ending.at.toISOString(), reason: ending.reason }
          const id = noticeId('api_key.expired', key.id, ending.at.getTime())
          notices.push({ key, event: (recorder) => recorder.keyEvent('api_key.expired', key, details, id) })
        }
        expired += await this.#record(store, notices, now)
      }
    }
    return { expiring, expired }
  }

  /** Writes the notices not written yet (by this or another instance); answers how many this run wrote. */
  async #record(store: KeyStore, notices: Notice[], now: Date): Promise<number> {
    if (notices.length === 0) return 0
    const recorders = new Map<string, Recorder>()
    const byTenant = new Map<string, AuditEvent[]>()
    for (const notice of notices) {
      const tenantId = notice.key.tenantId
      let recorder = recorders.get(tenantId)
      if (recorder === undefined) {
        // Endpoints are read only for tenants with a notice to send.
        recorder = await this.#audit.recorder(store, schedulerActor(tenantId), now)
        recorders.set(tenantId, recorder)
      }
      byTenant.set(tenantId, [...(byTenant.get(tenantId) ?? []), notice.event(recorder)])
    }
    const candidates = [...byTenant.values()].flat()
    // Most runs find every notice already sent: one read, and no write transaction at all.
    const sent = new Set(await store.existingEventIds(candidates.map((event) => event.id)))
    let written = 0
    for (const [tenantId, events] of byTenant) {
      const fresh = events.filter((event) => !sent.has(event.id))
      if (fresh.length === 0) continue
      const write = (recorders.get(tenantId) as Recorder).write(fresh)
      const ids = new Set(await store.recordEvents(write))
      written += ids.size
      this.#audit.publish({
        events: write.events.filter((event) => ids.has(event.id)),
        deliveries: write.deliveries.filter((delivery) => delivery.eventId !== null && ids.has(delivery.eventId)),
      })
    }
    return written
  }
}

/**
 * When and why a key stops working, if `deadline` is what stops it: a rotated key whose grace
 * period ends before its expiry stops then, and its expiry is moot (and the other way round).
 */
function endOf(key: ApiKeyRecord, deadline: EndingKeysQuery['deadline']): { at: Date; reason: Reason } | undefined {
  if (key.revokedAt !== null) return undefined
  const { expiresAt, graceExpiresAt } = key
  const graceEnds = key.replacedByKeyId !== null ? graceExpiresAt : null
  if (deadline === 'expiresAt') {
    if (expiresAt === null || (graceEnds !== null && graceEnds.getTime() < expiresAt.getTime())) return undefined
    return { at: expiresAt, reason: 'expires_at' }
  }
  if (graceEnds === null || (expiresAt !== null && expiresAt.getTime() <= graceEnds.getTime())) return undefined
  return { at: graceEnds, reason: 'rotation_grace' }
}

async function* pages(store: KeyStore, query: Omit<EndingKeysQuery, 'after' | 'limit'>): AsyncGenerator<ApiKeyRecord[]> {
  let after: EndingKeysQuery['after']
  for (;;) {
    const keys = await store.findKeysEnding({ ...query, after, limit: PAGE })
    if (keys.length > 0) yield keys
    const last = keys.at(-1)
    if (keys.length < PAGE || last === undefined) return
    after = { at: last[query.deadline] as Date, id: last.id }
  }
}
