import { describe, expect, it } from 'vitest'
import { keyward } from '../src/index.js'
import { readJson } from './helpers/http.js'
import { startAppProcess } from './helpers/process.js'
import { tempSqlitePath } from './helpers/sqlite.js'

const tenant = { tenantId: 'acme' }

/** Polls until `check` passes; returns the milliseconds it took. Bounded: fails after 5 s. */
async function timeUntil(check: () => Promise<boolean>): Promise<number> {
  const started = performance.now()
  for (let i = 0; i < 1000; i++) {
    if (await check()) return performance.now() - started
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  throw new Error('condition not reached within 5 s')
}

describe('two processes on one SQLite file', () => {
  it('sees a revoke made by another process within the 1 s bound', async () => {
    const path = tempSqlitePath()
    const admin = keyward({ database: path })
    const created = await admin.createKey(tenant, { name: 'shared' })
    if (!created.ok) throw new Error('create failed')
    const app = await startAppProcess(path)
    const ping = () => fetch(`${app.baseUrl}/v1/ping`, { headers: { 'x-api-key': created.value.key } })
    // Warm the other process's cache, so the revoke has to reach it through the change log.
    for (let i = 0; i < 5; i++) expect((await ping()).status).toBe(200)
    const revoked = await admin.revokeKey(tenant, created.value.apiKey.id)
    expect(revoked.ok).toBe(true)
    const delay = await timeUntil(async () => (await ping()).status === 401)
    console.log(`[multi-process sqlite] revocation seen by the other process after ${delay.toFixed(0)} ms`)
    expect(delay).toBeLessThan(1000)
    const res = await ping()
    expect((await readJson(res)).code).toBe('api_key_revoked')
    await app.stop()
    await admin.close()
  })

  it('sees a scope change made by another process within the bound', async () => {
    const path = tempSqlitePath()
    const admin = keyward({ database: path })
    const created = await admin.createKey(tenant, { name: 'shared', scopes: ['orders:read'] })
    if (!created.ok) throw new Error('create failed')
    const app = await startAppProcess(path)
    const scopes = async () =>
      (await readJson(await fetch(`${app.baseUrl}/v1/ping`, { headers: { 'x-api-key': created.value.key } }))).scopes
    expect(await scopes()).toEqual(['orders:read'])
    await admin.updateKey(tenant, created.value.apiKey.id, { scopes: ['orders:write'] })
    const delay = await timeUntil(async () => JSON.stringify(await scopes()) === '["orders:write"]')
    expect(delay).toBeLessThan(1000)
    await app.stop()
    await admin.close()
  })

  it('adds usage from two processes exactly after they shut down gracefully', async () => {
    const path = tempSqlitePath()
    const admin = keyward({ database: path })
    const created = await admin.createKey(tenant, { name: 'shared' })
    if (!created.ok) throw new Error('create failed')
    const [a, b] = await Promise.all([startAppProcess(path), startAppProcess(path)])
    const hit = (base: string) => fetch(`${base}/v1/ping`, { headers: { 'x-api-key': created.value.key } }).then((res) => res.status)
    const statuses = await Promise.all(Array.from({ length: 300 }, (_, i) => hit(i % 3 === 0 ? a.baseUrl : b.baseUrl)))
    expect(statuses.every((status) => status === 200)).toBe(true)
    expect(await a.stop()).toBe(0)
    expect(await b.stop()).toBe(0)
    const usage = await admin.getUsage(tenant, created.value.apiKey.id)
    expect(usage.ok && usage.value.totalRequests).toBe(300)
    expect(usage.ok && usage.value.lastUsedAt).not.toBeNull()
    await admin.close()
  })
})
