import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Scalar } from '@scalar/hono-api-reference'
import type { Hono } from 'hono'
import { keysOpenApiDocument, type OpenApiDocument } from '../src/hono/index.js'

/**
 * The example API's interactive reference: `GET /openapi.json` (the whole API: the orders routes
 * below merged with the keys router's generated document) and `GET /reference` (Scalar).
 *
 * Scalar's page loads its JavaScript from a CDN unless told otherwise. The reference must work
 * without internet, so the page points at `/reference/scalar.js`, served from
 * `@scalar/api-reference` in node_modules. Without that package installed, the page falls back to
 * the CDN (fine online, blank offline) and the start-up log says so.
 */

export interface ApiReferenceOptions {
  /**
   * Where the keys router is mounted.
   * @default '/api-keys'
   */
  keysPath?: string
  /**
   * Where the page is served; the bundle is served at `<path>/scalar.js`.
   * @default '/reference'
   */
  path?: string
}

/** Scalar's browser bundle, as `@scalar/api-reference` ships it; `undefined` when not installed. */
export function findScalarBundle(from = dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules/@scalar/api-reference/dist/browser/standalone.js')
    if (existsSync(candidate)) return candidate
    if (dirname(dir) === dir) return undefined
  }
}

/**
 * The example's own routes, described by hand (they are plain Hono routes), merged with the keys
 * router's document so one page shows the whole API.
 */
export function exampleOpenApiDocument(keysPath = '/api-keys'): OpenApiDocument {
  const keys = keysOpenApiDocument({ basePath: keysPath })
  const security: Record<string, string[]>[] = [{ ApiKeyHeader: [] }, { Bearer: [] }]
  const problem = (description: string) => ({
    description,
    content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
  })
  const order = {
    type: 'object',
    required: ['id', 'item', 'created_by'],
    properties: {
      id: { type: 'integer' },
      item: { type: 'string' },
      created_by: { type: 'string', description: 'The id of the key that placed it.' },
    },
  }
  const denied = { 401: problem('Missing or invalid API key'), 403: problem('The key lacks the scope') }
  return {
    ...keys,
    info: {
      title: 'keyward example: orders API',
      version: '1',
      description:
        'A small orders API protected by keyward. Send an API key in `X-API-Key` (or `Authorization: Bearer`). ' +
        'The example prints an admin key per demo tenant on first start; manage keys under `/api-keys`.',
    },
    tags: [{ name: 'Orders', description: 'The example’s own API, behind `apiKeyAuth()`.' }, ...(keys.tags ?? [])],
    paths: {
      '/v1/whoami': {
        get: {
          operationId: 'whoami',
          summary: 'Show the calling API key',
          tags: ['Orders'],
          security,
          responses: {
            200: { description: 'The verified key: id, tenant, project, name, environment, scopes, metadata' },
            401: denied[401],
          },
        },
      },
      '/v1/orders': {
        get: {
          operationId: 'listOrders',
          summary: 'List orders',
          description: 'Needs the `orders:read` scope (or an unrestricted key).',
          tags: ['Orders'],
          security,
          responses: {
            200: { description: 'The tenant’s orders', content: { 'application/json': { schema: { type: 'array', items: order } } } },
            ...denied,
          },
        },
        post: {
          operationId: 'createOrder',
          summary: 'Create an order',
          description: 'Needs the `orders:write` scope (or an unrestricted key).',
          tags: ['Orders'],
          security,
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: { type: 'object', required: ['item'], properties: { item: { type: 'string', minLength: 1, maxLength: 200 } } },
              },
            },
          },
          responses: {
            201: { description: 'Created', content: { 'application/json': { schema: order } } },
            400: { description: 'No item' },
            ...denied,
          },
        },
      },
      ...keys.paths,
    },
  }
}

/**
 * Adds `GET /openapi.json` and `GET /reference` (and the page's script) to the example app. Calling
 * it twice adds nothing the second time.
 *
 * @example
 * const app = createExampleApp(kw)
 * addApiReference(app)   // open http://127.0.0.1:3000/reference
 */
export function addApiReference<A extends Hono>(app: A, options: ApiReferenceOptions = {}): A {
  const path = options.path ?? '/reference'
  if (app.routes.some((route) => route.path === path)) return app
  const document = exampleOpenApiDocument(options.keysPath ?? '/api-keys')
  const bundle = findScalarBundle()
  if (bundle === undefined) {
    console.warn('keyward example: @scalar/api-reference is not installed; /reference loads Scalar from its CDN (needs internet).')
  }

  app.get('/openapi.json', (c) => c.json(document))
  if (bundle !== undefined) {
    // Read once: the bundle is a few MB and never changes while the process runs.
    const script = readFileSync(bundle)
    app.get(`${path}/scalar.js`, (c) =>
      c.body(script, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=3600' }),
    )
  }
  app.get(
    path,
    Scalar({
      url: '/openapi.json',
      pageTitle: document.info.title,
      ...(bundle === undefined ? {} : { cdn: `${path}/scalar.js` }),
      // Nothing from third-party hosts: no web fonts, no telemetry.
      withDefaultFonts: false,
      telemetry: false,
      // Scalar's AI agent fetches a document registry from scalar.com when the page opens.
      agent: { disabled: true },
      // Every operation listed in the sidebar at once, the orders and the keys alike.
      defaultOpenAllTags: true,
    }),
  )
  return app
}
