import type { ApiKey, KeyStatus } from '../core/types.js'

/**
 * How the page writes dates, counts and keys. Times are shown in UTC and say so: the server does not
 * know the visitor's time zone, and a time without its zone misleads.
 */

const dateTime = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'UTC',
  day: 'numeric',
  month: 'short',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
})
const dateOnly = new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'short', year: 'numeric' })
const dayMonth = new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'short' })
const numbers = new Intl.NumberFormat('en')

/** `14 Mar 2026, 10:05 UTC` */
export function formatDateTime(date: Date): string {
  return `${dateTime.format(date)} UTC`
}

/** `14 Mar 2026` */
export function formatDate(date: Date): string {
  return dateOnly.format(date)
}

/** `14 Mar`, from a `YYYY-MM-DD` UTC day. */
export function formatDay(day: string): string {
  return dayMonth.format(new Date(`${day}T00:00:00Z`))
}

/** `1,234` */
export function formatCount(count: number): string {
  return numbers.format(count)
}

/** `1 request`, `1,234 requests` */
export function plural(count: number, noun: string): string {
  return `${formatCount(count)} ${noun}${count === 1 ? '' : 's'}`
}

/** How a key is recognised without its secret: `sk_live_oMYl…D2UX`. */
export function maskedKey(key: Pick<ApiKey, 'keyPrefix' | 'keySuffix'>): string {
  return `${key.keyPrefix}…${key.keySuffix}`
}

/** `3600` → `1 hour`, `0` → `no grace period`: the choices of the rotate form. */
export function formatSeconds(seconds: number): string {
  if (seconds === 0) return 'no grace period'
  const units: [number, string][] = [
    [86_400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ]
  for (const [size, unit] of units) if (seconds % size === 0) return plural(seconds / size, unit)
  return plural(seconds, 'second')
}

/** A status as a person reads it; `rotating` means "replaced, still working until its grace ends". */
export const STATUS_LABELS: Record<KeyStatus, string> = {
  active: 'Active',
  expired: 'Expired',
  revoked: 'Revoked',
  disabled: 'Disabled',
  rotating: 'Rotating',
  rotated: 'Rotated',
}
