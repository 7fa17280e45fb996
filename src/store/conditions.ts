import { and, type Column, eq, gt, inArray, isNotNull, isNull, lt, lte, or, type SQL, sql, type Table } from 'drizzle-orm'
import { type CreditAdjustment, type RotateRequest, VERIFICATION_FIELDS } from '../core/store.js'
import type { KeyPatch, KeyStatus, ListCursor, ListKeysQuery, UsageIncrement } from '../core/types.js'

/**
 * The WHERE clauses every dialect shares: drizzle's operators are dialect-neutral, so what a query
 * means is written once and each store only says how to run it. The derived status must agree with
 * `statusOf` in core/records.ts (the store contract suite checks that it does).
 */
export interface KeyColumns {
  id: Column
  tenantId: Column
  projectId: Column
  environment: Column
  revokedAt: Column
  expiresAt: Column
  replacedByKeyId: Column
  graceExpiresAt: Column
  createdAt: Column
  nextRotationAt: Column
  disabledAt: Column
}

export interface DeliveryColumns {
  id: Column
  tenantId: Column
  keyId: Column
  status: Column
  nextAttemptAt: Column
  lockedUntil: Column
  endpointId: Column
}

/** One key of one tenant: a tenant never reaches another tenant's row by id. */
export function keyOfTenant(table: KeyColumns, tenantId: string, id: string): SQL {
  return and(eq(table.tenantId, tenantId), eq(table.id, id)) as SQL
}

/**
 * A page of a listing. `id` may be an expression, so a dialect can compare ids byte-wise whatever
 * the database's collation (PostgreSQL: `collate "C"`).
 */
export function listCondition(table: KeyColumns, query: ListKeysQuery, id: Column | SQL = table.id): SQL {
  return and(
    eq(table.tenantId, query.tenantId),
    query.projectId !== undefined ? eq(table.projectId, query.projectId) : undefined,
    query.environment !== undefined ? eq(table.environment, query.environment) : undefined,
    query.status !== undefined ? statusCondition(table, query.status, query.now) : undefined,
    query.after !== undefined ? afterCursor({ createdAt: table.createdAt, id }, query.after) : undefined,
  ) as SQL
}

/**
 * The old key of a rotation, only while it may still be rotated: not replaced, not revoked, and
 * (scheduled rotation) still due at the time the scheduler read. This update is the lock: of two
 * concurrent rotations only one matches.
 */
export function rotatableCondition(
  table: KeyColumns,
  request: Pick<RotateRequest, 'tenantId' | 'oldKeyId' | 'expectedNextRotationAt'>,
): SQL {
  return and(
    keyOfTenant(table, request.tenantId, request.oldKeyId),
    isNull(table.replacedByKeyId),
    isNull(table.revokedAt),
    request.expectedNextRotationAt !== undefined ? eq(table.nextRotationAt, request.expectedNextRotationAt) : undefined,
  ) as SQL
}

/** Keys whose scheduled rotation is due. */
export function dueForRotation(table: KeyColumns, now: Date): SQL {
  return and(lte(table.nextRotationAt, now), isNull(table.revokedAt), isNull(table.replacedByKeyId)) as SQL
}

/** A delivery no claimant holds at `now`. */
export function unlocked(table: DeliveryColumns, now: Date): SQL {
  return or(isNull(table.lockedUntil), lte(table.lockedUntil, now)) as SQL
}

/** Deliveries due for an attempt and not held by another claimant (only `ids`, when given). */
export function claimableDelivery(table: DeliveryColumns, now: Date, ids?: string[]): SQL {
  return and(
    eq(table.status, 'pending'),
    lte(table.nextAttemptAt, now),
    unlocked(table, now),
    ids !== undefined ? inArray(table.id, ids) : undefined,
  ) as SQL
}

/** A tenant's rotation webhook deliveries for these keys (not the event deliveries to its endpoints). */
export function deliveriesOf(table: DeliveryColumns, tenantId: string, keyIds: string[]): SQL {
  return and(eq(table.tenantId, tenantId), inArray(table.keyId, keyIds), isNull(table.endpointId)) as SQL
}

/** Usage rows of these keys from `fromDay` on. */
export function usageSince(table: { keyId: Column; day: Column }, keyIds: string[], fromDay: string): SQL {
  return and(inArray(table.keyId, keyIds), sql`${table.day} >= ${fromDay}`) as SQL
}

