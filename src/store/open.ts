import type { KeyStore } from '../core/store.js'

/**
 * The one place that turns "where keys live" into a store: a URL or path, or a client the host app
 * already has. PostgreSQL code (and the `pg` package) is loaded only when asked for.
 *
 * The client types are structural on purpose: naming better-sqlite3's or drizzle's types here would
 * put those packages' declarations into the public types of `keyward` and `keyward/hono`, which a
 * strict consumer without them (`skipLibCheck: false`) could not compile.
 */

/** An open better-sqlite3 `Database`. */
export interface SqliteClientLike {
  pragma(source: string, options?: never): unknown
  prepare(source: string): unknown
}

/** A node-postgres `Pool`. */
export interface PostgresPoolLike {
  query: (...args: never[]) => unknown
  connect: (...args: never[]) => unknown
}

/** Anything `keyward({ database })` can open a store on. */
export type DatabaseInput =
  | string
  | SqliteClientLike
  | PostgresPoolLike
  /** A drizzle instance over either. */
  | { $client: SqliteClientLike | PostgresPoolLike }

/** Whether a database URL names PostgreSQL (`postgres://` or `postgresql://`). */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url)
}

/** `sqlite:./x.db` or `file:./x.db` → `./x.db`. */
export function sqlitePathFromUrl(url: string): string {
  return url.replace(/^sqlite:(\/\/)?/, '').replace(/^file:(\/\/)?/, '')
}

/** Opens the store a database input names. */
export async function openStore(database: DatabaseInput): Promise<KeyStore> {
  if (typeof database === 'string') {
    if (isPostgresUrl(database)) {
      const { createPostgresStore } = await import('./postgres/index.js')
      return createPostgresStore({ url: database })
    }
    const { createSqliteStore } = await import('./sqlite/index.js')
    return createSqliteStore({ url: database })
  }
  const client: object = '$client' in database ? database.$client : database
  if ('pragma' in client) {
    const { createSqliteStore } = await import('./sqlite/index.js')
    return createSqliteStore({ database: client as never })
  }
  const { createPostgresStore } = await import('./postgres/index.js')
  return createPostgresStore({ pool: client as never })
}
