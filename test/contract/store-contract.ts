import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { generateKey, hashKey, newId } from '../../src/core/key-format.js'
import { statusOf } from '../../src/core/records.js'
import { type KeyStore, type StoredKey, VERIFICATION_FIELDS } from '../../src/core/store.js'
import type { ApiKeyRecord, KeyStatus, WebhookDelivery } from '../../src/core/types.js'
import { describeAuditStoreContract } from './audit-store-contract.js'

/**
 * One behaviour suite for every store (drizzle-orm's `tests()` habit): the SQLite and PostgreSQL
 * stores both run it, so they cannot drift apart.
 */
export interface StoreFixture {
  /** The store under test, on a fresh, empty, migrated database. */
  store: KeyStore
  /** Opens a second, independent connection to the same database (another process's view). */
  openAnother(): Promise<KeyStore>
}

const T0 = new Date('2026-03-01T12:00:00.000Z')
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000)
const DAY = 86_400

/**
 * After an upgrade from the release before key lineages (0000-0003), a pair `a` → `b` rotated back
 * then (each row with 10 credits, set at `setAt`): each key is its own lineage, the successor heads
 * the pair's credits, and a new rotation continues from it. Both stores' upgrade tests check this.
 */
export async function expectRotatedPairUpgraded(store: KeyStore, a: ApiKeyRecord, b: ApiKeyRecord, setAt: Date): Promise<void> {
  expect(await store.findKey(a.tenantId, a.id)).toMatchObject({ lineageId: null, replacedByKeyId: b.id })
  expect(await store.findKey(b.tenantId, b.id)).toMatchObject({ lineageId: null, creditsRemaining: 10 })
  expect(await store.leaseCredits(b.id, 3, setAt)).toMatchObject({ granted: 3, remaining: 7 })
  // The replaced row heads no lineage: its credits are its successor's.
  expect(await store.leaseCredits(a.id, 1, setAt)).toBeNull()
  const rotated = await store.rotateKey({ tenantId: b.tenantId, oldKeyId: b.id, newKey: makeRecord(), graceExpiresAt: setAt, now: setAt })
  expect(rotated.ok && rotated.newKey).toMatchObject({ lineageId: b.id, creditsRemaining: 7 })
}

/** A record as the verification reads return it: its `VERIFICATION_FIELDS` and nothing else (`StoredKey`). */
export function stored(record: ApiKeyRecord): StoredKey {
  return Object.fromEntries(VERIFICATION_FIELDS.map((field) => [field, record[field]])) as StoredKey
}

export function makeRecord(overrides: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  const generated = generateKey('sk', overrides.environment ?? 'live')
  return {
    id: newId('key'),
    tenantId: 'tenant_a',
    projectId: null,
    name: 'a key',
    environment: 'live',
    scopes: [],
    metadata: {},
    keyHash: hashKey(generated.key),
    keyPrefix: generated.keyPrefix,
    keySuffix: generated.keySuffix,
    createdAt: T0,
    updatedAt: T0,
    lastUsedAt: null,
    expiresAt: null,
    revokedAt: null,
    replacedByKeyId: null,
    rotatedFromKeyId: null,
    lineageId: null,
    graceExpiresAt: null,
    rotationIntervalDays: null,
    nextRotationAt: null,
    rotationWebhookUrl: null,
    rotationWebhookSecret: null,
    rateLimits: [],
    allowedIps: [],
    creditsRemaining: null,
    creditsRefillAmount: null,
    creditsRefillInterval: null,
    creditsRefilledAt: null,
    creditsVersion: 0,
    disabledAt: null,
    createdBy: null,
    revokedBy: null,
    ...overrides,
  }
}

export function makeDelivery(keyId: string, overrides: Partial<WebhookDelivery> = {}): WebhookDelivery {
  return {
    id: newId('msg'),
    tenantId: 'tenant_a',
    keyId,
    newKeyId: null,
    eventType: 'api_key.rotated',
    url: 'http://127.0.0.1:9/hook',
    payload: '{"a":1}',
    status: 'pending',
    attempts: [],
    nextAttemptAt: T0,
    lockedUntil: null,
    createdAt: T0,
    updatedAt: T0,
    endpointId: null,
    eventId: null,
    ...overrides,
  }
}

