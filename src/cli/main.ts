import { existsSync, readFileSync } from 'node:fs'
import { type ParseArgsConfig, parseArgs } from 'node:util'
import { EVENT_TYPES, type EventType } from '../core/audit/types.js'
import type { KeywardError } from '../core/errors.js'
import { PREFIX_PATTERN } from '../core/key-format.js'
import type { Keyward } from '../core/keyward.js'
import { tenantIdSchema } from '../core/schemas.js'
import { type KeyStore, StoreUnavailableError } from '../core/store.js'
import type { Actor, KeyStatus } from '../core/types.js'
import { toCreatedObject, toEventObject, toKeyObject, toRotatedObject, toUsageObject } from '../http/serialize.js'
import { keyward } from '../index.js'
import { isPostgresUrl, openStore, sqlitePathFromUrl } from '../store/open.js'
import { details, EVENT_LIST_HEADER, eventRow, KEY_LIST_HEADER, keyDetails, keyRow, maskedKey, table, when } from './format.js'

/** Where the CLI writes and what it reads from its environment; the binary passes `process`'s. */
export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
  env: Record<string, string | undefined>
}

/**
 * Exit codes: 0 done; 1 keyward refused or failed (no such key, already rotated, database
 * unreachable); 2 the command line or the configuration is wrong (unknown command or option, a flag
 * given twice, a field that fails validation, a database that does not exist, a bad prefix, `pg`
 * not installed) — retrying the same command cannot succeed.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const

const OPTIONS = {
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
  status: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  grace: { type: 'string' },
  days: { type: 'string' },
  'include-predecessors': { type: 'boolean' },
  key: { type: 'string' },
  type: { type: 'string' },
  since: { type: 'string' },
} as const satisfies NonNullable<ParseArgsConfig['options']>

type OptionName = keyof typeof OPTIONS
type Values = { [K in OptionName]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string }

const GLOBAL_OPTIONS: readonly OptionName[] = ['database', 'prefix', 'json', 'help']

/** Options parsed by `wholeNumber`; checked before the database is opened. */
const NUMBER_OPTIONS: readonly OptionName[] = ['expires-in', 'limit', 'grace', 'days']

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
}

/** What a command writes to, plus the store's own reason for the last failure, if any. */
interface CommandIo extends CliIo {
  storeFailure?: () => string | undefined
}

interface Context {
  kw: Keyward
  actor: Actor
  values: Values
  id: string
  io: CommandIo
  json: boolean
  database: string
}

