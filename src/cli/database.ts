import { existsSync } from 'node:fs'
import { type KeyStore, StoreUnavailableError } from '../core/store.js'
import { isPostgresUrl, openStore, sqlitePathFromUrl } from '../store/open.js'
import { SetupError, UsageError } from './options.js'

/**
 * Which database a command runs against, and opening it. Messages never repeat a URL that may
 * hold a password (`redact`).
 */

const SQLITE_OR_POSTGRES = 'an SQLite path (./keyward.db, file:keyward.db) or a postgres:// URL'

/**
 * The database the command names (`--database`, else `KEYWARD_DATABASE_URL`, else `./keyward.db`),
 * refused when its form cannot be right.
 */
export function databaseOf(flag: string | undefined, env: Record<string, string | undefined>): string {
  const fromEnv = env.KEYWARD_DATABASE_URL
  if (flag === undefined && fromEnv !== undefined && fromEnv.trim() === '') {
    throw new SetupError(`KEYWARD_DATABASE_URL is set but empty: set it to ${SQLITE_OR_POSTGRES}, or pass --database.`)
  }
  const database = flag ?? fromEnv ?? './keyward.db'
  const source = flag === undefined ? 'KEYWARD_DATABASE_URL' : '--database'
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(database)?.[1]?.toLowerCase()
  if (scheme === 'postgres' || scheme === 'postgresql') {
    if (!URL.canParse(database)) throw new UsageError(`${source} is not a valid postgres:// URL.`)
  } else if (scheme !== undefined && scheme !== 'file' && scheme !== 'sqlite') {
    throw new UsageError(`${source} has the scheme "${scheme}:"; give ${SQLITE_OR_POSTGRES}.`)
  }
  return database
}

/** A typo in `--database` must not silently create an empty SQLite file and report "no keys". */
export async function assertDatabaseExists(database: string): Promise<void> {
  if (isPostgresUrl(database) || database === ':memory:') return
  if (!existsSync(sqlitePathFromUrl(database))) {
    throw new SetupError(`no database at ${database}. Pass --database or set KEYWARD_DATABASE_URL (${SQLITE_OR_POSTGRES}).`)
  }
}

/**
 * Opens the store. A failure here is the set-up's (no such database, `pg` not installed, a
 * directory that is not there), not an outage — an unreachable server still opens and fails on
 * first use — so it is exit 2 with the driver's reason on the first line.
 */
export async function openDatabase(database: string): Promise<KeyStore> {
  try {
    return await openStore(database)
  } catch (error) {
    if (error instanceof StoreUnavailableError) throw error
    if (isPostgresUrl(database) && isMissingPackage(error, 'pg')) {
      throw new SetupError('PostgreSQL support needs the pg package: npm install pg', { cause: error })
    }
    const reason = redactText(innermostMessage(error), database)
    if (!isPostgresUrl(database)) throw new SetupError(`cannot open the SQLite database at ${database}: ${reason}`, { cause: error })
    const { hostname, port } = new URL(database)
    throw new SetupError(hostname === '' ? reason : `${reason} on ${hostname}:${port === '' ? '5432' : port}`, { cause: error })
  }
}

function isMissingPackage(error: unknown, name: string): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code === 'ERR_MODULE_NOT_FOUND' && error instanceof Error && error.message.includes(`Cannot find package '${name}'`)
}

/** A wrapped driver error's own message (drizzle's wrapper repeats the whole query instead). */
function innermostMessage(error: unknown): string {
  let current = error
  for (let depth = 0; depth < 10 && current instanceof Error && current.cause instanceof Error; depth++) current = current.cause
  return current instanceof Error ? current.message : String(current)
}

/** A PostgreSQL URL without its password, for messages. */
export function redact(database: string): string {
  if (!isPostgresUrl(database)) return database
  try {
    const url = new URL(database)
    if (url.password !== '') url.password = '***'
    return url.toString()
  } catch {
    return 'the PostgreSQL database'
  }
}

export function redactText(text: string, database: string): string {
  return text.split(database).join(redact(database))
}
