import { createRoute, OpenAPIHono, type RouteConfig } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { fail, type KeywardError, type Result } from '../core/errors.js'
import type { Keyward } from '../core/keyward.js'
import { fieldErrors } from '../core/schemas.js'
import { toKeyObject } from '../core/serialize.js'
import type { Actor } from '../core/types.js'
import { DRAIN_LIMIT_FACTOR } from '../http/body.js'
import { fetchHeader, type KeyExtractionOptions, keyExtractor, problemAnswer } from '../http/problem.js'
import {
  createdKeySchema,
  createKeyBody,
  deliverySchema,
  keyIdParam,
  keyObjectSchema,
  listKeysQuery,
  problemSchema,
  rotatedKeySchema,
  rotateKeyBody,
  updateKeyBody,
  usageQuery,
  usageSchema,
} from '../http/schemas.js'
import { defaultKeyward } from '../index.js'
import { answerBeforeBody, readBodyFirst } from './body.js'
import { DEFAULT_OPENAPI_INFO, KEYS_TAG, routerOpenApiDocument } from './openapi-document.js'

/**
 * What the Express adapter (or any other bridge) passes in `env` when it has already resolved
 * the caller with the host app's own auth.
 */
export const ACTOR_BINDING = 'keywardActor'
export type KeysRouterBindings = { [ACTOR_BINDING]?: Actor | null }

export interface KeysRouterOptions extends KeyExtractionOptions {
  /** @default the shared zero-config instance */
  keyward?: Keyward
  /**
   * Resolve the caller from the host app's own auth (a JWT, a session). Return the tenant (and
   * optionally project and scopes) the caller acts for, or null to fall back to an API key.
   *
   * @example
   * authenticate: (c) => ({ tenantId: c.get('jwtPayload').tenant_id })
   */
  authenticate?: (c: Context) => Actor | null | undefined | Promise<Actor | null | undefined>
  /**
   * Accept an API key of the tenant to authenticate management calls.
   * @default true
   */
  apiKeys?: boolean
  /**
   * Serve the OpenAPI 3.1 document at `GET <mount>/openapi.json` (without authentication), its
   * paths under the mount point. For a document to merge into the host's, see `keysOpenApiDocument`.
   * @default true
   */
  openapi?: boolean
  /**
   * Largest accepted request body.
   * @default 16384
   */
  maxBodyBytes?: number
}

type RouterEnv = { Bindings: KeysRouterBindings; Variables: { actor: Actor } }

const errorResponses = {
  400: problemResponse('Invalid request'),
  401: problemResponse('Missing or invalid credentials'),
  403: problemResponse('The caller lacks a scope'),
  404: problemResponse('No such key in the caller’s tenant'),
  503: problemResponse('The key store is unreachable'),
} as const

const security: Record<string, string[]>[] = [{ ApiKeyHeader: [] }, { Bearer: [] }]
const tags = [KEYS_TAG]

const routes = {
  create: createRoute({
    method: 'post',
    path: '/',
    operationId: 'createApiKey',
    summary: 'Create an API key',
    tags,
    description: 'Returns the key object and, once only, the full secret in `key`.',
    security,
    request: { body: { content: { 'application/json': { schema: createKeyBody } }, required: true } },
    responses: {
      201: { description: 'Created', content: { 'application/json': { schema: createdKeySchema } } },
      ...errorResponses,
      409: problemResponse('Conflict'),
      413: problemResponse('Body too large'),
      415: problemResponse('Not JSON'),
    },
  }),
  list: createRoute({
    method: 'get',
    path: '/',
    operationId: 'listApiKeys',
    summary: 'List API keys',
    tags,
    description: 'The caller’s tenant’s keys, newest first. The next page is in `Link: <...>; rel="next"`.',
    security,
    request: { query: listKeysQuery },
    responses: {
      200: { description: 'A page of keys', content: { 'application/json': { schema: keyObjectSchema.array() } } },
      ...errorResponses,
    },
  }),
  get: createRoute({
    method: 'get',
    path: '/{id}',
    operationId: 'getApiKey',
    summary: 'Get an API key',
    tags,
    security,
    request: { params: keyIdParam },
    responses: { 200: { description: 'The key', content: { 'application/json': { schema: keyObjectSchema } } }, ...errorResponses },
  }),
  update: createRoute({
    method: 'patch',
    path: '/{id}',
    operationId: 'updateApiKey',
    summary: 'Rename or change an API key',
    tags,
    security,
    request: { params: keyIdParam, body: { content: { 'application/json': { schema: updateKeyBody } }, required: true } },
    responses: {
      200: { description: 'The updated key', content: { 'application/json': { schema: keyObjectSchema } } },
      ...errorResponses,
      413: problemResponse('Body too large'),
      415: problemResponse('Not JSON'),
    },
  }),
  revoke: createRoute({
    method: 'delete',
    path: '/{id}',
    operationId: 'revokeApiKey',
    summary: 'Revoke an API key',
    tags,
    description: 'The key is rejected from the next request on. Revoking twice is not an error.',
    security,
    request: { params: keyIdParam },
    responses: { 200: { description: 'The revoked key', content: { 'application/json': { schema: keyObjectSchema } } }, ...errorResponses },
  }),
  rotate: createRoute({
    method: 'post',
    path: '/{id}/rotate',
    operationId: 'rotateApiKey',
    summary: 'Rotate an API key',
    tags,
    description: 'Issues a replacement that inherits everything but the secret; the old key works until `grace_expires_at`.',
    security,
    middleware: [emptyBodyAsEmptyObject] as const,
    request: { params: keyIdParam, body: { content: { 'application/json': { schema: rotateKeyBody } }, required: false } },
    responses: {
      201: { description: 'Rotated', content: { 'application/json': { schema: rotatedKeySchema } } },
      ...errorResponses,
      409: problemResponse('Already rotated, or revoked'),
    },
  }),
  usage: createRoute({
    method: 'get',
    path: '/{id}/usage',
    operationId: 'getApiKeyUsage',
    summary: 'Usage statistics of an API key',
    tags,
    security,
    request: { params: keyIdParam, query: usageQuery },
    responses: { 200: { description: 'Usage', content: { 'application/json': { schema: usageSchema } } }, ...errorResponses },
  }),
  deliveries: createRoute({
    method: 'get',
    path: '/{id}/webhook-deliveries',
    operationId: 'listApiKeyWebhookDeliveries',
    summary: 'Rotation webhook deliveries of an API key',
    tags,
    description: 'Attempts and outcomes of the webhooks sent for scheduled rotations of this key.',
    security,
    request: { params: keyIdParam },
    responses: {
      200: { description: 'Deliveries', content: { 'application/json': { schema: deliverySchema.array() } } },
      ...errorResponses,
    },
  }),
} satisfies Record<string, RouteConfig>

