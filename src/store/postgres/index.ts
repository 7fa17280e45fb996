import type { NodePgDatabase } from 'drizzle-orm/node-postgres'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import { StoreUnavailableError } from '../../core/store.js'
import { isPostgresUrl } from '../open.js'
import { guard } from './errors.js'
import { migrateSerialized } from './migrate.js'
import * as schema from './schema.js'
import { PostgresStore } from './store.js'

export { CHANGES_CHANNEL } from './listener.js'
export { PostgresStore } from './store.js'
export { schema }

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
