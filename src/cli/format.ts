import type { EventObject, KeyObject } from '../http/serialize.js'

/**
 * Plain-text rendering for people. Scripts use `--json`, which prints the HTTP API's own shapes,
 * so nothing here needs to stay stable.
 */

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)))
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

/** `field  value` lines, for one record. */
export function details(fields: readonly (readonly [string, string])[]): string {
  const width = Math.max(...fields.map(([label]) => label.length))
  return fields.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n')
}

/** `2026-03-01T12:00:05.123Z` → `2026-03-01 12:00Z`; `-` for none. */
export function when(iso: string | null): string {
  return iso === null ? '-' : `${iso.slice(0, 10)} ${iso.slice(11, 16)}Z`
}

/** What a key looks like on screen: its display prefix and suffix, never the secret. */
export function maskedKey(key: Pick<KeyObject, 'key_prefix' | 'key_suffix'>): string {
  return `${key.key_prefix}…${key.key_suffix}`
}

export function scopeList(scopes: readonly string[]): string {
  return scopes.length === 0 ? '(all)' : scopes.join(',')
}

export const KEY_LIST_HEADER = ['ID', 'NAME', 'KEY', 'ENV', 'SCOPES', 'STATUS', 'CREATED', 'LAST USED', 'EXPIRES'] as const

export function keyRow(key: KeyObject): string[] {
  return [
    key.id,
    key.name,
    maskedKey(key),
    key.environment,
    scopeList(key.scopes),
    key.status,
    when(key.created_at),
    when(key.last_used_at),
    when(key.expires_at),
  ]
}

export function keyDetails(key: KeyObject): string {
  const fields: [string, string][] = [
    ['id', key.id],
    ['name', key.name],
    ['tenant', key.tenant_id],
    ['project', key.project_id ?? '-'],
    ['key', maskedKey(key)],
    ['environment', key.environment],
    ['scopes', scopeList(key.scopes)],
    ['status', key.status],
    ['created', when(key.created_at)],
    ['updated', when(key.updated_at)],
    ['last used', when(key.last_used_at)],
    ['expires', when(key.expires_at)],
    ['revoked', when(key.revoked_at)],
  ]
  if (Object.keys(key.metadata).length > 0) fields.push(['metadata', JSON.stringify(key.metadata)])
  if (key.rotated_from_key_id !== null) fields.push(['rotated from', key.rotated_from_key_id])
  if (key.replaced_by_key_id !== null) fields.push(['replaced by', key.replaced_by_key_id])
  if (key.grace_expires_at !== null) fields.push(['grace until', when(key.grace_expires_at)])
  if (key.rotation_interval_days !== null)
    fields.push(['rotates every', `${key.rotation_interval_days} days (next ${when(key.next_rotation_at)})`])
  if (!key.enabled) fields.push(['enabled', 'no (disabled: every request with it is refused)'])
  for (const limit of key.rate_limits) fields.push(['rate limit', `${limit.name}: ${limit.limit} per ${span(limit.window_ms)}`])
  if (key.credits !== null) {
    const refill =
      key.credits.refill === null ? 'no refill' : `refilled to ${key.credits.refill.amount} each ${key.credits.refill.interval}`
    fields.push(['credits', `${key.credits.remaining} left, ${refill}`])
  }
  if (key.allowed_ips.length > 0) fields.push(['allowed IPs', key.allowed_ips.join(', ')])
  return details(fields)
}

/** A window in the largest unit that divides it: `1s`, `90s`, `1h`, `250ms` (the form `--rate-limit` reads). */
export function span(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}

export const EVENT_LIST_HEADER = ['TIME', 'TYPE', 'KEY', 'ACTOR', 'IP', 'REQUEST'] as const

export function eventRow(event: EventObject): string[] {
  const subject = event.key_id ?? (typeof event.details.endpoint_id === 'string' ? event.details.endpoint_id : '-')
  const actor = event.actor.id === null ? event.actor.type : `${event.actor.type}:${event.actor.id}`
  // To the second: an audit log orders what happened within a minute.
  const at = `${event.occurred_at.slice(0, 10)} ${event.occurred_at.slice(11, 19)}Z`
  return [at, event.type, subject, actor, event.ip ?? '-', event.request_id ?? '-']
}
