import type { OpenAPIHono } from '@hono/zod-openapi'
import { mergePath } from 'hono/utils/url'

/** An OpenAPI 3.1 document, as `@hono/zod-openapi` generates it. */
export type OpenApiDocument = ReturnType<OpenAPIHono['getOpenAPI31Document']>

/** The `info` block of the document: `title` and `version` at least. */
export type OpenApiInfo = OpenApiDocument['info']

/** The tag every keys operation carries, so reference pages group them together. */
export const KEYS_TAG = 'API keys'

export const DEFAULT_OPENAPI_INFO: OpenApiInfo = { title: 'keyward API keys', version: '1' }

/** The document of a keys router with every path moved under `basePath` (shared by the served document and `keysOpenApiDocument`). */
export function routerOpenApiDocument(
  router: Pick<OpenAPIHono, 'getOpenAPI31Document'>,
  basePath: string,
  info: OpenApiInfo,
): OpenApiDocument {
  const document = router.getOpenAPI31Document({
    openapi: '3.1.0',
    info,
    tags: [{ name: KEYS_TAG, description: 'Create, list, rotate and revoke API keys of the caller’s tenant.' }],
  })
  const paths: NonNullable<OpenApiDocument['paths']> = {}
  // mergePath('/api-keys', '/') is '/api-keys', the path Hono routes (no trailing slash).
  for (const [path, item] of Object.entries(document.paths ?? {})) paths[mergePath(basePath, path)] = item
  return { ...document, paths }
}
