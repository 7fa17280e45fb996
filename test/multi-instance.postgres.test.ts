import { describe, expect, it } from 'vitest'
import { keyward } from '../src/index.js'
import { readJson } from './helpers/http.js'
import { freshPostgresDatabase, hasPostgres } from './helpers/postgres.js'
import { type AppProcess, startAppProcess } from './helpers/process.js'

/**
 * Two real app processes (test/fixtures/app-server.ts) on one PostgreSQL database, talked to over
 * HTTP only: what one instance changes, the other must honour within the 1 s bound.
 */

/** A fresh database with a tenant admin key; the keyward that minted it is closed again. */
async function databaseWithAdminKey(): Promise<{ url: string; adminKey: string }> {
  const url = await freshPostgresDatabase()
  const kw = keyward({ database: url })
  const created = await kw.createKey({ tenantId: 'acme' }, { name: 'admin' })
  await kw.close()
  if (!created.ok) throw new Error(`could not mint the admin key: ${created.error.code}`)
  return { url, adminKey: created.value.key }
}

async function call(app: AppProcess, method: string, path: string, key: string, body?: unknown) {
  const response = await fetch(`${app.baseUrl}${path}`, {
    method,
    headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: response.status, body: await readJson(response) }
}

async function createKey(app: AppProcess, adminKey: string, body: Record<string, unknown>): Promise<{ id: string; key: string }> {
  const created = await call(app, 'POST', '/api-keys', adminKey, body)
  expect(created.status).toBe(201)
  return { id: created.body.id, key: created.body.key }
}

const ping = (app: AppProcess, key: string) => fetch(`${app.baseUrl}/v1/ping`, { headers: { 'x-api-key': key } })

/** Polls until `check` passes and returns how long that took. Bounded: fails after about 5 s. */
async function timeUntil(check: () => Promise<boolean>): Promise<number> {
  const started = performance.now()
  for (let i = 0; i < 2000; i++) {
    if (await check()) return performance.now() - started
    if (performance.now() - started > 5000) break
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  throw new Error('condition not reached within 5 s')
}

/** Requests on B until its cache holds the key, so a change must reach B through the database. */
async function warm(app: AppProcess, key: string): Promise<void> {
  for (let i = 0; i < 3; i++) expect((await ping(app, key)).status).toBe(200)
}

describe.skipIf(!hasPostgres)('two app processes on one PostgreSQL database', () => {
  it('rejects on B a key revoked through A within 1 s, and prints the measured delay', async () => {
    const { url, adminKey } = await databaseWithAdminKey()
    const [a, b] = await Promise.all([startAppProcess(url), startAppProcess(url)])
    try {
      const delays: number[] = []
      for (let trial = 0; trial < 5; trial++) {
        const { id, key } = await createKey(a, adminKey, { name: `shared ${trial}` })
        await warm(b, key)
        expect((await call(a, 'DELETE', `/api-keys/${id}`, adminKey)).status).toBe(200)
        // The clock starts when A has answered, i.e. after the revoke committed.
        delays.push(await timeUntil(async () => (await ping(b, key)).status === 401))
        expect((await readJson(await ping(b, key))).code).toBe('api_key_revoked')
      }
      const sorted = [...delays].sort((x, y) => x - y)
      console.log(
        `[multi-instance postgres] revoke through A → 401 on B: ${delays.map((ms) => ms.toFixed(1)).join(', ')} ms ` +
          `(median ${(sorted[2] as number).toFixed(1)} ms, max ${(sorted[4] as number).toFixed(1)} ms)`,
      )
      for (const delay of delays) expect(delay).toBeLessThan(1000)
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })

  it('stops accepting on B a key rotated through A with no grace period, and accepts its successor', async () => {
    const { url, adminKey } = await databaseWithAdminKey()
    const [a, b] = await Promise.all([startAppProcess(url), startAppProcess(url)])
    try {
      const { id, key } = await createKey(a, adminKey, { name: 'rotating' })
      await warm(b, key)
      const rotated = await call(a, 'POST', `/api-keys/${id}/rotate`, adminKey, { grace_period_seconds: 0 })
      expect(rotated.status).toBe(201)
      const delay = await timeUntil(async () => (await ping(b, key)).status === 401)
      console.log(`[multi-instance postgres] rotation (grace 0) through A → old key refused by B after ${delay.toFixed(1)} ms`)
      expect(delay).toBeLessThan(1000)
      expect((await readJson(await ping(b, key))).code).toBe('api_key_rotated')
      expect((await ping(b, rotated.body.key)).status).toBe(200)
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })

  it('serves on B the narrower scopes a PATCH through A set, within 1 s', async () => {
    const { url, adminKey } = await databaseWithAdminKey()
    const [a, b] = await Promise.all([startAppProcess(url), startAppProcess(url)])
    try {
      const { id, key } = await createKey(a, adminKey, { name: 'scoped', scopes: ['orders:read', 'orders:write'] })
      await warm(b, key)
      expect((await readJson(await ping(b, key))).scopes).toEqual(['orders:read', 'orders:write'])
      expect((await call(a, 'PATCH', `/api-keys/${id}`, adminKey, { scopes: ['orders:read'] })).status).toBe(200)
      const delay = await timeUntil(async () => JSON.stringify((await readJson(await ping(b, key))).scopes) === '["orders:read"]')
      console.log(`[multi-instance postgres] scope PATCH through A → served by B after ${delay.toFixed(1)} ms`)
      expect(delay).toBeLessThan(1000)
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })

  it('lets exactly one of two simultaneous rotations (one per instance) win, leaving one successor', async () => {
    const { url, adminKey } = await databaseWithAdminKey()
    const [a, b] = await Promise.all([startAppProcess(url), startAppProcess(url)])
    try {
      for (let trial = 0; trial < 5; trial++) {
        const { id } = await createKey(a, adminKey, { name: `contested ${trial}` })
        const outcomes = await Promise.all([a, b].map((app) => call(app, 'POST', `/api-keys/${id}/rotate`, adminKey, {})))
        expect(outcomes.map((outcome) => outcome.status).sort()).toEqual([201, 409])
        expect(outcomes.find((outcome) => outcome.status === 409)?.body.code).toBe('already_rotated')
        const listed = await call(b, 'GET', '/api-keys?limit=100', adminKey)
        const successors = (listed.body as { rotated_from_key_id: string | null }[]).filter((row) => row.rotated_from_key_id === id)
        expect(successors).toHaveLength(1)
      }
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })

  it('counts every request spread over both instances exactly, once they have shut down gracefully', async () => {
    const { url, adminKey } = await databaseWithAdminKey()
    const [a, b] = await Promise.all([startAppProcess(url), startAppProcess(url)])
    const requests = 400
    let id: string
    try {
      const created = await createKey(a, adminKey, { name: 'busy' })
      id = created.id
      const statuses: number[] = []
      // Waves of 40 concurrent requests, alternating instances, so both buffer and flush counts.
      for (let wave = 0; wave < requests / 40; wave++) {
        const wave_ = await Promise.all(
          Array.from({ length: 40 }, (_, i) => ping(i % 2 === 0 ? a : b, created.key).then((res) => res.status)),
        )
        statuses.push(...wave_)
      }
      expect(statuses.filter((status) => status === 200)).toHaveLength(requests)
    } finally {
      expect(await a.stop()).toBe(0)
      expect(await b.stop()).toBe(0)
    }
    const reader = await startAppProcess(url)
    try {
      const usage = await call(reader, 'GET', `/api-keys/${id}/usage`, adminKey)
      expect(usage.status).toBe(200)
      expect(usage.body.total_requests).toBe(requests)
      expect(usage.body.last_used_at).not.toBeNull()
    } finally {
      await reader.stop()
    }
  })
})
