/**
 * The SQLite implementation of the whole `KeyStore` contract (src/core/store.ts): keys, change
 * log, usage, credits, deliveries and the audit log. It is over 400 lines because the contract is:
 * each method is a short query or one transaction, and they share the table handles, the
 * transaction helper and the row mapping; the WHERE clauses both stores use live in
 * ../conditions.ts. Splitting it by table would split transactions that span tables.
 */
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { and, asc, Column, desc, eq, getTableColumns, gt, inArray, isNull, lt, lte, sql, sum } from 'drizzle-orm'
import { type BetterSQLite3Database, drizzle } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import type { ListEventsQuery, StoredEvent, WebhookEndpointRecord } from '../../core/audit/types.js'
import { effectiveCredits } from '../../core/controls/credits.js'
import { inheritLineage, lineageOf } from '../../core/records.js'
import {
  type AuditOf,
  type AuditWrite,
  type ChangeBatch,
  type CreditAdjustment,
  type CreditLease,
  type EndingKeysQuery,
  type KeyStore,
  type RotateOutcome,
  type RotateRequest,
  type StoredKey,
  StoreUnavailableError,
} from '../../core/store.js'
import type { ApiKeyRecord, AuditActor, KeyPatch, ListKeysQuery, UsageDay, UsageIncrement, WebhookDelivery } from '../../core/types.js'
import { endingCondition, endingOrder, eventRow, eventSelection, eventsCondition, settledBefore } from '../audit.js'
import {
  claimableDelivery,
  creditColumns,
  creditSetting,
  deliveriesOf,
  dueForRotation,
  keyOfTenant,
  latestUse,
  lineageHead,
  lineageInGrace,
  listCondition,
  patchColumns,
  rotatableCondition,
  sameSetting,
  unlocked,
  usageRows,
  usageSince,
  verificationColumns,
} from '../conditions.js'
import { sqlitePathFromUrl } from '../open.js'
import * as schema from './schema.js'
import { apiKeyChanges, apiKeys, apiKeyUsage, auditEvents, webhookDeliveries, webhookEndpoints } from './schema.js'
import { USAGE_UPSERT, UsageWriter, type WriterFailure } from './usage-writer.js'

export { schema }

const MIGRATIONS = fileURLToPath(new URL('../../../drizzle/sqlite', import.meta.url))

export interface SqliteStoreOptions {
  /**
   * A file path (`./keyward.db`, `file:./keyward.db`, `sqlite:./keyward.db`) or `:memory:`.
   * @default './keyward.db'
   */
  url?: string
  /** Use this open better-sqlite3 database (or a drizzle instance over one) instead of `url`. */
  database?: Database.Database | BetterSQLite3Database<Record<string, unknown>>
  /**
   * Apply the migrations in drizzle/sqlite when the store opens.
   * @default true
   */
  migrate?: boolean
}

type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database }

/**
 * Opens (and migrates) an SQLite key store. WAL mode lets readers and the one writer of several
 * processes work side by side; `busy_timeout` makes a writer wait for the lock instead of failing.
 */
