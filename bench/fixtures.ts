import { createHash, hash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { generateKey, hashKey } from '../src/core/key-format.js'
import { keyward } from '../src/index.js'
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

/** Bumped whenever the seeded rows change shape, so a cached file is rebuilt. */
const SEED_VERSION = 1
/** What the seeded file's layout depends on: a change in any of these seeds a new file. */
const SCHEMA_SOURCES = [new URL('../drizzle/sqlite/', import.meta.url), new URL('../src/store/sqlite/', import.meta.url)]

/**
 * Creates an SQLite key store holding `count` keys, one of them a real key (returned). The other
 * rows carry unique SHA-256 hashes in the real column layout; only the lookup by hash matters.
 *
 * Fast on purpose (1,000,000 keys in seconds): one transaction, one prepared insert, rows
 * precomputed and sorted by hash so the unique index on `key_hash` grows by appending.
 */
export function seedSqlite(path: string, count: number): KeyFixture {
  // The store applies its own migrations: the schema is exactly what production opens.
  void createSqliteStore({ url: path }).close()
  const generated = generateKey('sk', 'live')
  const realHash = hashKey(generated.key)
  const hashes: string[] = [realHash]
  for (let i = 1; i < count; i++) hashes.push(hash('sha256', `keyward-bench-${SEED_VERSION}-${i}`, 'hex'))
  hashes.sort()

  const db = new Database(path)
  try {
    db.pragma('synchronous = OFF')
    db.pragma('cache_size = -262144')
    db.pragma('temp_store = MEMORY')
    const insert = db.prepare(
      `insert into api_keys (id, tenant_id, project_id, name, environment, scopes, metadata, key_hash, key_prefix, key_suffix, created_at, updated_at)
       values (?, ?, null, ?, 'live', '[]', '{}', ?, ?, ?, ?, ?)`,
    )
    const createdAt = Date.parse('2026-01-01T00:00:00.000Z')
    let fixture: KeyFixture | undefined
    db.transaction(() => {
      for (let i = 0; i < hashes.length; i++) {
        const keyHash = hashes[i] as string
        const id = `key_bench${String(i).padStart(13, '0')}`
        // Tenants of 1,000 keys each, in insertion order: every index grows by appending.
        const tenantId = `tnt_bench_${String(Math.floor(i / 1000)).padStart(6, '0')}`
        const isReal = keyHash === realHash
        const keyPrefix = isReal ? generated.keyPrefix : `sk_live_${keyHash.slice(0, 4)}`
        const keySuffix = isReal ? generated.keySuffix : keyHash.slice(-4)
        insert.run(id, tenantId, `bench key ${i}`, keyHash, keyPrefix, keySuffix, createdAt + i, createdAt + i)
        if (isReal) fixture = { key: generated.key, keyId: id, tenantId, keyCount: count }
      }
    })()
    db.pragma('wal_checkpoint(TRUNCATE)')
    if (fixture === undefined) throw new Error('bench: the real key was not inserted')
    return fixture
  } finally {
    db.close()
  }
}

/**
 * A seeded SQLite file kept between runs under `cacheDir` (seeding 1,000,000 keys takes a while).
 * The file name carries the seed version and a fingerprint of the migrations and the SQLite store's
 * source, so a schema change seeds afresh (and a file that no longer opens is seeded again). Seeding writes to a temporary name and renames, so a killed run leaves no half file.
 */
export function cachedSqlite(
  cacheDir: string,
  count: number,
  log: (line: string) => void,
): { path: string; fixture: KeyFixture; seeded: boolean } {
  mkdirSync(cacheDir, { recursive: true })
  const fingerprint = schemaFingerprint()
  const path = join(cacheDir, `keys-${count}-v${SEED_VERSION}-${fingerprint}.db`)
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
  // Files seeded for an older schema are of no further use (and weigh hundreds of MB each).
  for (const name of readdirSync(cacheDir)) {
    if (name.startsWith(`keys-${count}-`) && !name.startsWith(basename(path)) && !name.includes('.tmp-'))
      rmSync(join(cacheDir, name), { force: true })
  }
  const temporary = `${path}.tmp-${process.pid}`
  removeSqlite(temporary)
  const startedAt = performance.now()
  log(`seeding ${count.toLocaleString('en-US')} keys into ${path} (cached for later runs) ...`)
  try {
    const fixture = seedSqlite(temporary, count)
    writeFileSync(sidecar, JSON.stringify(fixture))
    renameSync(temporary, path)
    log(`seeded in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`)
    return { path, fixture, seeded: true }
  } finally {
    removeSqlite(temporary)
  }
}

export function removeSqlite(path: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${path}${suffix}`, { force: true })
}

function schemaFingerprint(): string {
  const digest = createHash('sha256')
  const walk = (dir: URL) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.isDirectory()) walk(new URL(`${entry.name}/`, dir))
      else digest.update(entry.name).update(readFileSync(new URL(entry.name, dir)))
    }
  }
  for (const dir of SCHEMA_SOURCES) walk(dir)
  return digest.digest('hex').slice(0, 10)
}

/** A fresh PostgreSQL database holding `count` keys made through the keyward API; `drop()` removes it. */
export async function seedPostgres(
  adminUrl: string,
  count: number,
): Promise<{ url: string; fixture: KeyFixture; drop: () => Promise<void> }> {
  const name = `keyward_bench_${Date.now().toString(36)}_${process.pid}`
  await withAdmin(adminUrl, (admin) => admin.query(`create database "${name}"`))
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  const drop = () => withAdmin(adminUrl, (admin) => admin.query(`drop database if exists "${name}" with (force)`)).then(() => undefined)
  try {
    const kw = keyward({ database: url.toString(), cache: false, usage: false, onError: () => undefined })
    try {
      await kw.ready()
      const tenantId = 'tnt_bench_000000'
      let fixture: KeyFixture | undefined
      for (let made = 0; made < count; ) {
        const batch = Math.min(50, count - made)
        const results = await Promise.all(
          Array.from({ length: batch }, (_, i) => kw.createKey({ tenantId }, { name: `bench key ${made + i}` })),
        )
        for (const result of results) {
          if (!result.ok) throw new Error(`createKey failed: ${JSON.stringify(result.error)}`)
          fixture ??= { key: result.value.key, keyId: result.value.apiKey.id, tenantId, keyCount: count }
        }
        made += batch
      }
      if (fixture === undefined) throw new Error('bench: no key was created')
      return { url: url.toString(), fixture, drop }
    } finally {
      await kw.close()
    }
  } catch (error) {
    await drop().catch(() => undefined)
    throw error
  }
}

async function withAdmin<T>(adminUrl: string, work: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 })
  await admin.connect()
  try {
    return await work(admin)
  } finally {
    await admin.end().catch(() => undefined)
  }
}
