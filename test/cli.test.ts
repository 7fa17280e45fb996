import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { KeyObject } from '../src/http/serialize.js'
import { keyward } from '../src/index.js'
import { ensureBuilt, REPO_ROOT } from './helpers/build.js'
import { cli, type Run } from './helpers/cli.js'
import { freshPostgresDatabase, hasPostgres, PG_ADMIN_URL } from './helpers/postgres.js'
import { tempSqlitePath } from './helpers/sqlite.js'

/**
 * These tests run the real binary (`node dist/cli/index.js`), as `npx keyward` would, against a
 * real database file, and read only what it prints and its exit code.
 */

const SECRET = /\bsk_(live|test)_[0-9A-Za-z]{20,}\b/g

/** What a person reads first: the first line of stderr. */
function firstLine(run: Run): string {
  return run.stderr.split('\n')[0] ?? ''
}

/**
 * A copy of the built package in a temporary directory whose node_modules holds every package of
 * this repository except pg — an app that installed keyward but not pg. dist/ is copied, not
 * linked: Node resolves a module's imports from its real path, which would find this repo's pg.
 */
function installWithoutPg(): string {
  const root = mkdtempSync(join(tmpdir(), 'keyward-no-pg-'))
  cpSync(join(REPO_ROOT, 'dist'), join(root, 'dist'), { recursive: true })
  cpSync(join(REPO_ROOT, 'drizzle'), join(root, 'drizzle'), { recursive: true })
  copyFileSync(join(REPO_ROOT, 'package.json'), join(root, 'package.json'))
  mkdirSync(join(root, 'node_modules'))
  for (const name of readdirSync(join(REPO_ROOT, 'node_modules'))) {
    if (name !== 'pg') symlinkSync(join(REPO_ROOT, 'node_modules', name), join(root, 'node_modules', name))
  }
  return root
}

/** A URL on the test server, with a password the CLI must never print. */
function postgresUrl(databaseName: string): { url: string; password: string } {
  const url = new URL(PG_ADMIN_URL)
  // The test server trusts local connections and ignores a password; a server that needs one has it in the URL.
  if (url.password === '') url.password = 'hunter2'
  url.pathname = `/${databaseName}`
  return { url: url.toString(), password: decodeURIComponent(url.password) }
}

function secretsIn(text: string): string[] {
  return text.match(SECRET) ?? []
}

/** The one secret a create or rotate printed. */
function onlySecret(run: Run): string {
  const found = secretsIn(run.stdout)
  expect(found).toHaveLength(1)
  return found[0] as string
}

/** Verifies keys in-process against the same database, as the host app would. */
async function verdict(database: string, key: string) {
  const kw = keyward({ database, cache: false })
  try {
    return await kw.verify(key)
  } finally {
    await kw.close()
  }
}

beforeAll(async () => {
  await ensureBuilt()
}, 150_000)

