/**
 * The bench's key stores: SQLite files and PostgreSQL databases seeded in bulk, in the real column
 * layout, with rows sorted by hash so the unique index on `key_hash` grows by appending. The
 * stores that take a while to build (the 1,000,000-key file, the 200,000 keys of the
 * beyond-the-cache scenarios) are kept between runs under the cache folder.
 */
import { createHash, hash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import Database from 'better-sqlite3'
import type pg from 'pg'
import { generateKey, hashKey } from '../src/core/key-format.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'

/** What a server needs to know about its store: one real key to present, and where it lives. */
export interface KeyFixture {
  /** The secret the load generator sends as `x-api-key`. */
  key: string
  keyId: string
  tenantId: string
  /** How many keys the store holds. */
  keyCount: number
}

/** Real secrets that a store holds (every one of them valid), cached as one key per line. */
export interface KeySet {
  keys: readonly string[]
  /** A short digest of the keys: a store seeded from them carries it in its file name. */
  digest: string
}

/** Bumped whenever the seeded rows change shape, so a cached file is rebuilt. */
const SEED_VERSION = 1
/** What the seeded file's layout depends on: a change in any of these seeds a new file. */
const SQLITE_SCHEMA_SOURCES = [new URL('../drizzle/sqlite/', import.meta.url), new URL('../src/store/sqlite/', import.meta.url)]
const CREATED_AT_MS = Date.parse('2026-01-01T00:00:00.000Z')
/** keyward shows `<prefix>_<env>_` and this many body characters of a key (`generateKey`'s `keyPrefix`). */
const DISPLAY_BODY_CHARS = 4

/** The id of the row at position `i` of a seeded store (positions follow the sorted hashes). */
export function seededKeyId(i: number): string {
  return `key_bench${String(i).padStart(13, '0')}`
}

/** Tenants of 1,000 keys each, in insertion order: every index grows by appending. */
export function seededTenantId(i: number): string {
  return `tnt_bench_${String(Math.floor(i / 1000)).padStart(6, '0')}`
}

interface SeedRow {
  id: string
  tenantId: string
  name: string
  keyHash: string
  keyPrefix: string
  keySuffix: string
  createdAtMs: number
}

/**
 * The rows of a store of `count` keys: `realKeys` (secrets a client can present) and made-up
 * hashes for the rest, which only fill the table and its indexes. Rows come out sorted by hash
 * and are built one at a time, so 1,000,000 of them never sit in memory as objects.
 */
class SeedPlan {
  readonly #hashes: string[]
  readonly #realByHash = new Map<string, string>()

  constructor(realKeys: readonly string[], count: number) {
    if (realKeys.length === 0 || realKeys.length > count) throw new Error(`bench: cannot seed ${realKeys.length} real keys into ${count}`)
    this.#hashes = realKeys.map((key) => {
      const keyHash = hashKey(key)
      this.#realByHash.set(keyHash, key)
      return keyHash
    })
    for (let i = realKeys.length; i < count; i++) this.#hashes.push(hash('sha256', `keyward-bench-${SEED_VERSION}-${i}`, 'hex'))
    this.#hashes.sort()
  }

  get count(): number {
    return this.#hashes.length
  }

  row(i: number): SeedRow {
    const keyHash = this.#hashes[i] as string
    const real = this.#realByHash.get(keyHash)
    return {
      id: seededKeyId(i),
      tenantId: seededTenantId(i),
      name: `bench key ${i}`,
      keyHash,
      keyPrefix: real === undefined ? `sk_live_${keyHash.slice(0, 4)}` : real.slice(0, real.lastIndexOf('_') + 1 + DISPLAY_BODY_CHARS),
      keySuffix: real === undefined ? keyHash.slice(-4) : real.slice(-4),
      createdAtMs: CREATED_AT_MS + i,
    }
  }

  /** The fixture of a real key, found by its hash. */
  fixtureOf(key: string): KeyFixture {
    const keyHash = hashKey(key)
    let low = 0
    let high = this.#hashes.length - 1
    while (low <= high) {
      const middle = (low + high) >>> 1
      const found = this.#hashes[middle] as string
      if (found === keyHash) return { key, keyId: seededKeyId(middle), tenantId: seededTenantId(middle), keyCount: this.count }
      if (found < keyHash) low = middle + 1
      else high = middle - 1
    }
    throw new Error('bench: the real key is not in the seed plan')
  }
}

