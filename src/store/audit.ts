import { and, asc, type Column, eq, gt, gte, isNotNull, isNull, lt, lte, or, type SQL, sql } from 'drizzle-orm'
import type { AuditEvent, ListEventsQuery } from '../core/audit/types.js'
import type { EndingKeysQuery } from '../core/store.js'
import type { KeyColumns } from './conditions.js'

/**
 * The audit log's queries every dialect shares (issue 15), as conditions.ts does for keys: what a
 * query means is written once, each store only says how to run it.
 */
export interface EventColumns {
  seq: Column
  id: Column
  type: Column
  tenantId: Column
  projectId: Column
  environment: Column
  keyId: Column
  actorType: Column
  actorId: Column
  occurredAt: Column
  ip: Column
  userAgent: Column
  requestId: Column
  details: Column
}

/** An event as a row: the actor in two columns, so it can be filtered on. */
export function eventRow(event: AuditEvent) {
  const { actor, ...rest } = event
  return { ...rest, actorType: actor.type, actorId: actor.id }
}

/** The selection that reads a row back as a `StoredEvent` (drizzle nests `actor`). */
export function eventSelection<T extends EventColumns>(
  table: T,
): Omit<Pick<T, keyof EventColumns>, 'actorType' | 'actorId'> & { actor: { type: T['actorType']; id: T['actorId'] } } {
  return {
    seq: table.seq,
    id: table.id,
    type: table.type,
    tenantId: table.tenantId,
    projectId: table.projectId,
    environment: table.environment,
    keyId: table.keyId,
    actor: { type: table.actorType, id: table.actorId },
    occurredAt: table.occurredAt,
    ip: table.ip,
    userAgent: table.userAgent,
    requestId: table.requestId,
    details: table.details,
  }
}

/** A page of events (newest first: occurred_at desc, seq desc) within what the caller may see. */
export function eventsCondition(table: EventColumns, query: ListEventsQuery): SQL {
  const { after } = query
  return and(
    eq(table.tenantId, query.tenantId),
    query.projectId !== undefined ? eq(table.projectId, query.projectId) : undefined,
    query.environment !== undefined ? eq(table.environment, query.environment) : undefined,
    query.keyId !== undefined ? eq(table.keyId, query.keyId) : undefined,
    query.type !== undefined ? eq(table.type, query.type) : undefined,
    query.since !== undefined ? gte(table.occurredAt, query.since) : undefined,
    after !== undefined
      ? or(lt(table.occurredAt, after.occurredAt), and(eq(table.occurredAt, after.occurredAt), lt(table.seq, after.seq)))
      : undefined,
  ) as SQL
}

/**
 * Keys that stop working in (from, to] by one deadline, after the keyset position: not revoked,
 * and for the end of a grace period, rotated. `id` may be a byte-wise expression (PostgreSQL).
 */
export function endingCondition(table: KeyColumns, query: EndingKeysQuery, id: Column | SQL = table.id): SQL {
  const deadline = table[query.deadline]
  const { after } = query
  return and(
    isNull(table.revokedAt),
    query.deadline === 'graceExpiresAt' ? isNotNull(table.replacedByKeyId) : undefined,
    gt(deadline, query.from),
    lte(deadline, query.to),
    after !== undefined ? or(gt(deadline, after.at), and(eq(deadline, after.at), sql`${id} > ${after.id}`)) : undefined,
  ) as SQL
}

export function endingOrder(table: KeyColumns, query: EndingKeysQuery, id: Column | SQL = table.id): SQL[] {
  return [asc(table[query.deadline]), asc(id)]
}

/** Deliveries that will not be attempted again (what retention may delete). */
export function settledBefore(table: { status: Column; createdAt: Column }, before: Date): SQL {
  return and(lt(table.createdAt, before), or(eq(table.status, 'succeeded'), eq(table.status, 'failed'))) as SQL
}
