import type { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import type { KeywardError } from '../core/errors.js'
import type { Keyward } from '../core/keyward.js'
import { toCreatedEndpointObject, toEndpointDeliveryObject, toEndpointObject, toEventObject } from '../http/serialize.js'
import type { problemJson } from './problem.js'
import type { RouterEnv } from './router.js'
import { auditRoutes } from './routes.js'

/**
 * The audit log and event webhook routes of the keys router (issue 15), chained onto `app` before
 * the `/{id}` routes so `events` and `webhook-endpoints` are never read as key ids. Chained, not
 * registered on the side, so the router's type (and `hc<typeof router>()`) carries them.
 */
export function withAuditRoutes<E extends RouterEnv>(
  app: OpenAPIHono<E>,
  instance: () => Keyward,
  problem: (c: Context, error: KeywardError) => ReturnType<typeof problemJson>,
) {
  return app
    .openapi(auditRoutes.events, async (c) => {
      const query = c.req.valid('query')
      const result = await instance().listEvents(c.var.actor, {
        keyId: query.key_id,
        type: query.type,
        since: query.since,
        limit: query.limit,
        cursor: query.cursor,
      })
      if (!result.ok) return problem(c, result.error)
      if (result.value.nextCursor !== null) c.header('Link', nextPageLink(c.req.url, result.value.nextCursor))
      return c.json(result.value.items.map(toEventObject), 200)
    })
    .openapi(auditRoutes.createEndpoint, async (c) => {
      const body = c.req.valid('json')
      const result = await instance().createWebhookEndpoint(c.var.actor, {
        url: body.url,
        events: body.events,
        projectId: body.project_id,
        environment: body.environment,
      })
      return result.ok ? c.json(toCreatedEndpointObject(result.value), 201) : problem(c, result.error)
    })
    .openapi(auditRoutes.listEndpoints, async (c) => {
      const result = await instance().listWebhookEndpoints(c.var.actor)
      return result.ok ? c.json(result.value.map(toEndpointObject), 200) : problem(c, result.error)
    })
    .openapi(auditRoutes.deleteEndpoint, async (c) => {
      const result = await instance().deleteWebhookEndpoint(c.var.actor, c.req.valid('param').id)
      return result.ok ? c.json(toEndpointObject(result.value), 200) : problem(c, result.error)
    })
    .openapi(auditRoutes.endpointDeliveries, async (c) => {
      const result = await instance().listWebhookEndpointDeliveries(c.var.actor, c.req.valid('param').id)
      return result.ok ? c.json(result.value.map(toEndpointDeliveryObject), 200) : problem(c, result.error)
    })
}

/** `Link: <path?cursor=…>; rel="next"`, relative to the request's own URL (mount path included). */
function nextPageLink(url: string, cursor: string): string {
  const next = new URL(url)
  next.searchParams.set('cursor', cursor)
  return `<${next.pathname}${next.search}>; rel="next"`
}
