import { and, type Column, eq, gt, isNotNull, isNull, lt, lte, or, type SQL, sql } from 'drizzle-orm'
import type { KeyStatus, ListCursor } from '../core/types.js'

/**
 * Query pieces shared by every dialect: drizzle's operators are dialect-neutral, so the meaning of
 * a derived status is written once. It must agree with `statusOf` in core/decide.ts (the store
 * contract suite checks that it does).
 */
export interface KeyColumns {
  revokedAt: Column
  expiresAt: Column
  replacedByKeyId: Column
  graceExpiresAt: Column
  createdAt: Column
  id: Column
}

export function statusCondition(table: KeyColumns, status: KeyStatus, now: Date): SQL {
  const notRevoked = isNull(table.revokedAt)
  const notExpired = or(isNull(table.expiresAt), gt(table.expiresAt, now)) as SQL
  switch (status) {
    case 'revoked':
      return isNotNull(table.revokedAt)
    case 'expired':
      return and(notRevoked, isNotNull(table.expiresAt), lte(table.expiresAt, now)) as SQL
    case 'active':
      return and(notRevoked, notExpired, isNull(table.replacedByKeyId)) as SQL
    case 'rotating':
      return and(notRevoked, notExpired, isNotNull(table.replacedByKeyId), gt(table.graceExpiresAt, now)) as SQL
    case 'rotated':
      return and(
        notRevoked,
        notExpired,
        isNotNull(table.replacedByKeyId),
        or(isNull(table.graceExpiresAt), lte(table.graceExpiresAt, now)),
      ) as SQL
  }
}

/**
 * Rows strictly after the cursor in (created_at desc, id desc) order. `id` may be an expression, so
 * a dialect can compare ids byte-wise whatever the database's collation (PostgreSQL: `collate "C"`).
 */
export function afterCursor(table: { createdAt: Column; id: Column | SQL }, cursor: ListCursor): SQL {
  return or(lt(table.createdAt, cursor.createdAt), and(eq(table.createdAt, cursor.createdAt), sql`${table.id} < ${cursor.id}`)) as SQL
}

/** One usage row per (key, UTC day): the summed count and the latest use, in milliseconds. */
export interface UsageRow {
  keyId: string
  day: string
  count: number
  lastUsedAt: number
}

/**
 * The increments of a flush as one row per (key, day): a multi-row upsert may not touch one row
 * twice (PostgreSQL). Lock order is the SQL's business (the PostgreSQL statement sorts its rows).
 */
export function usageRows(increments: readonly { keyId: string; day: string; count: number; lastUsedAt: Date }[]): UsageRow[] {
  const rows = new Map<string, UsageRow>()
  for (const { keyId, day, count, lastUsedAt } of increments) {
    const id = `${keyId}\u0000${day}`
    const at = lastUsedAt.getTime()
    const row = rows.get(id)
    if (row === undefined) rows.set(id, { keyId, day, count, lastUsedAt: at })
    else {
      row.count += count
      if (at > row.lastUsedAt) row.lastUsedAt = at
    }
  }
  return [...rows.values()]
}
