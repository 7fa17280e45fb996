import { EVENT_TYPES, type EventType } from '../core/audit/types.js'
import type { KeywardError } from '../core/errors.js'
import type { Keyward } from '../core/keyward.js'
import type { CreateKeyInput, UpdateKeyInput } from '../core/management/inputs.js'
import type { Actor, KeyStatus } from '../core/types.js'
import { toCreatedObject, toEventObject, toKeyObject, toRotatedObject, toUsageObject } from '../http/serialize.js'
import { redact } from './database.js'
import { details, EVENT_LIST_HEADER, eventRow, KEY_LIST_HEADER, keyDetails, keyRow, maskedKey, table, when } from './format.js'
import {
  assertNotBoth,
  creditsOf,
  EXIT,
  flagOf,
  list,
  type OptionName,
  rateLimitsOf,
  sinceOf,
  UsageError,
  type Values,
  wholeNumber,
} from './options.js'

/**
 * The commands, one entry each: what it takes, the checks that need more than one option, and what
 * it runs and prints. `main.ts` parses the line and opens the database; a command only calls the
 * core and prints the result (tables for people, the HTTP API's JSON with `--json`).
 */

/** What a command writes to, plus the store's own reason for the last failure, if any. */
export interface CommandIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
  env: Record<string, string | undefined>
  storeFailure?: () => string | undefined
}

export interface Context {
  kw: Keyward
  actor: Actor
  values: Values
  id: string
  io: CommandIo
  json: boolean
  database: string
}

export interface Command {
  summary: string
  usage: string
  example: string
  options: readonly OptionName[]
  required: readonly OptionName[]
  /** Takes one key id after the command name. */
  takesId: boolean
  /** May create the SQLite file; every other command refuses a database that is not there. */
  createsDatabase: boolean
  /** Checks that need more than one option at a time; throws a `UsageError`. */
  check?: (values: Values) => void
  run: (context: Context) => Promise<number>
}

const CONTROL_OPTIONS = ['rate-limit', 'credits', 'refill', 'allowed-ips'] as const satisfies readonly OptionName[]
const CONTROLS_USAGE = '[--rate-limit name:limit/window,...] [--credits <n> [--refill <n>/day|month]] [--allowed-ips <cidr>,...]'

/** The per-key controls a command line sets (create and update); absent flags leave them out. */
function controlsOf(values: Values, command: string): Pick<CreateKeyInput, 'rateLimits' | 'credits' | 'allowedIps'> {
  if (values.refill !== undefined && values.credits === undefined) {
    throw new UsageError('--refill needs --credits (what the key has to spend now).', { cause: command })
  }
  return {
    ...(values['rate-limit'] !== undefined && { rateLimits: rateLimitsOf(values['rate-limit'], command) }),
    ...(values.credits !== undefined && { credits: creditsOf(values.credits, values.refill, command) }),
    ...(values['allowed-ips'] !== undefined && { allowedIps: list(values['allowed-ips']) }),
  }
}

/** `--scopes` or `--unrestricted`: exactly one on create, at most one on update. */
function checkScopes(values: Values, command: string, required: boolean): void {
  // A key without scopes may do everything in its tenant, so it must be asked for by name: an
  // empty `--scopes "$SCOPES"` in a script or a forgotten flag must not mint one.
  const unrestricted = values.unrestricted === true
  if (unrestricted && values.scopes !== undefined) throw new UsageError('give --scopes or --unrestricted, not both.', { cause: command })
  if (required && !unrestricted && values.scopes === undefined) {
    throw new UsageError(
      `"${command}" needs --scopes a,b (what the key may do) or --unrestricted (a key that may do everything in its tenant).`,
      { cause: command },
    )
  }
  if (values.scopes !== undefined && list(values.scopes).length === 0) {
    throw new UsageError(
      `--scopes lists no scope (got ${JSON.stringify(values.scopes)}). Name at least one, e.g. --scopes orders:read, or pass --unrestricted for a key that may do everything in its tenant.`,
      { cause: command },
    )
  }
}

const UPDATE_PAIRS = [
  ['expires-in', 'no-expiry'],
  ['rate-limit', 'no-rate-limits'],
  ['credits', 'no-credits'],
  ['allowed-ips', 'any-ip'],
  ['disable', 'enable'],
] as const satisfies readonly (readonly [OptionName, OptionName])[]

const UPDATE_OPTIONS = [
  'name',
  'scopes',
  'unrestricted',
  'expires-in',
  'no-expiry',
  ...CONTROL_OPTIONS,
  'no-rate-limits',
  'no-credits',
  'any-ip',
  'disable',
  'enable',
] as const satisfies readonly OptionName[]