/**
 * A key's `last_used_at` as every read of a key returns it: the latest use recorded on the latest
 * day the key was used (api_key_usage, one seek on its primary key), or `api_keys.last_used_at` when
 * that is later. Since migration 0005 a usage flush writes only api_key_usage: moving a column of
 * the wide, randomly placed `api_keys` rows as well rewrote a page of that table per key per flush,
 * the pages every verification miss reads. The column now only holds what was recorded before
 * 0005. A day's uses fall on that day, so the latest day holds the latest use (across instances,
 * up to their clocks' skew at midnight). `later` is the dialect's null-ignoring greatest.
 */
export function latestUse(
  keys: { id: Column; lastUsedAt: Column },
  usage: Table & { keyId: Column; day: Column; lastUsedAt: Column },
  later: (stored: Column, recorded: SQL) => SQL,
): SQL {
  return later(
    keys.lastUsedAt,
    sql`(select ${usage.lastUsedAt} from ${usage}
      where ${usage.keyId} = ${keys.id} and ${usage.lastUsedAt} is not null
      order by ${usage.day} desc limit 1)`,
  ).mapWith(keys.lastUsedAt)
}

/** A key table's columns for the verification read (`VERIFICATION_FIELDS` in core/store.ts), in that order. */
export function verificationColumns<T extends Record<(typeof VERIFICATION_FIELDS)[number], Column>>(
  columns: T,
): Pick<T, (typeof VERIFICATION_FIELDS)[number]> {
  return Object.fromEntries(VERIFICATION_FIELDS.map((field) => [field, columns[field]])) as Pick<T, (typeof VERIFICATION_FIELDS)[number]>
}

export function statusCondition(
  table: Pick<KeyColumns, 'revokedAt' | 'expiresAt' | 'replacedByKeyId' | 'graceExpiresAt' | 'disabledAt'>,
  status: KeyStatus,
  now: Date,
): SQL {
  const notRevoked = isNull(table.revokedAt)
  const notExpired = or(isNull(table.expiresAt), gt(table.expiresAt, now)) as SQL
  // Revoked, then expired, then disabled, then the rotation states: the order of `statusOf`.
  const live = and(notRevoked, notExpired, isNull(table.disabledAt)) as SQL
  switch (status) {
    case 'revoked':
      return isNotNull(table.revokedAt)
    case 'expired':
      return and(notRevoked, isNotNull(table.expiresAt), lte(table.expiresAt, now)) as SQL
    case 'disabled':
      return and(notRevoked, notExpired, isNotNull(table.disabledAt)) as SQL
    case 'active':
      return and(live, isNull(table.replacedByKeyId)) as SQL
    case 'rotating':
      return and(live, isNotNull(table.replacedByKeyId), gt(table.graceExpiresAt, now)) as SQL
    case 'rotated':
      return and(live, isNotNull(table.replacedByKeyId), or(isNull(table.graceExpiresAt), lte(table.graceExpiresAt, now))) as SQL
  }
}

/** Rows strictly after the cursor in (created_at desc, id desc) order. */
export function afterCursor(table: { createdAt: Column; id: Column | SQL }, cursor: ListCursor): SQL {
  return or(lt(table.createdAt, cursor.createdAt), and(eq(table.createdAt, cursor.createdAt), sql`${table.id} < ${cursor.id}`)) as SQL
}

/** One usage row per (key, UTC day): the summed counts and the latest use, in milliseconds (0: none). */
export interface UsageRow {
  keyId: string
  day: string
  count: number
  rateLimited: number
  creditsRefused: number
  lastUsedAt: number
}

/**
 * The increments of a flush as one row per (key, day): a multi-row upsert may not touch one row
 * twice (PostgreSQL). Lock order is the SQL's business (the PostgreSQL statement sorts its rows).
 */
