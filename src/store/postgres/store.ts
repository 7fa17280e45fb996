/**
 * The PostgreSQL implementation of the whole `KeyStore` contract (src/core/store.ts): keys, change
 * log, usage, credits, deliveries and the audit log. It is over 400 lines because the contract is:
 * each method is a short query or one transaction, and they share the table handles, the
 * transaction helper and the row mapping; the WHERE clauses both stores use live in
 * ../conditions.ts. Splitting it by table would split transactions that span tables.
 */
import { and, asc, desc, eq, getTableColumns, gt, inArray, isNull, lt, lte, type SQL, sql, sum } from 'drizzle-orm'
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import type { AnyPgColumn } from 'drizzle-orm/pg-core'
import type pg from 'pg'
import type { ListEventsQuery, StoredEvent, WebhookEndpointRecord } from '../../core/audit/types.js'
import { effectiveCredits } from '../../core/controls/credits.js'
import { inheritLineage, lineageOf } from '../../core/records.js'
import type {
  AuditOf,
  AuditWrite,
  ChangeBatch,
  CreditAdjustment,
  CreditLease,
  EndingKeysQuery,
  KeyStore,
  RotateOutcome,
  RotateRequest,
  StoredKey,
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
  usageRows,
  usageSince,
  verificationColumns,
} from '../conditions.js'
import { guard, isUnavailable, retryOnDeadlock } from './errors.js'
import { CHANGES_CHANNEL, ChangeListener } from './listener.js'
import { ignore, migrateSerialized } from './migrate.js'
import * as schema from './schema.js'
import { apiKeyChanges, apiKeys, apiKeyUsage, auditEvents, webhookDeliveries, webhookEndpoints } from './schema.js'

type Db = NodePgDatabase<typeof schema>

const usageDayColumns = {
  day: apiKeyUsage.day,
  count: sum(apiKeyUsage.requestCount).mapWith(Number),
  rateLimited: sum(apiKeyUsage.rateLimitedCount).mapWith(Number),
  creditsRefused: sum(apiKeyUsage.creditsRefusedCount).mapWith(Number),
}

/** `id collate "C"`: ids ordered byte-wise, as SQLite orders them, whatever the database locale. */
function bytewise(column: AnyPgColumn): SQL {
  return sql`${column} collate "C"`
}

const keyIdBytewise = bytewise(apiKeys.id)

/** The verification read's columns (see `VERIFICATION_FIELDS`). */
const storedKeyRow = verificationColumns(getTableColumns(apiKeys))

/** Every column of a key, with its `last_used_at` as recorded in api_key_usage (see `latestUse`). */
const keyRow = {
  ...getTableColumns(apiKeys),
  lastUsedAt: latestUse(apiKeys, apiKeyUsage, (stored, recorded) => sql`greatest(${stored}, ${recorded})`),
}

export class PostgresStore implements KeyStore {
  readonly dialect = 'postgres'
  readonly #findByHash
  readonly #findByHashes
  readonly #listeners = new Set<ChangeListener>()
  #migrationPending: boolean
  #migrating: Promise<void> | undefined

  constructor(
    /** The drizzle instance, for host apps that want to query keyward's tables themselves. */
    readonly db: Db,
    private readonly pool: pg.Pool,
    private readonly owned: boolean,
    private readonly listenConfig: pg.ClientConfig,
    migrationPending: boolean,
  ) {
    this.#migrationPending = migrationPending
    this.#findByHash = db
      .select(storedKeyRow)
      .from(apiKeys)
      .where(eq(apiKeys.keyHash, sql.placeholder('keyHash')))
      .prepare('keyward_find_key_by_hash')
    // One array parameter, so every batch size shares one prepared statement.
    this.#findByHashes = db
      .select(storedKeyRow)
      .from(apiKeys)
      .where(sql`${apiKeys.keyHash} = any(${sql.placeholder('keyHashes')}::text[])`)
      .prepare('keyward_find_keys_by_hash')
  }

