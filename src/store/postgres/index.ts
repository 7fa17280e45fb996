import { fileURLToPath } from 'node:url'
import { and, asc, desc, eq, gt, inArray, isNull, lte, or, type SQL, sql, sum } from 'drizzle-orm'
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'
import type { AnyPgColumn } from 'drizzle-orm/pg-core'
import pg from 'pg'
import { type ChangeBatch, type KeyStore, type RotateOutcome, type RotateRequest, StoreUnavailableError } from '../../core/store.js'
import type { ApiKeyRecord, KeyPatch, ListKeysQuery, UsageDay, UsageIncrement, WebhookDelivery } from '../../core/types.js'
import { afterCursor, statusCondition, usageRows } from '../conditions.js'
import { isPostgresUrl } from '../open.js'
import * as schema from './schema.js'
import { apiKeyChanges, apiKeys, apiKeyUsage, webhookDeliveries } from './schema.js'

export { schema }

const MIGRATIONS = fileURLToPath(new URL('../../../drizzle/postgres', import.meta.url))

/** The NOTIFY channel every change-log insert signals on. */
export const CHANGES_CHANNEL = 'keyward_changes'

export interface PostgresStoreOptions {
  /**
   * A `postgres://` or `postgresql://` URL. The store opens (and closes) its own pool on it.
   */
  url?: string
  /**
   * Use this node-postgres `Pool` (or a drizzle instance over one) instead of `url`. It is left
   * open by `close()`. Give it an `error` listener, as node-postgres asks of every pool: an idle
   * connection that drops is reported there.
   */
  pool?: pg.Pool | NodePgDatabase<Record<string, unknown>>
  /**
   * Apply the migrations in drizzle/postgres when the store opens (serialized across processes
   * with an advisory lock, so several instances may start at once). If the database cannot be
   * reached then, the store still opens and migrates before its first query.
   * @default true
   */
  migrate?: boolean
  /**
   * How long a new connection may take (pool opened from `url` and the LISTEN connection). Short,
   * so an outage answers 503 quickly instead of holding requests.
   * @default 2000
   */
  connectionTimeoutMillis?: number
  /**
   * Most connections the pool opened from `url` holds.
   * @default 10
   */
  maxConnections?: number
}

type Db = NodePgDatabase<typeof schema>

/**
 * Opens (and migrates) a PostgreSQL key store on node-postgres: a pool for queries and, when
 * keyward subscribes, one dedicated connection that LISTENs for change notifications.
 *
 * @example
 * const store = await createPostgresStore({ url: 'postgres://app@db.internal/app' })
 * const kw = new Keyward({ store })
 */
export async function createPostgresStore(options: PostgresStoreOptions = {}): Promise<PostgresStore> {
  const connectionTimeoutMillis = options.connectionTimeoutMillis ?? 2000
  let pool: pg.Pool
  let owned = false
  if (options.pool !== undefined) {
    const given = options.pool as pg.Pool & { $client?: pg.Pool }
    pool = given.$client ?? given
    if (typeof pool.connect !== 'function' || typeof pool.query !== 'function') {
      throw new Error('keyward: option "pool" must be a node-postgres Pool or a drizzle instance over one')
    }
  } else {
    const url = options.url
    if (url === undefined || !isPostgresUrl(url)) {
      throw new Error('keyward: option "url" must be a postgres:// URL (or give "pool")')
    }
    pool = new pg.Pool({
      connectionString: url,
      connectionTimeoutMillis,
      max: options.maxConnections ?? 10,
      keepAlive: true,
      application_name: 'keyward',
    })
    // An idle connection that drops is removed by the pool and reported here; unheard, the
    // 'error' event would end the process. The next query opens a fresh connection.
    pool.on('error', () => undefined)
    owned = true
  }
  let migrationPending = options.migrate !== false
  if (migrationPending) {
    try {
      await guard(() => migrateSerialized(pool))
      migrationPending = false
    } catch (error) {
      // An outage at start is not a configuration error: the store opens and migrates on first
      // use, so an instance started while the database restarts recovers by itself.
      if (!(error instanceof StoreUnavailableError)) {
        if (owned) await pool.end().catch(() => undefined)
        throw error
      }
    }
  }
  const listenConfig = { ...pool.options, connectionTimeoutMillis: pool.options.connectionTimeoutMillis ?? connectionTimeoutMillis }
  return new PostgresStore(drizzle({ client: pool, schema }), pool, owned, listenConfig, migrationPending)
}

