import { z } from 'zod'
import { EVENT_TYPES } from '../core/audit/types.js'
import { allowedIpsSchema, creditsSchema, rateLimitsWireSchema } from '../core/controls/schemas.js'
import {
  environmentSchema,
  expiresInSecondsSchema,
  fieldWording,
  gracePeriodSecondsSchema,
  metadataSchema,
  nameSchema,
  projectIdSchema,
  rotationIntervalDaysSchema,
  scopesSchema,
  webhookUrlSchema,
} from '../core/schemas.js'
import { ACTOR_TYPES, DELIVERY_STATUSES, ENVIRONMENTS, KEY_STATUSES } from '../core/types.js'

/**
 * The wire shapes of the management API (snake_case, as the seeds), built from the core's field
 * rules. The router validates with them and its OpenAPI document is generated from them.
 */
const isoDateTime = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time with a time zone' })
const instant = z.string().meta({ format: 'date-time' })

export const createKeyBody = z
  .strictObject(
    {
      name: nameSchema,
      scopes: scopesSchema.optional(),
      metadata: metadataSchema.optional(),
      environment: environmentSchema.optional().meta({ description: 'live (default) or test' }),
      project_id: projectIdSchema.optional(),
      expires_at: isoDateTime.optional().meta({ description: 'When the key stops working; must be in the future.' }),
      expires_in_seconds: expiresInSecondsSchema.optional().meta({ description: 'Alternative to expires_at.' }),
      rotation_interval_days: rotationIntervalDaysSchema.optional().meta({ description: 'Rotate automatically every N days.' }),
      rotation_webhook_url: webhookUrlSchema.optional().meta({ description: 'Receives the new key of each scheduled rotation.' }),
      rate_limits: rateLimitsWireSchema.optional(),
      credits: creditsSchema.optional(),
      allowed_ips: allowedIpsSchema.optional(),
    },
    fieldWording,
  )
  .meta({ id: 'CreateApiKey' })

export const updateKeyBody = z
  .strictObject(
    {
      name: nameSchema.optional(),
      scopes: scopesSchema.optional(),
      metadata: metadataSchema.optional(),
      expires_at: isoDateTime.nullable().optional(),
      rotation_interval_days: rotationIntervalDaysSchema.nullable().optional(),
      rotation_webhook_url: webhookUrlSchema.nullable().optional(),
      rate_limits: rateLimitsWireSchema.optional(),
      credits: creditsSchema
        .nullable()
        .optional()
        .meta({ description: 'New credits (remaining is set, not added to), or null to remove them.' }),
      allowed_ips: allowedIpsSchema.optional(),
      enabled: z.boolean(fieldWording).optional().meta({ description: 'false disables the key (401 api_key_disabled); true enables it.' }),
    },
    fieldWording,
  )
  .meta({ id: 'UpdateApiKey' })

export const rotateKeyBody = z
  .strictObject(
    {
      grace_period_seconds: gracePeriodSecondsSchema
        .optional()
        .meta({ description: 'How long the old key keeps working (0 = cut off now; at most 30 days).' }),
    },
    fieldWording,
  )
  .meta({ id: 'RotateApiKey' })

export const listKeysQuery = z.strictObject(
  {
    limit: z.coerce.number(fieldWording).int().min(1).max(100).optional().meta({ description: 'Page size, 1-100 (default 20).' }),
    cursor: z.string(fieldWording).max(512).optional().meta({ description: 'From the Link rel="next" header of the previous page.' }),
    status: z.enum(KEY_STATUSES, fieldWording).optional(),
    project_id: projectIdSchema.optional(),
    environment: environmentSchema.optional(),
  },
  fieldWording,
)

export const usageQuery = z.strictObject(
  {
    days: z.coerce
      .number(fieldWording)
      .int()
      .min(1)
      .max(90)
      .optional()
      .meta({ description: 'Length of the daily series, 1-90 (default 30).' }),
    include_predecessors: z
      .enum(['true', 'false'], fieldWording)
      .optional()
      .meta({ description: 'Also count the keys this one was rotated from.' }),
  },
  fieldWording,
)

