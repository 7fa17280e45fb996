import { createKeysRouter } from './router.js'

export { type KeysOpenApiDocumentOptions, keysOpenApiDocument, type OpenApiDocument, type OpenApiInfo } from '../hono/openapi.js'
export type { KeyHistoryEntry, ScopeChoice } from '../page/index.js'
export { apiKeyAuth, type ExpressApiKeyAuthOptions as ApiKeyAuthOptions, requireScopes, spendCredits, withApiKey } from './middleware.js'
export type { ExpressRequestLike, KeywardErrorHandler, KeywardRequestHandler, NextLike } from './node-http.js'
export { createKeysPage, type KeysPageOptions } from './page.js'
export { createKeysRouter, type ExpressKeysRouter, type KeysRouterOptions } from './router.js'

/**
 * The key-management router on the shared zero-config instance, ready to mount in Express 4 or 5.
 * Use `createKeysRouter({ keyward })` for your own instance.
 *
 * @example
 * import { apiKeyAuth, keysRouter } from 'keyward/express'
 *
 * app.use('/api-keys', keysRouter)
 * app.use('/v1', apiKeyAuth())
 */
export const keysRouter = createKeysRouter()