  insertKey(record: ApiKeyRecord, audit?: AuditWrite): Promise<void> {
    if (audit === undefined) {
      return this.#guard(async () => {
        await this.db.insert(apiKeys).values(record)
      })
    }
    return this.#guard(() =>
      this.#transaction(async (tx) => {
        await tx.insert(apiKeys).values(record)
        await writeAudit(tx, audit)
      }),
    )
  }

  findKeyByHash(keyHash: string): Promise<StoredKey | null> {
    return this.#guard(async () => ((await this.#findByHash.execute({ keyHash }))[0] as StoredKey | undefined) ?? null)
  }

  findKeysByHash(keyHashes: readonly string[]): Promise<StoredKey[]> {
    return this.#guard(async () => (await this.#findByHashes.execute({ keyHashes: [...keyHashes] })) as StoredKey[])
  }

  findKey(tenantId: string, id: string): Promise<ApiKeyRecord | null> {
    return this.#guard(async () => {
      const rows = await this.db
        .select(keyRow)
        .from(apiKeys)
        .where(keyOfTenant(apiKeys, tenantId, id))
      return (rows[0] as ApiKeyRecord | undefined) ?? null
    })
  }

  listKeys(query: ListKeysQuery): Promise<ApiKeyRecord[]> {
    return this.#guard(
      async () =>
        (await this.db
          .select(keyRow)
          .from(apiKeys)
          .where(listCondition(apiKeys, query, keyIdBytewise))
          .orderBy(desc(apiKeys.createdAt), desc(keyIdBytewise))
          .limit(query.limit)) as ApiKeyRecord[],
    )
  }

  updateKey(tenantId: string, id: string, patch: KeyPatch, now: Date, audit?: AuditOf): Promise<ApiKeyRecord | null> {
    return this.#guard(() =>
      this.#transaction(async (tx) => {
        // Read FOR UPDATE: a concurrent update waits for this one to commit, so the audit's "before" is exact.
        const before =
          audit === undefined
            ? undefined
            : ((
                await tx
                  .select(keyRow)
                  .from(apiKeys)
                  .where(keyOfTenant(apiKeys, tenantId, id))
                  .for('update')
              )[0] as ApiKeyRecord | undefined)
        if (audit !== undefined && before === undefined) return null
        const [row] = (await tx
          .update(apiKeys)
          .set(patchColumns(patch, apiKeys.creditsVersion, now))
          .where(keyOfTenant(apiKeys, tenantId, id))
          .returning(keyRow)) as ApiKeyRecord[]
        if (row === undefined) return null
        const write = before === undefined ? undefined : audit?.(before, row)
        if (write !== undefined) await writeAudit(tx, write)
        await logChange(tx, row.keyHash, now)
        const inGrace = await tx
          .select({ keyHash: apiKeys.keyHash })
          .from(apiKeys)
          .where(lineageInGrace(apiKeys, lineageOf(row), now))
        for (const { keyHash } of inGrace) await logChange(tx, keyHash, now)
        return row
      }),
    )
  }

  revokeKey(
    tenantId: string,
    id: string,
    now: Date,
    revokedBy: AuditActor | null = null,
    audit?: (revoked: ApiKeyRecord) => AuditWrite,
  ): Promise<ApiKeyRecord | null> {
    return this.#guard(() =>
      this.#transaction(async (tx) => {
        // Only a key not yet revoked changes (read committed re-checks the condition after a
        // concurrent revoke): a second revoke keeps the first one's time and actor and writes nothing.
        const [row] = (await tx
          .update(apiKeys)
          .set({ revokedAt: now, revokedBy, updatedAt: now })
          .where(and(keyOfTenant(apiKeys, tenantId, id), isNull(apiKeys.revokedAt)))
          .returning(keyRow)) as ApiKeyRecord[]
        if (row === undefined) {
          const [current] = await tx
            .select(keyRow)
            .from(apiKeys)
            .where(keyOfTenant(apiKeys, tenantId, id))
          return (current as ApiKeyRecord | undefined) ?? null
        }
        if (audit !== undefined) await writeAudit(tx, audit(row))
        await logChange(tx, row.keyHash, now)
        return row
      }),
    )
  }

  rotateKey(request: RotateRequest): Promise<RotateOutcome> {
    const { tenantId, oldKeyId, newKey, graceExpiresAt, now, delivery, audit } = request
    return this.#guard(() =>
      this.#transaction(async (tx): Promise<RotateOutcome> => {
        // The conditional update is the lock: a concurrent rotation waits for this row, then finds
        // replaced_by_key_id set and matches nothing (read committed re-checks the condition).
        const [oldKey] = await tx
          .update(apiKeys)
          .set({ replacedByKeyId: newKey.id, graceExpiresAt, nextRotationAt: null, updatedAt: now })
          .where(rotatableCondition(apiKeys, request))
          .returning(keyRow)
        if (oldKey === undefined) {
          const [current] = await tx
            .select({ revokedAt: apiKeys.revokedAt, replacedByKeyId: apiKeys.replacedByKeyId })
            .from(apiKeys)
            .where(keyOfTenant(apiKeys, tenantId, oldKeyId))
          if (current === undefined) return { ok: false, reason: 'not_found' }
          if (current.revokedAt !== null) return { ok: false, reason: 'key_revoked' }
          if (current.replacedByKeyId !== null) return { ok: false, reason: 'already_rotated' }
          return { ok: false, reason: 'not_due' }
        }
        // The successor continues the lineage and its credits as the old row holds them now,
        // under this lock (a lease or settlement since the caller read it is not lost).
        const successor = inheritLineage(oldKey as ApiKeyRecord, newKey)
        await tx.insert(apiKeys).values(successor)
        if (delivery !== undefined) await tx.insert(webhookDeliveries).values(delivery)
        if (audit !== undefined) await writeAudit(tx, audit)
        await logChange(tx, oldKey.keyHash, now)
        return { ok: true, oldKey: oldKey as ApiKeyRecord, newKey: successor }
      }),
    )
  }

  recordUsage(increments: UsageIncrement[]): Promise<void> {
    if (increments.length === 0) return Promise.resolve()
    // The whole flush is one statement with one parameter (a JSON array), whatever the number of
    // keys. It writes api_key_usage only; a key's last use is read from there (`latestUse`). Rows go
    // in key order so overlapping flushes of several instances lock in one order; a deadlock left
    // anyway is retried.
    const rows = JSON.stringify(
      usageRows(increments).map((row) => ({
        key_id: row.keyId,
        day: row.day,
        request_count: row.count,
        rate_limited: row.rateLimited,
        credits_refused: row.creditsRefused,
        used_at: row.lastUsedAt === 0 ? null : new Date(row.lastUsedAt).toISOString(),
      })),
    )
    return this.#guard(() =>
      retryOnDeadlock(async () => {
        await this.db.execute(sql`insert into ${apiKeyUsage} (key_id, day, request_count, rate_limited_count, credits_refused_count, last_used_at)
          select key_id, day, request_count, rate_limited, credits_refused, used_at
          from json_to_recordset(${rows}::json)
            as v(key_id text, day text, request_count bigint, rate_limited bigint, credits_refused bigint, used_at timestamptz)
          order by key_id, day
          on conflict (key_id, day) do update set
            request_count = ${apiKeyUsage}.request_count + excluded.request_count,
            rate_limited_count = ${apiKeyUsage}.rate_limited_count + excluded.rate_limited_count,
            credits_refused_count = ${apiKeyUsage}.credits_refused_count + excluded.credits_refused_count,
            last_used_at = greatest(${apiKeyUsage}.last_used_at, excluded.last_used_at)`)
      }),
    )
  }

  leaseCredits(lineageId: string, want: number, now: Date): Promise<CreditLease | null> {
    return this.#guard(() =>
      this.#transaction(async (tx) => {
        const row = await lockHead(tx, lineageId)
        const effective = row === undefined ? null : effectiveCredits(row, now.getTime())
        if (row === undefined || effective === null) return null
        const granted = Math.min(Math.max(0, want), effective.remaining)
        const refilledAt = new Date(effective.refilledAtMs)
        await tx
          .update(apiKeys)
          .set({ creditsRemaining: effective.remaining - granted, creditsRefilledAt: refilledAt })
          .where(eq(apiKeys.id, row.id))
        return { granted, remaining: effective.remaining - granted, version: row.creditsVersion, refilledAt }
      }),
    )
  }

  returnCredits(returns: CreditAdjustment[]): Promise<void> {
    if (returns.length === 0) return Promise.resolve()
    return this.#guard(() =>
      this.#transaction(async (tx) => {
        // Rows in lineage order, so overlapping calls of several instances lock in one order.
        for (const item of [...returns].sort((a, b) => (a.lineageId < b.lineageId ? -1 : 1))) {
          const add = async () =>
            tx
              .update(apiKeys)
              .set({ creditsRemaining: sql`${apiKeys.creditsRemaining} + ${item.amount}` })
              .where(creditSetting(apiKeys, item))
              .returning({ id: apiKeys.id })
          // Nothing matched: the setting changed (the credits are not returned), or a rotation
          // committed while this waited for the old head (see `lockHead`): a new statement sees
          // the successor.
          if ((await add()).length === 0) await add()
        }
      }),
    )
  }

  settleCredits(spends: CreditAdjustment[], now: Date): Promise<void> {
    if (spends.length === 0) return Promise.resolve()
    return this.#guard(() =>
      this.#transaction(async (tx) => {
        for (const item of [...spends].sort((a, b) => (a.lineageId < b.lineageId ? -1 : 1))) {
          const row = await lockHead(tx, item.lineageId)
          const effective = row === undefined ? null : effectiveCredits(row, now.getTime())
          if (row === undefined || effective === null || !sameSetting(row, effective, item)) continue
          await tx
            .update(apiKeys)
            .set({ creditsRemaining: Math.max(0, effective.remaining - item.amount), creditsRefilledAt: item.refilledAt })
            .where(eq(apiKeys.id, row.id))
        }
      }),
    )
  }

  usageByDay(keyIds: string[], fromDay: string): Promise<UsageDay[]> {
    if (keyIds.length === 0) return Promise.resolve([])
    return this.#guard(() =>
      this.db
        .select(usageDayColumns)
        .from(apiKeyUsage)
        .where(usageSince(apiKeyUsage, keyIds, fromDay))
        .groupBy(apiKeyUsage.day)
        .orderBy(asc(apiKeyUsage.day)),
    )
  }

  totalRequests(keyIds: string[]): Promise<number> {
    if (keyIds.length === 0) return Promise.resolve(0)
    return this.#guard(async () => {
      const [row] = await this.db
        .select({ total: sum(apiKeyUsage.requestCount).mapWith(Number) })
        .from(apiKeyUsage)
        .where(inArray(apiKeyUsage.keyId, keyIds))
      return row?.total ?? 0
    })
  }

  latestChangeSeq(): Promise<number> {
    return this.#guard(async () => {
      const [row] = await this.db.select({ seq: sql<number | null>`max(${apiKeyChanges.seq})`.mapWith(Number) }).from(apiKeyChanges)
      return row?.seq ?? 0
    })
  }

  readChanges(afterSeq: number, limit: number): Promise<ChangeBatch> {
    return this.#guard(async () => {
      const rows = await this.db
        .select({ seq: apiKeyChanges.seq, keyHash: apiKeyChanges.keyHash })
        .from(apiKeyChanges)
        .where(gt(apiKeyChanges.seq, afterSeq))
        .orderBy(asc(apiKeyChanges.seq))
        .limit(limit)
      return { seq: rows.at(-1)?.seq ?? afterSeq, keyHashes: rows.map((row) => row.keyHash) }
    })
  }

  pruneChanges(before: Date): Promise<void> {
    return this.#guard(async () => {
      await this.db.delete(apiKeyChanges).where(lte(apiKeyChanges.changedAt, before))
    })
  }

  findDueRotations(now: Date, limit: number): Promise<ApiKeyRecord[]> {
    return this.#guard(
      async () =>
        (await this.db
          .select(keyRow)
          .from(apiKeys)
          .where(dueForRotation(apiKeys, now))
          .orderBy(asc(apiKeys.nextRotationAt))
          .limit(limit)) as ApiKeyRecord[],
    )
  }

  claimDeliveries(now: Date, lockUntil: Date, limit: number, ids?: string[]): Promise<WebhookDelivery[]> {
    if (ids !== undefined && ids.length === 0) return Promise.resolve([])
    return this.#guard(() =>
      this.#transaction(async (tx) => {
        // Rows another claimant holds are skipped, not waited for; one it claimed and committed
        // meanwhile fails the condition, which FOR UPDATE re-checks on the latest row version.
        // The locking select is its own statement so its LIMIT bounds the claim: nested in the
        // update as `id IN (subquery)`, a claimant was seen taking more than `limit` rows under
        // load (the subquery can be evaluated again, and SKIP LOCKED then finds further rows).
        const due = await tx
          .select({ id: webhookDeliveries.id })
          .from(webhookDeliveries)
          .where(claimableDelivery(webhookDeliveries, now, ids))
          .orderBy(asc(webhookDeliveries.nextAttemptAt))
          .limit(limit)
          .for('update', { skipLocked: true })
        if (due.length === 0) return []
        return (await tx
          .update(webhookDeliveries)
          .set({ lockedUntil: lockUntil })
          .where(
            inArray(
              webhookDeliveries.id,
              due.map((row) => row.id),
            ),
          )
          .returning()) as WebhookDelivery[]
      }),
    )
  }

  saveDelivery(delivery: WebhookDelivery): Promise<void> {
    const { id, ...rest } = delivery
    return this.#guard(async () => {
      await this.db.update(webhookDeliveries).set(rest).where(eq(webhookDeliveries.id, id))
    })
  }

  listDeliveries(tenantId: string, keyIds: string[]): Promise<WebhookDelivery[]> {
    if (keyIds.length === 0) return Promise.resolve([])
    return this.#guard(
      async () =>
        (await this.db
          .select()
          .from(webhookDeliveries)
          .where(deliveriesOf(webhookDeliveries, tenantId, keyIds))
          .orderBy(desc(webhookDeliveries.createdAt), desc(bytewise(webhookDeliveries.id)))) as WebhookDelivery[],
    )
  }

  // Audit log and event webhooks (issue 15) -------------------------------------------------------

  recordEvents(audit: AuditWrite): Promise<string[]> {
    if (audit.events.length === 0) return Promise.resolve([])
    return this.#guard(() =>
      this.#transaction(async (tx) => {
        // An id already stored (the same notice from another scheduler) is skipped, with its
        // deliveries; a concurrent insert of the same id waits for the other to commit, then skips.
        const written = (
          await tx
            .insert(auditEvents)
            .values(audit.events.map(eventRow))
            .onConflictDoNothing({ target: auditEvents.id })
            .returning({ id: auditEvents.id })
        ).map((row) => row.id)
        const ids = new Set(written)
        const deliveries = audit.deliveries.filter((delivery) => delivery.eventId !== null && ids.has(delivery.eventId))
        if (deliveries.length > 0) await tx.insert(webhookDeliveries).values(deliveries)
        return written
      }),
    )
  }

  existingEventIds(ids: string[]): Promise<string[]> {
    if (ids.length === 0) return Promise.resolve([])
    return this.#guard(async () =>
      (await this.db.select({ id: auditEvents.id }).from(auditEvents).where(inArray(auditEvents.id, ids))).map((row) => row.id),
    )
  }

  listEvents(query: ListEventsQuery): Promise<StoredEvent[]> {
    return this.#guard(
      async () =>
        (await this.db
          .select(eventSelection(auditEvents))
          .from(auditEvents)
          .where(eventsCondition(auditEvents, query))
          .orderBy(desc(auditEvents.occurredAt), desc(auditEvents.seq))
          .limit(query.limit)) as StoredEvent[],
    )
  }

  findKeysEnding(query: EndingKeysQuery): Promise<ApiKeyRecord[]> {
    return this.#guard(
      async () =>
        (await this.db
          .select(keyRow)
          .from(apiKeys)
          .where(endingCondition(apiKeys, query, keyIdBytewise))
          .orderBy(...endingOrder(apiKeys, query, keyIdBytewise))
          .limit(query.limit)) as ApiKeyRecord[],
    )
  }

  pruneAudit(before: Date, limit: number): Promise<number> {
    return this.#guard(async () => {
      const oldest = this.db
        .select({ seq: auditEvents.seq })
        .from(auditEvents)
        .where(lt(auditEvents.occurredAt, before))
        .orderBy(asc(auditEvents.occurredAt))
        .limit(limit)
      const deleted = await this.db.delete(auditEvents).where(inArray(auditEvents.seq, oldest))
      const settled = this.db
        .select({ id: webhookDeliveries.id })
        .from(webhookDeliveries)
        .where(settledBefore(webhookDeliveries, before))
        .limit(limit)
      await this.db.delete(webhookDeliveries).where(inArray(webhookDeliveries.id, settled))
      return deleted.rowCount ?? 0
    })
  }

  insertWebhookEndpoint(endpoint: WebhookEndpointRecord, audit?: AuditWrite): Promise<void> {
    return this.#guard(() =>
      this.#transaction(async (tx) => {
        await tx.insert(webhookEndpoints).values(endpoint)
        if (audit !== undefined) await writeAudit(tx, audit)
      }),
    )
  }

  listWebhookEndpoints(tenantId: string): Promise<WebhookEndpointRecord[]> {
    return this.#guard(
      async () =>
        (await this.db
          .select()
          .from(webhookEndpoints)
          .where(eq(webhookEndpoints.tenantId, tenantId))
          .orderBy(asc(webhookEndpoints.createdAt), asc(bytewise(webhookEndpoints.id)))) as WebhookEndpointRecord[],
    )
  }

  findWebhookEndpoint(tenantId: string, id: string): Promise<WebhookEndpointRecord | null> {
    return this.#guard(async () => {
      const [row] = await this.db
        .select()
        .from(webhookEndpoints)
        .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.id, id)))
      return (row as WebhookEndpointRecord | undefined) ?? null
    })
  }

  deleteWebhookEndpoint(
    tenantId: string,
    id: string,
    audit?: (deleted: WebhookEndpointRecord) => AuditWrite,
  ): Promise<WebhookEndpointRecord | null> {
    return this.#guard(() =>
      this.#transaction(async (tx) => {
        const [deleted] = (await tx
          .delete(webhookEndpoints)
          .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.id, id)))
          .returning()) as WebhookEndpointRecord[]
        if (deleted === undefined) return null
        await tx.delete(webhookDeliveries).where(eq(webhookDeliveries.endpointId, id))
        if (audit !== undefined) await writeAudit(tx, audit(deleted))
        return deleted
      }),
    )
  }

  disableWebhookEndpoint(tenantId: string, id: string, now: Date): Promise<void> {
    return this.#guard(async () => {
      await this.db
        .update(webhookEndpoints)
        .set({ disabledAt: now })
        .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.id, id), isNull(webhookEndpoints.disabledAt)))
    })
  }

  listEndpointDeliveries(tenantId: string, endpointId: string, limit: number): Promise<WebhookDelivery[]> {
    return this.#guard(
      async () =>
        (await this.db
          .select()
          .from(webhookDeliveries)
          .where(and(eq(webhookDeliveries.tenantId, tenantId), eq(webhookDeliveries.endpointId, endpointId)))
          .orderBy(desc(webhookDeliveries.createdAt), desc(bytewise(webhookDeliveries.id)))
          .limit(limit)) as WebhookDelivery[],
    )
  }

  /**
   * LISTENs on a dedicated connection and calls `onChange` after every committed change. When
   * that connection drops it reconnects with backoff and calls `onChange` once it listens again:
   * changes committed meanwhile are in the change log, which the sync reads from where it stopped.
   * Never rejects for an unreachable database: the poll covers until the connection is back.
   */
  async subscribeChanges(onChange: () => void): Promise<() => Promise<void>> {
    const listener = new ChangeListener(this.listenConfig, onChange, () => this.#listeners.delete(listener))
    this.#listeners.add(listener)
    await listener.start()
    return () => listener.stop()
  }

  /** Ends the LISTEN connections, and the pool if the store opened it. */
  async close(): Promise<void> {
    await Promise.all([...this.#listeners].map((listener) => listener.stop()))
    if (this.owned && !this.pool.ended && !this.pool.ending) await this.pool.end()
  }

  /** Runs `work` once the schema is migrated, with connection failures as StoreUnavailableError. */
  #guard<T>(work: () => Promise<T>): Promise<T> {
    if (!this.#migrationPending) return guard(work)
    return guard(async () => {
      this.#migrating ??= migrateSerialized(this.pool).finally(() => {
        this.#migrating = undefined
      })
      await this.#migrating
      this.#migrationPending = false
      return work()
    })
  }

  /**
   * A transaction on one pooled connection. The connection gets an error listener while it is
   * checked out: a socket that dies mid-transaction fails the running query, and the client's
   * unheard 'error' event would otherwise end the process.
   */
  async #transaction<T>(work: (tx: Db) => Promise<T>): Promise<T> {
    const client = await this.pool.connect()
    client.on('error', ignore)
    let broken: Error | undefined
    try {
      return await drizzle({ client, schema }).transaction(work)
    } catch (error) {
      if (isUnavailable(error)) broken = error instanceof Error ? error : new Error(String(error))
      throw error
    } finally {
      client.removeListener('error', ignore)
      client.release(broken)
    }
  }
}