export const keyIdParam = z.object({
  id: z
    .string(fieldWording)
    .max(64)
    .meta({ param: { name: 'id', in: 'path' }, example: 'key_3hVq8bTzK0mN2pXr5sW7yA' }),
})

export const actorSchema = z
  .object({
    type: z.enum(ACTOR_TYPES),
    id: z.string().nullable().meta({ description: 'The key id (api_key), the user (user, cli), "scheduler" or null (system).' }),
  })
  .meta({ id: 'Actor' })

export const keyObjectSchema = z
  .object({
    id: z.string(),
    tenant_id: z.string(),
    project_id: z.string().nullable(),
    name: z.string(),
    environment: z.enum(ENVIRONMENTS),
    key_prefix: z.string().meta({ example: 'sk_live_f8a3' }),
    key_suffix: z.string(),
    scopes: z.array(z.string()),
    metadata: z.record(z.string(), z.unknown()),
    status: z.enum(KEY_STATUSES),
    created_at: instant,
    updated_at: instant,
    last_used_at: instant.nullable(),
    expires_at: instant.nullable(),
    revoked_at: instant.nullable(),
    replaced_by_key_id: z.string().nullable(),
    rotated_from_key_id: z.string().nullable(),
    grace_expires_at: instant.nullable(),
    rotation_interval_days: z.number().nullable(),
    next_rotation_at: instant.nullable(),
    rotation_webhook_url: z.string().nullable(),
    rate_limits: z.array(z.object({ name: z.string(), limit: z.number(), window_ms: z.number() })),
    credits: z
      .object({
        remaining: z.number(),
        refill: z.object({ amount: z.number(), interval: z.enum(['day', 'month']) }).nullable(),
      })
      .nullable(),
    allowed_ips: z.array(z.string()),
    enabled: z.boolean(),
    created_by: actorSchema.nullable().meta({ description: 'Who created the key (null for keys created before it was recorded).' }),
    revoked_by: actorSchema.nullable().meta({ description: 'Who revoked the key; null while it is not revoked.' }),
  })
  .meta({ id: 'ApiKey' })

export const createdKeySchema = keyObjectSchema
  .extend({
    key: z.string().meta({ description: 'The full secret. Shown once; store it now.' }),
    rotation_webhook_secret: z.string().optional().meta({ description: 'whsec_... for verifying rotation webhooks; shown once.' }),
  })
  .meta({ id: 'CreatedApiKey' })

export const rotatedKeySchema = keyObjectSchema
  .extend({
    key: z.string().meta({ description: 'The new secret. Shown once.' }),
    old_key_id: z.string(),
    new_key_id: z.string(),
    old_key: keyObjectSchema.meta({ description: 'The rotated-out key: `rotating` until its `grace_expires_at`.' }),
  })
  .meta({ id: 'RotatedApiKey' })

export const usageSchema = z
  .object({
    key_id: z.string(),
    name: z.string(),
    created_at: instant,
    last_used_at: instant.nullable(),
    days_since_creation: z.number(),
    days_since_last_use: z.number().nullable(),
    total_requests: z.number(),
    key_ids: z.array(z.string()),
    daily: z.array(
      z.object({
        date: z.string(),
        requests: z.number().meta({ description: 'Requests admitted.' }),
        rate_limited: z.number().meta({ description: 'Requests refused by a rate limit.' }),
        credits_refused: z.number().meta({ description: 'Requests refused for lack of credits.' }),
      }),
    ),
  })
  .meta({ id: 'ApiKeyUsage' })

/** One try of a delivery: when, the HTTP status (null: no answer), the error, how long it took. */
const attemptSchema = z.object({ at: instant, status: z.number().nullable(), error: z.string().nullable(), duration_ms: z.number() })

export const deliverySchema = z
  .object({
    id: z.string(),
    key_id: z.string(),
    new_key_id: z.string().nullable(),
    event_type: z.string(),
    url: z.string(),
    status: z.enum(DELIVERY_STATUSES),
    attempts: z.array(attemptSchema),
    next_attempt_at: instant.nullable(),
    created_at: instant,
    updated_at: instant,
  })
  .meta({ id: 'WebhookDelivery' })

