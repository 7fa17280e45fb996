import { z } from 'zod'
import { fail, ok, type Result } from '../errors.js'
import { checkActor, parseInput } from '../management/inputs.js'
import { listFilter, requireScope } from '../management/policy.js'
import type { Runtime } from '../runtime.js'
import type { Actor } from '../types.js'
import { type AuditEvent, EVENT_TYPES, type EventType } from './types.js'

export interface ListEventsInput {
  /** Only events about this key. */
  keyId?: string
  type?: EventType
  /** Only events at or after this instant (Date or ISO 8601 string). */
  since?: Date | string
  /** @default 20 */
  limit?: number
  /** From the previous page's `nextCursor`. */
  cursor?: string
}

export interface EventPage {
  items: AuditEvent[]
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null
}

const listEventsInputSchema = z.strictObject({
  keyId: z.string().max(64).optional(),
  type: z.enum(EVENT_TYPES).optional(),
  since: z.union([z.date(), z.iso.datetime({ offset: true })]).optional(),
  limit: z.number().int().min(1).max(100).optional(),
  cursor: z.string().max(512).optional(),
})

/**
 * A page of the audit events the caller may see, newest first. Visibility is the keys' own
 * (`listFilter`, management/policy.ts): the caller's tenant, its project when it is bound to one,
 * and for a test key only events about test keys. Asking for another key's events just finds none.
 */
export async function listEvents(runtime: Runtime, actor: Actor, input: ListEventsInput = {}): Promise<Result<EventPage>> {
  const denied = checkActor(actor) ?? requireScope(actor, 'api_keys:read')
  if (denied) return denied
  const parsed = parseInput(listEventsInputSchema, input)
  if (!parsed.ok) return parsed
  const { keyId, type, since, limit = 20, cursor } = parsed.value
  const after = cursor === undefined ? undefined : decodeEventCursor(cursor)
  if (cursor !== undefined && after === undefined) {
    return fail('validation_error', 'The cursor is not valid.', [{ field: 'cursor', message: 'is not a cursor this API issued' }])
  }
  const visible = listFilter(actor, {})
  if (visible === null) return ok({ items: [], nextCursor: null })
  return runtime.guard(async (store) => {
    const rows = await store.listEvents({
      tenantId: actor.tenantId,
      ...visible,
      keyId,
      type,
      since: since === undefined ? undefined : new Date(since),
      after,
      limit: limit + 1,
    })
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    const nextCursor = rows.length > limit && last !== undefined ? encodeEventCursor(last) : null
    return ok({ items: page.map(({ seq: _seq, ...event }) => event), nextCursor })
  })
}

/**
 * Event page cursors: the (occurred_at, seq) position of a page's last event, base64url-encoded,
 * like the key list's. The store's insertion sequence breaks ties between events of one instant
 * (an injected clock, a burst of changes) in the order they were written.
 */
export function encodeEventCursor(position: { occurredAt: Date; seq: number }): string {
  return Buffer.from(`${position.occurredAt.getTime()}.${position.seq}`).toString('base64url')
}

export function decodeEventCursor(cursor: string): { occurredAt: Date; seq: number } | undefined {
  const match = /^(\d{1,15})\.(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'))
  if (match === null) return undefined
  return { occurredAt: new Date(Number(match[1])), seq: Number(match[2]) }
}
