import { describe, expect, it } from 'vitest'
import { generateKey } from '../src/core/key-format.js'
import { Keyward, type KeywardOptions } from '../src/core/keyward.js'
import { StoreUnavailableError } from '../src/core/store.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'
import { TestClock } from './helpers/clock.js'
import { type InstrumentedStore, instrument } from './helpers/instrumented-store.js'
import { tempSqlitePath } from './helpers/sqlite.js'

const tenant = { tenantId: 'acme' }

async function setup(options: Partial<KeywardOptions> = {}) {
  const clock = new TestClock()
  const store = instrument(createSqliteStore({ url: tempSqlitePath() }))
  // Both clocks are the test's: cached entries age and the staleness bound passes only when it says.
  const kw = new Keyward({ store, now: clock.now, monotonicNow: clock.monotonic, usage: false, ...options })
  await kw.ready()
  const created = await kw.createKey(tenant, { name: 'k', scopes: ['orders:read'] })
  if (!created.ok) throw new Error(created.error.detail)
  return { kw, store, clock, key: created.value.key, id: created.value.apiKey.id }
}

/**
 * Holds the store's next `findKeyByHash` (or batched `findKeysByHash`) after it has read, before
 * its caller sees the rows: the gap in which a test runs a revoke, to force the interleaving a
 * stale refill needs.
 */
function holdNextRead(
  store: InstrumentedStore,
  method: 'findKeyByHash' | 'findKeysByHash' = 'findKeyByHash',
): { readFinished: Promise<void>; releaseRead: () => void } {
  let release!: () => void
  let readDone!: () => void
  const readFinished = new Promise<void>((resolve) => {
    readDone = resolve
  })
  store.after[method] = () => {
    store.after[method] = undefined
    readDone()
    return new Promise<void>((resolve) => {
      release = resolve
    })
  }
  return { readFinished, releaseRead: () => release() }
}