function lifecycleSuite(label: string, freshDatabase: () => Promise<string>) {
  describe(`the keyward CLI on ${label}`, () => {
    it('bootstraps a tenant admin key, lists it, rotates it and revokes the replacement', async () => {
      const database = await freshDatabase()
      const db = ['--database', database]

      const created = await cli(['create', '--tenant', 'acme', '--name', 'Acme admin', '--unrestricted', ...db])
      expect(created).toMatchObject({ code: 0, stderr: '' })
      expect(created.stdout).toContain('only time the secret is shown')
      const secret = onlySecret(created)
      expect(await verdict(database, secret)).toMatchObject({ ok: true, key: { tenantId: 'acme', name: 'Acme admin', scopes: [] } })

      const table = await cli(['list', '--tenant', 'acme', ...db])
      expect(table.code).toBe(0)
      const [header, row, ...more] = table.stdout.trimEnd().split('\n')
      expect(header).toMatch(/^ID\s+NAME\s+KEY\s+ENV\s+SCOPES\s+STATUS\s+CREATED/)
      expect(row).toMatch(/^key_\w+\s+Acme admin\s+sk_live_\w{4}…\w{4}\s+live\s+\(all\)\s+active\s/)
      expect(more).toEqual([])
      expect(secretsIn(table.stdout)).toEqual([])

      const listed = await cli(['list', '--tenant', 'acme', '--json', ...db])
      expect(listed.code).toBe(0)
      const page = JSON.parse(listed.stdout) as { keys: KeyObject[]; next_cursor: string | null }
      expect(page.next_cursor).toBeNull()
      expect(page.keys).toHaveLength(1)
      const original = page.keys[0] as KeyObject
      expect(original).toMatchObject({ tenant_id: 'acme', name: 'Acme admin', status: 'active' })
      expect(original).not.toHaveProperty('key')
      expect(listed.stdout).not.toMatch(/key_hash|sk_live_\w{20,}/)

      const rotated = await cli(['rotate', '--tenant', 'acme', original.id, '--grace', '60', ...db])
      expect(rotated.code).toBe(0)
      const newSecret = onlySecret(rotated)
      expect(newSecret).not.toBe(secret)
      expect(rotated.stdout).toMatch(/old key keeps working until/)
      expect(await verdict(database, newSecret)).toMatchObject({ ok: true })
      // Within the grace period the old key still works.
      expect(await verdict(database, secret)).toMatchObject({ ok: true })

      const afterRotate = JSON.parse((await cli(['list', '--tenant', 'acme', '--json', ...db])).stdout) as { keys: KeyObject[] }
      const replacement = afterRotate.keys.find((key) => key.id !== original.id) as KeyObject
      expect(afterRotate.keys.find((key) => key.id === original.id)).toMatchObject({
        status: 'rotating',
        replaced_by_key_id: replacement.id,
      })
      expect(replacement).toMatchObject({ status: 'active', rotated_from_key_id: original.id })

      const revoked = await cli(['revoke', '--tenant', 'acme', replacement.id, ...db])
      expect(revoked.code).toBe(0)
      expect(revoked.stdout).toMatch(new RegExp(`^Revoked ${replacement.id} "Acme admin"`))
      expect(secretsIn(revoked.stdout)).toEqual([])
      expect(await verdict(database, newSecret)).toEqual({ ok: false, code: 'api_key_revoked' })

      const onlyRevoked = JSON.parse((await cli(['list', '--tenant', 'acme', '--status', 'revoked', '--json', ...db])).stdout) as {
        keys: KeyObject[]
      }
      expect(onlyRevoked.keys.map((key) => [key.id, key.status])).toEqual([[replacement.id, 'revoked']])
      const revokedRow = (await cli(['list', '--tenant', 'acme', ...db])).stdout.split('\n').find((line) => line.startsWith(replacement.id))
      expect(revokedRow).toMatch(/\srevoked\s/)
    })
  })
}

lifecycleSuite('SQLite', async () => tempSqlitePath('cli.db'))
if (hasPostgres) lifecycleSuite('PostgreSQL', freshPostgresDatabase)