export function usageRows(increments: readonly UsageIncrement[]): UsageRow[] {
  const rows = new Map<string, UsageRow>()
  for (const increment of increments) {
    const id = `${increment.keyId}\u0000${increment.day}`
    const at = increment.lastUsedAt?.getTime() ?? 0
    const row = rows.get(id)
    if (row === undefined) {
      rows.set(id, {
        keyId: increment.keyId,
        day: increment.day,
        count: increment.count,
        rateLimited: increment.rateLimited ?? 0,
        creditsRefused: increment.creditsRefused ?? 0,
        lastUsedAt: at,
      })
    } else {
      row.count += increment.count
      row.rateLimited += increment.rateLimited ?? 0
      row.creditsRefused += increment.creditsRefused ?? 0
      if (at > row.lastUsedAt) row.lastUsedAt = at
    }
  }
  return [...rows.values()]
}

/**
 * A patch as the columns it sets. Setting credits writes its four columns and moves
 * `credits_version` on in SQL (never a read-modify-write), so what any process leased or counted
 * under the earlier setting can never be added back to the new one.
 */
export function patchColumns(patch: KeyPatch, creditsVersion: Column, now: Date): Record<string, unknown> {
  const { credits, ...rest } = patch
  const set: Record<string, unknown> = { ...rest, updatedAt: now }
  if (credits !== undefined) {
    set.creditsRemaining = credits.remaining
    set.creditsRefillAmount = credits.refillAmount
    set.creditsRefillInterval = credits.refillInterval
    set.creditsRefilledAt = credits.refilledAt
    set.creditsVersion = sql`${creditsVersion} + 1`
  }
  return set
}

/** The credit columns of a key, for the store's credit operations (see `effectiveCredits`). */
export function creditColumns<T extends CreditColumns>(table: T): Pick<T, keyof CreditColumns> {
  return {
    creditsRemaining: table.creditsRemaining,
    creditsRefillAmount: table.creditsRefillAmount,
    creditsRefillInterval: table.creditsRefillInterval,
    creditsRefilledAt: table.creditsRefilledAt,
    creditsVersion: table.creditsVersion,
  }
}

export interface CreditColumns {
  creditsRemaining: Column
  creditsRefillAmount: Column
  creditsRefillInterval: Column
  creditsRefilledAt: Column
  creditsVersion: Column
}

export interface LineageColumns {
  id: Column
  lineageId: Column
  replacedByKeyId: Column
}

/**
 * The row that holds a lineage's credits: its head, the one key of the lineage not replaced (a
 * rotation replaces its old key and inserts the new head in one transaction, so there is exactly
 * one). Credits leased, returned or settled after a rotation thus reach the successor, whichever
 * row they were counted under. Written as `lineage_id = $l or (lineage_id is null and id = $l)`
 * rather than `coalesce(lineage_id, id) = $l`: the first key of a lineage (lineage_id null) is
 * found by the primary key, its successors by `api_keys_lineage_idx`, where the coalesce would
 * need an expression index of its own.
 */
export function lineageHead(table: LineageColumns, lineageId: string): SQL {
  return and(inLineage(table, lineageId), isNull(table.replacedByKeyId)) as SQL
}

/** Every key of a lineage: its first key (lineage_id null) and the successors that name it. */
function inLineage(table: LineageColumns, lineageId: string): SQL {
  return or(eq(table.lineageId, lineageId), and(isNull(table.lineageId), eq(table.id, lineageId))) as SQL
}

/**
 * A lineage's replaced keys still in their grace period. They verify with the head's controls
 * (limits, credits, allowlist), so a change to the head is logged for them too: every instance then
 * drops their cached copy of the head's old settings within the staleness bound.
 */
export function lineageInGrace(table: LineageColumns & { graceExpiresAt: Column }, lineageId: string, now: Date): SQL {
  return and(inLineage(table, lineageId), isNotNull(table.replacedByKeyId), gt(table.graceExpiresAt, now)) as SQL
}

/** The head of the lineage whose credits are still the setting and period an adjustment was counted under. */
export function creditSetting(table: LineageColumns & CreditColumns, item: CreditAdjustment): SQL {
  return and(
    lineageHead(table, item.lineageId),
    eq(table.creditsVersion, item.version),
    eq(table.creditsRefilledAt, item.refilledAt),
  ) as SQL
}

/** Whether a row's credits (with a due refill applied) are the setting and period of an adjustment. */
export function sameSetting(row: { creditsVersion: number }, effective: { refilledAtMs: number }, item: CreditAdjustment): boolean {
  return row.creditsVersion === item.version && effective.refilledAtMs === item.refilledAt.getTime()
}