export function describeStoreContract(name: string, open: () => Promise<StoreFixture>): void {
  describe(`store contract: ${name}`, () => {
    let fixture: StoreFixture
    let store: KeyStore
    const extra: KeyStore[] = []

    beforeEach(async () => {
      fixture = await open()
      store = fixture.store
    })
    afterEach(async () => {
      for (const other of extra.splice(0)) await other.close()
      await store.close()
    })
    const another = async () => {
      const other = await fixture.openAnother()
      extra.push(other)
      return other
    }
    /** Rotates `oldKeyId` (tenant_a) to a fresh key with a 60 s grace period; the successor as stored. */
    const rotate = async (oldKeyId: string, now: Date): Promise<ApiKeyRecord> => {
      const rotated = await store.rotateKey({ tenantId: 'tenant_a', oldKeyId, newKey: makeRecord(), graceExpiresAt: at(60), now })
      if (!rotated.ok) throw new Error(rotated.reason)
      return rotated.newKey
    }

    describeAuditStoreContract(() => ({ store, another, makeRecord }))

    it('stores a key and finds it by hash and by tenant and id, with every field intact', async () => {
      const record = makeRecord({
        projectId: 'proj_1',
        scopes: ['orders:read', 'orders:write'],
        metadata: { team: 'billing', nested: { n: 1, list: [1, 'two'] } },
        expiresAt: at(3600),
        rotationIntervalDays: 30,
        nextRotationAt: at(30 * 86400),
        rotationWebhookUrl: 'https://example.test/hook',
        rotationWebhookSecret: 'whsec_abc',
        // Every kind of value the verification read decodes: timestamps, JSON, text, integers.
        revokedAt: at(7),
        disabledAt: at(5),
        replacedByKeyId: 'key_next',
        graceExpiresAt: at(60),
        lineageId: 'key_first',
        rateLimits: [{ name: 'burst', limit: 10, windowMs: 1000 }],
        allowedIps: ['203.0.113.0/24', '2001:db8::/32'],
        creditsRemaining: 40,
        creditsRefillAmount: 50,
        creditsRefillInterval: 'day',
        creditsRefilledAt: at(0),
        creditsVersion: 3,
      })
      await store.insertKey(record)
      const verified = await store.findKeyByHash(record.keyHash)
      expect(verified).toEqual(stored(record))
      // Only what verification needs: not the rotation webhook's secret, not the key's last use.
      expect(Object.keys(verified ?? {}).sort()).toEqual([...VERIFICATION_FIELDS].sort())
      expect(await store.findKeysByHash([record.keyHash])).toEqual([stored(record)])
      expect(await store.findKey('tenant_a', record.id)).toEqual(record)
    })

    it('finds nothing for an unknown hash, and nothing for another tenant asking by id', async () => {
      const record = makeRecord()
      await store.insertKey(record)
      expect(await store.findKeyByHash('0'.repeat(64))).toBeNull()
      expect(await store.findKey('tenant_b', record.id)).toBeNull()
    })

    it('finds many keys by hash in one call: those it holds, each with every field, none for unknown hashes', async () => {
      const records = [makeRecord({ scopes: ['a'] }), makeRecord({ metadata: { n: 2 } }), makeRecord()]
      for (const record of records) await store.insertKey(record)
      const asked = [records[2]?.keyHash, '0'.repeat(64), records[0]?.keyHash, records[1]?.keyHash] as string[]
      const found = await store.findKeysByHash(asked)
      expect(found.sort((a, b) => a.id.localeCompare(b.id))).toEqual(records.map(stored).sort((a, b) => a.id.localeCompare(b.id)))
      expect(await store.findKeysByHash(['1'.repeat(64), '2'.repeat(64)])).toEqual([])
    })

    it('rejects a second key with the same hash', async () => {
      const record = makeRecord()
      await store.insertKey(record)
      await expect(store.insertKey({ ...record, id: newId('key') })).rejects.toThrow()
      expect(await store.findKey('tenant_a', record.id)).toEqual(record)
    })

    it('lists a tenant’s keys newest first, page by page, without gaps or repeats', async () => {
      const ids: string[] = []
      for (let i = 0; i < 7; i++) {
        // Two keys share each creation instant, so the id tie-break is exercised.
        const record = makeRecord({ createdAt: at(Math.floor(i / 2)), updatedAt: at(Math.floor(i / 2)) })
        await store.insertKey(record)
        ids.push(record.id)
      }
      await store.insertKey(makeRecord({ tenantId: 'tenant_b' }))
      const seen: string[] = []
      let after: { createdAt: Date; id: string } | undefined
      for (;;) {
        const page = await store.listKeys({ tenantId: 'tenant_a', now: at(10), limit: 3, after })
        seen.push(...page.map((row) => row.id))
        const last = page.at(-1)
        if (page.length < 3 || last === undefined) break
        after = { createdAt: last.createdAt, id: last.id }
      }
      expect(seen).toHaveLength(7)
      expect(new Set(seen)).toEqual(new Set(ids))
      const all = await store.listKeys({ tenantId: 'tenant_a', now: at(10), limit: 100 })
      expect(all.map((row) => row.id)).toEqual(seen)
      for (let i = 1; i < all.length; i++) {
        const [prev, cur] = [all[i - 1] as ApiKeyRecord, all[i] as ApiKeyRecord]
        expect(
          prev.createdAt.getTime() > cur.createdAt.getTime() || (prev.createdAt.getTime() === cur.createdAt.getTime() && prev.id > cur.id),
        ).toBe(true)
      }
    })

    it('filters by project and environment', async () => {
      await store.insertKey(makeRecord({ projectId: 'p1', environment: 'live' }))
      await store.insertKey(makeRecord({ projectId: 'p1', environment: 'test' }))
      await store.insertKey(makeRecord({ projectId: 'p2', environment: 'live' }))
      expect(await store.listKeys({ tenantId: 'tenant_a', projectId: 'p1', now: T0, limit: 10 })).toHaveLength(2)
      expect(await store.listKeys({ tenantId: 'tenant_a', environment: 'test', now: T0, limit: 10 })).toHaveLength(1)
      expect(await store.listKeys({ tenantId: 'tenant_a', projectId: 'p2', environment: 'test', now: T0, limit: 10 })).toHaveLength(0)
    })

    it('filters by derived status exactly as statusOf derives it', async () => {
      const now = at(100)
      const rows = [
        makeRecord(),
        makeRecord({ revokedAt: at(1) }),
        makeRecord({ expiresAt: at(50) }),
        makeRecord({ expiresAt: at(100) }),
        makeRecord({ expiresAt: at(200) }),
        makeRecord({ replacedByKeyId: 'key_x', graceExpiresAt: at(500) }),
        makeRecord({ replacedByKeyId: 'key_y', graceExpiresAt: at(100) }),
        makeRecord({ replacedByKeyId: 'key_z', graceExpiresAt: at(50), revokedAt: at(60) }),
      ]
      for (const row of rows) await store.insertKey(row)
      for (const status of ['active', 'expired', 'revoked', 'rotating', 'rotated'] as KeyStatus[]) {
        const listed = await store.listKeys({ tenantId: 'tenant_a', status, now, limit: 100 })
        const expected = rows.filter((row) => statusOf(row, now) === status).map((row) => row.id)
        expect(listed.map((row) => row.id).sort(), status).toEqual(expected.sort())
        expect(expected.length, `fixture has a ${status} key`).toBeGreaterThan(0)
      }
    })

    it('updates only the named fields, within the tenant, and logs the change', async () => {
      const record = makeRecord({ scopes: ['a'], metadata: { k: 1 }, expiresAt: at(999) })
      await store.insertKey(record)
      const before = await store.latestChangeSeq()
      expect(await store.updateKey('tenant_b', record.id, { name: 'stolen' }, at(5))).toBeNull()
      const updated = await store.updateKey('tenant_a', record.id, { name: 'renamed', expiresAt: null }, at(5))
      expect(updated).toEqual({ ...record, name: 'renamed', expiresAt: null, updatedAt: at(5) })
      const changes = await store.readChanges(before, 100)
      expect(changes.keyHashes).toEqual([record.keyHash])
      expect(changes.seq).toBeGreaterThan(before)
    })

    it('logs a change to a lineage’s head for its keys still in grace too (they verify with the head’s controls)', async () => {
      const a = makeRecord()
      await store.insertKey(a)
      const b = await rotate(a.id, at(2))
      const inGrace = await store.latestChangeSeq()
      await store.updateKey('tenant_a', b.id, { rateLimits: [{ name: 'burst', limit: 5, windowMs: 1000 }] }, at(10))
      expect((await store.readChanges(inGrace, 100)).keyHashes.sort()).toEqual([a.keyHash, b.keyHash].sort())
      // Once A's grace is over it is refused whatever the head says: nothing to evict for it.
      const afterGrace = await store.latestChangeSeq()
      await store.updateKey('tenant_a', b.id, { rateLimits: [] }, at(61))
      expect((await store.readChanges(afterGrace, 100)).keyHashes).toEqual([b.keyHash])
    })

    it('revokes idempotently: the first revoked_at stays, and each revoke is logged', async () => {
      const record = makeRecord()
      await store.insertKey(record)
      const first = await store.revokeKey('tenant_a', record.id, at(10))
      const second = await store.revokeKey('tenant_a', record.id, at(20))
      expect(first?.revokedAt).toEqual(at(10))
      expect(second?.revokedAt).toEqual(at(10))
      expect(await store.revokeKey('tenant_b', record.id, at(30))).toBeNull()
      expect((await store.findKeyByHash(record.keyHash))?.revokedAt).toEqual(at(10))
    })

    it('rotates atomically: the old key points to the new one, which is stored', async () => {
      const old = makeRecord({ scopes: ['x'] })
      await store.insertKey(old)
      const replacement = makeRecord({ scopes: ['x'], rotatedFromKeyId: old.id, createdAt: at(5), updatedAt: at(5) })
      const before = await store.latestChangeSeq()
      const outcome = await store.rotateKey({
        tenantId: 'tenant_a',
        oldKeyId: old.id,
        newKey: replacement,
        graceExpiresAt: at(65),
        now: at(5),
      })
      expect(outcome.ok).toBe(true)
      const oldRow = await store.findKey('tenant_a', old.id)
      expect(oldRow?.replacedByKeyId).toBe(replacement.id)
      expect(oldRow?.graceExpiresAt).toEqual(at(65))
      // Stored as built, but for what it continues of the old key: its lineage (and its credits).
      expect(await store.findKeyByHash(replacement.keyHash)).toEqual(stored({ ...replacement, lineageId: old.id }))
      expect(outcome.ok && outcome.newKey).toEqual({ ...replacement, lineageId: old.id })
      expect((await store.readChanges(before, 10)).keyHashes).toContain(old.keyHash)
    })

    it('lets exactly one of many concurrent rotations of a key win, across connections', async () => {
      const old = makeRecord()
      await store.insertKey(old)
      const other = await another()
      const attempts = Array.from({ length: 6 }, (_, i) =>
        (i % 2 === 0 ? store : other).rotateKey({
          tenantId: 'tenant_a',
          oldKeyId: old.id,
          newKey: makeRecord({ rotatedFromKeyId: old.id }),
          graceExpiresAt: at(60),
          now: at(1),
        }),
      )
      const outcomes = await Promise.all(attempts)
      expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(1)
      expect(outcomes.filter((outcome) => !outcome.ok).map((outcome) => !outcome.ok && outcome.reason)).toEqual(
        Array(5).fill('already_rotated'),
      )
      const successors = (await store.listKeys({ tenantId: 'tenant_a', now: at(2), limit: 100 })).filter(
        (row) => row.rotatedFromKeyId === old.id,
      )
      expect(successors).toHaveLength(1)
    })

    it('refuses to rotate a revoked key, an unknown key or another tenant’s key', async () => {
      const revoked = makeRecord({ revokedAt: at(1) })
      await store.insertKey(revoked)
      const request = (oldKeyId: string, tenantId = 'tenant_a') => ({
        tenantId,
        oldKeyId,
        newKey: makeRecord(),
        graceExpiresAt: at(60),
        now: at(2),
      })
      expect(await store.rotateKey(request(revoked.id))).toEqual({ ok: false, reason: 'key_revoked' })
      expect(await store.rotateKey(request('key_nope'))).toEqual({ ok: false, reason: 'not_found' })
      const mine = makeRecord()
      await store.insertKey(mine)
      expect(await store.rotateKey(request(mine.id, 'tenant_b'))).toEqual({ ok: false, reason: 'not_found' })
      expect((await store.listKeys({ tenantId: 'tenant_a', now: at(3), limit: 10 })).length).toBe(2)
    })

    it('rotates a scheduled key only at the due time it was read with, and records the delivery with it', async () => {
      const due = makeRecord({
        rotationIntervalDays: 7,
        nextRotationAt: at(10),
        rotationWebhookUrl: 'http://x.test/h',
        rotationWebhookSecret: 'whsec_x',
      })
      await store.insertKey(due)
      expect((await store.findDueRotations(at(9), 10)).map((row) => row.id)).toEqual([])
      expect((await store.findDueRotations(at(10), 10)).map((row) => row.id)).toEqual([due.id])
      const stale = await store.rotateKey({
        tenantId: 'tenant_a',
        oldKeyId: due.id,
        newKey: makeRecord(),
        graceExpiresAt: at(70),
        now: at(11),
        expectedNextRotationAt: at(9),
      })
      expect(stale).toEqual({ ok: false, reason: 'not_due' })
      const delivery = makeDelivery(due.id)
      const newKey = makeRecord({ rotatedFromKeyId: due.id })
      const rotated = await store.rotateKey({
        tenantId: 'tenant_a',
        oldKeyId: due.id,
        newKey,
        graceExpiresAt: at(70),
        now: at(11),
        expectedNextRotationAt: at(10),
        delivery,
      })
      expect(rotated.ok).toBe(true)
      expect((await store.findKey('tenant_a', due.id))?.nextRotationAt).toBeNull()
      expect(await store.findDueRotations(at(11), 10)).toEqual([])
      expect(await store.listDeliveries('tenant_a', [due.id])).toEqual([delivery])
    })

    it('adds usage counts exactly, from several connections, and moves last_used_at only forward', async () => {
      const a = makeRecord()
      const b = makeRecord()
      await store.insertKey(a)
      await store.insertKey(b)
      const other = await another()
      await Promise.all([
        store.recordUsage([{ keyId: a.id, day: '2026-03-01', count: 5, lastUsedAt: at(50) }]),
        other.recordUsage([
          { keyId: a.id, day: '2026-03-01', count: 7, lastUsedAt: at(20) },
          { keyId: b.id, day: '2026-03-01', count: 1, lastUsedAt: at(30) },
        ]),
      ])
      // Within a day, last_used_at is the latest use whatever order the flushes land in.
      expect((await store.findKey('tenant_a', a.id))?.lastUsedAt).toEqual(at(50))
      await store.recordUsage([
        { keyId: a.id, day: '2026-03-02', count: 3, lastUsedAt: at(DAY + 40) },
        { keyId: a.id, day: '2026-03-01', count: 1, lastUsedAt: at(10) },
      ])
      expect(await store.totalRequests([a.id])).toBe(16)
      expect(await store.totalRequests([a.id, b.id])).toBe(17)
      expect(await store.totalRequests([])).toBe(0)
      expect(await store.usageByDay([a.id], '2026-03-01')).toEqual([
        { day: '2026-03-01', count: 13, rateLimited: 0, creditsRefused: 0 },
        { day: '2026-03-02', count: 3, rateLimited: 0, creditsRefused: 0 },
      ])
      expect(await store.usageByDay([a.id, b.id], '2026-03-02')).toEqual([
        { day: '2026-03-02', count: 3, rateLimited: 0, creditsRefused: 0 },
      ])
      expect((await store.findKey('tenant_a', a.id))?.lastUsedAt).toEqual(at(DAY + 40))
      expect((await store.findKey('tenant_a', b.id))?.lastUsedAt).toEqual(at(30))
      // Another instance's flush of the day before, landing late, does not move it back.
      await other.recordUsage([{ keyId: a.id, day: '2026-03-01', count: 1, lastUsedAt: at(60) }])
      expect((await store.findKey('tenant_a', a.id))?.lastUsedAt).toEqual(at(DAY + 40))
      // A day of refusals only records no use.
      await store.recordUsage([{ keyId: b.id, day: '2026-03-02', count: 0, rateLimited: 4, lastUsedAt: null }])
      expect((await store.findKey('tenant_a', b.id))?.lastUsedAt).toEqual(at(30))
    })

    it('returns the recorded last use from every read of a key but the verification reads', async () => {
      const key = makeRecord({ nextRotationAt: at(5), expiresAt: at(DAY * 3) })
      const other = makeRecord()
      await store.insertKey(key)
      await store.insertKey(other)
      await store.recordUsage([
        { keyId: key.id, day: '2026-03-01', count: 2, lastUsedAt: at(7) },
        { keyId: other.id, day: '2026-03-01', count: 1, lastUsedAt: at(3) },
      ])
      const used = at(7)
      // The verification reads leave it out: it lives with the usage a flush rewrites every second.
      expect(await store.findKeyByHash(key.keyHash)).not.toHaveProperty('lastUsedAt')
      expect(await store.findKeysByHash([key.keyHash, other.keyHash])).toEqual([
        expect.not.objectContaining({ lastUsedAt: expect.anything() }),
        expect.not.objectContaining({ lastUsedAt: expect.anything() }),
      ])
      expect((await store.listKeys({ tenantId: 'tenant_a', limit: 10, now: at(8) })).find((row) => row.id === key.id)?.lastUsedAt).toEqual(
        used,
      )
      expect((await store.findDueRotations(at(6), 10)).find((row) => row.id === key.id)?.lastUsedAt).toEqual(used)
      expect((await store.updateKey('tenant_a', key.id, { name: 'renamed' }, at(8)))?.lastUsedAt).toEqual(used)
      const rotated = await store.rotateKey({
        tenantId: 'tenant_a',
        oldKeyId: key.id,
        newKey: makeRecord(),
        graceExpiresAt: at(60),
        now: at(9),
      })
      expect(rotated.ok && rotated.oldKey.lastUsedAt).toEqual(used)
      expect(rotated.ok && rotated.newKey.lastUsedAt).toBeNull()
      expect((await store.revokeKey('tenant_a', other.id, at(10)))?.lastUsedAt).toEqual(at(3))
      // A key never used has none.
      const fresh = makeRecord()
      await store.insertKey(fresh)
      expect((await store.findKey('tenant_a', fresh.id))?.lastUsedAt).toBeNull()
    })

    it('records a flush of any size in one call: repeated (key, day) buckets summed, unknown keys ignored', async () => {
      // 2,000 keys x 2 days = 4,000 buckets plus repeats: more than one statement's parameter
      // limit would take, were the rows bound one parameter each.
      const keys = Array.from({ length: 2000 }, () => makeRecord())
      for (const key of keys) await store.insertKey(key)
      const increments = keys.flatMap((key, i) => [
        { keyId: key.id, day: '2026-03-01', count: i + 1, lastUsedAt: at(i) },
        { keyId: key.id, day: '2026-03-02', count: 1, lastUsedAt: at(100_000 + i) },
        { keyId: key.id, day: '2026-03-01', count: 2, lastUsedAt: at(-1) },
      ])
      increments.push({ keyId: 'key_gone', day: '2026-03-01', count: 9, lastUsedAt: at(5) })
      await store.recordUsage(increments)
      const ids = keys.map((key) => key.id)
      expect(await store.totalRequests(ids)).toBe((2000 * 2001) / 2 + 2000 * 3)
      expect(await store.usageByDay(ids, '2026-03-01')).toEqual([
        { day: '2026-03-01', count: (2000 * 2001) / 2 + 2000 * 2, rateLimited: 0, creditsRefused: 0 },
        { day: '2026-03-02', count: 2000, rateLimited: 0, creditsRefused: 0 },
      ])
      const last = keys[1999] as ApiKeyRecord
      expect((await store.findKey('tenant_a', last.id))?.lastUsedAt).toEqual(at(101_999))
      expect(await store.totalRequests(['key_gone'])).toBe(9)
    })

    it('serves the change log in order from any position and prunes old entries', async () => {
      const start = await store.latestChangeSeq()
      const keys = [makeRecord(), makeRecord(), makeRecord()]
      for (const key of keys) await store.insertKey(key)
      await store.revokeKey('tenant_a', (keys[0] as ApiKeyRecord).id, at(1))
      await store.updateKey('tenant_a', (keys[1] as ApiKeyRecord).id, { name: 'n' }, at(2))
      await store.revokeKey('tenant_a', (keys[2] as ApiKeyRecord).id, at(3))
      const all = await store.readChanges(start, 100)
      expect(all.keyHashes).toEqual(keys.map((key) => key.keyHash))
      expect(await store.latestChangeSeq()).toBe(all.seq)
      const firstTwo = await store.readChanges(start, 2)
      const rest = await store.readChanges(firstTwo.seq, 100)
      expect([...firstTwo.keyHashes, ...rest.keyHashes]).toEqual(all.keyHashes)
      expect(await store.readChanges(all.seq, 100)).toEqual({ seq: all.seq, keyHashes: [] })
      await store.pruneChanges(at(2))
      expect((await store.readChanges(start, 100)).keyHashes).toEqual([(keys[2] as ApiKeyRecord).keyHash])
    })

    it('hands each due delivery to one claimant only, and saves attempts', async () => {
      const key = makeRecord()
      await store.insertKey(key)
      const deliveries = Array.from({ length: 6 }, (_, i) => makeDelivery(key.id, { nextAttemptAt: at(i) }))
      // Deliveries reach the store through rotateKey; insert them via rotations of throwaway keys.
      for (const delivery of deliveries) {
        const old = makeRecord()
        await store.insertKey(old)
        const outcome = await store.rotateKey({
          tenantId: 'tenant_a',
          oldKeyId: old.id,
          newKey: makeRecord(),
          graceExpiresAt: at(1),
          now: at(0),
          delivery,
        })
        expect(outcome.ok).toBe(true)
      }
      const other = await another()
      const [mine, theirs] = await Promise.all([store.claimDeliveries(at(10), at(40), 4), other.claimDeliveries(at(10), at(40), 4)])
      const claimed = [...mine, ...theirs].map((delivery) => delivery.id)
      expect(claimed).toHaveLength(6)
      expect(new Set(claimed).size).toBe(6)
      expect(await store.claimDeliveries(at(20), at(50), 10)).toEqual([])
      const first = mine[0] as WebhookDelivery
      await store.saveDelivery({
        ...first,
        status: 'failed',
        payload: null,
        attempts: [{ at: at(11).toISOString(), status: 500, error: 'HTTP 500', durationMs: 3 }],
        nextAttemptAt: null,
        lockedUntil: null,
        updatedAt: at(11),
      })
      const listed = (await store.listDeliveries('tenant_a', [key.id])).find((delivery) => delivery.id === first.id)
      expect(listed).toMatchObject({ status: 'failed', payload: null, attempts: [{ status: 500, error: 'HTTP 500', durationMs: 3 }] })
      expect(await store.listDeliveries('tenant_b', [key.id])).toEqual([])
      // Lock expired, still pending: claimable again.
      expect((await store.claimDeliveries(at(41), at(80), 10)).length).toBe(5)
    })

    it('counts refused requests per day apart from uses, and never moves last_used_at for them', async () => {
      const key = makeRecord()
      await store.insertKey(key)
      await store.recordUsage([
        { keyId: key.id, day: '2026-03-01', count: 2, lastUsedAt: at(10) },
        { keyId: key.id, day: '2026-03-01', count: 0, rateLimited: 3, lastUsedAt: null },
      ])
      await store.recordUsage([{ keyId: key.id, day: '2026-03-01', count: 0, rateLimited: 1, creditsRefused: 4, lastUsedAt: null }])
      expect(await store.usageByDay([key.id], '2026-03-01')).toEqual([{ day: '2026-03-01', count: 2, rateLimited: 4, creditsRefused: 4 }])
      expect(await store.totalRequests([key.id])).toBe(2)
      expect((await store.findKey('tenant_a', key.id))?.lastUsedAt).toEqual(at(10))
      const refusedOnly = makeRecord()
      await store.insertKey(refusedOnly)
      await store.recordUsage([{ keyId: refusedOnly.id, day: '2026-03-01', count: 0, rateLimited: 1, lastUsedAt: null }])
      expect((await store.findKey('tenant_a', refusedOnly.id))?.lastUsedAt).toBeNull()
    })

    it('leases credits atomically: concurrent leases of two connections never hand out more than the key has', async () => {
      const key = makeRecord({ creditsRemaining: 30, creditsRefilledAt: T0 })
      await store.insertKey(key)
      const other = await another()
      const leases = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : other).leaseCredits(key.id, 4, at(1))))
      const granted = leases.reduce((sum, lease) => sum + (lease?.granted ?? 0), 0)
      expect(granted).toBe(30)
      expect((await store.findKey('tenant_a', key.id))?.creditsRemaining).toBe(0)
      expect(await store.leaseCredits(makeRecord().id, 1, at(1))).toBeNull()
      const uncredited = makeRecord()
      await store.insertKey(uncredited)
      expect(await store.leaseCredits(uncredited.id, 1, at(1))).toBeNull()
    })

    it('gives back unspent credits only to the setting and period they were leased from', async () => {
      const key = makeRecord({ creditsRemaining: 10, creditsRefilledAt: T0 })
      await store.insertKey(key)
      const lease = await store.leaseCredits(key.id, 6, at(1))
      expect(lease).toEqual({ granted: 6, remaining: 4, version: 0, refilledAt: T0 })
      await store.returnCredits([{ lineageId: key.id, version: 0, refilledAt: T0, amount: 2 }])
      expect((await store.findKey('tenant_a', key.id))?.creditsRemaining).toBe(6)
      // Credits set anew (a PATCH moves the version on): an earlier lease's rest is not added to them.
      await store.updateKey(
        'tenant_a',
        key.id,
        { credits: { remaining: 100, refillAmount: null, refillInterval: null, refilledAt: at(2) } },
        at(2),
      )
      const patched = await store.findKey('tenant_a', key.id)
      expect(patched).toMatchObject({ creditsRemaining: 100, creditsVersion: 1, creditsRefilledAt: at(2) })
      await store.returnCredits([{ lineageId: key.id, version: 0, refilledAt: T0, amount: 4 }])
      expect((await store.findKey('tenant_a', key.id))?.creditsRemaining).toBe(100)
    })

    it('refills once when a new period begins, in the same step as a lease, and settles spending of the current period only', async () => {
      const day1 = new Date('2026-03-01T00:00:00.000Z')
      const day2 = new Date('2026-03-02T00:00:00.000Z')
      const key = makeRecord({ creditsRemaining: 3, creditsRefillAmount: 50, creditsRefillInterval: 'day', creditsRefilledAt: day1 })
      await store.insertKey(key)
      // Two connections lease on the next day: the refill happens once, not per lease.
      const other = await another()
      const [a, b] = await Promise.all([store.leaseCredits(key.id, 10, at(86_400)), other.leaseCredits(key.id, 10, at(86_400))])
      expect((a?.granted ?? 0) + (b?.granted ?? 0)).toBe(20)
      expect(a?.refilledAt).toEqual(day2)
      expect((await store.findKey('tenant_a', key.id))?.creditsRemaining).toBe(30)
      // Spending counted elsewhere (Redis) in this period is subtracted; yesterday's is dropped.
      await store.settleCredits(
        [
          { lineageId: key.id, version: 0, refilledAt: day2, amount: 5 },
          { lineageId: key.id, version: 0, refilledAt: day1, amount: 7 },
        ],
        at(86_401),
      )
      expect((await store.findKey('tenant_a', key.id))?.creditsRemaining).toBe(25)
      // Settling never goes below zero.
      await store.settleCredits([{ lineageId: key.id, version: 0, refilledAt: day2, amount: 999 }], at(86_402))
      expect((await store.findKey('tenant_a', key.id))?.creditsRemaining).toBe(0)
    })

    it('rotation continues the lineage: the successor takes its lineage and credits; credit operations reach the head', async () => {
      const a = makeRecord({ creditsRemaining: 10, creditsRefilledAt: T0, creditsVersion: 2 })
      await store.insertKey(a)
      expect((await store.findKey('tenant_a', a.id))?.lineageId).toBeNull()
      // A lease taken from A before the rotation: the successor copies what A has left without it.
      expect(await store.leaseCredits(a.id, 3, at(1))).toEqual({ granted: 3, remaining: 7, version: 2, refilledAt: T0 })
      // The successor as the caller built it has no credits of its own: the store copies A's.
      const b = await rotate(a.id, at(2))
      const copied = { lineageId: a.id, creditsRemaining: 7, creditsVersion: 2, creditsRefilledAt: T0 }
      expect(b).toMatchObject(copied)
      expect(await store.findKey('tenant_a', b.id)).toMatchObject(copied)
      // The lease outstanding at the rotation goes back to the successor, not to the replaced row.
      await store.returnCredits([{ lineageId: a.id, version: 2, refilledAt: T0, amount: 3 }])
      expect((await store.findKey('tenant_a', b.id))?.creditsRemaining).toBe(10)
      expect((await store.findKey('tenant_a', a.id))?.creditsRemaining).toBe(7)
      // Spending counted before the rotation (Redis) is settled on the successor.
      await store.settleCredits([{ lineageId: a.id, version: 2, refilledAt: T0, amount: 8 }], at(3))
      expect((await store.findKey('tenant_a', b.id))?.creditsRemaining).toBe(2)
      expect(await store.leaseCredits(a.id, 1, at(3))).toEqual({ granted: 1, remaining: 1, version: 2, refilledAt: T0 })
      // A successor's own id names no lineage: its credits are reached by the lineage's id only.
      expect(await store.leaseCredits(b.id, 1, at(3))).toBeNull()

      // A second rotation (A→B→C) keeps A's lineage; the head moves to C.
      const c = await rotate(b.id, at(4))
      expect(await store.findKey('tenant_a', c.id)).toMatchObject({ lineageId: a.id, creditsRemaining: 1, creditsVersion: 2 })
      await store.returnCredits([{ lineageId: a.id, version: 2, refilledAt: T0, amount: 1 }])
      expect((await store.findKey('tenant_a', c.id))?.creditsRemaining).toBe(2)
      expect((await store.findKey('tenant_a', b.id))?.creditsRemaining).toBe(1)
      await store.settleCredits([{ lineageId: a.id, version: 2, refilledAt: T0, amount: 2 }], at(5))
      expect((await store.findKey('tenant_a', c.id))?.creditsRemaining).toBe(0)
      expect(await store.leaseCredits(a.id, 1, at(5))).toMatchObject({ granted: 0, remaining: 0 })
    })

    it('leases of another connection racing a rotation hand out no more and lose nothing', async () => {
      const key = makeRecord({ creditsRemaining: 100, creditsRefilledAt: T0 })
      await store.insertKey(key)
      const other = await another()
      const [rotated, ...leases] = await Promise.all([
        store.rotateKey({ tenantId: 'tenant_a', oldKeyId: key.id, newKey: makeRecord(), graceExpiresAt: at(60), now: at(1) }),
        ...Array.from({ length: 20 }, () => other.leaseCredits(key.id, 3, at(1))),
      ])
      if (!rotated?.ok) throw new Error('rotation failed')
      // Every lease found the lineage's head (the old row or, after the rotation, the successor).
      expect(leases.every((lease) => lease?.granted === 3)).toBe(true)
      expect((await store.findKey('tenant_a', rotated.newKey.id))?.creditsRemaining).toBe(40)
    })
  })
}
