import type { KeyExtractionOptions } from '../http/problem.js'
import { DEFAULT_OPENAPI_INFO, type OpenApiDocument, type OpenApiInfo, routerOpenApiDocument } from './openapi-document.js'
import { createKeysRouter } from './router.js'

export type { OpenApiDocument, OpenApiInfo } from './openapi-document.js'

export interface KeysOpenApiDocumentOptions extends Pick<KeyExtractionOptions, 'header'> {
  /**
   * Where the keys router is mounted in the host app; every path of the document starts with it.
   * @default '/api-keys'
   */
  basePath?: string
  /**
   * The document's `info`.
   * @default { title: 'keyward API keys', version: '1' }
   */
  info?: OpenApiInfo
}

/**
 * The OpenAPI 3.1 document of the key-management router, with its paths under `basePath`, for a
 * host app that publishes one document for its whole API. It is generated from the same zod
 * schemas that validate requests, so it cannot drift from what the router accepts.
 *
 * A host built on `OpenAPIHono` needs none of this: `app.route('/api-keys', createKeysRouter())`
 * already copies the router's routes and components into the host's own `app.doc31(...)`.
 *
 * @example
 * const keys = keysOpenApiDocument({ basePath: '/api-keys' })
 * const document = {
 *   ...mine,
 *   paths: { ...mine.paths, ...keys.paths },
 *   components: {
 *     ...mine.components,
 *     schemas: { ...mine.components?.schemas, ...keys.components?.schemas },
 *     securitySchemes: { ...mine.components?.securitySchemes, ...keys.components?.securitySchemes },
 *   },
 *   tags: [...(mine.tags ?? []), ...(keys.tags ?? [])],
 * }
 */
export function keysOpenApiDocument(options: KeysOpenApiDocumentOptions = {}): OpenApiDocument {
  // Building a router opens no database: the keyward instance is resolved on the first request.
  const router = createKeysRouter({ header: options.header, openapi: false })
  return routerOpenApiDocument(router, options.basePath ?? '/api-keys', options.info ?? DEFAULT_OPENAPI_INFO)
}
