import type { ParseArgsConfig } from 'node:util'
import type { RateLimit } from '../core/controls/rate-limit.js'
import type { CreditsInput } from '../core/management/inputs.js'

/**
 * The command line's vocabulary: every option, how a value is read (whole numbers, lists, spans,
 * rate limits, credits) and which flag names an API field in an error. Reading a value throws a
 * `UsageError`, so a typo is refused before the database is opened.
 */

/**
 * Exit codes: 0 done; 1 keyward refused or failed (no such key, already rotated, database
 * unreachable); 2 the command line or the configuration is wrong (unknown command or option, a flag
 * given twice, a field that fails validation, a database that does not exist, a bad prefix, `pg`
 * not installed) — retrying the same command cannot succeed.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const

export const OPTIONS = {
  database: { type: 'string' },
  prefix: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  tenant: { type: 'string' },
  name: { type: 'string' },
  scopes: { type: 'string' },
  unrestricted: { type: 'boolean' },
  project: { type: 'string' },
  environment: { type: 'string' },
  'expires-in': { type: 'string' },
  'no-expiry': { type: 'boolean' },
  status: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  grace: { type: 'string' },
  days: { type: 'string' },
  'include-predecessors': { type: 'boolean' },
  key: { type: 'string' },
  type: { type: 'string' },
  since: { type: 'string' },
  'rate-limit': { type: 'string' },
  'no-rate-limits': { type: 'boolean' },
  credits: { type: 'string' },
  refill: { type: 'string' },
  'no-credits': { type: 'boolean' },
  'allowed-ips': { type: 'string' },
  'any-ip': { type: 'boolean' },
  disable: { type: 'boolean' },
  enable: { type: 'boolean' },
} as const satisfies NonNullable<ParseArgsConfig['options']>

export type OptionName = keyof typeof OPTIONS
export type Values = { [K in OptionName]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string }

export const GLOBAL_OPTIONS: readonly OptionName[] = ['database', 'prefix', 'json', 'help']

/** Options parsed by `wholeNumber`; checked before the database is opened. */
export const NUMBER_OPTIONS: readonly OptionName[] = ['expires-in', 'limit', 'grace', 'days', 'credits']

/** The CLI's field names for the API's: validation errors name the flag the user typed. */
const FLAG_OF_FIELD: Record<string, string> = {
  tenant_id: '--tenant',
  name: '--name',
  scopes: '--scopes',
  project_id: '--project',
  environment: '--environment',
  expires_in_seconds: '--expires-in',
  expires_at: '--expires-in',
  status: '--status',
  limit: '--limit',
  cursor: '--cursor',
  grace_period_seconds: '--grace',
  days: '--days',
  key_id: '--key',
  type: '--type',
  since: '--since',
  rate_limits: '--rate-limit',
  credits: '--credits',
  'credits.refill': '--refill',
  allowed_ips: '--allowed-ips',
  enabled: '--disable/--enable',
}

/** A validation error's field (`rate_limits.1.limit`) as the flag that set it: its longest known path. */
export function flagOf(field: string): string {
  const parts = field.split('.')
  for (let length = parts.length; length > 0; length--) {
    const path = parts.slice(0, length).join('.')
    // Own entries only: a field named "constructor" is not a flag.
    if (!Object.hasOwn(FLAG_OF_FIELD, path)) continue
    const flag = FLAG_OF_FIELD[path] as string
    const item = parts[length]
    return item !== undefined && /^\d+$/.test(item) ? `${flag} (item ${Number(item) + 1})` : flag
  }
  return field
}

/** Exit 2: the command line is wrong. `cause` names the command whose help to point to. */
export class UsageError extends Error {}

/** Exit 2 too, but the set-up is wrong (a database that is not there, `pg` missing): no usage hint. */
export class SetupError extends UsageError {}

export function list(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
}

export function wholeNumber(value: string, flag: string): number {
  // `--grace=-1` is a whole number with the wrong sign, not "not a number": say which.
  if (/^-\d+$/.test(value)) throw new UsageError(`${flag} must not be negative, got "${value}".`)
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number, got "${value}".`)
  if (value.length > 15) throw new UsageError(`${flag} is too large, got "${value}".`)
  return Number(value)
}

/** `--since`: an ISO 8601 instant, or a span back from now (`30m`, `24h`, `7d`). */
export function sinceOf(value: string, now = Date.now()): Date {
  const span = /^(\d{1,6})([mhd])$/.exec(value)
  if (span !== null) return new Date(now - Number(span[1]) * (UNIT_MS[span[2] as keyof typeof UNIT_MS] as number))
  const instant = new Date(value)
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(instant.getTime())) {
    throw new UsageError(`--since must be an ISO 8601 instant (2026-03-01T12:00:00Z) or a span such as 24h or 7d, got "${value}".`, {
      cause: 'events',
    })
  }
  return instant
}

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

/**
 * `--rate-limit burst:10/1s,hourly:1000/1h`: named limits, each `name:limit/window` with the
 * window in ms, s, m, h or d. The core checks the rest (at most 5, unique names, window bounds).
 */
export function rateLimitsOf(value: string, command: string): RateLimit[] {
  return list(value).map((item) => {
    const parsed = /^([^:]+):(\d{1,12})\/(\d{1,9})(ms|s|m|h|d)$/.exec(item)
    if (parsed === null) {
      throw new UsageError(
        `--rate-limit takes name:limit/window items, e.g. burst:10/1s,hourly:1000/1h (window in ms, s, m, h or d); got ${JSON.stringify(item)}.`,
        { cause: command },
      )
    }
    const [, name, limit, amount, unit] = parsed as unknown as [string, string, string, string, keyof typeof UNIT_MS]
    return { name, limit: Number(limit), windowMs: Number(amount) * UNIT_MS[unit] }
  })
}

/** `--credits 1000 [--refill 1000/month]`: what the key may spend, and what it is set back to each day or month. */
export function creditsOf(credits: string, refill: string | undefined, command: string): CreditsInput {
  const remaining = wholeNumber(credits, '--credits')
  if (refill === undefined) return { remaining, refill: null }
  const parsed = /^(\d{1,15})\/(day|month)$/.exec(refill)
  if (parsed === null) {
    throw new UsageError(`--refill takes amount/day or amount/month, e.g. 1000/month; got ${JSON.stringify(refill)}.`, { cause: command })
  }
  return { remaining, refill: { amount: Number(parsed[1]), interval: parsed[2] as 'day' | 'month' } }
}

/** At most one of each pair: a flag that sets a field and the flag that clears it. */
export function assertNotBoth(values: Values, pairs: readonly (readonly [OptionName, OptionName])[], command: string): void {
  for (const [a, b] of pairs) {
    if (values[a] !== undefined && values[b] !== undefined) throw new UsageError(`give --${a} or --${b}, not both.`, { cause: command })
  }
}
