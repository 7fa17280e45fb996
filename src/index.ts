import type Database from 'better-sqlite3'
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { Keyward, type KeywardOptions } from './core/keyward.js'
import type { KeyStore } from './core/types.js'

export * from './core/index.js'

/** Anything `keyward({ database })` can open a store on. */
export type DatabaseInput =
  | string
  | Database.Database
  | BetterSQLite3Database<Record<string, unknown>>
  /** A node-postgres `Pool` (or a drizzle instance over one). */
  | { query: (...args: never[]) => unknown; connect: (...args: never[]) => unknown }
  | { $client: { query: (...args: never[]) => unknown; connect: (...args: never[]) => unknown } }

export interface KeywardConfig extends Omit<KeywardOptions, 'store'> {
  /** A ready store. Takes precedence over `database`. */
  store?: KeyStore
  /**
   * Where keys live: an SQLite path (`./keyward.db`, `file:...`, `:memory:`), a `postgres://` URL,
   * an open better-sqlite3 database, a node-postgres `Pool`, or a drizzle instance over either.
   * @default process.env.KEYWARD_DATABASE_URL ?? './keyward.db'
   */
  database?: DatabaseInput
}

/**
 * Builds a keyward instance on the database you name.
 *
 * @example
 * const kw = keyward({ database: process.env.DATABASE_URL })
 * app.use('/v1/*', kw.apiKeyAuth())   // with keyward/hono: apiKeyAuth({ keyward: kw })
 */
export function keyward(config: KeywardConfig = {}): Keyward {
  const { store, database, ...options } = config
  return new Keyward({ ...options, store: store ?? openStore(database ?? process.env.KEYWARD_DATABASE_URL ?? './keyward.db') })
}

/** Opens the store a database input names. PostgreSQL code is loaded only when asked for. */
export async function openStore(database: DatabaseInput): Promise<KeyStore> {
  if (typeof database === 'string') {
    if (/^postgres(ql)?:\/\//.test(database)) {
      const { createPostgresStore } = await import('./store/postgres/index.js')
      return createPostgresStore({ url: database })
    }
    const { createSqliteStore } = await import('./store/sqlite/index.js')
    return createSqliteStore({ url: database })
  }
  const client = ('$client' in database ? database.$client : database) as object
  if ('pragma' in client) {
    const { createSqliteStore } = await import('./store/sqlite/index.js')
    return createSqliteStore({ database: client as Database.Database })
  }
  const { createPostgresStore } = await import('./store/postgres/index.js')
  return createPostgresStore({ pool: client as never })
}

let defaultInstance: Keyward | undefined

/**
 * The instance zero-config `apiKeyAuth()` and `keysRouter` share: SQLite at
 * `KEYWARD_DATABASE_URL` (default `./keyward.db`), opened on first use.
 */
export function defaultKeyward(): Keyward {
  defaultInstance ??= keyward()
  return defaultInstance
}

/** Closes the default instance (tests, graceful shutdown). */
export async function closeDefaultKeyward(): Promise<void> {
  const instance = defaultInstance
  defaultInstance = undefined
  await instance?.close()
}