/** Several instances starting at once must not run the same migration twice. */
async function migrateSerialized(pool: pg.Pool): Promise<void> {
  const client = await pool.connect()
  client.on('error', ignore)
  try {
    await client.query(`select pg_advisory_lock(hashtext('keyward:migrate'))`)
    await migrate(drizzle({ client }), {
      migrationsFolder: MIGRATIONS,
      migrationsSchema: 'drizzle',
      migrationsTable: '__keyward_migrations',
    })
    await client.query(`select pg_advisory_unlock(hashtext('keyward:migrate'))`)
    client.removeListener('error', ignore)
    client.release()
  } catch (error) {
    // Destroying the connection also frees the session-level lock.
    client.release(error instanceof Error ? error : true)
    throw error
  }
}

function ignore(): void {}

// 08: connection exception; 57P01-57P04: admin/crash shutdown, cannot connect now, database
// dropped; 53300: too many connections.
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[1-4]|53300)$/
const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
])
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|timeout expired|not queryable|Cannot use a pool after calling end/i

/** The driver error and what it wraps (drizzle's DrizzleQueryError, Node's AggregateError). */
function* causes(error: unknown): Generator<unknown> {
  const queue = [error]
  for (let seen = 0; queue.length > 0 && seen < 10; seen++) {
    const current = queue.shift()
    yield current
    if (current instanceof AggregateError) queue.push(...current.errors)
    if (current instanceof Error && current.cause !== undefined) queue.push(current.cause)
  }
}

function sqlState(error: unknown): string | undefined {
  for (const cause of causes(error)) {
    const code = (cause as { code?: unknown } | null)?.code
    if (typeof code === 'string') return code
  }
  return undefined
}

function isUnavailable(error: unknown): boolean {
  for (const cause of causes(error)) {
    const code = (cause as { code?: unknown } | null)?.code
    if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_NODE_CODES.has(code))) return true
    if (cause instanceof Error && UNAVAILABLE_MESSAGES.test(cause.message)) return true
  }
  return false
}

/** The innermost message: a DrizzleQueryError's own message carries the query and its parameters. */
function rootMessage(error: unknown): string {
  let message = String(error)
  for (const cause of causes(error)) if (cause instanceof Error && cause.message !== '') message = cause.message
  return message
}

async function guard<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    if (isUnavailable(error)) throw new StoreUnavailableError(`PostgreSQL store unavailable: ${rootMessage(error)}`, { cause: error })
    throw error
  }
}

/** `id collate "C"`: ids ordered byte-wise, as SQLite orders them, whatever the database locale. */
function bytewise(column: AnyPgColumn): SQL {
  return sql`${column} collate "C"`
}

const keyIdBytewise = bytewise(apiKeys.id)