/** A change's audit events and their deliveries, inside the change's transaction. */
async function writeAudit(tx: Db, audit: AuditWrite): Promise<void> {
  if (audit.events.length > 0) await tx.insert(auditEvents).values(audit.events.map(eventRow))
  if (audit.deliveries.length > 0) await tx.insert(webhookDeliveries).values(audit.deliveries)
}

/**
 * Appends to the change log and notifies listeners; both take effect at commit.
 *
 * Sequence numbers are drawn at insert but become visible at commit, so without care a change
 * could commit after a later-numbered one that a reader has already moved past, and never be
 * read. The transaction-scoped lock makes commit order equal sequence order; it is taken last,
 * so it is held only for the insert and the commit.
 */
async function logChange(tx: Db, keyHash: string, now: Date): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(hashtext('keyward:api_key_changes'))`)
  await tx.execute(sql`with change as (
      insert into ${apiKeyChanges} (key_hash, changed_at) values (${keyHash}, ${now.toISOString()}::timestamptz) returning seq
    ) select pg_notify(${CHANGES_CHANNEL}, change.seq::text) from change`)
}

/**
 * Locks the head of a key lineage (FOR UPDATE: concurrent leases and settlements of several
 * instances take turns on the row, so together they never hand out more than it holds) and reads
 * its credits. A rotation that committed while this waited for the old head's lock leaves that row
 * matching nothing, and the new head is not in this statement's snapshot; under read committed a
 * second statement takes a new snapshot and finds it.
 */
async function lockHead(tx: Db, lineageId: string) {
  const read = async () =>
    (
      await tx
        .select({ id: apiKeys.id, ...creditColumns(apiKeys) })
        .from(apiKeys)
        .where(lineageHead(apiKeys, lineageId))
        .for('update')
    )[0]
  return (await read()) ?? (await read())
}
