import Database from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { migrate } from 'drizzle-orm/better-sqlite3/migrator'
import { describe, expect, it } from 'vitest'
import type { ApiKeyRecord } from '../src/core/types.js'
import { createSqliteStore, OFF_THREAD_USAGE_ROWS } from '../src/store/sqlite/index.js'
import { UsageWriter } from '../src/store/sqlite/usage-writer.js'
import { describeStoreContract, expectRotatedPairUpgraded, makeRecord, stored } from './contract/store-contract.js'
import { migrationsUpTo } from './helpers/migrations.js'
import { tempSqlitePath } from './helpers/sqlite.js'

const T0 = new Date('2026-03-01T12:00:00.000Z')

describeStoreContract('sqlite (a real file)', async () => {
  const path = tempSqlitePath()
  return { store: createSqliteStore({ url: path }), openAnother: async () => createSqliteStore({ url: path }) }
})

/** A new SQLite file migrated up to the migration named `last` (an older release's schema), open. */
function databaseUpTo(last: string): { path: string; old: Database.Database } {
  const path = tempSqlitePath()
  const old = new Database(path)
  migrate(drizzle(old), { migrationsFolder: migrationsUpTo('sqlite', last), migrationsTable: '__keyward_migrations' })
  return { path, old }
}

describe('sqlite store', () => {
  /** Write statements run on the store's own (main-thread) connection, counted from now on. */
  function countMainThreadWrites(client: Database.Database): string[] {
    const writes: string[] = []
    const prepare = client.prepare.bind(client)
    client.prepare = ((source: string) => {
      const statement = prepare(source)
      if (/\b(insert|update|delete)\b/i.test(source)) {
        const run = statement.run.bind(statement)
        statement.run = ((...params: unknown[]) => {
          writes.push(source)
          return run(...params)
        }) as typeof statement.run
      }
      return statement
    }) as typeof client.prepare
    return writes
  }

  /** A store on a file of its own holding `count` keys (inserted in one transaction). */
  async function fileStoreWithKeys(count: number) {
    const store = createSqliteStore({ url: tempSqlitePath() })
    const client = store.db.$client
    const keys = Array.from({ length: count }, () => makeRecord())
    const inserted: Promise<void>[] = []
    client.transaction(() => {
      for (const key of keys) inserted.push(store.insertKey(key))
    })()
    await Promise.all(inserted)
    return { store, client, keys }
  }

  it('writes a large usage flush from its writer thread and a small one on the main thread, to the same rows', async () => {
    const { store, client, keys } = await fileStoreWithKeys(OFF_THREAD_USAGE_ROWS + 200)
    const mainWrites = countMainThreadWrites(client)
    const flush = (from: number, to: number, atMs: number) =>
      store.recordUsage(keys.slice(from, to).map((key) => ({ keyId: key.id, day: '2026-03-01', count: 2, lastUsedAt: new Date(atMs) })))

    await flush(0, keys.length, T0.getTime())
    // Every row landed, and not through the main thread's connection: the writer thread wrote them.
    expect(mainWrites).toHaveLength(0)
    const ids = keys.map((key) => key.id)
    expect(await store.totalRequests(ids)).toBe(keys.length * 2)

    // A small flush stays on the main thread (one statement), adding to the rows the writer made.
    await flush(0, 10, T0.getTime() + 5)
    expect(mainWrites).toHaveLength(1)
    // Another large one adds again; last uses only move forward, whichever thread wrote them.
    await flush(0, keys.length, T0.getTime() - 1)
    expect(mainWrites).toHaveLength(1)
    expect(await store.totalRequests(ids)).toBe(keys.length * 4 + 10 * 2)
    expect((await store.findKey('tenant_a', (keys[0] as ApiKeyRecord).id))?.lastUsedAt).toEqual(new Date(T0.getTime() + 5))
    expect((await store.findKey('tenant_a', (keys.at(-1) as ApiKeyRecord).id))?.lastUsedAt).toEqual(T0)
    await store.close()
  })

  it("fails a writer thread's write with the driver's error, writes none of it, and writes the next flush", async () => {
    const { store, client, keys } = await fileStoreWithKeys(OFF_THREAD_USAGE_ROWS)
    const flush = () => store.recordUsage(keys.map((key) => ({ keyId: key.id, day: '2026-03-01', count: 1, lastUsedAt: T0 })))
    const ids = keys.map((key) => key.id)
    await flush()
    // The usage table gone from under the writer's prepared statement: its next write fails.
    client.exec('alter table api_key_usage rename to api_key_usage_away')
    await expect(flush()).rejects.toThrow(/api_key_usage/)
    client.exec('alter table api_key_usage_away rename to api_key_usage')
    expect(await store.totalRequests(ids)).toBe(keys.length)
    await flush()
    expect(await store.totalRequests(ids)).toBe(keys.length * 2)
    await store.close()
  })

  it("reports SQLite's error code from the writer thread, so a locked database is unavailable, and writes once it is free", async () => {
    const { store, client, keys } = await fileStoreWithKeys(3)
    const rows = JSON.stringify(keys.map((key) => [key.id, '2026-03-01', 1, 0, 0, T0.getTime()]))
    // A short busy timeout, and the failure handed back as the thread reported it.
    const writer = new UsageWriter(client.name, 50, (failure) => failure)
    const holder = new Database(client.name)
    holder.exec('begin immediate')
    await expect(writer.write(rows)).rejects.toMatchObject({ code: 'SQLITE_BUSY' })
    holder.exec('commit')
    holder.close()
    await writer.write(rows)
    expect(await store.totalRequests(keys.map((key) => key.id))).toBe(3)
    await writer.close()
    await store.close()
  })

  it('keeps every write of an in-memory database on its one connection', async () => {
    const store = createSqliteStore({ url: ':memory:' })
    const keys = Array.from({ length: OFF_THREAD_USAGE_ROWS }, () => makeRecord())
    for (const key of keys) await store.insertKey(key)
    const mainWrites = countMainThreadWrites(store.db.$client)
    await store.recordUsage(keys.map((key) => ({ keyId: key.id, day: '2026-03-01', count: 3, lastUsedAt: T0 })))
    expect(mainWrites).toHaveLength(1)
    expect(await store.totalRequests(keys.map((key) => key.id))).toBe(keys.length * 3)
    await store.close()
  })

  it('writes a whole usage flush as one SQL statement, whatever the number of keys', async () => {
    const client = new Database(tempSqlitePath())
    const writes = countMainThreadWrites(client)
    const store = createSqliteStore({ database: client })
    // Over 32,766 rows: more than SQLite binds in one statement, were each value a parameter.
    const keys = Array.from({ length: 40_000 }, () => makeRecord())
    // One transaction for the set-up (the store's calls run synchronously inside it): 40,000
    // separate commits take a minute on a busy machine and are not what this test is about.
    const inserted: Promise<void>[] = []
    client.transaction(() => {
      for (const key of keys) inserted.push(store.insertKey(key))
    })()
    await Promise.all(inserted)
    writes.length = 0
    await store.recordUsage(keys.map((key, i) => ({ keyId: key.id, day: '2026-03-01', count: 2, lastUsedAt: new Date(T0.getTime() + i) })))
    expect(writes).toHaveLength(1)
    expect(client.prepare('select sum(request_count) as n, count(*) as rows from api_key_usage').get()).toEqual({ n: 80_000, rows: 40_000 })
    const last = keys[39_999] as ApiKeyRecord
    expect((await store.findKey('tenant_a', last.id))?.lastUsedAt).toEqual(new Date(T0.getTime() + 39_999))
    await store.close()
    client.close()
    // A volume test (40,000 keys): minutes-long on a loaded two-core machine is possible, not a hang.
  }, 120_000)

  it('upgrades a database made by the first migration without losing its keys or usage', async () => {
    // A database as the first release left it: only migration 0000.
    const { path, old } = databaseUpTo('0000_')
    const record = makeRecord()
    old
      .prepare(
        `insert into api_keys (id, tenant_id, name, environment, scopes, metadata, key_hash, key_prefix, key_suffix, created_at, updated_at, last_used_at)
         values (?, ?, ?, ?, '[]', '{}', ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        record.id,
        record.tenantId,
        record.name,
        record.environment,
        record.keyHash,
        record.keyPrefix,
        record.keySuffix,
        T0.getTime(),
        T0.getTime(),
        T0.getTime() + 5000,
      )
    old.prepare('insert into api_key_usage (key_id, day, request_count) values (?, ?, ?)').run(record.id, '2026-03-01', 40)
    old.close()

    const store = createSqliteStore({ url: path })
    expect((await store.findKey('tenant_a', record.id))?.lastUsedAt).toEqual(new Date(T0.getTime() + 5000))
    // An older use does not move last_used_at back; a newer one moves it forward.
    await store.recordUsage([{ keyId: record.id, day: '2026-03-01', count: 2, lastUsedAt: new Date(T0.getTime() + 1000) }])
    expect((await store.findKey('tenant_a', record.id))?.lastUsedAt).toEqual(new Date(T0.getTime() + 5000))
    await store.recordUsage([{ keyId: record.id, day: '2026-03-01', count: 3, lastUsedAt: new Date(T0.getTime() + 9000) }])
    expect(await store.usageByDay([record.id], '2026-03-01')).toEqual([{ day: '2026-03-01', count: 45, rateLimited: 0, creditsRefused: 0 }])
    expect((await store.findKey('tenant_a', record.id))?.lastUsedAt).toEqual(new Date(T0.getTime() + 9000))
    await store.close()
  })

  it('upgrades a database of the release before the audit log (0000-0001) without losing keys or deliveries', async () => {
    const { path, old } = databaseUpTo('0001_')
    const record = makeRecord()
    old
      .prepare(
        `insert into api_keys (id, tenant_id, name, environment, scopes, metadata, key_hash, key_prefix, key_suffix, created_at, updated_at, revoked_at)
         values (?, ?, ?, ?, '["a"]', '{}', ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        record.id,
        record.tenantId,
        record.name,
        record.environment,
        record.keyHash,
        record.keyPrefix,
        record.keySuffix,
        T0.getTime(),
        T0.getTime(),
        T0.getTime(),
      )
    old
      .prepare(
        `insert into webhook_deliveries (id, tenant_id, key_id, new_key_id, event_type, url, payload, status, attempts, created_at, updated_at)
         values ('msg_old', ?, ?, null, 'api_key.rotated', 'https://x.test/h', null, 'succeeded', '[]', ?, ?)`,
      )
      .run(record.tenantId, record.id, T0.getTime(), T0.getTime())
    old.close()

    const store = createSqliteStore({ url: path })
    expect(await store.findKeyByHash(record.keyHash)).toEqual(
      stored({ ...record, scopes: ['a'], revokedAt: T0, createdBy: null, revokedBy: null }),
    )
    expect(await store.listDeliveries(record.tenantId, [record.id])).toMatchObject([{ id: 'msg_old', endpointId: null, eventId: null }])
    expect(await store.listEvents({ tenantId: record.tenantId, limit: 10 })).toEqual([])
    await store.close()
  })

  it('upgrades a database of the release before 0005 (last use read from usage) without losing usage or last uses', async () => {
    const { path, old } = databaseUpTo('0004_')
    const used = makeRecord()
    const idle = makeRecord()
    const insert = old.prepare(
      `insert into api_keys (id, tenant_id, name, environment, scopes, metadata, key_hash, key_prefix, key_suffix, created_at, updated_at)
       values (?, ?, 'k', 'live', '[]', '{}', ?, ?, ?, ?, ?)`,
    )
    for (const key of [used, idle]) insert.run(key.id, key.tenantId, key.keyHash, key.keyPrefix, key.keySuffix, T0.getTime(), T0.getTime())
    // A flush of the old release: its trigger moved api_keys.last_used_at.
    old
      .prepare('insert into api_key_usage (key_id, day, request_count, last_used_at, rate_limited_count) values (?, ?, ?, ?, ?)')
      .run(used.id, '2026-03-01', 5, T0.getTime() + 9000, 2)
    expect(old.prepare('select last_used_at from api_keys where id = ?').pluck().get(used.id)).toBe(T0.getTime() + 9000)
    // And a key whose last use the column holds with no usage row (recorded before usage rows kept one).
    old.prepare('update api_keys set last_used_at = ? where id = ?').run(T0.getTime() + 4000, idle.id)
    old.close()

    const store = createSqliteStore({ url: path })
    try {
      expect(await store.usageByDay([used.id], '2026-03-01')).toEqual([{ day: '2026-03-01', count: 5, rateLimited: 2, creditsRefused: 0 }])
      expect((await store.findKey('tenant_a', used.id))?.lastUsedAt).toEqual(new Date(T0.getTime() + 9000))
      expect((await store.findKey('tenant_a', idle.id))?.lastUsedAt).toEqual(new Date(T0.getTime() + 4000))
      // An earlier use does not move it back; a later one moves it forward.
      await store.recordUsage([{ keyId: idle.id, day: '2026-03-01', count: 1, lastUsedAt: new Date(T0.getTime() + 1000) }])
      expect((await store.findKey('tenant_a', idle.id))?.lastUsedAt).toEqual(new Date(T0.getTime() + 4000))
      await store.recordUsage([{ keyId: used.id, day: '2026-03-01', count: 1, lastUsedAt: new Date(T0.getTime() + 20_000) }])
      expect((await store.findKey('tenant_a', used.id))?.lastUsedAt).toEqual(new Date(T0.getTime() + 20_000))
      expect(await store.totalRequests([used.id, idle.id])).toBe(7)
    } finally {
      await store.close()
    }
  })

  it('writes usage without touching api_keys: no trigger, and the usage table is one B-tree (WITHOUT ROWID)', async () => {
    const client = new Database(tempSqlitePath())
    const store = createSqliteStore({ database: client })
    try {
      const key = makeRecord()
      await store.insertKey(key)
      const row = () => client.prepare('select * from api_keys where id = ?').get(key.id)
      const before = row()
      await store.recordUsage([{ keyId: key.id, day: '2026-03-01', count: 3, lastUsedAt: new Date(T0.getTime() + 500) }])
      // The flush left the key's row as it was (the row a verification miss reads) ...
      expect(row()).toEqual(before)
      // ... and its last use is read from the usage row.
      expect((await store.findKey('tenant_a', key.id))?.lastUsedAt).toEqual(new Date(T0.getTime() + 500))
      expect(client.prepare("select name from sqlite_master where type = 'trigger'").all()).toEqual([])
      expect(client.prepare("select sql from sqlite_master where name = 'api_key_usage'").pluck().get()).toMatch(/WITHOUT ROWID\s*$/)
    } finally {
      await store.close()
      client.close()
    }
  })

  it('upgrades a database of the release before key lineages (0000-0003): rotated pairs keep working, each key its own lineage', async () => {
    const { path, old } = databaseUpTo('0003_')
    // A pair rotated before lineages existed: the successor's lineage is its own id (null).
    const a = makeRecord()
    const b = makeRecord()
    const insert = old.prepare(
      `insert into api_keys (id, tenant_id, name, environment, scopes, metadata, key_hash, key_prefix, key_suffix, created_at, updated_at,
         replaced_by_key_id, rotated_from_key_id, credits_remaining, credits_refilled_at, credits_version)
       values (?, ?, 'k', 'live', '[]', '{}', ?, ?, ?, ?, ?, ?, ?, 10, ?, 0)`,
    )
    insert.run(a.id, a.tenantId, a.keyHash, a.keyPrefix, a.keySuffix, T0.getTime(), T0.getTime(), b.id, null, T0.getTime())
    insert.run(b.id, b.tenantId, b.keyHash, b.keyPrefix, b.keySuffix, T0.getTime(), T0.getTime(), null, a.id, T0.getTime())
    old.close()

    const store = createSqliteStore({ url: path })
    try {
      await expectRotatedPairUpgraded(store, a, b, T0)
    } finally {
      await store.close()
    }
  })
})
