import { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { fromWireRateLimits } from '../core/controls/schemas.js'
import { fail, type KeywardError } from '../core/errors.js'
import type { Keyward } from '../core/keyward.js'
import { fieldErrors } from '../core/schemas.js'
import type { Actor } from '../core/types.js'
import { keyActor } from '../core/verification/verifier.js'
import { DRAIN_LIMIT_FACTOR } from '../http/body.js'
import { type KeyExtractionOptions, keyExtractor } from '../http/problem.js'
import { limitHeaders } from '../http/ratelimit-headers.js'
import { toCreatedObject, toDeliveryObject, toKeyObject, toRotatedObject, toUsageObject } from '../http/serialize.js'
import { defaultKeyward } from '../index.js'
import { answerBeforeBody, readBodyFirst } from './body.js'
import { ACTOR_BINDING, CLIENT_ADDRESS_BINDING, type KeysRouterBindings, routeFallback } from './fallback.js'
import { type ApiKeyAuthOptions, honoRequestFacts, nodeSocketAddress, requestHeader } from './middleware.js'
import { DEFAULT_OPENAPI_INFO, routerOpenApiDocument } from './openapi-document.js'
import { problemJson } from './problem.js'
import { routes } from './routes.js'

export { ACTOR_BINDING, type KeysRouterBindings } from './fallback.js'

export interface KeysRouterOptions extends KeyExtractionOptions, Pick<ApiKeyAuthOptions, 'trustProxy' | 'clientAddress'> {
  /** @default the shared zero-config instance */
  keyward?: Keyward
  /**
   * Resolve the caller from the host app's own auth (a JWT, a session). Return the tenant (and
   * optionally project and scopes) the caller acts for, or null to fall back to an API key.
   *
   * @example
   * // With hono/jwt in front, on `new Hono<Env>()` where
   * // type Env = { Variables: JwtVariables<{ tenant_id?: string }> }:
   * authenticate: (c: Context<Env>) => {
   *   const tenantId = c.get('jwtPayload').tenant_id
   *   return tenantId ? { tenantId } : null
   * }
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

/**
 * The key-management router. Mount it anywhere: `app.route('/api-keys', createKeysRouter())`.
 * One implementation serves Hono directly and Express through `keyward/express`. Its type carries
 * every route, so `hc<typeof router>()` (hono/client) is a typed client of it.
 */
export function createKeysRouter(options: KeysRouterOptions = {}) {
  const extract = keyExtractor(options)
  const realm = options.realm ?? 'keyward'
  const acceptApiKeys = options.apiKeys !== false
  const maxBodyBytes = options.maxBodyBytes ?? 16_384
  const instance = (): Keyward => options.keyward ?? defaultKeyward()
  const problem = (c: Context, error: KeywardError, headers?: Record<string, string>) => problemJson(c, error, realm, headers)
  // Bridged requests (Express) carry the socket's address in env; mounted ones have @hono/node-server's.
  const facts = honoRequestFacts({
    trustProxy: options.trustProxy,
    clientAddress: options.clientAddress ?? ((c) => c.env?.[CLIENT_ADDRESS_BINDING] ?? nodeSocketAddress(c)),
  })

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

  // Every answer of the router may carry key data or a secret: no cache may keep it.
  app.use('*', async (c, next) => {
    await next()
    c.header('Cache-Control', 'no-store')
  })
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
    if (!actor.ok) return answerBeforeBody(c, problem(c, actor.error, actor.headers), DRAIN_LIMIT_FACTOR * maxBodyBytes)
    c.set('actor', actor.value)
    await next()
  })
  app.use(
    '*',
    readBodyFirst(maxBodyBytes, (c) => problem(c, fail('payload_too_large', `The request body exceeds ${maxBodyBytes} bytes.`).error)),
  )

  async function resolveActor(
    c: Context<RouterEnv>,
  ): Promise<{ ok: true; value: Actor } | { ok: false; error: KeywardError; headers?: Record<string, string> }> {
    const bridged = c.env?.[ACTOR_BINDING]
    if (bridged) return { ok: true, value: bridged }
    const hosted = await options.authenticate?.(c)
    if (hosted) return { ok: true, value: hosted }
    const presented = acceptApiKeys ? extract(c, requestHeader) : undefined
    if (presented === undefined) return acceptApiKeys ? fail('missing_api_key') : fail('unauthenticated')
    // Verifying counts a use of the calling key: management calls made with a key are uses of it,
    // and its controls (IP allowlist, rate limits, credits) apply to them.
    const decision = await instance().verify(presented, c, facts)
    const headers = decision.limits === undefined ? undefined : limitHeaders(decision.limits)
    if (!decision.ok) return { ...fail(decision.code, decision.detail), headers }
    if (headers !== undefined) for (const [name, value] of Object.entries(headers)) c.header(name, value)
    return { ok: true, value: keyActor(decision) }
  }

  const router = app
    .openapi(routes.create, async (c) => {
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
        rateLimits: body.rate_limits === undefined ? undefined : fromWireRateLimits(body.rate_limits),
        credits: body.credits,
        allowedIps: body.allowed_ips,
      })
      return result.ok ? c.json(toCreatedObject(result.value), 201) : problem(c, result.error)
    })
    .openapi(routes.list, async (c) => {
      const query = c.req.valid('query')
      const result = await instance().listKeys(c.var.actor, {
        limit: query.limit,
        cursor: query.cursor,
        status: query.status,
        projectId: query.project_id,
        environment: query.environment,
      })
      if (!result.ok) return problem(c, result.error)
      if (result.value.nextCursor !== null) {
        const next = new URL(c.req.url)
        next.searchParams.set('cursor', result.value.nextCursor)
        c.header('Link', `<${next.pathname}${next.search}>; rel="next"`)
      }
      return c.json(result.value.items.map(toKeyObject), 200)
    })
    .openapi(routes.get, async (c) => {
      const result = await instance().getKey(c.var.actor, c.req.valid('param').id)
      return result.ok ? c.json(toKeyObject(result.value), 200) : problem(c, result.error)
    })
    .openapi(routes.update, async (c) => {
      const body = c.req.valid('json')
      const result = await instance().updateKey(c.var.actor, c.req.valid('param').id, {
        name: body.name,
        scopes: body.scopes,
        metadata: body.metadata,
        expiresAt: body.expires_at,
        rotationIntervalDays: body.rotation_interval_days,
        rotationWebhookUrl: body.rotation_webhook_url,
        rateLimits: body.rate_limits === undefined ? undefined : fromWireRateLimits(body.rate_limits),
        credits: body.credits,
        allowedIps: body.allowed_ips,
        enabled: body.enabled,
      })
      return result.ok ? c.json(toKeyObject(result.value), 200) : problem(c, result.error)
    })
    .openapi(routes.revoke, async (c) => {
      const result = await instance().revokeKey(c.var.actor, c.req.valid('param').id)
      return result.ok ? c.json(toKeyObject(result.value), 200) : problem(c, result.error)
    })
    .openapi(routes.rotate, async (c) => {
      const body = c.req.valid('json')
      const result = await instance().rotateKey(c.var.actor, c.req.valid('param').id, { gracePeriodSeconds: body.grace_period_seconds })
      return result.ok ? c.json(toRotatedObject(result.value), 201) : problem(c, result.error)
    })
    .openapi(routes.usage, async (c) => {
      const query = c.req.valid('query')
      const result = await instance().getUsage(c.var.actor, c.req.valid('param').id, {
        days: query.days,
        includePredecessors: query.include_predecessors === 'true',
      })
      return result.ok ? c.json(toUsageObject(result.value), 200) : problem(c, result.error)
    })
    .openapi(routes.deliveries, async (c) => {
      const result = await instance().listDeliveries(c.var.actor, c.req.valid('param').id)
      return result.ok ? c.json(result.value.map(toDeliveryObject), 200) : problem(c, result.error)
    })

  // Registered last and outside the typed chain: unknown paths, other methods and a trailing slash
  // under the mount point are answered by the router itself, mounted or bridged alike.
  app.all('*', routeFallback(app, routes, problem))
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
  return router
}
