import { createKeysRouter } from './router.js'

export { createKeysPage, type KeyHistoryEntry, type KeysPageOptions, type ScopeChoice } from '../page/index.js'
export { type ApiKeyAuthOptions, type ApiKeyVariables, apiKeyAuth, requireScopes, spendCredits } from './middleware.js'
export { type KeysOpenApiDocumentOptions, keysOpenApiDocument, type OpenApiDocument, type OpenApiInfo } from './openapi.js'
export { ACTOR_BINDING, createKeysRouter, type KeysRouterBindings, type KeysRouterOptions } from './router.js'

/**
 * The key-management router on the shared zero-config instance, ready to mount:
 * `app.route('/api-keys', keysRouter)`. Use `createKeysRouter({ keyward })` for your own instance.
 */
export const keysRouter = createKeysRouter()
