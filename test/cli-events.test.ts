import { beforeAll, describe, expect, it } from 'vitest'
import type { EventObject, KeyObject } from '../src/http/serialize.js'
import { ensureBuilt } from './helpers/build.js'
import { cli } from './helpers/cli.js'
import { tempSqlitePath } from './helpers/sqlite.js'

/**
 * `keyward events` and the CLI as an actor of the audit log (issue 15), through the real binary on
 * a real database file, as test/cli.test.ts runs it.
 */

beforeAll(async () => {
  await ensureBuilt()
}, 150_000)

describe('keyward events', () => {
  it('lists what the CLI did, named by the operating-system user, as a table and as JSON', async () => {
    const database = tempSqlitePath('cli.db')
    const db = ['--database', database]
    const env = { USER: 'ops-oncall' }
    const created = JSON.parse(
      (await cli(['create', '--tenant', 'acme', '--name', 'CI', '--unrestricted', '--json', ...db], env)).stdout,
    ) as KeyObject
    expect(created.created_by).toEqual({ type: 'cli', id: 'ops-oncall' })
    expect((await cli(['revoke', '--tenant', 'acme', created.id, ...db], env)).code).toBe(0)
    await cli(['create', '--tenant', 'globex', '--name', 'other', '--unrestricted', ...db], env)

    const table = await cli(['events', '--tenant', 'acme', ...db])
    expect(table.code).toBe(0)
    const lines = table.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^TIME\s+TYPE\s+KEY\s+ACTOR\s+IP\s+REQUEST$/)
    expect(lines.slice(1).map((line) => line.split(/\s{2,}/).slice(1, 4))).toEqual([
      ['api_key.revoked', created.id, 'cli:ops-oncall'],
      ['api_key.created', created.id, 'cli:ops-oncall'],
    ])
    expect(lines[1]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z /)

    const json = await cli(['events', '--tenant', 'acme', '--type', 'api_key.revoked', '--json', ...db])
    expect(json.code).toBe(0)
    const { events, next_cursor } = JSON.parse(json.stdout) as { events: EventObject[]; next_cursor: string | null }
    expect(next_cursor).toBeNull()
    expect(events).toMatchObject([{ type: 'api_key.revoked', key_id: created.id, actor: { type: 'cli', id: 'ops-oncall' }, ip: null }])

    const byKey = JSON.parse((await cli(['events', '--tenant', 'acme', '--key', created.id, '--since', '1h', '--json', ...db])).stdout)
    expect(byKey.events).toHaveLength(2)
    const future = JSON.parse((await cli(['events', '--tenant', 'acme', '--since', '2999-01-01T00:00:00Z', '--json', ...db])).stdout)
    expect(future.events).toEqual([])
    const paged = await cli(['events', '--tenant', 'acme', '--limit', '1', ...db])
    expect(paged.stdout).toMatch(/More events: repeat with --cursor \S+/)
    expect((await cli(['events', '--tenant', 'nobody', ...db])).stdout).toBe('No events for tenant nobody.\n')
  })

  it('refuses an unknown --type or an unreadable --since before touching the database (exit 2)', async () => {
    const database = tempSqlitePath('cli.db')
    expect((await cli(['create', '--tenant', 'acme', '--name', 'seed', '--unrestricted', '--database', database])).code).toBe(0)
    const badType = await cli(['events', '--tenant', 'acme', '--type', 'api_key.exploded', '--database', database])
    expect(badType.code).toBe(2)
    expect(badType.stderr).toMatch(/^keyward: --type must be one of api_key\.created/)
    const badSince = await cli(['events', '--tenant', 'acme', '--since', 'last tuesday', '--database', database])
    expect(badSince.code).toBe(2)
    expect(badSince.stderr).toMatch(/^keyward: --since must be an ISO 8601 instant/)
    const missing = await cli(['events', '--tenant', 'acme', '--database', tempSqlitePath('absent.db')])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/^keyward: no database at/)
    expect((await cli(['help', 'events'])).stdout).toContain('keyward events --tenant <tenant>')
  })
})
