import { readFileSync, rmSync } from 'node:fs'
import { drizzle } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { Keyward } from '../src/core/keyward.js'
import { StoreUnavailableError } from '../src/core/store.js'
import type { ApiKeyRecord } from '../src/core/types.js'
import { createPostgresStore, type PostgresStore } from '../src/store/postgres/index.js'
import { describeStoreContract, expectRotatedPairUpgraded, makeDelivery, makeRecord, stored } from './contract/store-contract.js'
import { migrationsUpTo } from './helpers/migrations.js'
import { freshPostgresDatabase, hasPostgres, PG_ADMIN_URL } from './helpers/postgres.js'

const T0 = new Date('2026-03-01T12:00:00.000Z')
const MIGRATION_COUNT = (
  JSON.parse(readFileSync(new URL('../drizzle/postgres/meta/_journal.json', import.meta.url), 'utf8')) as { entries: unknown[] }
).entries.length

describe.skipIf(!hasPostgres)('postgres store', () => {
  describeStoreContract('postgres', async () => {
    const url = await freshPostgresDatabase()
    return { store: await createPostgresStore({ url }), openAnother: () => createPostgresStore({ url }) }
  })

  // A linguistic collation orders `key_B...` before `key_a...`; pages must still come in the
  // byte order SQLite uses, so the suite runs once more on such a database.
  describeStoreContract('postgres (ICU en-US collation)', async () => {
    const url = await icuDatabase()
    return { store: await createPostgresStore({ url }), openAnother: () => createPostgresStore({ url }) }
  })

  it('upgrades a database of the release before the audit log (0000-0001) without losing keys or deliveries', async () => {
    const folder = migrationsUpTo('postgres', '0001_')
    try {
      const url = await freshPostgresDatabase()
      const record = makeRecord({ scopes: ['a'], revokedAt: T0 })
      await withClient(url, async (client) => {
        await migrate(drizzle({ client }), {
          migrationsFolder: folder,
          migrationsSchema: 'drizzle',
          migrationsTable: '__keyward_migrations',
        })
        await client.query(
          `insert into api_keys (id, tenant_id, name, environment, scopes, metadata, key_hash, key_prefix, key_suffix, created_at, updated_at, revoked_at)
           values ($1, $2, $3, $4, '["a"]', '{}', $5, $6, $7, $8, $8, $8)`,
          [record.id, record.tenantId, record.name, record.environment, record.keyHash, record.keyPrefix, record.keySuffix, T0],
        )
        await client.query(
          `insert into webhook_deliveries (id, tenant_id, key_id, event_type, url, status, attempts, created_at, updated_at)
           values ('msg_old', $1, $2, 'api_key.rotated', 'https://x.test/h', 'succeeded', '[]', $3, $3)`,
          [record.tenantId, record.id, T0],
        )
      })
      const store = await createPostgresStore({ url })
      try {
        expect(await store.findKeyByHash(record.keyHash)).toEqual(stored(record))
        expect(await store.listDeliveries(record.tenantId, [record.id])).toMatchObject([{ id: 'msg_old', endpointId: null, eventId: null }])
        expect(await store.listEvents({ tenantId: record.tenantId, limit: 10 })).toEqual([])
      } finally {
        await store.close()
      }
    } finally {
      rmSync(folder, { recursive: true, force: true })
    }
  })

  it('upgrades a database of the release before key lineages (0000-0003): rotated pairs keep working, each key its own lineage', async () => {
    const folder = migrationsUpTo('postgres', '0003_')
    try {
      const url = await freshPostgresDatabase()
      // A pair rotated before lineages existed: the successor's lineage is its own id (null).
      const a = makeRecord()
      const b = makeRecord()
      await withClient(url, async (client) => {
        await migrate(drizzle({ client }), {
          migrationsFolder: folder,
          migrationsSchema: 'drizzle',
          migrationsTable: '__keyward_migrations',
        })
        for (const [row, replacedBy, rotatedFrom] of [
          [a, b.id, null],
          [b, null, a.id],
        ] as const) {
          await client.query(
            `insert into api_keys (id, tenant_id, name, environment, scopes, metadata, key_hash, key_prefix, key_suffix, created_at, updated_at,
               replaced_by_key_id, rotated_from_key_id, credits_remaining, credits_refilled_at, credits_version)
             values ($1, $2, 'k', 'live', '[]', '{}', $3, $4, $5, $6, $6, $7, $8, 10, $6, 0)`,
            [row.id, row.tenantId, row.keyHash, row.keyPrefix, row.keySuffix, T0, replacedBy, rotatedFrom],
          )
        }
      })
      const store = await createPostgresStore({ url })
      try {
        await expectRotatedPairUpgraded(store, a, b, T0)
      } finally {
        await store.close()
      }
    } finally {
      rmSync(folder, { recursive: true, force: true })
    }
  })

  it('lets several processes open a new database at once (migrations run once, serialized)', async () => {
    const url = await freshPostgresDatabase()
    const stores = await Promise.all(Array.from({ length: 4 }, () => createPostgresStore({ url })))
    try {
      const record = makeRecord()
      await (stores[0] as PostgresStore).insertKey(record)
      expect(await (stores[3] as PostgresStore).findKeyByHash(record.keyHash)).toEqual(stored(record))
      const applied = await stores[1]?.db.execute('select count(*)::int as n from drizzle.__keyward_migrations')
      expect(applied?.rows[0]).toEqual({ n: MIGRATION_COUNT })
    } finally {
      await Promise.all(stores.map((store) => store.close()))
    }
  })

  it('calls onChange when another connection commits a change, not before it commits', async () => {
    const url = await freshPostgresDatabase()
    const listening = await createPostgresStore({ url })
    const writer = await createPostgresStore({ url })
    const record = makeRecord()
    await writer.insertKey(record)
    let calls = 0
    const unsubscribe = await listening.subscribeChanges(() => calls++)
    try {
      await waitFor(() => calls >= 1) // the sync a fresh subscription asks for
      const before = calls
      await writer.revokeKey('tenant_a', record.id, T0)
      await waitFor(() => calls > before)
      const latest = await listening.latestChangeSeq()
      expect((await listening.readChanges(latest - 1, 10)).keyHashes).toEqual([record.keyHash])
    } finally {
      await unsubscribe()
      await listening.close()
      await writer.close()
    }
  })

  it('listens again after its connection is killed, and asks for a sync once it is back', async () => {
    const url = await freshPostgresDatabase()
    const listening = await createPostgresStore({ url })
    const writer = await createPostgresStore({ url })
    const record = makeRecord()
    await writer.insertKey(record)
    let calls = 0
    const unsubscribe = await listening.subscribeChanges(() => calls++)
    try {
      await waitFor(() => calls >= 1)
      const pid = await listenerPid(url)
      const afterFirst = calls
      await withClient(url, (client) => client.query('select pg_terminate_backend($1)', [pid]))
      // The reconnect alone calls onChange: what was committed while nobody listened gets read.
      await waitFor(() => calls > afterFirst)
      const newPid = await listenerPid(url)
      expect(newPid).not.toBe(pid)
      const afterReconnect = calls
      await writer.updateKey('tenant_a', record.id, { scopes: ['narrower'] }, T0)
      await waitFor(() => calls > afterReconnect)
    } finally {
      await unsubscribe()
      await listening.close()
      await writer.close()
    }
    expect(await listenerCount(url)).toBe(0)
  })

  it('does not lose a notification that arrives while a sync is still reading the change log', async () => {
    const url = await freshPostgresDatabase()
    const writer = await createPostgresStore({ url })
    const store = await createPostgresStore({ url })
    const heldReads: (() => void)[] = []
    let holdReads = false
    let notifications = 0
    // The sync's read happens at once (before the revoke below commits); only its answer is held.
    const observed = new Proxy(store, {
      get(target, property) {
        if (property === 'readChanges') {
          return async (afterSeq: number, limit: number) => {
            const batch = await target.readChanges(afterSeq, limit)
            if (holdReads) await new Promise<void>((resolve) => heldReads.push(resolve))
            return batch
          }
        }
        if (property === 'subscribeChanges') {
          return (onChange: () => void) =>
            target.subscribeChanges(() => {
              notifications++
              onChange()
            })
        }
        const value = Reflect.get(target, property, target)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    // No poll and no staleness bound within the test: only the push can evict.
    const kw = new Keyward({ store: observed, cache: { syncIntervalMs: 60_000, maxStalenessMs: 60_000 } })
    try {
      const created = await kw.createKey({ tenantId: 'acme' }, { name: 'pushed' })
      if (!created.ok) throw new Error(created.error.code)
      expect((await kw.verify(created.value.key)).ok).toBe(true)
      holdReads = true
      const runningSync = kw.syncCache()
      await waitFor(() => heldReads.length === 1)
      const before = notifications
      await writer.revokeKey('acme', created.value.apiKey.id, new Date())
      await waitFor(() => notifications > before)
      holdReads = false
      for (const release of heldReads.splice(0)) release()
      await runningSync
      await waitFor(async () => !(await kw.verify(created.value.key)).ok, 2000)
      expect(await kw.verify(created.value.key)).toEqual({ ok: false, code: 'api_key_revoked' })
    } finally {
      await kw.close()
      await writer.close()
    }
  })

  it('serves every change to a reader polling while many are committed concurrently', async () => {
    const url = await freshPostgresDatabase()
    const writers = await Promise.all([createPostgresStore({ url }), createPostgresStore({ url })])
    const reader = await createPostgresStore({ url })
    const keys = Array.from({ length: 120 }, () => makeRecord())
    try {
      for (const key of keys) await (writers[0] as PostgresStore).insertKey(key)
      let seq = await reader.latestChangeSeq()
      const seen = new Set<string>()
      let writing = true
      const polling = (async () => {
        // Sequence numbers are drawn before commit: a reader that moved past a later one must
        // still receive an earlier one committed after it.
        for (let round = 0; round < 100_000 && (writing || seen.size < keys.length); round++) {
          // Whether every write had committed before this read began: only then does an empty
          // answer mean the log is drained (a read begun earlier may predate the last commit).
          const afterLastCommit = !writing
          const batch = await reader.readChanges(seq, 1000)
          for (const hash of batch.keyHashes) seen.add(hash)
          seq = batch.seq
          if (afterLastCommit && batch.keyHashes.length === 0) break
        }
      })()
      await Promise.all(keys.map((key, i) => (writers[i % 2] as PostgresStore).revokeKey('tenant_a', key.id, T0)))
      writing = false
      await polling
      expect(seen.size).toBe(keys.length)
    } finally {
      await Promise.all([...writers, reader].map((store) => store.close()))
    }
  })

  it('never hands one claimant more deliveries than it asked for, nor one delivery to two', async () => {
    const url = await freshPostgresDatabase()
    const claimants = await Promise.all(Array.from({ length: 4 }, () => createPostgresStore({ url })))
    const seeder = claimants[0] as PostgresStore
    try {
      for (let i = 0; i < 40; i++) {
        const old = makeRecord()
        await seeder.insertKey(old)
        const delivery = makeDelivery(old.id, { id: `msg_${i.toString().padStart(3, '0')}`, payload: '{}' })
        await seeder.rotateKey({ tenantId: 'tenant_a', oldKeyId: old.id, newKey: makeRecord(), graceExpiresAt: T0, now: T0, delivery })
      }
      const claimed: string[] = []
      const batchSizes: number[] = []
      await Promise.all(
        claimants.map(async (claimant) => {
          for (let round = 0; round < 40; round++) {
            const batch = await claimant.claimDeliveries(new Date(T0.getTime() + 1000), new Date(T0.getTime() + 60_000), 3)
            batchSizes.push(batch.length)
            claimed.push(...batch.map((delivery) => delivery.id))
            if (batch.length === 0) return
          }
        }),
      )
      expect(Math.max(...batchSizes)).toBeLessThanOrEqual(3)
      expect(claimed).toHaveLength(40)
      expect(new Set(claimed).size).toBe(40)
    } finally {
      await Promise.all(claimants.map((store) => store.close()))
    }
  })

  it('answers StoreUnavailableError, not a driver error, when the server cannot be reached', async () => {
    const url = await freshPostgresDatabase()
    const store = await createPostgresStore({ url })
    await store.close()
    await expect(store.findKeyByHash('0'.repeat(64))).rejects.toBeInstanceOf(StoreUnavailableError)
    const refused = new URL(url)
    refused.port = String(await unusedPort())
    // Opening is not an error (the database may be restarting); using it is, until it is back.
    const unreachable = await createPostgresStore({ url: refused.toString() })
    await expect(unreachable.latestChangeSeq()).rejects.toBeInstanceOf(StoreUnavailableError)
    await unreachable.close()
  })

  it('refuses to open on a configuration error instead of waiting for it to go away', async () => {
    const missing = new URL(await freshPostgresDatabase())
    missing.pathname = '/keyward_no_such_database'
    const failure = await createPostgresStore({ url: missing.toString() }).catch((error: unknown) => error)
    expect(failure).not.toBeInstanceOf(StoreUnavailableError)
    expect((failure as { code?: string }).code).toBe('3D000')
  })

  it('keeps a query error that is not an outage as it is (a duplicate key hash)', async () => {
    const url = await freshPostgresDatabase()
    const store = await createPostgresStore({ url })
    try {
      const record = makeRecord()
      await store.insertKey(record)
      const duplicate: ApiKeyRecord = { ...record, id: 'key_duplicate' }
      const failure = await store.insertKey(duplicate).catch((error: unknown) => error)
      expect(failure).not.toBeInstanceOf(StoreUnavailableError)
      expect((failure as Error & { cause?: { code?: string } }).cause?.code).toBe('23505')
    } finally {
      await store.close()
    }
  })

  it('writes a whole usage flush as one SQL statement, whatever the number of keys', async () => {
    const url = await freshPostgresDatabase()
    const pool = new pg.Pool({ connectionString: url })
    pool.on('error', () => undefined)
    const writes: string[] = []
    const query = pool.query.bind(pool) as (...args: unknown[]) => unknown
    pool.query = ((...args: unknown[]) => {
      const first = args[0] as string | { text?: string }
      const text = typeof first === 'string' ? first : (first?.text ?? '')
      if (/\b(insert|update|delete)\b/i.test(text)) writes.push(text)
      return query(...args)
    }) as typeof pool.query
    try {
      const store = await createPostgresStore({ pool })
      const keys = Array.from({ length: 1000 }, () => makeRecord())
      for (const key of keys) await store.insertKey(key)
      writes.length = 0
      await store.recordUsage(
        keys.map((key, i) => ({ keyId: key.id, day: '2026-03-01', count: 2, lastUsedAt: new Date(T0.getTime() + i) })),
      )
      expect(writes).toHaveLength(1)
      expect(await store.totalRequests(keys.map((key) => key.id))).toBe(2000)
      expect((await store.findKey('tenant_a', (keys[999] as ApiKeyRecord).id))?.lastUsedAt).toEqual(new Date(T0.getTime() + 999))
      await store.close()
    } finally {
      await pool.end()
    }
  })

  it('writes usage without touching api_keys: the key row keeps its version, its last use is read from usage', async () => {
    const url = await freshPostgresDatabase()
    const store = await createPostgresStore({ url })
    try {
      const key = makeRecord()
      await store.insertKey(key)
      // xmin is the row version's writing transaction: any UPDATE of the row changes it.
      const version = () =>
        withClient(url, async (client) => (await client.query('select xmin::text as v from api_keys where id = $1', [key.id])).rows[0]?.v)
      const before = await version()
      await store.recordUsage([{ keyId: key.id, day: '2026-03-01', count: 3, lastUsedAt: new Date(T0.getTime() + 500) }])
      await store.recordUsage([{ keyId: key.id, day: '2026-03-01', count: 1, lastUsedAt: new Date(T0.getTime() + 900) }])
      expect(await version()).toBe(before)
      expect((await store.findKey('tenant_a', key.id))?.lastUsedAt).toEqual(new Date(T0.getTime() + 900))
      // A last use recorded in the column by an earlier version still counts when it is later.
      await withClient(url, (client) =>
        client.query('update api_keys set last_used_at = $1 where id = $2', [new Date(T0.getTime() + 5000), key.id]),
      )
      expect((await store.findKey('tenant_a', key.id))?.lastUsedAt).toEqual(new Date(T0.getTime() + 5000))
    } finally {
      await store.close()
    }
  })

  it('leaves a pool it was given open on close', async () => {
    const url = await freshPostgresDatabase()
    const pool = new pg.Pool({ connectionString: url })
    pool.on('error', () => undefined)
    try {
      const store = await createPostgresStore({ pool })
      await store.insertKey(makeRecord())
      await store.close()
      expect((await pool.query('select count(*)::int as n from api_keys')).rows[0]).toEqual({ n: 1 })
    } finally {
      await pool.end()
    }
  })
})

const icuDatabases: string[] = []
afterAll(async () => {
  if (icuDatabases.length === 0) return
  await withClient(PG_ADMIN_URL, async (admin) => {
    for (const name of icuDatabases.splice(0)) await admin.query(`drop database if exists "${name}" with (force)`)
  })
})

async function icuDatabase(): Promise<string> {
  const name = `keyward_icu_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  await withClient(PG_ADMIN_URL, (admin) =>
    admin.query(`create database "${name}" template template0 locale_provider icu icu_locale 'en-US' locale 'C.UTF-8'`),
  )
  icuDatabases.push(name)
  const url = new URL(PG_ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

async function listenerPid(url: string): Promise<number> {
  let pid: number | undefined
  await waitFor(async () => {
    const result = await withClient(url, (client) =>
      client.query<{ pid: number }>(
        `select pid from pg_stat_activity where datname = current_database() and application_name = 'keyward-listener' and query ilike 'listen%'`,
      ),
    )
    pid = result.rows[0]?.pid
    return result.rows.length === 1
  })
  return pid as number
}

async function listenerCount(url: string): Promise<number> {
  const result = await withClient(url, (client) =>
    client.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'keyward-listener'`,
    ),
  )
  return result.rows[0]?.n ?? 0
}

async function unusedPort(): Promise<number> {
  const net = await import('node:net')
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Waits for an event from another connection; bounded, so a missing event fails the test. */
async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