export class PostgresStore implements KeyStore {
  readonly dialect = 'postgres'
  readonly #findByHash
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
      .select()
      .from(apiKeys)
      .where(eq(apiKeys.keyHash, sql.placeholder('keyHash')))
      .prepare('keyward_find_key_by_hash')
  }

  insertKey(record: ApiKeyRecord): Promise<void> {
    return this.#guard(async () => {
      await this.db.insert(apiKeys).values(record)
    })
  }

  findKeyByHash(keyHash: string): Promise<ApiKeyRecord | null> {
    return this.#guard(async () => ((await this.#findByHash.execute({ keyHash }))[0] as ApiKeyRecord | undefined) ?? null)
  }

  findKey(tenantId: string, id: string): Promise<ApiKeyRecord | null> {
    return this.#guard(async () => {
      const rows = await this.db
        .select()
        .from(apiKeys)
        .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.id, id)))
      return (rows[0] as ApiKeyRecord | undefined) ?? null
    })
  }

  listKeys(query: ListKeysQuery): Promise<ApiKeyRecord[]> {
    return this.#guard(
      async () =>
        (await this.db
          .select()
          .from(apiKeys)
          .where(
            and(
              eq(apiKeys.tenantId, query.tenantId),
              query.projectId !== undefined ? eq(apiKeys.projectId, query.projectId) : undefined,
              query.environment !== undefined ? eq(apiKeys.environment, query.environment) : undefined,
              query.status !== undefined ? statusCondition(apiKeys, query.status, query.now) : undefined,
              query.after !== undefined ? afterCursor({ createdAt: apiKeys.createdAt, id: keyIdBytewise }, query.after) : undefined,
            ),
          )
          .orderBy(desc(apiKeys.createdAt), desc(keyIdBytewise))
          .limit(query.limit)) as ApiKeyRecord[],
    )
  }

  updateKey(tenantId: string, id: string, patch: KeyPatch, now: Date): Promise<ApiKeyRecord | null> {
    return this.#guard(() =>
      this.#transaction(async (tx) => {
        const [row] = await tx
          .update(apiKeys)
          .set({ ...patch, updatedAt: now })
          .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.id, id)))
          .returning()
        if (row === undefined) return null
        await logChange(tx, row.keyHash, now)
        return row as ApiKeyRecord
      }),
    )
  }

  revokeKey(tenantId: string, id: string, now: Date): Promise<ApiKeyRecord | null> {
    return this.#guard(() =>
      this.#transaction(async (tx) => {
        const [row] = await tx
          .update(apiKeys)
          .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, ${now.toISOString()}::timestamptz)`, updatedAt: now })
          .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.id, id)))
          .returning()
        if (row === undefined) return null
        await logChange(tx, row.keyHash, now)
        return row as ApiKeyRecord
      }),
    )
  }

  rotateKey(request: RotateRequest): Promise<RotateOutcome> {
    const { tenantId, oldKeyId, newKey, graceExpiresAt, now, expectedNextRotationAt, delivery } = request
    return this.#guard(() =>
      this.#transaction(async (tx): Promise<RotateOutcome> => {
        // The conditional update is the lock: a concurrent rotation waits for this row, then finds
        // replaced_by_key_id set and matches nothing (read committed re-checks the condition).
        const [oldKey] = await tx
          .update(apiKeys)
          .set({ replacedByKeyId: newKey.id, graceExpiresAt, nextRotationAt: null, updatedAt: now })
          .where(
            and(
              eq(apiKeys.tenantId, tenantId),
              eq(apiKeys.id, oldKeyId),
              isNull(apiKeys.replacedByKeyId),
              isNull(apiKeys.revokedAt),
              expectedNextRotationAt !== undefined ? eq(apiKeys.nextRotationAt, expectedNextRotationAt) : undefined,
            ),
          )
          .returning()
        if (oldKey === undefined) {
          const [current] = await tx
            .select({ revokedAt: apiKeys.revokedAt, replacedByKeyId: apiKeys.replacedByKeyId })
            .from(apiKeys)
            .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.id, oldKeyId)))
          if (current === undefined) return { ok: false, reason: 'not_found' }
          if (current.revokedAt !== null) return { ok: false, reason: 'key_revoked' }
          if (current.replacedByKeyId !== null) return { ok: false, reason: 'already_rotated' }
          return { ok: false, reason: 'not_due' }
        }
        await tx.insert(apiKeys).values(newKey)
        if (delivery !== undefined) await tx.insert(webhookDeliveries).values(delivery)
        await logChange(tx, oldKey.keyHash, now)
        return { ok: true, oldKey: oldKey as ApiKeyRecord, newKey }
      }),
    )
  }

  recordUsage(increments: UsageIncrement[]): Promise<void> {
    if (increments.length === 0) return Promise.resolve()
    // The whole flush is one statement with one parameter (a JSON array), whatever the number of
    // keys: the daily counts are upserted in a data-modifying CTE and last_used_at moved forward by
    // the outer UPDATE, atomically. The upsert takes rows in key order so overlapping flushes of several
    // instances lock in one order; a deadlock left anyway (the UPDATE's join order is the
    // planner's) is retried.
    const rows = JSON.stringify(
      usageRows(increments).map((row) => ({
        key_id: row.keyId,
        day: row.day,
        request_count: row.count,
        used_at: new Date(row.lastUsedAt).toISOString(),
      })),
    )
    return this.#guard(() =>
      retryOnDeadlock(async () => {
        await this.db.execute(sql`with v as (
            select * from json_to_recordset(${rows}::json) as v(key_id text, day text, request_count bigint, used_at timestamptz)
          ), counted as (
            insert into ${apiKeyUsage} (key_id, day, request_count, last_used_at)
            select key_id, day, request_count, used_at from v order by key_id, day
            on conflict (key_id, day) do update set
              request_count = ${apiKeyUsage}.request_count + excluded.request_count,
              last_used_at = greatest(${apiKeyUsage}.last_used_at, excluded.last_used_at)
          )
          update ${apiKeys} set last_used_at = latest.used_at
          from (select key_id, max(used_at) as used_at from v group by key_id) as latest
          where ${apiKeys.id} = latest.key_id and (${apiKeys.lastUsedAt} is null or ${apiKeys.lastUsedAt} < latest.used_at)`)
      }),
    )
  }

  usageByDay(keyIds: string[], fromDay: string): Promise<UsageDay[]> {
    if (keyIds.length === 0) return Promise.resolve([])
    return this.#guard(() =>
      this.db
        .select({ day: apiKeyUsage.day, count: sum(apiKeyUsage.requestCount).mapWith(Number) })
        .from(apiKeyUsage)
        .where(and(inArray(apiKeyUsage.keyId, keyIds), sql`${apiKeyUsage.day} >= ${fromDay}`))
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
          .select()
          .from(apiKeys)
          .where(and(lte(apiKeys.nextRotationAt, now), isNull(apiKeys.revokedAt), isNull(apiKeys.replacedByKeyId)))
          .orderBy(asc(apiKeys.nextRotationAt))
          .limit(limit)) as ApiKeyRecord[],
    )
  }

  claimDeliveries(now: Date, lockUntil: Date, limit: number): Promise<WebhookDelivery[]> {
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
          .where(
            and(
              eq(webhookDeliveries.status, 'pending'),
              lte(webhookDeliveries.nextAttemptAt, now),
              or(isNull(webhookDeliveries.lockedUntil), lte(webhookDeliveries.lockedUntil, now)),
            ),
          )
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
          .where(and(eq(webhookDeliveries.tenantId, tenantId), inArray(webhookDeliveries.keyId, keyIds)))
          .orderBy(desc(webhookDeliveries.createdAt), desc(bytewise(webhookDeliveries.id)))) as WebhookDelivery[],
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

async function retryOnDeadlock<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work()
    } catch (error) {
      const state = sqlState(error)
      if (attempt >= 3 || (state !== '40P01' && state !== '40001')) throw error
    }
  }
}

/** The dedicated LISTEN connection of one subscriber, reconnecting with capped, jittered backoff. */
class ChangeListener {
  #client: pg.Client | undefined
  #retryTimer: NodeJS.Timeout | undefined
  #failures = 0
  #stopped = false

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly onChange: () => void,
    private readonly onStop: () => void,
  ) {}

  /** Resolves after the first attempt, connected or not (a failure schedules a retry). */
  start(): Promise<void> {
    return this.#connect()
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return
    // The connection only ever receives: TCP keepalive is what notices a peer that vanished.
    const client = new pg.Client({
      ...this.config,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: 'keyward-listener',
    })
    this.#client = client
    client.on('error', () => this.#lost(client))
    client.on('end', () => this.#lost(client))
    client.on('notification', (message) => {
      if (message.channel === CHANGES_CHANNEL) this.onChange()
    })
    try {
      await client.connect()
      await client.query(`listen ${CHANGES_CHANNEL}`)
    } catch {
      this.#lost(client)
      return
    }
    if (this.#client !== client) return
    this.#failures = 0
    // Changes committed while nothing listened (before the first LISTEN, or during an outage)
    // are picked up by one sync now.
    this.onChange()
  }

  #lost(client: pg.Client): void {
    if (this.#client !== client) return
    this.#client = undefined
    client.end().catch(() => undefined)
    if (this.#stopped) return
    const delayMs = Math.min(5000, 100 * 2 ** this.#failures) * (0.5 + Math.random() / 2)
    this.#failures++
    this.#retryTimer = setTimeout(() => void this.#connect(), delayMs).unref()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    this.onStop()
    clearTimeout(this.#retryTimer)
    const client = this.#client
    this.#client = undefined
    await client?.end().catch(() => undefined)
  }
}