export function createSqliteStore(options: SqliteStoreOptions = {}): SqliteStore {
  let client: Database.Database
  let owned = false
  if (options.database !== undefined) {
    const given = options.database as Database.Database & { $client?: Database.Database }
    client = given.$client ?? given
  } else {
    const url = options.url ?? './keyward.db'
    client = new Database(sqlitePathFromUrl(url))
    owned = true
    // Reads through a memory map and a 16 MiB page cache instead of a read() per page missed by
    // SQLite's 2 MiB default: a cache miss of the verification cache is a B-tree walk, and on a
    // database larger than the page cache each uncached page was a system call (about half the
    // cost of a miss on a 200,000-key store). Set only on a connection keyward opened itself;
    // a host's own `database` keeps the host's settings.
    client.pragma('mmap_size = 268435456')
    client.pragma('cache_size = -16384')
  }
  client.pragma('journal_mode = WAL')
  client.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`)
  client.pragma('synchronous = NORMAL')
  const db = drizzle(client, { schema })
  if (options.migrate !== false) migrateWithRetry(db)
  // A file keyward opened itself gets a writer thread for large usage flushes; an in-memory
  // database has no file another connection could open, and a host's own connection keeps every
  // write on it.
  const writer = owned && !client.memory ? new UsageWriter(resolve(client.name), BUSY_TIMEOUT_MS, writerError) : undefined
  return new SqliteStore(db, client, owned, writer)
}

/** Two processes opening a new file at once can both try the first migration; the loser retries. */
function migrateWithRetry(db: Db): void {
  for (let attempt = 1; ; attempt++) {
    try {
      // Our own bookkeeping table, so keyward's migrations never mix with the host app's drizzle ones.
      migrate(db, { migrationsFolder: MIGRATIONS, migrationsTable: '__keyward_migrations' })
      return
    } catch (error) {
      if (attempt >= 5) throw error
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50 * attempt)
    }
  }
}

const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|CANTOPEN|IOERR|FULL|PROTOCOL|NOTADB|CORRUPT|READONLY)/

function guard<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work())
  } catch (error) {
    return Promise.reject(storeError(error))
  }
}

/** A driver error as the store contract throws it: `StoreUnavailableError` when the database cannot be used. */
function storeError(error: unknown): unknown {
  const code = (error as { code?: unknown }).code
  if ((typeof code === 'string' && UNAVAILABLE_CODES.test(code)) || (error instanceof TypeError && /not open/.test(error.message))) {
    return new StoreUnavailableError(`SQLite store unavailable: ${(error as Error).message}`, { cause: error })
  }
  return error
}

/** The writer thread's report of a failed write, as the driver's error would have been. */
function writerError(failure: WriterFailure): unknown {
  return storeError(Object.assign(new Error(failure.message), failure.code === undefined ? {} : { code: failure.code }))
}

/** From this many rows a usage flush is written by the writer thread (see `UsageWriter`). */
export const OFF_THREAD_USAGE_ROWS = 1000
const BUSY_TIMEOUT_MS = 5000

/**
 * Decodes a row read as an array (the selection's columns, in order) into the selection's shape,
 * each value through its column's own decoder (JSON, timestamps), as drizzle's select would. For
 * the verification read, which every cache miss makes: drizzle's generic mapper checks each field's
 * kind and walks its path per row, about a third of a miss on SQLite; this decides once per column.
 */
function rowDecoder<T>(selection: Record<string, Column>): (row: unknown[]) => T {
  const fields = Object.entries(selection).map(([name, column]) => ({
    name,
    // A column whose decoder is the base class's passes the driver's value through: skip the call.
    column: column.mapFromDriverValue === Column.prototype.mapFromDriverValue ? null : column,
  }))
  return (row) => {
    const decoded: Record<string, unknown> = {}
    for (let i = 0; i < fields.length; i++) {
      const { name, column } = fields[i] as (typeof fields)[number]
      const value = row[i]
      decoded[name] = value === null || column === null ? value : column.mapFromDriverValue(value)
    }
    return decoded as T
  }
}

/** The verification read's columns (see `VERIFICATION_FIELDS`). */
const storedKeyRow = verificationColumns(getTableColumns(apiKeys))
const decodeStoredKey = rowDecoder<StoredKey>(storedKeyRow)

/** Every column of a key, with its `last_used_at` as recorded in api_key_usage (see `latestUse`). */
const keyRow = {
  ...getTableColumns(apiKeys),
  lastUsedAt: latestUse(apiKeys, apiKeyUsage, (stored, recorded) => sql`nullif(max(coalesce(${stored}, 0), coalesce(${recorded}, 0)), 0)`),
}

export class SqliteStore implements KeyStore {
  readonly dialect = 'sqlite'
  /** The verification read: drizzle's SQL, run as an array-row statement and decoded by `decodeStoredKey`. */
  readonly #findByHash: Database.Statement<[string], unknown[]>

  constructor(
    /** The drizzle instance, for host apps that want to query keyward's tables themselves. */
    readonly db: Db,
    private readonly client: Database.Database,
    private readonly owned: boolean,
    /** Writes usage flushes of `OFF_THREAD_USAGE_ROWS` or more; absent for in-memory and host connections. */
    private readonly writer?: UsageWriter,
  ) {
    const query = db
      .select(storedKeyRow)
      .from(apiKeys)
      .where(eq(apiKeys.keyHash, sql.placeholder('keyHash')))
      .toSQL()
    this.#findByHash = client.prepare<[string], unknown[]>(query.sql).raw()
  }

  #readByHash(keyHash: string): StoredKey | null {
    const row = this.#findByHash.get(keyHash)
    return row === undefined ? null : decodeStoredKey(row)
  }

  insertKey(record: ApiKeyRecord, audit?: AuditWrite): Promise<void> {
    if (audit === undefined) {
      return guard(() => {
        this.db.insert(apiKeys).values(record).run()
      })
    }
    return guard(() =>
      this.db.transaction(
        (tx) => {
          tx.insert(apiKeys).values(record).run()
          writeAudit(tx, audit)
        },
        { behavior: 'immediate' },
      ),
    )
  }

  findKeyByHash(keyHash: string): Promise<StoredKey | null> {
    return guard(() => this.#readByHash(keyHash))
  }

  findKeysByHash(keyHashes: readonly string[]): Promise<StoredKey[]> {
    // Point lookups on the unique index, in one synchronous call: no round trips to save here.
    return guard(() =>
      keyHashes.flatMap((keyHash) => {
        const row = this.#readByHash(keyHash)
        return row === null ? [] : [row]
      }),
    )
  }

  findKey(tenantId: string, id: string): Promise<ApiKeyRecord | null> {
    return guard(
      () =>
        (this.db
          .select(keyRow)
          .from(apiKeys)
          .where(keyOfTenant(apiKeys, tenantId, id))
          .get() as ApiKeyRecord | undefined) ?? null,
    )
  }

  listKeys(query: ListKeysQuery): Promise<ApiKeyRecord[]> {
    return guard(
      () =>
        this.db
          .select(keyRow)
          .from(apiKeys)
          .where(listCondition(apiKeys, query))
          .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id))
          .limit(query.limit)
          .all() as ApiKeyRecord[],
    )
  }

  updateKey(tenantId: string, id: string, patch: KeyPatch, now: Date, audit?: AuditOf): Promise<ApiKeyRecord | null> {
    return guard(() =>
      this.db.transaction(
        (tx) => {
          // Read under the write lock (BEGIN IMMEDIATE): the audit's "before" is exact however many
          // processes update the key at once.
          const before =
            audit === undefined
              ? undefined
              : (tx
                  .select(keyRow)
                  .from(apiKeys)
                  .where(keyOfTenant(apiKeys, tenantId, id))
                  .get() as ApiKeyRecord | undefined)
          if (audit !== undefined && before === undefined) return null
          const row = tx
            .update(apiKeys)
            .set(patchColumns(patch, apiKeys.creditsVersion, now))
            .where(keyOfTenant(apiKeys, tenantId, id))
            .returning(keyRow)
            .get() as ApiKeyRecord | undefined
          if (row === undefined) return null
          tx.insert(apiKeyChanges).values({ keyHash: row.keyHash, changedAt: now }).run()
          for (const { keyHash } of tx
            .select({ keyHash: apiKeys.keyHash })
            .from(apiKeys)
            .where(lineageInGrace(apiKeys, lineageOf(row), now))
            .all())
            tx.insert(apiKeyChanges).values({ keyHash, changedAt: now }).run()
          const write = before === undefined ? undefined : audit?.(before, row)
          if (write !== undefined) writeAudit(tx, write)
          return row
        },
        { behavior: 'immediate' },
      ),
    )
  }

  revokeKey(
    tenantId: string,
    id: string,
    now: Date,
    revokedBy: AuditActor | null = null,
    audit?: (revoked: ApiKeyRecord) => AuditWrite,
  ): Promise<ApiKeyRecord | null> {
    return guard(() =>
      this.db.transaction(
        (tx) => {
          // Only a key not yet revoked changes: a second revoke keeps the first one's time and actor
          // and writes nothing (no event for a change that did not happen).
          const row = tx
            .update(apiKeys)
            .set({ revokedAt: now, revokedBy, updatedAt: now })
            .where(and(keyOfTenant(apiKeys, tenantId, id), isNull(apiKeys.revokedAt)))
            .returning(keyRow)
            .get() as ApiKeyRecord | undefined
          if (row === undefined) {
            return (
              (tx
                .select(keyRow)
                .from(apiKeys)
                .where(keyOfTenant(apiKeys, tenantId, id))
                .get() as ApiKeyRecord | undefined) ?? null
            )
          }
          tx.insert(apiKeyChanges).values({ keyHash: row.keyHash, changedAt: now }).run()
          if (audit !== undefined) writeAudit(tx, audit(row))
          return row
        },
        { behavior: 'immediate' },
      ),
    )
  }

  rotateKey(request: RotateRequest): Promise<RotateOutcome> {
    const { tenantId, oldKeyId, newKey, graceExpiresAt, now, delivery, audit } = request
    return guard(() =>
      this.db.transaction(
        (tx): RotateOutcome => {
          // The conditional update is the lock: of two concurrent rotations only one matches.
          const oldKey = tx
            .update(apiKeys)
            .set({ replacedByKeyId: newKey.id, graceExpiresAt, nextRotationAt: null, updatedAt: now })
            .where(rotatableCondition(apiKeys, request))
            .returning(keyRow)
            .get() as ApiKeyRecord | undefined
          if (oldKey === undefined) {
            const current = tx
              .select(keyRow)
              .from(apiKeys)
              .where(keyOfTenant(apiKeys, tenantId, oldKeyId))
              .get()
            if (current === undefined) return { ok: false, reason: 'not_found' }
            if (current.revokedAt !== null) return { ok: false, reason: 'key_revoked' }
            if (current.replacedByKeyId !== null) return { ok: false, reason: 'already_rotated' }
            return { ok: false, reason: 'not_due' }
          }
          // The successor continues the lineage and its credits as the old row holds them now,
          // inside this write lock (a lease or settlement since the caller read it is not lost).
          const successor = inheritLineage(oldKey, newKey)
          tx.insert(apiKeys).values(successor).run()
          tx.insert(apiKeyChanges).values({ keyHash: oldKey.keyHash, changedAt: now }).run()
          if (delivery !== undefined) tx.insert(webhookDeliveries).values(delivery).run()
          if (audit !== undefined) writeAudit(tx, audit)
          return { ok: true, oldKey, newKey: successor }
        },
        { behavior: 'immediate' },
      ),
    )
  }

  recordUsage(increments: UsageIncrement[]): Promise<void> {
    if (increments.length === 0) return Promise.resolve()
    // The whole flush is one statement with one parameter (a JSON array), whatever the number of
    // keys: no chunking against SQLite's parameter limit. It writes api_key_usage only; a key's
    // last use is read from there (`latestUse`).
    const buckets = usageRows(increments)
    const rows = JSON.stringify(buckets.map((row) => [row.keyId, row.day, row.count, row.rateLimited, row.creditsRefused, row.lastUsedAt]))
    // Many distinct keys: the writer thread, so the event loop keeps serving (see `UsageWriter`).
    if (this.writer !== undefined && buckets.length >= OFF_THREAD_USAGE_ROWS && this.client.open) return this.writer.write(rows)
    return guard(() =>
      this.db.transaction(
        () => {
          this.client.prepare(USAGE_UPSERT).run(rows)
        },
        // BEGIN IMMEDIATE: take the write lock up front, so a second process cannot make this
        // transaction's snapshot stale between its read and its write (SQLITE_BUSY_SNAPSHOT).
        { behavior: 'immediate' },
      ),
    )
  }

  leaseCredits(lineageId: string, want: number, now: Date): Promise<CreditLease | null> {
    return guard(() =>
      this.db.transaction(
        (tx) => {
          const row = tx
            .select({ id: apiKeys.id, ...creditColumns(apiKeys) })
            .from(apiKeys)
            .where(lineageHead(apiKeys, lineageId))
            .get()
          const effective = row === undefined ? null : effectiveCredits(row, now.getTime())
          if (row === undefined || effective === null) return null
          const granted = Math.min(Math.max(0, want), effective.remaining)
          const refilledAt = new Date(effective.refilledAtMs)
          tx.update(apiKeys)
            .set({ creditsRemaining: effective.remaining - granted, creditsRefilledAt: refilledAt })
            .where(eq(apiKeys.id, row.id))
            .run()
          return { granted, remaining: effective.remaining - granted, version: row.creditsVersion, refilledAt }
        },
        { behavior: 'immediate' },
      ),
    )
  }

  returnCredits(returns: CreditAdjustment[]): Promise<void> {
    if (returns.length === 0) return Promise.resolve()
    return guard(() =>
      this.db.transaction(
        (tx) => {
          for (const item of returns) {
            tx.update(apiKeys)
              .set({ creditsRemaining: sql`${apiKeys.creditsRemaining} + ${item.amount}` })
              .where(creditSetting(apiKeys, item))
              .run()
          }
        },
        { behavior: 'immediate' },
      ),
    )
  }

  settleCredits(spends: CreditAdjustment[], now: Date): Promise<void> {
    if (spends.length === 0) return Promise.resolve()
    return guard(() =>
      this.db.transaction(
        (tx) => {
          for (const item of spends) {
            const row = tx
              .select({ id: apiKeys.id, ...creditColumns(apiKeys) })
              .from(apiKeys)
              .where(lineageHead(apiKeys, item.lineageId))
              .get()
            const effective = row === undefined ? null : effectiveCredits(row, now.getTime())
            if (row === undefined || effective === null || !sameSetting(row, effective, item)) continue
            tx.update(apiKeys)
              .set({ creditsRemaining: Math.max(0, effective.remaining - item.amount), creditsRefilledAt: item.refilledAt })
              .where(eq(apiKeys.id, row.id))
              .run()
          }
        },
        { behavior: 'immediate' },
      ),
    )
  }

  usageByDay(keyIds: string[], fromDay: string): Promise<UsageDay[]> {
    if (keyIds.length === 0) return Promise.resolve([])
    return guard(() =>
      this.db
        .select({
          day: apiKeyUsage.day,
          count: sum(apiKeyUsage.requestCount).mapWith(Number),
          rateLimited: sum(apiKeyUsage.rateLimitedCount).mapWith(Number),
          creditsRefused: sum(apiKeyUsage.creditsRefusedCount).mapWith(Number),
        })
        .from(apiKeyUsage)
        .where(usageSince(apiKeyUsage, keyIds, fromDay))
        .groupBy(apiKeyUsage.day)
        .orderBy(asc(apiKeyUsage.day))
        .all(),
    )
  }

  totalRequests(keyIds: string[]): Promise<number> {
    if (keyIds.length === 0) return Promise.resolve(0)
    return guard(() => {
      const row = this.db
        .select({ total: sum(apiKeyUsage.requestCount).mapWith(Number) })
        .from(apiKeyUsage)
        .where(inArray(apiKeyUsage.keyId, keyIds))
        .get()
      return row?.total ?? 0
    })
  }

  latestChangeSeq(): Promise<number> {
    return guard(
      () =>
        this.db
          .select({ seq: sql<number | null>`max(${apiKeyChanges.seq})` })
          .from(apiKeyChanges)
          .get()?.seq ?? 0,
    )
  }

  readChanges(afterSeq: number, limit: number): Promise<ChangeBatch> {
    return guard(() => {
      const rows = this.db
        .select({ seq: apiKeyChanges.seq, keyHash: apiKeyChanges.keyHash })
        .from(apiKeyChanges)
        .where(gt(apiKeyChanges.seq, afterSeq))
        .orderBy(asc(apiKeyChanges.seq))
        .limit(limit)
        .all()
      return { seq: rows.at(-1)?.seq ?? afterSeq, keyHashes: rows.map((row) => row.keyHash) }
    })
  }

  pruneChanges(before: Date): Promise<void> {
    return guard(() => {
      this.db.delete(apiKeyChanges).where(lte(apiKeyChanges.changedAt, before)).run()
    })
  }

  findDueRotations(now: Date, limit: number): Promise<ApiKeyRecord[]> {
    return guard(
      () =>
        this.db
          .select(keyRow)
          .from(apiKeys)
          .where(dueForRotation(apiKeys, now))
          .orderBy(asc(apiKeys.nextRotationAt))
          .limit(limit)
          .all() as ApiKeyRecord[],
    )
  }

  claimDeliveries(now: Date, lockUntil: Date, limit: number, ids?: string[]): Promise<WebhookDelivery[]> {
    if (ids !== undefined && ids.length === 0) return Promise.resolve([])
    return guard(() =>
      this.db.transaction(
        (tx) => {
          const due = tx
            .select({ id: webhookDeliveries.id })
            .from(webhookDeliveries)
            .where(claimableDelivery(webhookDeliveries, now, ids))
            .orderBy(asc(webhookDeliveries.nextAttemptAt))
            .limit(limit)
            .all()
          if (due.length === 0) return []
          return tx
            .update(webhookDeliveries)
            .set({ lockedUntil: lockUntil })
            .where(
              and(
                inArray(
                  webhookDeliveries.id,
                  due.map((row) => row.id),
                ),
                unlocked(webhookDeliveries, now),
              ),
            )
            .returning()
            .all() as WebhookDelivery[]
        },
        { behavior: 'immediate' },
      ),
    )
  }

  saveDelivery(delivery: WebhookDelivery): Promise<void> {
    return guard(() => {
      const { id, ...rest } = delivery
      this.db.update(webhookDeliveries).set(rest).where(eq(webhookDeliveries.id, id)).run()
    })
  }

  listDeliveries(tenantId: string, keyIds: string[]): Promise<WebhookDelivery[]> {
    if (keyIds.length === 0) return Promise.resolve([])
    return guard(
      () =>
        this.db
          .select()
          .from(webhookDeliveries)
          .where(deliveriesOf(webhookDeliveries, tenantId, keyIds))
          .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
          .all() as WebhookDelivery[],
    )
  }

  // Audit log and event webhooks (issue 15) -------------------------------------------------------

  recordEvents(audit: AuditWrite): Promise<string[]> {
    if (audit.events.length === 0) return Promise.resolve([])
    return guard(() =>
      this.db.transaction(
        (tx) => {
          // An id already stored (the same notice from another scheduler) is skipped, with its deliveries.
          const written = tx
            .insert(auditEvents)
            .values(audit.events.map(eventRow))
            .onConflictDoNothing({ target: auditEvents.id })
            .returning({ id: auditEvents.id })
            .all()
            .map((row) => row.id)
          const ids = new Set(written)
          const deliveries = audit.deliveries.filter((delivery) => delivery.eventId !== null && ids.has(delivery.eventId))
          if (deliveries.length > 0) tx.insert(webhookDeliveries).values(deliveries).run()
          return written
        },
        { behavior: 'immediate' },
      ),
    )
  }

  existingEventIds(ids: string[]): Promise<string[]> {
    if (ids.length === 0) return Promise.resolve([])
    return guard(() =>
      this.db
        .select({ id: auditEvents.id })
        .from(auditEvents)
        .where(inArray(auditEvents.id, ids))
        .all()
        .map((row) => row.id),
    )
  }

  listEvents(query: ListEventsQuery): Promise<StoredEvent[]> {
    return guard(
      () =>
        this.db
          .select(eventSelection(auditEvents))
          .from(auditEvents)
          .where(eventsCondition(auditEvents, query))
          .orderBy(desc(auditEvents.occurredAt), desc(auditEvents.seq))
          .limit(query.limit)
          .all() as StoredEvent[],
    )
  }

  findKeysEnding(query: EndingKeysQuery): Promise<ApiKeyRecord[]> {
    return guard(
      () =>
        this.db
          .select(keyRow)
          .from(apiKeys)
          .where(endingCondition(apiKeys, query))
          .orderBy(...endingOrder(apiKeys, query))
          .limit(query.limit)
          .all() as ApiKeyRecord[],
    )
  }

  pruneAudit(before: Date, limit: number): Promise<number> {
    return guard(() =>
      this.db.transaction(
        (tx) => {
          const oldest = tx
            .select({ seq: auditEvents.seq })
            .from(auditEvents)
            .where(lt(auditEvents.occurredAt, before))
            .orderBy(asc(auditEvents.occurredAt))
            .limit(limit)
          const events = tx.delete(auditEvents).where(inArray(auditEvents.seq, oldest)).run().changes
          const settled = tx
            .select({ id: webhookDeliveries.id })
            .from(webhookDeliveries)
            .where(settledBefore(webhookDeliveries, before))
            .limit(limit)
          tx.delete(webhookDeliveries).where(inArray(webhookDeliveries.id, settled)).run()
          return events
        },
        { behavior: 'immediate' },
      ),
    )
  }

  insertWebhookEndpoint(endpoint: WebhookEndpointRecord, audit?: AuditWrite): Promise<void> {
    return guard(() =>
      this.db.transaction(
        (tx) => {
          tx.insert(webhookEndpoints).values(endpoint).run()
          if (audit !== undefined) writeAudit(tx, audit)
        },
        { behavior: 'immediate' },
      ),
    )
  }

  listWebhookEndpoints(tenantId: string): Promise<WebhookEndpointRecord[]> {
    return guard(
      () =>
        this.db
          .select()
          .from(webhookEndpoints)
          .where(eq(webhookEndpoints.tenantId, tenantId))
          .orderBy(asc(webhookEndpoints.createdAt), asc(webhookEndpoints.id))
          .all() as WebhookEndpointRecord[],
    )
  }

  findWebhookEndpoint(tenantId: string, id: string): Promise<WebhookEndpointRecord | null> {
    return guard(
      () =>
        (this.db
          .select()
          .from(webhookEndpoints)
          .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.id, id)))
          .get() as WebhookEndpointRecord | undefined) ?? null,
    )
  }

  deleteWebhookEndpoint(
    tenantId: string,
    id: string,
    audit?: (deleted: WebhookEndpointRecord) => AuditWrite,
  ): Promise<WebhookEndpointRecord | null> {
    return guard(() =>
      this.db.transaction(
        (tx) => {
          const deleted = tx
            .delete(webhookEndpoints)
            .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.id, id)))
            .returning()
            .get() as WebhookEndpointRecord | undefined
          if (deleted === undefined) return null
          tx.delete(webhookDeliveries).where(eq(webhookDeliveries.endpointId, id)).run()
          if (audit !== undefined) writeAudit(tx, audit(deleted))
          return deleted
        },
        { behavior: 'immediate' },
      ),
    )
  }

  disableWebhookEndpoint(tenantId: string, id: string, now: Date): Promise<void> {
    return guard(() => {
      this.db
        .update(webhookEndpoints)
        .set({ disabledAt: now })
        .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.id, id), isNull(webhookEndpoints.disabledAt)))
        .run()
    })
  }

  listEndpointDeliveries(tenantId: string, endpointId: string, limit: number): Promise<WebhookDelivery[]> {
    return guard(
      () =>
        this.db
          .select()
          .from(webhookDeliveries)
          .where(and(eq(webhookDeliveries.tenantId, tenantId), eq(webhookDeliveries.endpointId, endpointId)))
          .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
          .limit(limit)
          .all() as WebhookDelivery[],
    )
  }

  async close(): Promise<void> {
    await this.writer?.close()
    if (this.owned && this.client.open) this.client.close()
  }
}

type Transaction = Parameters<Parameters<Db['transaction']>[0]>[0]

/** A change's audit events and their deliveries, inside the change's transaction. */
function writeAudit(tx: Transaction, audit: AuditWrite): void {
  if (audit.events.length > 0) tx.insert(auditEvents).values(audit.events.map(eventRow)).run()
  if (audit.deliveries.length > 0) tx.insert(webhookDeliveries).values(audit.deliveries).run()
}