interface Command {
  summary: string
  usage: string
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

/** Exit 2: the command line is wrong. `cause` names the command whose help to point to. */
class UsageError extends Error {}

/** Exit 2 too, but the set-up is wrong (a database that is not there, `pg` missing): no usage hint. */
class SetupError extends UsageError {}

const COMMANDS: Record<string, Command> = {
  create: {
    summary: 'Create a key (e.g. the first admin key of a tenant); prints its secret once',
    usage:
      'keyward create --tenant <tenant> --name <name> (--scopes a,b | --unrestricted) [--project <project>] [--environment live|test] [--expires-in <seconds>]',
    options: ['tenant', 'name', 'scopes', 'unrestricted', 'project', 'environment', 'expires-in'],
    required: ['tenant', 'name'],
    takesId: false,
    createsDatabase: true,
    check(values) {
      // A key without scopes may do everything in its tenant, so it must be asked for by name: an
      // empty `--scopes "$SCOPES"` in a script or a forgotten flag must not mint one.
      const unrestricted = values.unrestricted === true
      if (unrestricted && values.scopes !== undefined) {
        throw new UsageError('give --scopes or --unrestricted, not both.', { cause: 'create' })
      }
      if (!unrestricted && values.scopes === undefined) {
        throw new UsageError(
          '"create" needs --scopes a,b (what the key may do) or --unrestricted (a key that may do everything in its tenant).',
          { cause: 'create' },
        )
      }
      if (!unrestricted && list(values.scopes as string).length === 0) {
        throw new UsageError(
          `--scopes lists no scope (got ${JSON.stringify(values.scopes)}). Name at least one, e.g. --scopes orders:read, or pass --unrestricted for a key that may do everything in its tenant.`,
          { cause: 'create' },
        )
      }
    },
    async run({ kw, actor, values, io, json, database }) {
      const result = await kw.createKey(actor, {
        name: values.name as string,
        // --unrestricted sends no scopes: the core's key without scopes is the unrestricted one.
        scopes: values.unrestricted === true ? undefined : list(values.scopes as string),
        projectId: values.project,
        environment: values.environment as 'live' | 'test' | undefined,
        expiresInSeconds: values['expires-in'] === undefined ? undefined : wholeNumber(values['expires-in'], '--expires-in'),
      })
      if (!result.ok) return refuse(io, json, result.error)
      const created = toCreatedObject(result.value)
      const { key, ...object } = created
      if (json) {
        io.stdout(`${JSON.stringify(created, null, 2)}\n`)
        return EXIT.ok
      }
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
      'keyward list --tenant <tenant> [--status active|expired|revoked|rotating|rotated] [--project <project>] [--environment live|test] [--limit 1-100] [--cursor <cursor>]',
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
      if (json) {
        io.stdout(`${JSON.stringify({ keys: items, next_cursor: nextCursor }, null, 2)}\n`)
        return EXIT.ok
      }
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
  revoke: {
    summary: 'Revoke a key; it is rejected from the next request on',
    usage: 'keyward revoke --tenant <tenant> <key-id>',
    options: ['tenant'],
    required: ['tenant'],
    takesId: true,
    createsDatabase: false,
    async run({ kw, actor, id, io, json }) {
      const result = await kw.revokeKey(actor, id)
      if (!result.ok) return refuse(io, json, result.error, id)
      const key = toKeyObject(result.value)
      io.stdout(
        json ? `${JSON.stringify(key, null, 2)}\n` : `Revoked ${key.id} "${key.name}" (${maskedKey(key)}) at ${when(key.revoked_at)}.\n`,
      )
      return EXIT.ok
    },
  },
  rotate: {
    summary: 'Replace a key with a new secret; the old one works for a grace period',
    usage: 'keyward rotate --tenant <tenant> <key-id> [--grace <seconds>]',
    options: ['tenant', 'grace'],
    required: ['tenant'],
    takesId: true,
    createsDatabase: false,
    async run({ kw, actor, id, values, io, json }) {
      const gracePeriodSeconds = values.grace === undefined ? undefined : wholeNumber(values.grace, '--grace')
      const result = await kw.rotateKey(actor, id, { gracePeriodSeconds })
      if (!result.ok) return refuse(io, json, result.error, id)
      const { key, oldKey, newKey } = result.value
      if (json) {
        io.stdout(`${JSON.stringify(toRotatedObject(result.value), null, 2)}\n`)
        return EXIT.ok
      }
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
    options: ['tenant', 'days', 'include-predecessors'],
    required: ['tenant'],
    takesId: true,
    createsDatabase: false,
    async run({ kw, actor, id, values, io, json }) {
      const days = values.days === undefined ? undefined : wholeNumber(values.days, '--days')
      const result = await kw.getUsage(actor, id, { days, includePredecessors: values['include-predecessors'] === true })
      if (!result.ok) return refuse(io, json, result.error, id)
      const usage = toUsageObject(result.value)
      if (json) {
        io.stdout(`${JSON.stringify(usage, null, 2)}\n`)
        return EXIT.ok
      }
      const summary = details([
        ['key', usage.key_ids.length > 1 ? `${usage.key_id} (and predecessors ${usage.key_ids.slice(1).join(', ')})` : usage.key_id],
        ['name', usage.name],
        ['requests', String(usage.total_requests)],
        ['last used', when(usage.last_used_at)],
      ])
      const series = table(
        ['DAY', 'REQUESTS'],
        usage.daily.map((day) => [day.date, String(day.requests)]),
      )
      io.stdout(`${summary}\n\n${series}\n`)
      return EXIT.ok
    },
  },
  events: {
    summary: 'The audit log of a tenant: who did what to which key, newest first',
    usage:
      'keyward events --tenant <tenant> [--key <key-id>] [--type <event type>] [--since <ISO 8601 | 30m | 24h | 7d>] [--limit 1-100] [--cursor <cursor>]',
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
      if (json) {
        io.stdout(`${JSON.stringify({ events: items, next_cursor: nextCursor }, null, 2)}\n`)
        return EXIT.ok
      }
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

/** `--since`: an ISO 8601 instant, or a span back from now (`30m`, `24h`, `7d`). */
function sinceOf(value: string): Date {
  const span = /^(\d{1,6})([mhd])$/.exec(value)
  if (span !== null) {
    const unitMs = { m: 60_000, h: 3_600_000, d: 86_400_000 }[span[2] as 'm' | 'h' | 'd']
    return new Date(Date.now() - Number(span[1]) * unitMs)
  }
  const instant = new Date(value)
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(instant.getTime())) {
    throw new UsageError(`--since must be an ISO 8601 instant (2026-03-01T12:00:00Z) or a span such as 24h or 7d, got "${value}".`, {
      cause: 'events',
    })
  }
  return instant
}

/**
 * Runs one command line (without `node` and the script) and resolves to the exit code. Never
 * throws and never prints a stack trace: every failure becomes a one-line message on stderr.
 *
 * @example
 * const code = await runCli(['list', '--tenant', 'acme', '--json'], { stdout: console.log, stderr: console.error, env: process.env })
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let json = argv.includes('--json')
  try {
    const { values, positionals, tokens } = parseArgs({
      args: [...argv],
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
      tokens: true,
    })
    json = values.json === true
    assertNoRepeatedOption(tokens)
    const [name, ...rest] = positionals
    if (values.version === true && name === undefined) {
      io.stdout(`${packageVersion()}\n`)
      return EXIT.ok
    }
    if (name === undefined || name === 'help') {
      if (rest.length > 1) throw new UsageError('"help" takes one command name, e.g. keyward help create.', { cause: 'help' })
      const topic = name === 'help' ? rest[0] : undefined
      if (topic !== undefined && topic !== 'help' && !Object.hasOwn(COMMANDS, topic)) throw unknownCommand(topic)
      const text = topic === undefined ? overview() : topic === 'help' ? HELP_HELP : commandHelp(topic, COMMANDS[topic] as Command)
      // A bare `keyward` is a mistake in a script: help on stderr and a non-zero exit.
      if (name === undefined && values.help !== true) {
        io.stderr(text)
        return EXIT.usage
      }
      io.stdout(text)
      return EXIT.ok
    }
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined
    if (command === undefined) throw unknownCommand(name)
    if (values.help === true) {
      io.stdout(commandHelp(name, command))
      return EXIT.ok
    }
    for (const token of tokens) {
      if (
        token.kind === 'option' &&
        !GLOBAL_OPTIONS.includes(token.name as OptionName) &&
        !command.options.includes(token.name as OptionName)
      ) {
        throw new UsageError(`"${name}" does not take ${token.rawName}.`, { cause: name })
      }
    }
    for (const option of command.required) {
      if (values[option] === undefined) throw new UsageError(`"${name}" needs --${option}.`, { cause: name })
    }
    command.check?.(values)
    for (const token of tokens) {
      // `--database "$UNSET_VARIABLE"` would otherwise open a temporary SQLite database and lose the key.
      if (token.kind === 'option' && token.value !== undefined && token.value.trim() === '') {
        throw new UsageError(`--${token.name} is empty.`, { cause: name })
      }
    }
    if (command.takesId && rest.length !== 1)
      throw new UsageError(`"${name}" takes one key id, e.g. keyward ${name} --tenant acme key_...`, { cause: name })
    if (!command.takesId && rest.length > 0) throw new UsageError(`"${name}" takes no argument "${rest[0]}".`, { cause: name })

    const tenant = tenantIdSchema.safeParse(values.tenant)
    if (!tenant.success) throw new UsageError(`--tenant: ${tenant.error.issues[0]?.message ?? 'is not valid'}`, { cause: name })
    // Every field is checked before the database is touched: a typo must not create a database file.
    for (const option of NUMBER_OPTIONS) {
      const value = values[option]
      if (typeof value !== 'string') continue
      try {
        wholeNumber(value, `--${option}`)
      } catch (error) {
        throw new UsageError((error as Error).message, { cause: name })
      }
    }
    if (values.prefix !== undefined && !PREFIX_PATTERN.test(values.prefix)) {
      const got = JSON.stringify(values.prefix)
      throw new UsageError(`--prefix must be 1-12 characters of [a-z0-9] (the prefix your app configures), got ${got}.`, { cause: name })
    }
    const pepper = io.env.KEYWARD_PEPPER
    if (pepper === '') throw new SetupError('KEYWARD_PEPPER is set but empty: set it to the value your app uses, or unset it.')

    const database = databaseOf(values.database, io.env)
    if (!command.createsDatabase) await assertDatabaseExists(database)
    const store = await openDatabase(database)
    const failures: string[] = []
    let kw: Keyward
    try {
      kw = keyward({
        store,
        prefix: values.prefix,
        pepper,
        // The CLI runs one call and exits: no cache to keep in sync, nothing to verify.
        cache: false,
        env: io.env,
        onError: (error) => failures.push(error instanceof Error ? error.message : String(error)),
      })
    } catch (error) {
      await store.close()
      throw error
    }
    try {
      // The audit log names the operating-system user who ran the command.
      const actor: Actor = { tenantId: tenant.data, type: 'cli', subject: io.env.USER ?? io.env.LOGNAME ?? io.env.USERNAME ?? null }
      // The store's own reason (connection refused) says more than "unavailable"; `refuse` prints it first.
      const storeFailure = () => {
        const reason = failures.at(-1)?.replace(/^(keyward: )+/, '')
        return reason === undefined ? undefined : redactText(reason, database)
      }
      return await command.run({ kw, actor, values, id: rest[0] ?? '', io: { ...io, storeFailure }, json, database })
    } finally {
      await kw.close()
    }
  } catch (error) {
    if (error instanceof UsageError || isParseArgsError(error)) {
      const message = (error as Error).message
      const hint = error instanceof UsageError && typeof error.cause === 'string' ? ` ${error.cause}` : ''
      if (json) io.stderr(`${JSON.stringify({ code: 'usage_error', detail: message })}\n`)
      else if (error instanceof SetupError) io.stderr(`keyward: ${message}\n`)
      else io.stderr(`keyward: ${message}\nRun "keyward help${hint}" for usage.\n`)
      return EXIT.usage
    }
    // Anything else is a bug or an environment problem; a message, never a stack trace.
    const message = error instanceof Error ? error.message : String(error)
    if (json) io.stderr(`${JSON.stringify({ code: 'internal_error', detail: message })}\n`)
    else io.stderr(`keyward: ${message}\n`)
    return EXIT.failed
  }
}

function unknownCommand(name: string): UsageError {
  return new UsageError(`unknown command "${name}". Commands: ${Object.keys(COMMANDS).join(', ')}, help.`)
}

/** Last-wins would let `--scopes a --scopes b` silently drop `a`; a repeated flag is a mistake. */
function assertNoRepeatedOption(tokens: readonly { kind: string; name?: string }[]): void {
  const seen = new Set<string>()
  for (const token of tokens) {
    if (token.kind !== 'option' || token.name === undefined) continue
    if (seen.has(token.name)) {
      const hint = token.name === 'scopes' ? ' For several scopes give one comma-separated list: --scopes a,b.' : ''
      throw new UsageError(`--${token.name} is given more than once; give it once.${hint}`)
    }
    seen.add(token.name)
  }
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

function flagOf(field: string): string {
  const [head, ...rest] = field.split('.')
  const flag = FLAG_OF_FIELD[head ?? ''] ?? field
  return rest.length > 0 && /^\d+$/.test(rest[0] ?? '') ? `${flag} (item ${Number(rest[0]) + 1})` : flag
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
}

function wholeNumber(value: string, flag: string): number {
  // `--grace=-1` is a whole number with the wrong sign, not "not a number": say which.
  if (/^-\d+$/.test(value)) throw new UsageError(`${flag} must not be negative, got "${value}".`)
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number, got "${value}".`)
  if (value.length > 15) throw new UsageError(`${flag} is too large, got "${value}".`)
  return Number(value)
}

const SQLITE_OR_POSTGRES = 'an SQLite path (./keyward.db, file:keyward.db) or a postgres:// URL'

/**
 * The database the command names (`--database`, else `KEYWARD_DATABASE_URL`, else `./keyward.db`),
 * refused when its form cannot be right. Messages never repeat a URL that may hold a password.
 */
function databaseOf(flag: string | undefined, env: CliIo['env']): string {
  const fromEnv = env.KEYWARD_DATABASE_URL
  if (flag === undefined && fromEnv !== undefined && fromEnv.trim() === '') {
    throw new SetupError(`KEYWARD_DATABASE_URL is set but empty: set it to ${SQLITE_OR_POSTGRES}, or pass --database.`)
  }
  const database = flag ?? fromEnv ?? './keyward.db'
  const source = flag === undefined ? 'KEYWARD_DATABASE_URL' : '--database'
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(database)?.[1]?.toLowerCase()
  if (scheme === 'postgres' || scheme === 'postgresql') {
    if (!URL.canParse(database)) throw new UsageError(`${source} is not a valid postgres:// URL.`)
  } else if (scheme !== undefined && scheme !== 'file' && scheme !== 'sqlite') {
    throw new UsageError(`${source} has the scheme "${scheme}:"; give ${SQLITE_OR_POSTGRES}.`)
  }
  return database
}

/** A typo in `--database` must not silently create an empty SQLite file and report "no keys". */
async function assertDatabaseExists(database: string): Promise<void> {
  if (isPostgresUrl(database) || database === ':memory:') return
  if (!existsSync(sqlitePathFromUrl(database))) {
    throw new SetupError(`no database at ${database}. Pass --database or set KEYWARD_DATABASE_URL (${SQLITE_OR_POSTGRES}).`)
  }
}

/**
 * Opens the store. A failure here is the set-up's (no such database, `pg` not installed, a
 * directory that is not there), not an outage — an unreachable server still opens and fails on
 * first use — so it is exit 2 with the driver's reason on the first line.
 */
async function openDatabase(database: string): Promise<KeyStore> {
  try {
    return await openStore(database)
  } catch (error) {
    if (error instanceof StoreUnavailableError) throw error
    if (isPostgresUrl(database) && isMissingPackage(error, 'pg')) {
      throw new SetupError('PostgreSQL support needs the pg package: npm install pg', { cause: error })
    }
    const reason = redactText(innermostMessage(error), database)
    if (!isPostgresUrl(database)) throw new SetupError(`cannot open the SQLite database at ${database}: ${reason}`, { cause: error })
    const { hostname, port } = new URL(database)
    throw new SetupError(hostname === '' ? reason : `${reason} on ${hostname}:${port === '' ? '5432' : port}`, { cause: error })
  }
}

function isMissingPackage(error: unknown, name: string): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code === 'ERR_MODULE_NOT_FOUND' && error instanceof Error && error.message.includes(`Cannot find package '${name}'`)
}

/** A wrapped driver error's own message (drizzle's wrapper repeats the whole query instead). */
function innermostMessage(error: unknown): string {
  let current = error
  for (let depth = 0; depth < 10 && current instanceof Error && current.cause instanceof Error; depth++) current = current.cause
  return current instanceof Error ? current.message : String(current)
}

/** A PostgreSQL URL without its password, for messages. */
function redact(database: string): string {
  if (!isPostgresUrl(database)) return database
  try {
    const url = new URL(database)
    if (url.password !== '') url.password = '***'
    return url.toString()
  } catch {
    return 'the PostgreSQL database'
  }
}

function redactText(text: string, database: string): string {
  return text.split(database).join(redact(database))
}

function isParseArgsError(error: unknown): error is Error {
  const code = error instanceof Error ? (error as Error & { code?: unknown }).code : undefined
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')
}

function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return manifest.version
}

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length))
  return [
    'keyward: manage API keys straight against the database.',
    '',
    'Usage: keyward <command> [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`),
    `  ${'help'.padEnd(width)}  Show help for a command: keyward help create`,
    '',
    GLOBAL_HELP,
    '',
  ].join('\n')
}