/**
 * Creates an SQLite key store holding `count` keys: the `realKeys` (by default one fresh key) and
 * made-up hashes. Returns the fixture of the first real key.
 *
 * Fast on purpose (1,000,000 keys in seconds): one transaction, one prepared insert, rows sorted
 * by hash.
 */
export function seedSqlite(path: string, count: number, realKeys: readonly string[] = [generateKey('sk', 'live').key]): KeyFixture {
  // The store applies its own migrations: the schema is exactly what production opens.
  void createSqliteStore({ url: path }).close()
  const plan = new SeedPlan(realKeys, count)
  const db = new Database(path)
  try {
    db.pragma('synchronous = OFF')
    db.pragma('cache_size = -262144')
    db.pragma('temp_store = MEMORY')
    const insert = db.prepare(
      `insert into api_keys (id, tenant_id, project_id, name, environment, scopes, metadata, key_hash, key_prefix, key_suffix, created_at, updated_at)
       values (?, ?, null, ?, 'live', '[]', '{}', ?, ?, ?, ?, ?)`,
    )
    db.transaction(() => {
      for (let i = 0; i < plan.count; i++) {
        const row = plan.row(i)
        insert.run(row.id, row.tenantId, row.name, row.keyHash, row.keyPrefix, row.keySuffix, row.createdAtMs, row.createdAtMs)
      }
    })()
    db.pragma('wal_checkpoint(TRUNCATE)')
    return plan.fixtureOf(realKeys[0] as string)
  } finally {
    db.close()
  }
}

/**
 * A seeded SQLite file kept between runs under `cacheDir`: `count` keys with one real key, or
 * (given a key set) every key real. The file name carries the seed version, a fingerprint of the
 * migrations and the SQLite store's source (and the key set's digest), so a schema change seeds
 * afresh (and a file that no longer opens is seeded again). Seeding writes to a temporary name and
 * renames, so a killed run leaves no half file.
 */
export function cachedSqlite(
  cacheDir: string,
  count: number,
  log: (line: string) => void,
  keySet?: KeySet,
): { path: string; fixture: KeyFixture; seeded: boolean } {
  mkdirSync(cacheDir, { recursive: true })
  const family = keySet === undefined ? `keys-${count}-` : `active-${count}-`
  const path = join(
    cacheDir,
    `${family}v${SEED_VERSION}-${fingerprint(SQLITE_SCHEMA_SOURCES)}${keySet === undefined ? '' : `-${keySet.digest}`}.db`,
  )
  const sidecar = `${path}.json`
  if (existsSync(path) && existsSync(sidecar)) {
    try {
      // Opening applies any migration the file lacks; a file the store cannot open is seeded again.
      void createSqliteStore({ url: path }).close()
      return { path, fixture: JSON.parse(readFileSync(sidecar, 'utf8')) as KeyFixture, seeded: false }
    } catch (error) {
      log(
        `the cached store ${path} does not open (${error instanceof Error ? error.message.split('\n')[0] : String(error)}); seeding it again`,
      )
      removeSqlite(path)
    }
  }
  // Files seeded for an older schema (or key set) are of no further use (and weigh hundreds of MB each).
  for (const name of readdirSync(cacheDir)) {
    if (name.startsWith(family) && !name.startsWith(basename(path)) && !name.includes('.tmp-'))
      rmSync(join(cacheDir, name), { force: true })
  }
  const temporary = `${path}.tmp-${process.pid}`
  removeSqlite(temporary)
  const startedAt = performance.now()
  log(`seeding ${count.toLocaleString('en-US')} keys into ${path} (cached for later runs) ...`)
  try {
    const fixture = seedSqlite(temporary, count, keySet?.keys)
    writeFileSync(sidecar, JSON.stringify(fixture))
    renameSync(temporary, path)
    log(`seeded in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`)
    return { path, fixture, seeded: true }
  } finally {
    removeSqlite(temporary)
  }
}

/**
 * `count` real keys, generated once and kept under `cacheDir` (one per line), so the SQLite file
 * seeded from them stays valid between runs and PostgreSQL is seeded with the same keys.
 */
