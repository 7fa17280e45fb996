import { afterEach, describe, expect, it } from 'vitest'
import { createExampleApp } from '../example-app/express.js'
import { keyward } from '../src/index.js'
import { readJson } from './helpers/http.js'
import { listenNode } from './helpers/listen-node.js'
import { tempSqlitePath } from './helpers/sqlite.js'

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** The Express example on a fresh database, with an admin key for each demo tenant. */
async function startExample() {
  const kw = keyward({ database: tempSqlitePath() })
  cleanups.push(() => kw.close())
  const server = await listenNode(createExampleApp(kw))
  cleanups.push(() => server.close())
  const admin = async (tenantId: string) => {
    const created = await kw.createKey({ tenantId }, { name: `${tenantId} admin` })
    if (!created.ok) throw new Error(created.error.detail)
    return created.value.key
  }
  return { url: server.url, acme: await admin('acme'), globex: await admin('globex') }
}

describe('the Express example app', () => {
  it('serves orders per tenant behind apiKeyAuth, with scopes enforced', async () => {
    const { url, acme, globex } = await startExample()
    const headers = { 'x-api-key': acme, 'content-type': 'application/json' }
    expect((await fetch(`${url}/v1/orders`)).status).toBe(401)
    const order = await fetch(`${url}/v1/orders`, { method: 'POST', headers, body: JSON.stringify({ item: 'coffee' }) })
    expect(order.status).toBe(201)
    expect(await readJson(await fetch(`${url}/v1/orders`, { headers }))).toMatchObject([{ item: 'coffee' }])
    expect(await readJson(await fetch(`${url}/v1/orders`, { headers: { authorization: `Bearer ${globex}` } }))).toEqual([])
    const bad = await fetch(`${url}/v1/orders`, { method: 'POST', headers, body: '{' })
    expect(bad.status).toBe(400)

    const reporting = await readJson(
      await fetch(`${url}/api-keys`, { method: 'POST', headers, body: JSON.stringify({ name: 'Reporting', scopes: ['orders:read'] }) }),
    )
    expect((await fetch(`${url}/v1/orders`, { headers: { 'x-api-key': reporting.key } })).status).toBe(200)
    const denied = await fetch(`${url}/v1/orders`, {
      method: 'POST',
      headers: { ...headers, 'x-api-key': reporting.key },
      body: JSON.stringify({ item: 'tea' }),
    })
    expect(denied.status).toBe(403)
  })

  it('keeps tenants apart in /api-keys', async () => {
    const { url, acme, globex } = await startExample()
    const [acmeKey] = await readJson(await fetch(`${url}/api-keys`, { headers: { 'x-api-key': acme } }))
    const response = await fetch(`${url}/api-keys/${acmeKey.id}`, { headers: { 'x-api-key': globex } })
    expect(response.status).toBe(404)
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/)
  })
})