function updateOf(values: Values): UpdateKeyInput {
  const update: UpdateKeyInput = { ...controlsOf(values, 'update') }
  if (values.name !== undefined) update.name = values.name
  if (values.scopes !== undefined) update.scopes = list(values.scopes)
  // The core's key without scopes is the unrestricted one.
  if (values.unrestricted === true) update.scopes = []
  if (values['expires-in'] !== undefined) update.expiresAt = new Date(Date.now() + wholeNumber(values['expires-in'], '--expires-in') * 1000)
  if (values['no-expiry'] === true) update.expiresAt = null
  if (values['no-rate-limits'] === true) update.rateLimits = []
  if (values['no-credits'] === true) update.credits = null
  if (values['any-ip'] === true) update.allowedIps = []
  if (values.disable === true) update.enabled = false
  if (values.enable === true) update.enabled = true
  return update
}

export const COMMANDS: Record<string, Command> = {
  create: {
    summary: 'Create a key (e.g. the first admin key of a tenant); prints its secret once',
    usage: `keyward create --tenant <tenant> --name <name> (--scopes a,b | --unrestricted) [--project <project>] [--environment live|test] [--expires-in <seconds>] ${CONTROLS_USAGE}`,
    example: 'keyward create --tenant acme --name "Acme admin" --unrestricted --database ./keyward.db',
    options: ['tenant', 'name', 'scopes', 'unrestricted', 'project', 'environment', 'expires-in', ...CONTROL_OPTIONS],
    required: ['tenant', 'name'],
    takesId: false,
    createsDatabase: true,
    check(values) {
      checkScopes(values, 'create', true)
      controlsOf(values, 'create')
    },
    async run({ kw, actor, values, io, json, database }) {
      const result = await kw.createKey(actor, {
        name: values.name as string,
        // --unrestricted sends no scopes: the core's key without scopes is the unrestricted one.
        scopes: values.unrestricted === true ? undefined : list(values.scopes as string),
        projectId: values.project,
        environment: values.environment as 'live' | 'test' | undefined,
        expiresInSeconds: values['expires-in'] === undefined ? undefined : wholeNumber(values['expires-in'], '--expires-in'),
        ...controlsOf(values, 'create'),
      })
      if (!result.ok) return refuse(io, json, result.error)
      const created = toCreatedObject(result.value)
      const { key, ...object } = created
      if (json) return printJson(io, created)
      io.stdout(
        [
          `Created ${object.id} "${object.name}" for tenant ${object.tenant_id} in ${redact(database)}.`,
          '',
          `  ${key}`,
          '',
          'This is the only time the secret is shown: keyward keeps only its hash. Store it now.',
          '',
          keyDetails(object),
          '',
        ].join('\n'),
      )
      return EXIT.ok
    },
  },
  list: {
    summary: 'List the keys of a tenant, newest first',
    usage:
      'keyward list --tenant <tenant> [--status active|expired|revoked|disabled|rotating|rotated] [--project <project>] [--environment live|test] [--limit 1-100] [--cursor <cursor>]',
    example: 'keyward list --tenant acme --status active --json',
    options: ['tenant', 'status', 'project', 'environment', 'limit', 'cursor'],
    required: ['tenant'],
    takesId: false,
    createsDatabase: false,
    async run({ kw, actor, values, io, json }) {
      const result = await kw.listKeys(actor, {
        status: values.status as KeyStatus | undefined,
        projectId: values.project,
        environment: values.environment as 'live' | 'test' | undefined,
        limit: values.limit === undefined ? undefined : wholeNumber(values.limit, '--limit'),
        cursor: values.cursor,
      })
      if (!result.ok) return refuse(io, json, result.error)
      const { nextCursor } = result.value
      const items = result.value.items.map(toKeyObject)
      if (json) return printJson(io, { keys: items, next_cursor: nextCursor })
      if (items.length === 0) {
        io.stdout(`No keys for tenant ${actor.tenantId}${values.status === undefined ? '' : ` with status ${values.status}`}.\n`)
        return EXIT.ok
      }
      io.stdout(`${table(KEY_LIST_HEADER, items.map(keyRow))}\n`)
      if (nextCursor !== null) io.stdout(`\nMore keys: repeat with --cursor ${nextCursor}\n`)
      return EXIT.ok
    },
  },
  get: {
    summary: 'Show one key',
    usage: 'keyward get --tenant <tenant> <key-id>',
    example: 'keyward get --tenant acme key_3hVq8bTzK0mN2pXr5sW7yA',
    options: ['tenant'],
    required: ['tenant'],
    takesId: true,
    createsDatabase: false,
    async run({ kw, actor, id, io, json }) {
      const result = await kw.getKey(actor, id)
      if (!result.ok) return refuse(io, json, result.error, id)
      const object = toKeyObject(result.value)
      io.stdout(json ? `${JSON.stringify(object, null, 2)}\n` : `${keyDetails(object)}\n`)
      return EXIT.ok
    },
  },
  update: {
    summary: 'Change a key: its name, scopes, expiry, rate limits, credits, allowed IPs; disable or enable it',
    usage: `keyward update --tenant <tenant> <key-id> [--name <name>] [--scopes a,b | --unrestricted] [--expires-in <seconds> | --no-expiry] ${CONTROLS_USAGE} [--no-rate-limits] [--no-credits] [--any-ip] [--disable | --enable]`,
    example: 'keyward update --tenant acme key_3hVq8bTzK0mN2pXr5sW7yA --rate-limit burst:10/1s --credits 1000 --refill 1000/month',
    options: ['tenant', ...UPDATE_OPTIONS],
    required: ['tenant'],
    takesId: true,
    createsDatabase: false,
    check(values) {
      if (!UPDATE_OPTIONS.some((option) => values[option] !== undefined)) {
        throw new UsageError(`"update" needs something to change: ${UPDATE_OPTIONS.map((option) => `--${option}`).join(', ')}.`, {
          cause: 'update',
        })
      }
      checkScopes(values, 'update', false)
      assertNotBoth(values, UPDATE_PAIRS, 'update')
      if (values.refill !== undefined && values['no-credits'] === true)
        throw new UsageError('give --refill or --no-credits, not both.', { cause: 'update' })
      updateOf(values)
    },
    async run({ kw, actor, id, values, io, json }) {
      const result = await kw.updateKey(actor, id, updateOf(values))
      if (!result.ok) return refuse(io, json, result.error, id)
      const object = toKeyObject(result.value)
      if (json) return printJson(io, object)
      io.stdout(`Updated ${object.id} "${object.name}".\n\n${keyDetails(object)}\n`)
      return EXIT.ok
    },
  },
  revoke: {
    summary: 'Revoke a key; it is rejected from the next request on',
    usage: 'keyward revoke --tenant <tenant> <key-id>',
    example: 'keyward revoke --tenant acme key_3hVq8bTzK0mN2pXr5sW7yA',
    options: ['tenant'],
    required: ['tenant'],
    takesId: true,
    createsDatabase: false,
    async run({ kw, actor, id, io, json }) {
      const result = await kw.revokeKey(actor, id)
      if (!result.ok) return refuse(io, json, result.error, id)
      const key = toKeyObject(result.value)
      if (json) return printJson(io, key)
      io.stdout(`Revoked ${key.id} "${key.name}" (${maskedKey(key)}) at ${when(key.revoked_at)}.\n`)
      return EXIT.ok
    },
  },
  rotate: {
    summary: 'Replace a key with a new secret; the old one works for a grace period',
    usage: 'keyward rotate --tenant <tenant> <key-id> [--grace <seconds>]',
    example: 'keyward rotate --tenant acme key_3hVq8bTzK0mN2pXr5sW7yA --grace 3600',
    options: ['tenant', 'grace'],
    required: ['tenant'],
    takesId: true,
    createsDatabase: false,
    async run({ kw, actor, id, values, io, json }) {
      const gracePeriodSeconds = values.grace === undefined ? undefined : wholeNumber(values.grace, '--grace')
      const result = await kw.rotateKey(actor, id, { gracePeriodSeconds })
      if (!result.ok) return refuse(io, json, result.error, id)
      if (json) return printJson(io, toRotatedObject(result.value))
      const { key, oldKey, newKey } = result.value
      const graceExpiresAt = oldKey.graceExpiresAt ?? newKey.createdAt
      io.stdout(
        [
          `Rotated ${oldKey.id} → ${newKey.id} "${newKey.name}".`,
          '',
          `  ${key}`,
          '',
          'This is the only time the new secret is shown. Store it now.',
          graceExpiresAt.getTime() > newKey.createdAt.getTime()
            ? `The old key keeps working until ${when(graceExpiresAt.toISOString())}.`
            : 'The old key no longer works.',
          '',
        ].join('\n'),
      )
      return EXIT.ok
    },
  },
  usage: {
    summary: 'Request counts of a key, per day',
    usage: 'keyward usage --tenant <tenant> <key-id> [--days 1-90] [--include-predecessors]',
    example: 'keyward usage --tenant acme key_3hVq8bTzK0mN2pXr5sW7yA --days 7',
    options: ['tenant', 'days', 'include-predecessors'],
    required: ['tenant'],
    takesId: true,
    createsDatabase: false,
    async run({ kw, actor, id, values, io, json }) {
      const days = values.days === undefined ? undefined : wholeNumber(values.days, '--days')
      const result = await kw.getUsage(actor, id, { days, includePredecessors: values['include-predecessors'] === true })
      if (!result.ok) return refuse(io, json, result.error, id)
      const usage = toUsageObject(result.value)
      if (json) return printJson(io, usage)
      const summary = details([
        ['key', usage.key_ids.length > 1 ? `${usage.key_id} (and predecessors ${usage.key_ids.slice(1).join(', ')})` : usage.key_id],
        ['name', usage.name],
        ['requests', String(usage.total_requests)],
        ['last used', when(usage.last_used_at)],
      ])
      const series = table(
        ['DAY', 'REQUESTS', 'RATE LIMITED', 'NO CREDITS'],
        usage.daily.map((day) => [day.date, String(day.requests), String(day.rate_limited), String(day.credits_refused)]),
      )
      io.stdout(`${summary}\n\n${series}\n`)
      return EXIT.ok
    },
  },
  events: {
    summary: 'The audit log of a tenant: who did what to which key, newest first',
    usage:
      'keyward events --tenant <tenant> [--key <key-id>] [--type <event type>] [--since <ISO 8601 | 30m | 24h | 7d>] [--limit 1-100] [--cursor <cursor>]',
    example: 'keyward events --tenant acme --since 24h --type api_key.revoked',
    options: ['tenant', 'key', 'type', 'since', 'limit', 'cursor'],
    required: ['tenant'],
    takesId: false,
    createsDatabase: false,
    check(values) {
      if (values.type !== undefined && !(EVENT_TYPES as readonly string[]).includes(values.type)) {
        throw new UsageError(`--type must be one of ${EVENT_TYPES.join(', ')}; got ${JSON.stringify(values.type)}.`, { cause: 'events' })
      }
      if (values.since !== undefined) sinceOf(values.since)
    },
    async run({ kw, actor, values, io, json }) {
      const result = await kw.listEvents(actor, {
        keyId: values.key,
        type: values.type as EventType | undefined,
        since: values.since === undefined ? undefined : sinceOf(values.since),
        limit: values.limit === undefined ? undefined : wholeNumber(values.limit, '--limit'),
        cursor: values.cursor,
      })
      if (!result.ok) return refuse(io, json, result.error)
      const { nextCursor } = result.value
      const items = result.value.items.map(toEventObject)
      if (json) return printJson(io, { events: items, next_cursor: nextCursor })
      if (items.length === 0) {
        io.stdout(`No events for tenant ${actor.tenantId}.\n`)
        return EXIT.ok
      }
      io.stdout(`${table(EVENT_LIST_HEADER, items.map(eventRow))}\n`)
      if (nextCursor !== null) io.stdout(`\nMore events: repeat with --cursor ${nextCursor}\n`)
      return EXIT.ok
    },
  },
}

function printJson(io: CommandIo, value: unknown): number {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`)
  return EXIT.ok
}

/**
 * Prints a refused call: validation errors list each field by the flag that sets it; an
 * unavailable store is named by its own reason first (`connect ECONNREFUSED 127.0.0.1:5432`).
 */
function refuse(io: CommandIo, json: boolean, error: KeywardError, id?: string): number {
  const code = error.code === 'validation_error' ? EXIT.usage : EXIT.failed
  const reason = error.code === 'store_unavailable' ? io.storeFailure?.() : undefined
  if (json) {
    io.stderr(`${JSON.stringify(reason === undefined ? error : { ...error, detail: reason })}\n`)
    return code
  }
  let message = error.detail
  if (error.code === 'validation_error' && error.errors !== undefined && error.errors.length > 0) message = 'invalid input:'
  if (error.code === 'not_found' && id !== undefined) message = `no key "${id}" in this tenant.`
  const lines = reason === undefined ? [`keyward: ${message}`] : [`keyward: ${reason}`, `keyward: ${message}`]
  for (const field of error.errors ?? []) lines.push(`  ${flagOf(field.field)}: ${field.message}`)
  io.stderr(`${lines.join('\n')}\n`)
  return code
}
