import { OpenAPIHono } from '@hono/zod-openapi'
import { Validator } from '@seriousme/openapi-schema-validator'
import { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
import { createExampleApp } from '../example-app/hono.js'
import { addApiReference } from '../example-app/reference.js'
import { createKeysRouter, type KeysRouterOptions, keysOpenApiDocument, type OpenApiDocument } from '../src/hono/index.js'
import { type Keyward, keyward } from '../src/index.js'
import { type Listening, listen } from './helpers/listen.js'
import { tempSqlitePath } from './helpers/sqlite.js'

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A host app with the keys router at /api-keys, over real HTTP, and an admin key of tenant `acme`. */
async function startHost(options: Omit<KeysRouterOptions, 'keyward'> = {}) {
  const kw: Keyward = keyward({ database: tempSqlitePath() })
  cleanups.push(() => kw.close())
  const router = createKeysRouter({ ...options, keyward: kw })
  const app = new Hono()
  app.route('/api-keys', router)
  const server: Listening = await listen(app)
  cleanups.push(() => server.close())
  const created = await kw.createKey({ tenantId: 'acme' }, { name: 'admin' })
  if (!created.ok) throw new Error(created.error.detail)
  return { router, url: server.url, adminKey: created.value.key }
}

/** `METHOD /path` for every operation of a document. */
function documentedOperations(document: OpenApiDocument): string[] {
  return Object.entries(document.paths ?? {}).flatMap(([path, item]) =>
    METHODS.filter((method) => item[method] !== undefined).map((method) => `${method.toUpperCase()} ${path}`),
  )
}

/**
 * Whether nothing is routed at this method and path. A documented route may answer 404 only as a
 * problem about the key (`not_found`); a routing miss is the router's own 404 `route_not_found`
 * (or any other 404), or 405 `method_not_allowed` when the path exists but not with this method.
 */
async function routeMiss(response: Response): Promise<boolean> {
  if (response.status === 405) return true
  if (response.status !== 404) return false
  if (!response.headers.get('content-type')?.startsWith('application/problem+json')) return true
  const body = (await response.json()) as { code?: string }
  return body.code !== 'not_found'
}

async function validate(document: unknown) {
  const validator = new Validator()
  const result = await validator.validate(document as Record<string, unknown>)
  return { version: validator.version, ...result }
}

describe('the OpenAPI document', () => {
  it('is served at /api-keys/openapi.json without a key and is a valid OpenAPI 3.1 document', async () => {
    const host = await startHost()
    const response = await fetch(`${host.url}/api-keys/openapi.json`)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    const document = (await response.json()) as OpenApiDocument
    expect(document.openapi).toBe('3.1.0')
    const result = await validate(document)
    expect(result.errors).toBeUndefined()
    expect(result).toMatchObject({ valid: true, version: '3.1' })
  })

  it('puts its paths under the mount point, so clients call /api-keys/{id} and not /{id}', async () => {
    const host = await startHost()
    const document = (await (await fetch(`${host.url}/api-keys/openapi.json`)).json()) as OpenApiDocument
    const paths = Object.keys(document.paths ?? {})
    expect(paths).toContain('/api-keys')
    expect(paths).toContain('/api-keys/{id}')
    expect(paths.every((path) => path.startsWith('/api-keys'))).toBe(true)
  })

  it('names each operation, tags it and declares both ways of sending the key', async () => {
    const host = await startHost({ header: 'X-Management-Key' })
    const document = (await (await fetch(`${host.url}/api-keys/openapi.json`)).json()) as OpenApiDocument
    const operations = Object.values(document.paths ?? {}).flatMap((item) =>
      METHODS.flatMap((method) => (item[method] ? [item[method]] : [])),
    )
    expect(operations.length).toBeGreaterThanOrEqual(8)
    for (const operation of operations) {
      expect(operation.operationId).toMatch(/^[a-zA-Z]+$/)
      expect(operation.tags).toEqual(['API keys'])
      expect(operation.security).toEqual([{ ApiKeyHeader: [] }, { Bearer: [] }])
    }
    expect(new Set(operations.map((operation) => operation.operationId)).size).toBe(operations.length)
    expect(document.components?.securitySchemes).toEqual({
      ApiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-Management-Key' },
      Bearer: { type: 'http', scheme: 'bearer' },
    })
  })

  it('lists only routes the router answers: none of its operations is a 404 route_not_found', async () => {
    const host = await startHost()
    const document = (await (await fetch(`${host.url}/api-keys/openapi.json`)).json()) as OpenApiDocument
    const operations = documentedOperations(document)
    expect(operations.length).toBeGreaterThanOrEqual(8)
    for (const operation of operations) {
      const [method, path] = operation.split(' ') as [string, string]
      const response = await fetch(`${host.url}${path.replaceAll('{id}', 'key_doesnotexist')}`, {
        method,
        headers: { 'x-api-key': host.adminKey, 'content-type': 'application/json' },
        body: method === 'GET' || method === 'DELETE' ? undefined : '{}',
      })
      expect(await routeMiss(response), operation).toBe(false)
    }
  })

  it('would notice a documented route that does not exist: the same probe on an unknown path or method is a routing miss', async () => {
    const host = await startHost()
    const response = await fetch(`${host.url}/api-keys/key_doesnotexist/nope`, { headers: { 'x-api-key': host.adminKey } })
    expect(await routeMiss(response)).toBe(true)
    const otherMethod = await fetch(`${host.url}/api-keys/key_doesnotexist`, {
      method: 'PUT',
      headers: { 'x-api-key': host.adminKey, 'content-type': 'application/json' },
      body: '{}',
    })
    expect(otherMethod.status).toBe(405)
    expect(await routeMiss(otherMethod)).toBe(true)
  })

  it('documents every route the router has', async () => {
    const host = await startHost()
    const document = (await (await fetch(`${host.url}/api-keys/openapi.json`)).json()) as OpenApiDocument
    // `ALL /*` entries are middleware (auth, body limit); the document does not describe itself.
    const routed = new Set(
      host.router.routes
        .filter((route) => route.method !== 'ALL' && route.path !== '/openapi.json')
        .map((route) => `${route.method} ${`/api-keys${route.path.replace(/:(\w+)/g, '{$1}')}`.replace(/\/$/, '')}`),
    )
    expect([...routed].sort()).toEqual(documentedOperations(document).sort())
  })

  it('is not served with openapi: false (404 with a key, 401 without one)', async () => {
    const host = await startHost({ openapi: false })
    // `openapi.json` now reaches `GET /{id}` like any other id: no such key.
    const withKey = await fetch(`${host.url}/api-keys/openapi.json`, { headers: { 'x-api-key': host.adminKey } })
    expect(withKey.status).toBe(404)
    expect(await withKey.json()).toMatchObject({ code: 'not_found' })
    const withoutKey = await fetch(`${host.url}/api-keys/openapi.json`)
    expect(withoutKey.status).toBe(401)
    expect(await withoutKey.json()).toMatchObject({ code: 'missing_api_key' })
  })
})

describe('keysOpenApiDocument()', () => {
  it('returns the served document under the base path given, valid on its own', async () => {
    const host = await startHost()
    const served = (await (await fetch(`${host.url}/api-keys/openapi.json`)).json()) as OpenApiDocument
    const exported = keysOpenApiDocument({ basePath: '/api-keys' })
    expect(JSON.parse(JSON.stringify(exported))).toEqual(served)
    const moved = keysOpenApiDocument({ basePath: '/admin/keys', info: { title: 'Acme', version: '2.0.0' } })
    expect(Object.keys(moved.paths ?? {})).toContain('/admin/keys/{id}/rotate')
    expect(moved.info).toEqual({ title: 'Acme', version: '2.0.0' })
    expect(await validate(moved)).toMatchObject({ valid: true })
  })

  it('merges into a host document by spreading paths and components, and the result stays valid', async () => {
    const mine = new OpenAPIHono().getOpenAPI31Document({ openapi: '3.1.0', info: { title: 'Orders', version: '1' } })
    const keys = keysOpenApiDocument()
    const merged = {
      ...mine,
      paths: {
        ...mine.paths,
        '/orders': { get: { summary: 'List orders', responses: { 200: { description: 'Orders' } } } },
        ...keys.paths,
      },
      components: { ...mine.components, ...keys.components },
      tags: [...(mine.tags ?? []), ...(keys.tags ?? [])],
    }
    expect(await validate(merged)).toMatchObject({ valid: true })
    expect(Object.keys(merged.paths)).toEqual(expect.arrayContaining(['/orders', '/api-keys', '/api-keys/{id}']))
  })
})

describe('an OpenAPIHono host', () => {
  it('publishes the keys routes in its own document when it mounts the router', async () => {
    const kw = keyward({ database: tempSqlitePath() })
    cleanups.push(() => kw.close())
    const app = new OpenAPIHono()
    app.route('/api-keys', createKeysRouter({ keyward: kw, openapi: false }))
    app.doc31('/openapi.json', { openapi: '3.1.0', info: { title: 'Host', version: '1' } })
    const server = await listen(app)
    cleanups.push(() => server.close())
    const document = (await (await fetch(`${server.url}/openapi.json`)).json()) as OpenApiDocument
    expect(Object.keys(document.paths ?? {})).toEqual(expect.arrayContaining(['/api-keys', '/api-keys/{id}', '/api-keys/{id}/rotate']))
    expect(await validate(document)).toMatchObject({ valid: true })
  })
})

describe('the example app’s /openapi.json', () => {
  it('is one valid document for the whole API, and every operation in it is routed', async () => {
    const kw = keyward({ database: tempSqlitePath() })
    cleanups.push(() => kw.close())
    const admin = await kw.createKey({ tenantId: 'acme' }, { name: 'admin' })
    if (!admin.ok) throw new Error(admin.error.detail)
    const server = await listen(addApiReference(createExampleApp(kw)))
    cleanups.push(() => server.close())
    const document = (await (await fetch(`${server.url}/openapi.json`)).json()) as OpenApiDocument
    expect(await validate(document)).toMatchObject({ valid: true })
    const operations = documentedOperations(document)
    expect(operations).toEqual(
      expect.arrayContaining(['GET /v1/whoami', 'GET /v1/orders', 'POST /v1/orders', 'POST /api-keys', 'DELETE /api-keys/{id}']),
    )
    for (const operation of operations) {
      const [method, path] = operation.split(' ') as [string, string]
      const response = await fetch(`${server.url}${path.replaceAll('{id}', 'key_doesnotexist')}`, {
        method,
        headers: { 'x-api-key': admin.value.key, 'content-type': 'application/json' },
        body: method === 'GET' || method === 'DELETE' ? undefined : '{}',
      })
      expect(await routeMiss(response), operation).toBe(false)
    }
  })
})