export function cachedKeySet(cacheDir: string, count: number, log: (line: string) => void): KeySet {
  mkdirSync(cacheDir, { recursive: true })
  const path = join(cacheDir, `active-keys-${count}-v${SEED_VERSION}.txt`)
  if (existsSync(path)) {
    const text = readFileSync(path, 'utf8')
    const keys = text.split('\n').filter(Boolean)
    if (keys.length === count) return { keys, digest: digestOf(text) }
    log(`the cached key set ${path} holds ${keys.length} keys instead of ${count}; generating it again`)
  }
  log(`generating ${count.toLocaleString('en-US')} keys into ${path} (cached for later runs) ...`)
  const keys = Array.from({ length: count }, () => generateKey('sk', 'live').key)
  const text = `${keys.join('\n')}\n`
  const temporary = `${path}.tmp-${process.pid}`
  writeFileSync(temporary, text)
  renameSync(temporary, path)
  return { keys, digest: digestOf(text) }
}

function digestOf(text: string): string {
  return hash('sha256', text, 'hex').slice(0, 10)
}

export function removeSqlite(path: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${path}${suffix}`, { force: true })
}

function fingerprint(sources: readonly URL[]): string {
  const digest = createHash('sha256')
  const walk = (dir: URL) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.isDirectory()) walk(new URL(`${entry.name}/`, dir))
      else digest.update(entry.name).update(readFileSync(new URL(entry.name, dir)))
    }
  }
  for (const dir of sources) walk(dir)
  return digest.digest('hex').slice(0, 10)
}

/** Rows per INSERT: seven arrays of this many values stay far below PostgreSQL's message limits. */
const POSTGRES_BATCH = 10_000
const POSTGRES_SCHEMA_SOURCES = [new URL('../drizzle/postgres/', import.meta.url), new URL('../src/store/postgres/', import.meta.url)]

/** A database of its own for one server; `drop()` removes it. */
export interface PostgresFixture {
  url: string
  fixture: KeyFixture
  drop: () => Promise<void>
}

/**
 * A fresh PostgreSQL database holding `count` keys (the `realKeys`, by default one fresh key, and
 * made-up hashes), seeded in bulk like SQLite: one transaction, `unnest` batches.
 */
export async function seedPostgres(
  adminUrl: string,
  count: number,
  realKeys: readonly string[] = [generateKey('sk', 'live').key],
): Promise<PostgresFixture> {
  const database = await createDatabase(adminUrl)
  try {
    const fixture = await seedPostgresDatabase(database.url, new SeedPlan(realKeys, count), realKeys[0] as string)
    return { ...database, fixture }
  } catch (error) {
    await database.drop().catch(() => undefined)
    throw error
  }
}

/**
 * A fresh PostgreSQL database holding every key of `keySet`, copied from a template database
 * seeded once and kept on the server (`CREATE DATABASE ... TEMPLATE` copies files: about a second
 * for 200,000 keys, where seeding takes ten or more). The template's name carries the seed
 * version, a fingerprint of the PostgreSQL migrations and store, and the key set's digest, so a
 * schema change seeds a new one and drops the old.
 */
export async function cachedPostgres(adminUrl: string, keySet: KeySet, log: (line: string) => void): Promise<PostgresFixture> {
  const count = keySet.keys.length
  const family = `keyward_bench_cache_${count}_`
  const template = `${family}v${SEED_VERSION}_${fingerprint(POSTGRES_SCHEMA_SOURCES)}_${keySet.digest}`
  const exists = await withAdmin(
    adminUrl,
    async (admin) => (await admin.query('select 1 from pg_database where datname = $1', [template])).rowCount,
  )
  if (!exists) {
    const stale = await withAdmin(adminUrl, async (admin) => {
      const { rows } = await admin.query<{ datname: string }>('select datname from pg_database where starts_with(datname, $1)', [family])
      for (const { datname } of rows) await admin.query(`drop database if exists "${datname}" with (force)`)
      return rows.length
    })
    const startedAt = performance.now()
    log(
      `seeding ${count.toLocaleString('en-US')} keys into the PostgreSQL template database ${template} (kept for later runs${stale > 0 ? `; ${stale} older one(s) dropped` : ''}) ...`,
    )
    // Seeded under a temporary name and renamed, so a killed run leaves no half template.
    const seeding = await createDatabase(adminUrl, `${template}_tmp`)
    try {
      await seedPostgresDatabase(seeding.url, new SeedPlan(keySet.keys, count), keySet.keys[0] as string)
      await withAdmin(adminUrl, (admin) => admin.query(`alter database "${template}_tmp" rename to "${template}"`))
    } catch (error) {
      await seeding.drop().catch(() => undefined)
      throw error
    }
    log(`seeded in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`)
  }
  const database = await createDatabase(adminUrl, undefined, template)
  try {
    const { default: pgDriver } = await import('pg')
    const client = new pgDriver.Client({ connectionString: database.url })
    await client.connect()
    try {
      const key = keySet.keys[0] as string
      const { rows } = await client.query<{ id: string; tenant_id: string }>('select id, tenant_id from api_keys where key_hash = $1', [
        hashKey(key),
      ])
      const row = rows[0]
      if (row === undefined) throw new Error(`bench: the template ${template} does not hold the key set's first key`)
      return { ...database, fixture: { key, keyId: row.id, tenantId: row.tenant_id, keyCount: count } }
    } finally {
      await client.end().catch(() => undefined)
    }
  } catch (error) {
    await database.drop().catch(() => undefined)
    throw error
  }
}

