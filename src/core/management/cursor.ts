import type { ListCursor } from '../types.js'

/**
 * Page cursors: the (created_at, id) position of the last row of a page, base64url-encoded. Opaque
 * to callers; anything this API did not issue is refused rather than guessed at.
 */
export function encodeCursor(position: { createdAt: Date; id: string }): string {
  return Buffer.from(`${position.createdAt.getTime()}.${position.id}`).toString('base64url')
}

export function decodeCursor(cursor: string, idKind = 'key'): ListCursor | undefined {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  const dot = text.indexOf('.')
  const millis = text.slice(0, dot)
  const id = text.slice(dot + 1)
  if (dot < 1 || !/^\d{1,15}$/.test(millis) || !id.startsWith(`${idKind}_`) || !/^[0-9A-Za-z]{1,40}$/.test(id.slice(idKind.length + 1))) {
    return undefined
  }
  return { createdAt: new Date(Number(millis)), id }
}
