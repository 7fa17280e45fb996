import { createRoute, type RouteConfig } from '@hono/zod-openapi'
import type { Context } from 'hono'
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
import { KEYS_TAG } from './openapi-document.js'

/**
 * The management routes as OpenAPI route definitions: one place for paths, methods, request and
 * response schemas. The router validates with them, types its handlers' answers against them and
 * generates its OpenAPI document from them.
 */

/**
 * Every problem a management route can answer with. Each route declares them all, so a handler's
 * `problem(...)` answer is type-checked like its success answer.
 */
const errorResponses = {
  400: problemResponse('Invalid request'),
  401: problemResponse('Missing or invalid credentials'),
  403: problemResponse('The caller lacks a scope, or may not act on this key'),
  404: problemResponse('No such key among those the caller may see'),
  405: problemResponse('The route does not take this method'),
  409: problemResponse('The key’s state does not allow this (revoked, expired or rotated)'),
  413: problemResponse('Body too large'),
  415: problemResponse('Not JSON'),
  429: problemResponse('The calling key is rate limited or out of credits (management calls are uses of it)'),
  500: problemResponse('A bug; the body carries no stack'),
  503: problemResponse('The key store is unreachable'),
}

const security: Record<string, string[]>[] = [{ ApiKeyHeader: [] }, { Bearer: [] }]
const tags = [KEYS_TAG]

export const routes = {
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
    description:
      'Issues a replacement that inherits everything but the secret; the old key (in `old_key`) works until its `grace_expires_at`.',
    security,
    middleware: [emptyBodyAsEmptyObject] as const,
    request: { params: keyIdParam, body: { content: { 'application/json': { schema: rotateKeyBody } }, required: false } },
    responses: {
      201: { description: 'Rotated', content: { 'application/json': { schema: rotatedKeySchema } } },
      ...errorResponses,
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