// Audit log and event webhooks (issue 15) -----------------------------------------------------------

export const listEventsQuery = z.strictObject(
  {
    key_id: z.string(fieldWording).max(64).optional().meta({ description: 'Only events about this key.' }),
    type: z.enum(EVENT_TYPES, fieldWording).optional(),
    since: isoDateTime.optional().meta({ description: 'Only events at or after this instant.' }),
    limit: z.coerce.number(fieldWording).int().min(1).max(100).optional().meta({ description: 'Page size, 1-100 (default 20).' }),
    cursor: z.string(fieldWording).max(512).optional().meta({ description: 'From the Link rel="next" header of the previous page.' }),
  },
  fieldWording,
)

export const eventObjectSchema = z
  .object({
    id: z.string(),
    type: z.enum(EVENT_TYPES),
    tenant_id: z.string(),
    project_id: z.string().nullable(),
    environment: z.enum(ENVIRONMENTS).nullable(),
    key_id: z.string().nullable(),
    actor: actorSchema,
    occurred_at: instant,
    ip: z.string().nullable().meta({ description: 'The caller’s address: the socket’s peer unless trusted proxies are configured.' }),
    user_agent: z.string().nullable(),
    request_id: z.string().nullable().meta({ description: 'The X-Request-Id of the request that made the change.' }),
    details: z
      .record(z.string(), z.unknown())
      .meta({ description: 'What changed, e.g. `changes: { name: { before, after } }` for api_key.updated.' }),
  })
  .meta({ id: 'AuditEvent' })

export const createEndpointBody = z
  .strictObject(
    {
      url: webhookUrlSchema.meta({ description: 'Receives the events, signed (Standard Webhooks).' }),
      events: z
        .array(z.enum(EVENT_TYPES, fieldWording), fieldWording)
        .min(1, 'must name at least one event type')
        .max(EVENT_TYPES.length)
        .meta({ description: 'The event types to receive.', example: ['api_key.revoked', 'api_key.expiring'] }),
      project_id: projectIdSchema.optional().meta({ description: 'Only events of this project’s keys.' }),
      environment: environmentSchema.optional().meta({ description: 'Only events of this environment’s keys.' }),
    },
    fieldWording,
  )
  .meta({ id: 'CreateWebhookEndpoint' })

export const endpointIdParam = z.object({
  id: z
    .string(fieldWording)
    .max(64)
    .meta({ param: { name: 'id', in: 'path' }, example: 'whe_3hVq8bTzK0mN2pXr5sW7yA' }),
})

export const endpointObjectSchema = z
  .object({
    id: z.string(),
    tenant_id: z.string(),
    project_id: z.string().nullable(),
    environment: z.enum(ENVIRONMENTS).nullable(),
    url: z.string(),
    events: z.array(z.enum(EVENT_TYPES)),
    created_at: instant,
    created_by: actorSchema.nullable(),
    disabled_at: instant.nullable().meta({ description: 'Set when the receiver answered 410 Gone: nothing more is sent.' }),
  })
  .meta({ id: 'WebhookEndpoint' })

export const createdEndpointSchema = endpointObjectSchema
  .extend({ secret: z.string().meta({ description: 'whsec_... for verifying deliveries. Shown once; store it now.' }) })
  .meta({ id: 'CreatedWebhookEndpoint' })

export const endpointDeliverySchema = z
  .object({
    id: z.string().meta({ description: 'The webhook-id header of every attempt.' }),
    endpoint_id: z.string().nullable(),
    event_id: z.string().nullable(),
    event_type: z.string(),
    url: z.string(),
    status: z.enum(DELIVERY_STATUSES),
    attempts: z.array(attemptSchema),
    next_attempt_at: instant.nullable(),
    created_at: instant,
    updated_at: instant,
  })
  .meta({ id: 'WebhookEndpointDelivery' })

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number(),
    code: z.string().meta({ example: 'not_found' }),
    detail: z.string(),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: 'Problem' })
