import { createHash } from 'node:crypto'
import { SCRIPT } from './script.js'
import { STYLESHEET } from './style.js'

/**
 * The page's two static files, named after their content (`page.3f2a….css`): they can be cached for
 * a year, and a new version of the package serves new names instead of stale files.
 */
export interface Asset {
  file: string
  body: string
  contentType: string
}

function asset(name: string, extension: string, body: string, contentType: string): Asset {
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 12)
  return { file: `${name}.${hash}.${extension}`, body, contentType }
}

export const STYLE_ASSET = asset('page', 'css', STYLESHEET, 'text/css; charset=utf-8')
export const SCRIPT_ASSET = asset('page', 'js', SCRIPT, 'text/javascript; charset=utf-8')

/** Assets by file name, as served under `<mount>/assets/`. */
export const ASSETS: ReadonlyMap<string, Asset> = new Map([STYLE_ASSET, SCRIPT_ASSET].map((entry) => [entry.file, entry]))