/**
 * The key-management router. Mount it anywhere: `app.route('/api-keys', createKeysRouter())`.
 * One implementation serves Hono directly and Express through `keyward/express`.
 */
export function createKeysRouter(options: KeysRouterOptions = {}) {
  const extract = keyExtractor(options)
  const realm = options.realm ?? 'keyward'
  const acceptApiKeys = options.apiKeys !== false
  const maxBodyBytes = options.maxBodyBytes ?? 16_384
  const instance = (): Keyward => options.keyward ?? defaultKeyward()

  const problem = (c: Context, error: KeywardError) => {
    const answer = problemAnswer(error, { realm })
    return c.body(answer.body, answer.status as 400, answer.headers)
  }
  const answer = <T>(c: Context, result: Result<T>, status: 200 | 201, body: (value: T) => unknown) =>
    result.ok ? c.json(body(result.value) as object, status) : problem(c, result.error)

  const app = new OpenAPIHono<RouterEnv>({
    defaultHook: (result, c) => {
      if (!result.success) return problem(c, fail('validation_error', 'The request has invalid fields.', fieldErrors(result.error)).error)
    },
  })

  // Registered even with `openapi: false`: a host OpenAPIHono that mounts this router copies the
  // registry into its own document, and the routes' `security` must resolve there.
  app.openAPIRegistry.registerComponent('securitySchemes', 'ApiKeyHeader', {
    type: 'apiKey',
    in: 'header',
    name: options.header ?? 'X-API-Key',
  })
  app.openAPIRegistry.registerComponent('securitySchemes', 'Bearer', { type: 'http', scheme: 'bearer' })
  if (options.openapi !== false) {
    // Paths carry the mount point read from the request URL (`/api-keys/openapi.json` → `/api-keys`),
    // so a client reading the document calls `/api-keys/{id}`, not `/{id}` at the host's root. The
    // URL, not `c.req.path`: the Express bridge routes on the path below its mount point.
    app.get('/openapi.json', (c) => {
      const mountPath = new URL(c.req.url).pathname.slice(0, -'/openapi.json'.length) || '/'
      return c.json(routerOpenApiDocument(app, mountPath, DEFAULT_OPENAPI_INFO))
    })
  }

  app.use('*', async (c, next) => {
    if (c.req.method === 'GET' && c.req.path.endsWith('/openapi.json') && options.openapi !== false) return next()
    const actor = await resolveActor(c)
    // Answered before the body is read: keep-alive connections must stay usable (issue 12).
    if (!actor.ok) return answerBeforeBody(c, problem(c, actor.error), DRAIN_LIMIT_FACTOR * maxBodyBytes)
    c.set('actor', actor.value)
    await next()
  })
  app.use(
    '*',
    readBodyFirst(maxBodyBytes, (c) => problem(c, fail('payload_too_large', `The request body exceeds ${maxBodyBytes} bytes.`).error)),
  )

  async function resolveActor(c: Context<RouterEnv>): Promise<Result<Actor>> {
    const bridged = c.env?.[ACTOR_BINDING]
    if (bridged) return { ok: true, value: bridged }
    const hosted = await options.authenticate?.(c)
    if (hosted) return { ok: true, value: hosted }
    const presented = acceptApiKeys ? extract(c.req.raw.headers, fetchHeader) : undefined
    if (presented === undefined) return acceptApiKeys ? fail('missing_api_key') : fail('unauthenticated')
    const decision = await instance().verify(presented)
    if (!decision.ok) return fail(decision.code)
    const key = decision.key
    return {
      ok: true,
      value: { tenantId: key.tenantId, projectId: key.projectId, scopes: key.scopes, environment: key.environment, keyId: key.id },
    }
  }

  app.openapi(routes.create, async (c) => {
    const body = c.req.valid('json')
    const result = await instance().createKey(c.var.actor, {
      name: body.name,
      scopes: body.scopes,
      metadata: body.metadata,
      environment: body.environment,
      projectId: body.project_id,
      expiresAt: body.expires_at,
      expiresInSeconds: body.expires_in_seconds,
      rotationIntervalDays: body.rotation_interval_days,
      rotationWebhookUrl: body.rotation_webhook_url,
    })
    return answer(c, result, 201, (created) =>
      created.rotationWebhookSecret === undefined
        ? { ...created.object, key: created.key }
        : { ...created.object, key: created.key, rotation_webhook_secret: created.rotationWebhookSecret },
    ) as never
  })

  app.openapi(routes.list, async (c) => {
    const query = c.req.valid('query')
    const result = await instance().listKeys(c.var.actor, {
      limit: query.limit,
      cursor: query.cursor,
      status: query.status,
      projectId: query.project_id,
      environment: query.environment,
    })
    if (result.ok && result.value.nextCursor !== null) {
      const next = new URL(c.req.url)
      next.searchParams.set('cursor', result.value.nextCursor)
      c.header('Link', `<${next.pathname}${next.search}>; rel="next"`)
    }
    return answer(c, result, 200, (page) => page.items) as never
  })

  app.openapi(routes.get, async (c) => answer(c, await instance().getKey(c.var.actor, c.req.valid('param').id), 200, (key) => key) as never)

  app.openapi(routes.update, async (c) => {
    const body = c.req.valid('json')
    const result = await instance().updateKey(c.var.actor, c.req.valid('param').id, {
      name: body.name,
      scopes: body.scopes,
      metadata: body.metadata,
      expiresAt: body.expires_at,
      rotationIntervalDays: body.rotation_interval_days,
      rotationWebhookUrl: body.rotation_webhook_url,
    })
    return answer(c, result, 200, (key) => key) as never
  })

  app.openapi(
    routes.revoke,
    async (c) => answer(c, await instance().revokeKey(c.var.actor, c.req.valid('param').id), 200, (key) => key) as never,
  )

  app.openapi(routes.rotate, async (c) => {
    const body = c.req.valid('json')
    const kw = instance()
    const result = await kw.rotateKey(c.var.actor, c.req.valid('param').id, { gracePeriodSeconds: body.grace_period_seconds })
    return answer(c, result, 201, (rotated) => ({
      ...toKeyObject(rotated.newKey, rotated.newKey.createdAt),
      old_key_id: rotated.oldKey.id,
      new_key_id: rotated.newKey.id,
      key: rotated.key,
      grace_expires_at: rotated.graceExpiresAt.toISOString(),
    })) as never
  })

  app.openapi(routes.usage, async (c) => {
    const query = c.req.valid('query')
    const result = await instance().getUsage(c.var.actor, c.req.valid('param').id, {
      days: query.days,
      includePredecessors: query.include_predecessors === 'true',
    })
    return answer(c, result, 200, (usage) => usage) as never
  })

  app.openapi(
    routes.deliveries,
    async (c) => answer(c, await instance().listDeliveries(c.var.actor, c.req.valid('param').id), 200, (list) => list) as never,
  )

  app.notFound((c) => problem(c, fail('route_not_found').error))
  app.onError((error, c) => {
    if (error instanceof HTTPException) {
      if (error.status === 415) return problem(c, fail('unsupported_media_type').error)
      if (error.status === 413) return problem(c, fail('payload_too_large').error)
      if (error.status === 400) return problem(c, fail('invalid_json', 'The request body is not valid JSON.').error)
    }
    // Never a stack trace on the wire; the host sees the error through its own logging.
    console.error('keyward: unexpected error in the keys router:', error instanceof Error ? error.message : error)
    return problem(c, fail('internal_error').error)
  })

  return app
}

/**
 * `curl -X POST -H 'Content-Type: application/json' .../rotate` with no body means "no options",
 * not malformed JSON: the body is optional on rotate.
 */
async function emptyBodyAsEmptyObject(c: Context, next: () => Promise<void>) {
  // Hono keeps the body promise in bodyCache; its type names the resolved value.
  if (c.req.header('content-type') !== undefined && (await c.req.text()).trim() === '') {
    ;(c.req.bodyCache as Record<string, unknown>).text = Promise.resolve('{}')
  }
  await next()
}

function problemResponse(description: string) {
  return { description, content: { 'application/problem+json': { schema: problemSchema } } }
}
