import net from 'node:net'
import { Hono } from 'hono'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { generateKey } from '../src/core/key-format.js'
import { type ApiKeyVariables, apiKeyAuth, createKeysRouter } from '../src/hono/index.js'
import { keyward } from '../src/index.js'
import { readJson } from './helpers/http.js'
import { freshPostgresDatabase, hasPostgres } from './helpers/postgres.js'

/**
 * A loopback TCP proxy between keyward and PostgreSQL. `cut()` is the outage a test can cause
 * without touching the shared server: it stops accepting and destroys every open connection.
 */
class LoopbackProxy {
  port = 0
  #server: net.Server | undefined
  readonly #sockets = new Set<net.Socket>()

  constructor(private readonly target: { host: string; port: number }) {}

  async listen(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host)
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket)
        socket.on('close', () => this.#sockets.delete(socket))
        socket.on('error', () => {
          client.destroy()
          upstream.destroy()
        })
      }
      client.pipe(upstream).pipe(client)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => resolve())
    })
    this.port = (server.address() as net.AddressInfo).port
    this.#server = server
  }

  async cut(): Promise<void> {
    const server = this.#server
    this.#server = undefined
    const closed = new Promise((resolve) => server?.close(resolve))
    for (const socket of this.#sockets) socket.destroy()
    await closed
  }

  /** Listens again on the same port: the database is back at the address keyward knows. */
  restore(): Promise<void> {
    return this.listen()
  }
}

async function timeUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = performance.now()
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`condition not reached within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return performance.now() - started
}

async function listenerConnections(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const result = await client.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'keyward-listener'`,
    )
    return result.rows[0]?.n ?? 0
  } finally {
    await client.end()
  }
}

describe.skipIf(!hasPostgres)('PostgreSQL unreachable', () => {
  it('answers 503 store_unavailable once the 1 s staleness bound runs out, never a 500, and recovers by itself', async () => {
    const url = await freshPostgresDatabase()
    const direct = new URL(url)
    const proxy = new LoopbackProxy({ host: direct.hostname, port: Number(direct.port || 5432) })
    await proxy.listen()
    const viaProxy = new URL(url)
    viaProxy.port = String(proxy.port)
    const reported: string[] = []
    const kw = keyward({ database: viaProxy.toString(), onError: (_, context) => reported.push(context) })
    const app = new Hono<{ Variables: ApiKeyVariables }>()
    app.use('/v1/*', apiKeyAuth({ keyward: kw }))
    app.get('/v1/ping', (c) => c.json({ key: c.var.apiKey.id }))
    app.route('/api-keys', createKeysRouter({ keyward: kw }))
    try {
      const created = await kw.createKey({ tenantId: 'acme' }, { name: 'cached' })
      if (!created.ok) throw new Error(created.error.code)
      const request = (path: string, key = created.value.key, init: RequestInit = {}) =>
        app.request(path, { ...init, headers: { 'x-api-key': key, 'content-type': 'application/json' } })
      expect((await request('/v1/ping')).status).toBe(200)
      expect((await request('/api-keys')).status).toBe(200)

      await proxy.cut()
      const cutAt = performance.now()
      // Until the staleness bound runs out the cached key may still pass; then only 503.
      const unavailableAfter = await timeUntil(async () => {
        const response = await request('/v1/ping')
        expect([200, 503]).toContain(response.status)
        return response.status === 503
      }, 3000)
      const unknownKey = generateKey('sk', 'live').key
      for (const response of [
        await request('/v1/ping'),
        await request('/v1/ping'),
        await request('/v1/ping', unknownKey),
        await request('/api-keys'),
        await request('/api-keys', created.value.key, { method: 'POST', body: JSON.stringify({ name: 'during outage' }) }),
        await request(`/api-keys/${created.value.apiKey.id}`, created.value.key, { method: 'DELETE' }),
      ]) {
        expect(response.status).toBe(503)
        expect(response.headers.get('content-type')).toBe('application/problem+json')
        expect(response.headers.get('retry-after')).toBe('1')
        expect(await readJson(response)).toMatchObject({ status: 503, code: 'store_unavailable' })
      }
      const lastAnswerAfter = performance.now() - cutAt
      expect(lastAnswerAfter).toBeLessThan(3000)
      expect(reported).toContain('verify')

      await proxy.restore()
      const recoveredAfter = await timeUntil(async () => (await request('/v1/ping')).status === 200, 5000)
      expect((await request('/api-keys')).status).toBe(200)
      // The revoke answered 503 during the outage did not happen.
      const after = await kw.getKey({ tenantId: 'acme' }, created.value.apiKey.id)
      expect(after.ok && after.value.status).toBe('active')
      // The push channel reconnects on its own too (its backoff is capped at 5 s).
      await timeUntil(async () => (await listenerConnections(url)) === 1, 8000)
      console.log(
        `[fail-closed postgres] first 503 ${unavailableAfter.toFixed(0)} ms after the connection was cut; ` +
          `200 again ${recoveredAfter.toFixed(0)} ms after it was restored`,
      )
      expect(unavailableAfter).toBeLessThan(2000)
    } finally {
      await kw.close()
      await proxy.cut()
    }
  })

  it('starts while PostgreSQL is unreachable, answers 503, and serves keys once it is back', async () => {
    const url = await freshPostgresDatabase()
    const setup = keyward({ database: url })
    const created = await setup.createKey({ tenantId: 'acme' }, { name: 'early' })
    await setup.close()
    if (!created.ok) throw new Error(created.error.code)
    const direct = new URL(url)
    const proxy = new LoopbackProxy({ host: direct.hostname, port: Number(direct.port || 5432) })
    await proxy.listen()
    await proxy.cut()
    const viaProxy = new URL(url)
    viaProxy.port = String(proxy.port)
    const kw = keyward({ database: viaProxy.toString(), onError: () => undefined })
    const app = new Hono<{ Variables: ApiKeyVariables }>()
    app.use('/v1/*', apiKeyAuth({ keyward: kw }))
    app.get('/v1/ping', (c) => c.json({ key: c.var.apiKey.id }))
    const ping = () => app.request('/v1/ping', { headers: { 'x-api-key': created.value.key } })
    try {
      for (let i = 0; i < 3; i++) {
        const response = await ping()
        expect(response.status).toBe(503)
        expect((await readJson(response)).code).toBe('store_unavailable')
      }
      await proxy.restore()
      await timeUntil(async () => (await ping()).status === 200, 5000)
    } finally {
      await kw.close()
      await proxy.cut()
    }
  })
})