describe('the keyward CLI', () => {
  it('creates a scoped, project-bound test key that expires, and prints it as JSON for scripts', async () => {
    const database = tempSqlitePath('cli.db')
    const run = await cli([
      'create',
      '--tenant',
      'acme',
      '--name',
      'CI runner',
      '--scopes',
      'orders:read, orders:write',
      '--project',
      'proj_web',
      '--environment',
      'test',
      '--expires-in',
      '3600',
      '--json',
      '--database',
      database,
    ])
    expect(run).toMatchObject({ code: 0, stderr: '' })
    const body = JSON.parse(run.stdout) as KeyObject & { key: string }
    expect(body).toMatchObject({ name: 'CI runner', scopes: ['orders:read', 'orders:write'], project_id: 'proj_web', environment: 'test' })
    expect(body.key).toMatch(/^sk_test_/)
    expect(Date.parse(body.expires_at as string) - Date.parse(body.created_at)).toBe(3_600_000)
  })

  it('shows one key with get and its usage with usage, without its secret', async () => {
    const database = tempSqlitePath('cli.db')
    const created = JSON.parse(
      (await cli(['create', '--tenant', 'acme', '--name', 'Reporting', '--unrestricted', '--json', '--database', database])).stdout,
    ) as KeyObject & {
      key: string
    }
    const kw = keyward({ database })
    await kw.verify(created.key)
    await kw.verify(created.key)
    await kw.close()

    const shown = await cli(['get', '--tenant', 'acme', created.id, '--database', database])
    expect(shown.code).toBe(0)
    expect(shown.stdout).toMatch(/^id\s+key_\w+$/m)
    expect(shown.stdout).toMatch(/^name\s+Reporting$/m)
    expect(shown.stdout).toMatch(/^last used\s+\d{4}-\d{2}-\d{2} \d{2}:\d{2}Z$/m)
    const usage = await cli(['usage', '--tenant', 'acme', created.id, '--days', '3', '--json', '--database', database])
    expect(usage.code).toBe(0)
    expect(JSON.parse(usage.stdout)).toMatchObject({ key_id: created.id, total_requests: 2, daily: [{}, {}, { requests: 2 }] })
    const usageTable = await cli(['usage', '--tenant', 'acme', created.id, '--database', database])
    expect(usageTable.stdout).toMatch(/^requests\s+2$/m)
    for (const run of [shown, usage, usageTable]) expect(secretsIn(run.stdout + run.stderr)).toEqual([])
  })

  it('does not show one tenant’s key to another tenant', async () => {
    const database = tempSqlitePath('cli.db')
    const created = JSON.parse(
      (await cli(['create', '--tenant', 'acme', '--name', 'A', '--unrestricted', '--json', '--database', database])).stdout,
    ) as KeyObject
    const run = await cli(['revoke', '--tenant', 'globex', created.id, '--database', database])
    expect(run.code).toBe(1)
    expect(run.stderr).toBe(`keyward: no key "${created.id}" in this tenant.\n`)
    expect((await cli(['get', '--tenant', 'acme', created.id, '--json', '--database', database])).stdout).toContain('"status": "active"')
  })

  it('reads the database from KEYWARD_DATABASE_URL when --database is not given', async () => {
    const database = tempSqlitePath('cli.db')
    const env = { KEYWARD_DATABASE_URL: database }
    expect((await cli(['create', '--tenant', 'acme', '--name', 'From env', '--unrestricted'], env)).code).toBe(0)
    expect(existsSync(database)).toBe(true)
    expect((await cli(['list', '--tenant', 'acme'], env)).stdout).toContain('From env')
  })

  it('prints help for every command, as keyward help <command> and keyward <command> --help, and exits 0', async () => {
    const overview = await cli(['help'])
    expect(overview.code).toBe(0)
    for (const command of ['create', 'list', 'get', 'revoke', 'rotate', 'usage']) {
      expect(overview.stdout).toMatch(new RegExp(`^  ${command}\\s`, 'm'))
      for (const args of [
        [command, '--help'],
        ['help', command],
      ]) {
        const help = await cli(args)
        expect(help).toMatchObject({ code: 0, stderr: '' })
        expect(help.stdout).toContain(`Usage: keyward ${command}`)
      }
    }
  })

  it('explains help itself with keyward help help', async () => {
    const help = await cli(['help', 'help'])
    expect(help).toMatchObject({ code: 0, stderr: '' })
    expect(help.stdout).toContain('Usage: keyward help [<command>]')
  })

  it('creates a key that may do everything in its tenant only when asked with --unrestricted', async () => {
    const database = tempSqlitePath('cli.db')
    const created = await cli(['create', '--tenant', 'acme', '--name', 'Root', '--unrestricted', '--json', '--database', database])
    expect(created).toMatchObject({ code: 0, stderr: '' })
    const { key } = JSON.parse(created.stdout) as { key: string }
    expect(await verdict(database, key)).toMatchObject({ ok: true, key: { scopes: [] } })
    expect((await cli(['create', '--help'])).stdout).toContain('(--scopes a,b | --unrestricted)')
  })

  it('creates no key and no database file for an empty --scopes, or one of only commas and spaces', async () => {
    for (const scopes of ['', ' ', ',', ' , ,']) {
      const database = tempSqlitePath('cli.db')
      const run = await cli(['create', '--tenant', 'acme', '--name', 'Oops', '--scopes', scopes, '--database', database])
      expect(run.code).toBe(2)
      expect(firstLine(run)).toBe(
        `keyward: --scopes lists no scope (got ${JSON.stringify(scopes)}). Name at least one, e.g. --scopes orders:read, or pass --unrestricted for a key that may do everything in its tenant.`,
      )
      expect(secretsIn(run.stdout + run.stderr)).toEqual([])
      expect(existsSync(database)).toBe(false)
    }
  })

  it('does not create a key without --scopes or --unrestricted, nor with both', async () => {
    const database = tempSqlitePath('cli.db')
    const neither = await cli(['create', '--tenant', 'acme', '--name', 'Which?', '--database', database])
    expect(neither.code).toBe(2)
    expect(firstLine(neither)).toBe(
      'keyward: "create" needs --scopes a,b (what the key may do) or --unrestricted (a key that may do everything in its tenant).',
    )
    const both = await cli(['create', '--tenant', 'acme', '--name', 'Both', '--scopes', 'a', '--unrestricted', '--database', database])
    expect(both.code).toBe(2)
    expect(firstLine(both)).toBe('keyward: give --scopes or --unrestricted, not both.')
    expect(existsSync(database)).toBe(false)
  })

  it('refuses a flag given twice instead of keeping the last one', async () => {
    const database = tempSqlitePath('cli.db')
    const twice: [string, string[]][] = [
      ['--name', ['create', '--tenant', 'acme', '--name', 'a', '--name', 'b', '--unrestricted']],
      ['--scopes', ['create', '--tenant', 'acme', '--name', 'a', '--scopes', 'orders:read', '--scopes', 'orders:write']],
      ['--tenant', ['list', '--tenant', 'acme', '--tenant', 'globex']],
      ['--json', ['list', '--tenant', 'acme', '--json', '--json']],
      ['--help', ['list', '-h', '--help']],
    ]
    for (const [flag, args] of twice) {
      const run = await cli([...args, '--database', database])
      expect(run.code).toBe(2)
      const message =
        run.stdout === '' && run.stderr.startsWith('{') ? (JSON.parse(run.stderr) as { detail: string }).detail : firstLine(run)
      expect(message).toContain(`${flag} is given more than once; give it once.`)
      expect(run.stdout).toBe('')
    }
    expect(existsSync(database)).toBe(false)
  })

  it('names a PostgreSQL database that does not exist on the first line, with exit 2 and no password', async (context) => {
    if (!hasPostgres) return context.skip('PostgreSQL is not reachable')
    const name = `keyward_missing_${Date.now().toString(36)}`
    const { url, password } = postgresUrl(name)
    const { hostname, port } = new URL(url)
    for (const command of [
      ['list', '--tenant', 'acme'],
      ['create', '--tenant', 'acme', '--name', 'x', '--unrestricted'],
    ]) {
      const run = await cli([...command, '--database', url])
      expect(run.code).toBe(2)
      expect(firstLine(run)).toBe(`keyward: database "${name}" does not exist on ${hostname}:${port || '5432'}`)
      expect(run.stderr).not.toContain(password)
      expect(run.stdout).toBe('')
    }
  })

  it('says PostgreSQL needs the pg package when pg is not installed', async () => {
    const root = installWithoutPg()
    try {
      const script = join(root, 'dist/cli/index.js')
      const { url, password } = postgresUrl('keyward')
      const run = await cli(['list', '--tenant', 'acme', '--database', url], {}, script)
      expect(run.code).toBe(2)
      expect(run.stderr).toBe('keyward: PostgreSQL support needs the pg package: npm install pg\n')
      expect(run.stderr).not.toContain(password)
      // The same copy works on SQLite: pg is the one thing it lacks.
      const database = join(root, 'keys.db')
      const sqlite = await cli(['create', '--tenant', 'acme', '--name', 'x', '--unrestricted', '--database', database], {}, script)
      expect(sqlite).toMatchObject({ code: 0, stderr: '' })
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })

  describe('on bad input', () => {
    const cases: {
      name: string
      args: (database: string) => string[]
      code: number
      stderr: RegExp
      seeded?: boolean
      env?: Record<string, string>
    }[] = [
      { name: 'no command', args: () => [], code: 2, stderr: /Usage: keyward <command>/ },
      { name: 'an unknown command', args: () => ['destroy'], code: 2, stderr: /unknown command "destroy"/ },
      {
        name: 'an unknown option',
        args: (db) => ['list', '--tenant', 'acme', '--colour', '--database', db],
        code: 2,
        stderr: /Unknown option '--colour'/,
      },
      {
        name: 'an option of another command',
        args: (db) => ['list', '--tenant', 'acme', '--grace', '5', '--database', db],
        code: 2,
        stderr: /"list" does not take --grace/,
      },
      { name: 'a missing --tenant', args: (db) => ['list', '--database', db], code: 2, stderr: /"list" needs --tenant/ },
      {
        name: 'a missing --name',
        args: (db) => ['create', '--tenant', 'acme', '--database', db],
        code: 2,
        stderr: /"create" needs --name/,
      },
      {
        name: 'an invalid tenant id',
        args: (db) => ['list', '--tenant', 'a b', '--database', db],
        code: 2,
        stderr: /--tenant: must be 1-128 characters/,
      },
      {
        name: 'a missing key id',
        args: (db) => ['revoke', '--tenant', 'acme', '--database', db],
        code: 2,
        stderr: /"revoke" takes one key id/,
      },
      {
        name: 'fields that fail validation, each named by its flag',
        args: (db) => [
          'create',
          '--tenant',
          'acme',
          '--name',
          'x'.repeat(101),
          '--scopes',
          'ok,not ok',
          '--environment',
          'prod',
          '--database',
          db,
        ],
        code: 2,
        stderr:
          /invalid input:\n {2}--name: must be at most 100 characters\n {2}--scopes \(item 2\): must be 1-64 characters.*\n {2}--environment: /,
      },
      {
        name: 'a number that is not one',
        args: (db) => ['create', '--tenant', 'acme', '--name', 'x', '--unrestricted', '--expires-in', 'soon', '--database', db],
        code: 2,
        stderr: /--expires-in must be a whole number, got "soon"/,
      },
      {
        name: 'a grace period over 30 days',
        args: (db) => ['rotate', '--tenant', 'acme', 'key_x', '--grace', '9999999', '--database', db],
        code: 2,
        stderr: /--grace: must be at most 2592000/,
        seeded: true,
      },
      {
        name: 'an unknown key',
        args: (db) => ['get', '--tenant', 'acme', 'key_doesnotexist', '--database', db],
        code: 1,
        stderr: /no key "key_doesnotexist" in this tenant/,
        seeded: true,
      },
      {
        name: 'a database file that does not exist',
        args: () => ['list', '--tenant', 'acme', '--database', '/nonexistent/keyward.db'],
        code: 2,
        stderr: /no database at \/nonexistent\/keyward\.db/,
      },
      {
        name: 'a database file in a directory that does not exist',
        args: () => ['create', '--tenant', 'acme', '--name', 'x', '--unrestricted', '--database', '/nonexistent/keyward.db'],
        code: 2,
        stderr: /^keyward: cannot open the SQLite database at \/nonexistent\/keyward\.db: .*directory does not exist/,
      },
      {
        name: 'a prefix keyward does not accept',
        args: (db) => ['list', '--tenant', 'acme', '--prefix', 'Sk-Live', '--database', db],
        code: 2,
        stderr: /^keyward: --prefix must be 1-12 characters of \[a-z0-9\] \(the prefix your app configures\), got "Sk-Live"\./,
        seeded: true,
      },
      {
        name: 'a negative number',
        args: (db) => ['rotate', '--tenant', 'acme', 'key_x', '--grace=-1', '--database', db],
        code: 2,
        stderr: /^keyward: --grace must not be negative, got "-1"\./,
        seeded: true,
      },
      {
        name: 'an empty --database',
        args: () => ['create', '--tenant', 'acme', '--name', 'x', '--unrestricted', '--database', ''],
        code: 2,
        stderr: /^keyward: --database is empty\./,
      },
      {
        name: 'a PostgreSQL URL that is not one',
        args: () => ['list', '--tenant', 'acme', '--database', 'postgres://keyward:hunter2@[::1/keyward'],
        code: 2,
        stderr: /^keyward: --database is not a valid postgres:\/\/ URL\.\n(?![\s\S]*hunter2)/,
      },
      {
        name: 'a database URL of another kind',
        args: () => ['create', '--tenant', 'acme', '--name', 'x', '--unrestricted', '--database', 'mysql://keyward:hunter2@db/keyward'],
        code: 2,
        stderr: /^keyward: --database has the scheme "mysql:"; give an SQLite path .* or a postgres:\/\/ URL\.\n(?![\s\S]*hunter2)/,
      },
      {
        name: 'an empty KEYWARD_DATABASE_URL',
        args: () => ['list', '--tenant', 'acme'],
        env: { KEYWARD_DATABASE_URL: '' },
        code: 2,
        stderr: /^keyward: KEYWARD_DATABASE_URL is set but empty/,
      },
      {
        name: 'an empty KEYWARD_PEPPER',
        args: (db) => ['list', '--tenant', 'acme', '--database', db],
        env: { KEYWARD_PEPPER: '' },
        code: 2,
        stderr: /^keyward: KEYWARD_PEPPER is set but empty/,
        seeded: true,
      },
    ]

    for (const { name, args, code, stderr, seeded, env } of cases) {
      it(`exits ${code} with a message and no stack trace for ${name}`, async () => {
        const database = tempSqlitePath('cli.db')
        // An existing database where the case needs one, so it fails for its own reason only.
        if (seeded)
          expect((await cli(['create', '--tenant', 'seed', '--name', 'seed', '--unrestricted', '--database', database])).code).toBe(0)
        const run = await cli(args(database), env)
        expect(run.code).toBe(code)
        expect(run.stderr).toMatch(stderr)
        expect(run.stderr).toMatch(/^keyward: |^keyward: manage/)
        expect(run.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/)
        expect(run.stdout).toBe('')
      })
    }

    it('answers in JSON on stderr with --json', async () => {
      const database = tempSqlitePath('cli.db')
      await cli(['create', '--tenant', 'seed', '--name', 'seed', '--unrestricted', '--database', database])
      const invalid = await cli(['create', '--tenant', 'acme', '--name', '', '--scopes', 'not ok', '--json', '--database', database])
      expect(invalid.code).toBe(2)
      expect(JSON.parse(invalid.stderr)).toMatchObject({ code: 'usage_error' })
      const refused = await cli(['create', '--tenant', 'acme', '--name', 'x', '--scopes', 'not ok', '--json', '--database', database])
      expect(refused.code).toBe(2)
      expect(JSON.parse(refused.stderr)).toMatchObject({ code: 'validation_error', errors: [{ field: 'scopes.0' }] })
    })

    it('names the connection failure first and prints no PostgreSQL password when the database cannot be reached', async () => {
      const database = 'postgres://keyward:hunter2@127.0.0.1:1/keyward'
      const run = await cli(['list', '--tenant', 'acme', '--database', database])
      expect(run.code).toBe(1)
      expect(firstLine(run)).toMatch(/^keyward: .*ECONNREFUSED 127\.0\.0\.1:1$/)
      expect(run.stderr).toMatch(/\nkeyward: The API key store cannot be reached/)
      expect(run.stderr).not.toContain('hunter2')
      expect(run.stderr).not.toMatch(/\n\s+at /)
      const asJson = await cli(['list', '--tenant', 'acme', '--json', '--database', database])
      expect(asJson.code).toBe(1)
      expect(JSON.parse(asJson.stderr)).toMatchObject({ code: 'store_unavailable', detail: expect.stringMatching(/ECONNREFUSED/) })
      expect(asJson.stderr).not.toContain('hunter2')
    })
  })
})