/** Creates a database (a copy of `template` if named) on the server `adminUrl` points at. */
async function createDatabase(adminUrl: string, name?: string, template?: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const created = name ?? `keyward_bench_${Date.now().toString(36)}_${process.pid}_${Math.random().toString(36).slice(2, 6)}`
  await withAdmin(adminUrl, (admin) =>
    admin.query(`create database "${created}"${template === undefined ? '' : ` template "${template}"`}`),
  )
  const url = new URL(adminUrl)
  url.pathname = `/${created}`
  const drop = () => withAdmin(adminUrl, (admin) => admin.query(`drop database if exists "${created}" with (force)`)).then(() => undefined)
  return { url: url.toString(), drop }
}

/** Migrates an empty database (through the store, as production does) and inserts the plan's rows. */
async function seedPostgresDatabase(url: string, plan: SeedPlan, firstKey: string): Promise<KeyFixture> {
  const { createPostgresStore } = await import('../src/store/postgres/index.js')
  await (await createPostgresStore({ url, maxConnections: 1 })).close()
  const { default: pgDriver } = await import('pg')
  const client = new pgDriver.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query('begin')
    for (let start = 0; start < plan.count; start += POSTGRES_BATCH) {
      const rows = Array.from({ length: Math.min(POSTGRES_BATCH, plan.count - start) }, (_, i) => plan.row(start + i))
      await client.query(
        `insert into api_keys (id, tenant_id, project_id, name, environment, scopes, metadata, key_hash, key_prefix, key_suffix, created_at, updated_at)
         select id, tenant_id, null, name, 'live', '[]'::jsonb, '{}'::jsonb, key_hash, key_prefix, key_suffix, created_at, created_at
         from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
           as seed(id, tenant_id, name, key_hash, key_prefix, key_suffix, created_at)`,
        [
          rows.map((row) => row.id),
          rows.map((row) => row.tenantId),
          rows.map((row) => row.name),
          rows.map((row) => row.keyHash),
          rows.map((row) => row.keyPrefix),
          rows.map((row) => row.keySuffix),
          rows.map((row) => new Date(row.createdAtMs).toISOString()),
        ],
      )
    }
    await client.query('commit')
    // Fresh statistics, so the planner sees the table as production would after autovacuum.
    await client.query('analyze api_keys')
  } finally {
    await client.end().catch(() => undefined)
  }
  return plan.fixtureOf(firstKey)
}

async function withAdmin<T>(adminUrl: string, work: (admin: pg.Client) => Promise<T>): Promise<T> {
  // Loaded here so the SQLite-only servers, which import this module, never load the driver.
  const { default: pgDriver } = await import('pg')
  const admin = new pgDriver.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 })
  await admin.connect()
  try {
    return await work(admin)
  } finally {
    await admin.end().catch(() => undefined)
  }
}
