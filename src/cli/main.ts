import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { PREFIX_PATTERN } from '../core/key-format.js'
import type { Keyward } from '../core/keyward.js'
import { tenantIdSchema } from '../core/schemas.js'
import type { Actor } from '../core/types.js'
import { keyward } from '../index.js'
import { COMMANDS, type Command } from './commands.js'
import { assertDatabaseExists, databaseOf, openDatabase, redactText } from './database.js'
import { commandHelp, HELP_HELP, overview } from './help.js'
import { EXIT, GLOBAL_OPTIONS, NUMBER_OPTIONS, OPTIONS, type OptionName, SetupError, UsageError, wholeNumber } from './options.js'

/**
 * The `keyward` command line: parses it, checks every option before the database is touched, opens
 * the store and runs one command (`commands.ts`). Options and their parsing live in `options.ts`,
 * the database in `database.ts`, help texts in `help.ts`.
 */

export { EXIT } from './options.js'

/** Where the CLI writes and what it reads from its environment; the binary passes `process`'s. */
export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
  env: Record<string, string | undefined>
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
      const text = topic === undefined ? overview() : topic === 'help' ? HELP_HELP : commandHelp(COMMANDS[topic] as Command)
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
      io.stdout(commandHelp(command))
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

function isParseArgsError(error: unknown): error is Error {
  const code = error instanceof Error ? (error as Error & { code?: unknown }).code : undefined
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')
}

function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return manifest.version
}
