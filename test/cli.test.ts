import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import type { KeyObject } from '../src/index.js'
import { keyward } from '../src/index.js'
import { CLI_PATH, ensureBuilt } from './helpers/build.js'
import { freshPostgresDatabase, hasPostgres } from './helpers/postgres.js'
import { tempSqlitePath } from './helpers/sqlite.js'

/**
 * These tests run the real binary (`node dist/cli/index.js`), as `npx keyward` would, against a
 * real database file, and read only what it prints and its exit code.
 */

interface Run {
  code: number
  stdout: string
  stderr: string
}

function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI_PATH, ...args],
      { env: { PATH: process.env.PATH, ...env }, timeout: 15_000, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== 'number') reject(error)
        else resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr })
      },
    )
  })
}

const SECRET = /\bsk_(live|test)_[0-9A-Za-z]{20,}\b/g

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

      const created = await cli(['create', '--tenant', 'acme', '--name', 'Acme admin', ...db])
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
      (await cli(['create', '--tenant', 'acme', '--name', 'Reporting', '--json', '--database', database])).stdout,
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
      (await cli(['create', '--tenant', 'acme', '--name', 'A', '--json', '--database', database])).stdout,
    ) as KeyObject
    const run = await cli(['revoke', '--tenant', 'globex', created.id, '--database', database])
    expect(run.code).toBe(1)
    expect(run.stderr).toBe(`keyward: no key "${created.id}" in this tenant.\n`)
    expect((await cli(['get', '--tenant', 'acme', created.id, '--json', '--database', database])).stdout).toContain('"status": "active"')
  })

  it('reads the database from KEYWARD_DATABASE_URL when --database is not given', async () => {
    const database = tempSqlitePath('cli.db')
    const env = { KEYWARD_DATABASE_URL: database }
    expect((await cli(['create', '--tenant', 'acme', '--name', 'From env'], env)).code).toBe(0)
    expect(existsSync(database)).toBe(true)
    expect((await cli(['list', '--tenant', 'acme'], env)).stdout).toContain('From env')
  })

  it('prints help for every command and exits 0', async () => {
    const overview = await cli(['help'])
    expect(overview.code).toBe(0)
    for (const command of ['create', 'list', 'get', 'revoke', 'rotate', 'usage']) {
      expect(overview.stdout).toMatch(new RegExp(`^  ${command}\\s`, 'm'))
      const help = await cli([command, '--help'])
      expect(help.code).toBe(0)
      expect(help.stdout).toContain(`Usage: keyward ${command}`)
    }
  })

  describe('on bad input', () => {
    const cases: { name: string; args: (database: string) => string[]; code: number; stderr: RegExp; seeded?: boolean }[] = [
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
        args: (db) => ['create', '--tenant', 'acme', '--name', 'x', '--expires-in', 'soon', '--database', db],
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
    ]

    for (const { name, args, code, stderr, seeded } of cases) {
      it(`exits ${code} with a message and no stack trace for ${name}`, async () => {
        const database = tempSqlitePath('cli.db')
        // An existing database where the case needs one, so it fails for its own reason only.
        if (seeded) expect((await cli(['create', '--tenant', 'seed', '--name', 'seed', '--database', database])).code).toBe(0)
        const run = await cli(args(database))
        expect(run.code).toBe(code)
        expect(run.stderr).toMatch(stderr)
        expect(run.stderr).toMatch(/^keyward: |^keyward: manage/)
        expect(run.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/)
        expect(run.stdout).toBe('')
      })
    }

    it('answers in JSON on stderr with --json', async () => {
      const database = tempSqlitePath('cli.db')
      await cli(['create', '--tenant', 'seed', '--name', 'seed', '--database', database])
      const invalid = await cli(['create', '--tenant', 'acme', '--name', '', '--scopes', 'not ok', '--json', '--database', database])
      expect(invalid.code).toBe(2)
      expect(JSON.parse(invalid.stderr)).toMatchObject({ code: 'usage_error' })
      const refused = await cli(['create', '--tenant', 'acme', '--name', 'x', '--scopes', 'not ok', '--json', '--database', database])
      expect(refused.code).toBe(2)
      expect(JSON.parse(refused.stderr)).toMatchObject({ code: 'validation_error', errors: [{ field: 'scopes.0' }] })
    })

    it('does not print a PostgreSQL password when the database cannot be reached', async () => {
      const run = await cli(['list', '--tenant', 'acme', '--database', 'postgres://keyward:hunter2@127.0.0.1:1/keyward'])
      expect(run.code).toBe(1)
      expect(run.stderr).toMatch(/^keyward: The API key store cannot be reached/)
      expect(run.stderr).not.toContain('hunter2')
      expect(run.stderr).not.toMatch(/\n\s+at /)
    })
  })
})