describe('verification', () => {
  it('verifies a valid key and hands back its tenant, scopes and metadata, never its hash', async () => {
    const { kw, key, id } = await setup()
    const decision = await kw.verify(key)
    expect(decision).toEqual({
      ok: true,
      key: {
        id,
        tenantId: 'acme',
        projectId: null,
        name: 'k',
        environment: 'live',
        scopes: ['orders:read'],
        metadata: {},
        expiresAt: null,
      },
    })
    expect(JSON.stringify(decision)).not.toMatch(/hash|sk_live/i)
    await kw.close()
  })

  it('rejects a bad-checksum key without touching the cache or the store', async () => {
    const { kw, store, key } = await setup()
    const before = store.calls.findKeyByHash ?? 0
    const typo = `${key.slice(0, -1)}${key.endsWith('a') ? 'b' : 'a'}`
    for (let i = 0; i < 50; i++) expect(await kw.verify(typo)).toEqual({ ok: false, code: 'invalid_api_key' })
    expect(await kw.verify('not a key at all')).toEqual({ ok: false, code: 'invalid_api_key' })
    expect(store.calls.findKeyByHash ?? 0).toBe(before)
    await kw.close()
  })

  it('reads the store once for a valid key, then serves it from memory', async () => {
    const { kw, store, key } = await setup()
    for (let i = 0; i < 100; i++) expect((await kw.verify(key)).ok).toBe(true)
    expect(store.calls.findKeyByHash).toBe(1)
    await kw.close()
  })

  it('remembers an unknown well-formed key briefly, so a flood of them costs one read', async () => {
    const { kw, store } = await setup()
    const other = await setup()
    // A real key from another database: well-formed, right checksum, unknown here.
    for (let i = 0; i < 100; i++) expect(await kw.verify(other.key)).toEqual({ ok: false, code: 'invalid_api_key' })
    expect(store.calls.findKeyByHash).toBe(1)
    await kw.close()
    await other.kw.close()
  })

  it('does not let a flood of distinct unknown keys push real keys out of the cache', async () => {
    const { kw, store } = await setup({ cache: { max: 20, negativeMax: 5 } })
    const real: string[] = []
    for (let i = 0; i < 20; i++) {
      const created = await kw.createKey(tenant, { name: `k${i}` })
      if (!created.ok) throw new Error(created.error.detail)
      real.push(created.value.key)
    }
    for (const key of real) expect((await kw.verify(key)).ok).toBe(true)
    const readsAfterFill = store.calls.findKeyByHash ?? 0
    // Well-formed keys with valid checksums that no store holds, each one different.
    for (let i = 0; i < 200; i++) {
      expect(await kw.verify(generateKey('sk', 'live').key)).toEqual({ ok: false, code: 'invalid_api_key' })
    }
    expect(store.calls.findKeyByHash).toBe(readsAfterFill + 200)
    for (const key of real) expect((await kw.verify(key)).ok).toBe(true)
    expect(store.calls.findKeyByHash).toBe(readsAfterFill + 200)
    await kw.close()
  })

  it('judges expiry against the clock on a cache hit, from the first request past it', async () => {
    const { kw, store, clock } = await setup()
    const created = await kw.createKey(tenant, { name: 'short', expiresInSeconds: 60 })
    if (!created.ok) throw new Error('create failed')
    expect((await kw.verify(created.value.key)).ok).toBe(true)
    const reads = store.calls.findKeyByHash
    clock.advance(59_999)
    expect((await kw.verify(created.value.key)).ok).toBe(true)
    clock.advance(1)
    expect(await kw.verify(created.value.key)).toEqual({ ok: false, code: 'api_key_expired' })
    // Decided from the cached row: no sweeper, no extra read.
    expect(store.calls.findKeyByHash).toBe(reads)
    await kw.close()
  })

  it('rejects a revoked key on the very next verification in the same process', async () => {
    const { kw, key, id } = await setup()
    expect((await kw.verify(key)).ok).toBe(true)
    const revoked = await kw.revokeKey(tenant, id)
    expect(revoked.ok).toBe(true)
    expect(await kw.verify(key)).toEqual({ ok: false, code: 'api_key_revoked' })
    await kw.close()
  })

  it('serves changed scopes and expiry at once after an update (every change evicts)', async () => {
    const { kw, key, id, clock } = await setup()
    expect((await kw.verify(key)).ok).toBe(true)
    await kw.updateKey(tenant, id, { scopes: ['orders:write'] })
    const decision = await kw.verify(key)
    expect(decision.ok && decision.key.scopes).toEqual(['orders:write'])
    await kw.updateKey(tenant, id, { metadata: { plan: 'pro' } })
    const withMetadata = await kw.verify(key)
    expect(withMetadata.ok && withMetadata.key.metadata).toEqual({ plan: 'pro' })
    await kw.updateKey(tenant, id, { expiresAt: new Date(clock.ms + 1000) })
    clock.advance(1000)
    expect(await kw.verify(key)).toEqual({ ok: false, code: 'api_key_expired' })
    await kw.close()
  })

  it('does not let a read that began before a revoke refill the cache after it (stale refill fence)', async () => {
    const { kw, store, key, id } = await setup()
    // Force the interleaving: the verification's read completes, then waits; the revoke runs
    // (and evicts) in that gap; only then does the verification try to fill the cache.
    const { readFinished, releaseRead } = holdNextRead(store)
    const inFlight = kw.verify(key)
    await readFinished
    expect((await kw.revokeKey(tenant, id)).ok).toBe(true)
    releaseRead()
    // The in-flight verification started before the revoke; it may answer with what it read.
    expect((await inFlight).ok).toBe(true)
    // But what it read must not have been cached: the next request sees the revoke.
    expect(await kw.verify(key)).toEqual({ ok: false, code: 'api_key_revoked' })
    await kw.close()
  })

  it('does not let a batched read of several keys that began before a revoke refill the cache after it', async () => {
    const { kw, store, key, id } = await setup()
    const other = await kw.createKey(tenant, { name: 'other' })
    if (!other.ok) throw new Error(other.error.detail)
    // Two misses at once go out as one findKeysByHash; the revoke runs while its rows wait.
    const { readFinished, releaseRead } = holdNextRead(store, 'findKeysByHash')
    const inFlight = Promise.all([kw.verify(key), kw.verify(other.value.key)])
    await readFinished
    expect((await kw.revokeKey(tenant, id)).ok).toBe(true)
    releaseRead()
    expect((await inFlight).map((decision) => decision.ok)).toEqual([true, true])
    expect(store.calls.findKeysByHash).toBe(1)
    // What the batch read of the revoked key must not have been cached.
    expect(await kw.verify(key)).toEqual({ ok: false, code: 'api_key_revoked' })
    expect((await kw.verify(other.value.key)).ok).toBe(true)
    await kw.close()
  })

  it('hands out frozen key objects that a handler cannot use to alter the cache', async () => {
    const { kw, key } = await setup()
    const first = await kw.verify(key)
    if (!first.ok) throw new Error('expected a valid key')
    expect(() => (first.key.scopes as string[]).push('admin')).toThrow()
    expect(() => {
      ;(first.key as { tenantId: string }).tenantId = 'evil'
    }).toThrow()
    const second = await kw.verify(key)
    expect(second.ok && second.key.scopes).toEqual(['orders:read'])
    await kw.close()
  })

  it('fails closed with store_unavailable when the store cannot be read, and never serves past the staleness bound', async () => {
    // The change log is read only when the test says (syncCache), not by the background poll.
    const { kw, store, clock, key } = await setup({ cache: { maxStalenessMs: 1000, syncIntervalMs: 3_600_000 }, onError: () => undefined })
    expect((await kw.verify(key)).ok).toBe(true)
    const outage = () => {
      throw new StoreUnavailableError('disk I/O error')
    }
    store.before.readChanges = outage
    store.before.findKeyByHash = outage
    await kw.syncCache()
    // The change log cannot be read: the cached row is trusted up to the bound, and not a moment past it.
    clock.advanceMonotonic(1000)
    expect((await kw.verify(key)).ok).toBe(true)
    clock.advanceMonotonic(1)
    expect(await kw.verify(key)).toEqual({ ok: false, code: 'store_unavailable' })
    // The store comes back: the same instance recovers by itself.
    store.before.readChanges = undefined
    store.before.findKeyByHash = undefined
    await kw.syncCache()
    expect((await kw.verify(key)).ok).toBe(true)
    await kw.close()
  })

  it('reads the store once for 50 concurrent verifications of one key on a cold cache', async () => {
    const { kw, store, key } = await setup()
    expect(store.calls.findKeyByHash ?? 0).toBe(0)
    const decisions = await Promise.all(Array.from({ length: 50 }, () => kw.verify(key)))
    expect(decisions.filter((decision) => decision.ok)).toHaveLength(50)
    expect(store.calls.findKeyByHash).toBe(1)
    await kw.close()
  })

  it('reads concurrent misses of different keys in one store query, and answers each with its own key', async () => {
    const { kw, store, key } = await setup()
    const keys = [key]
    for (let i = 0; i < 9; i++) {
      const created = await kw.createKey(tenant, { name: `k${i}`, scopes: [`s${i}`] })
      if (!created.ok) throw new Error(created.error.detail)
      keys.push(created.value.key)
    }
    const revoked = await kw.createKey(tenant, { name: 'revoked' })
    if (!revoked.ok) throw new Error(revoked.error.detail)
    await kw.revokeKey(tenant, revoked.value.apiKey.id)
    const unknown = generateKey('sk', 'live').key
    // Nothing was verified yet: every key below is a cache miss.
    const decisions = await Promise.all([...keys, revoked.value.key, unknown].map((presented) => kw.verify(presented)))
    expect(decisions.slice(0, 10).map((decision) => (decision.ok ? decision.key.name : decision.code))).toEqual([
      'k',
      ...Array.from({ length: 9 }, (_, i) => `k${i}`),
    ])
    expect(decisions.slice(10).map((decision) => (decision.ok ? 'ok' : decision.code))).toEqual(['api_key_revoked', 'invalid_api_key'])
    // Twelve misses, one query: no single-key reads.
    expect(store.calls.findKeysByHash).toBe(1)
    expect(store.calls.findKeyByHash ?? 0).toBe(0)
    await kw.close()
  })

  it('leases a busy key’s next block of credits ahead of need, so its requests keep verifying from memory', async () => {
    const { kw, store } = await setup()
    const created = await kw.createKey(tenant, { name: 'metered', credits: { remaining: 1_000_000, refill: null } })
    if (!created.ok) throw new Error(created.error.detail)
    const key = created.value.key
    // Warm-up: blocks double while the key is busy (1, 2, 4, …).
    for (let i = 0; i < 300; i++) expect((await kw.verify(key)).ok).toBe(true)
    const leasesBefore = store.calls.leaseCredits ?? 0
    let waited = 0
    for (let i = 0; i < 3000; i++) {
      const decision = kw.verifyFast(key)
      if (decision instanceof Promise) {
        waited++
        expect((await decision).ok).toBe(true)
      } else expect(decision.ok).toBe(true)
      // Other requests' I/O would run here; the background lease lands.
      if (i % 50 === 49) await new Promise(setImmediate)
    }
    // No request waited for the database: each block was leased before the last ran out.
    expect(waited).toBe(0)
    expect((store.calls.leaseCredits ?? 0) - leasesBefore).toBeGreaterThan(0)
    expect((store.calls.leaseCredits ?? 0) - leasesBefore).toBeLessThan(20)
    await kw.close()
  })

  it('stops leasing credits ahead of need when the database fails, instead of trying on every request', async () => {
    const errors: string[] = []
    const { kw, store } = await setup({ onError: (_error, context) => errors.push(context) })
    const created = await kw.createKey(tenant, { name: 'metered', credits: { remaining: 1_000_000, refill: null } })
    if (!created.ok) throw new Error(created.error.detail)
    const key = created.value.key
    for (let i = 0; i < 300; i++) expect((await kw.verify(key)).ok).toBe(true)
    store.before.leaseCredits = () => {
      throw new StoreUnavailableError('down')
    }
    const leasesBefore = store.calls.leaseCredits ?? 0
    // Until the held block runs out (the first request that has to wait for the database), with
    // the event loop turning between requests as in a server.
    let served = 0
    for (; served < 5000; served++) {
      const decision = kw.verifyFast(key)
      await new Promise(setImmediate)
      if (decision instanceof Promise) {
        await decision
        break
      }
    }
    expect(served).toBeGreaterThan(10)
    // One failed lease ahead of need, reported once (and the last request's own lease): not one per request.
    expect((store.calls.leaseCredits ?? 0) - leasesBefore).toBeLessThanOrEqual(2)
    expect(errors.filter((context) => context === 'credits').length).toBeLessThanOrEqual(2)
    store.before.leaseCredits = undefined
    await kw.close()
  })

  it('does not let a verification that starts after a revoke share a read that began before it', async () => {
    const { kw, store, key, id } = await setup()
    // Force the interleaving: the first read completes with the key still active, then waits; the
    // revoke runs in that gap; a second verification of the same key starts after the revoke.
    const { readFinished, releaseRead } = holdNextRead(store)
    const early = kw.verify(key)
    await readFinished
    expect((await kw.revokeKey(tenant, id)).ok).toBe(true)
    const late = kw.verify(key)
    releaseRead()
    // The early one began before the revoke and may answer with what it read; the late one must not.
    expect((await early).ok).toBe(true)
    expect(await late).toEqual({ ok: false, code: 'api_key_revoked' })
    expect(store.calls.findKeyByHash).toBe(2)
    await kw.close()
  })

  it('answers store_unavailable for management calls when the store is down, without a stack', async () => {
    const { kw, store } = await setup({ onError: () => undefined })
    store.before.listKeys = () => {
      throw new StoreUnavailableError('down')
    }
    const listed = await kw.listKeys(tenant)
    expect(listed).toEqual({ ok: false, error: { code: 'store_unavailable', detail: expect.any(String) } })
    await kw.close()
  })
})
