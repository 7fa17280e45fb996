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

/** Several increments of one key (two UTC days around midnight) reduced to its latest use. */
export function latestUsePerKey(increments: { keyId: string; lastUsedAt: Date }[]): Map<string, Date> {
  const latest = new Map<string, Date>()
  for (const { keyId, lastUsedAt } of increments) {
    const seen = latest.get(keyId)
    if (seen === undefined || lastUsedAt > seen) latest.set(keyId, lastUsedAt)
  }
  return latest
}

/** Splits a list for statements with a bound on parameters. */
export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}