const HELP_HELP = [
  'Show the list of commands, or the help of one.',
  '',
  'Usage: keyward help [<command>]   (the same as: keyward <command> --help)',
  '',
  `Commands: ${Object.keys(COMMANDS).join(', ')}, help.`,
  '',
  'Example: keyward help create',
  '',
].join('\n')

function commandHelp(name: string, command: Command): string {
  return [
    `${command.summary}.`,
    '',
    `Usage: ${command.usage}`,
    '',
    GLOBAL_HELP,
    '',
    `Example: ${EXAMPLES[name] ?? command.usage}`,
    '',
  ].join('\n')
}

const GLOBAL_HELP = [
  'Options for every command:',
  '  --database <url>   SQLite path or postgres:// URL (default: $KEYWARD_DATABASE_URL, else ./keyward.db)',
  '  --prefix <prefix>  Key prefix your app configures (default: sk)',
  '  --json             Print JSON (the HTTP API shapes) instead of tables',
  '  -h, --help         Show help',
  '',
  'KEYWARD_PEPPER is read as the app reads it: set it to the same value, or created keys will not verify.',
  'Exit codes: 0 done; 1 refused or failed (e.g. no such key, database unreachable); 2 a bad command line,',
  'an invalid field or a bad set-up (no such database, pg not installed): retrying cannot help.',
].join('\n')

const EXAMPLES: Record<string, string> = {
  create: 'keyward create --tenant acme --name "Acme admin" --unrestricted --database ./keyward.db',
  list: 'keyward list --tenant acme --status active --json',
  get: 'keyward get --tenant acme key_3hVq8bTzK0mN2pXr5sW7yA',
  revoke: 'keyward revoke --tenant acme key_3hVq8bTzK0mN2pXr5sW7yA',
  rotate: 'keyward rotate --tenant acme key_3hVq8bTzK0mN2pXr5sW7yA --grace 3600',
  usage: 'keyward usage --tenant acme key_3hVq8bTzK0mN2pXr5sW7yA --days 7',
  events: 'keyward events --tenant acme --since 24h --type api_key.revoked',
}
