import { beforeAll, describe, expect, it } from 'vitest'
import type { KeyObject } from '../src/http/serialize.js'
import { keyward } from '../src/index.js'
import { ensureBuilt } from './helpers/build.js'
import { cli } from './helpers/cli.js'
import { tempSqlitePath } from './helpers/sqlite.js'

/**
 * Issue 14's per-key controls from the command line: `create` sets them, `update` changes, clears,
 * disables and enables, through the real binary on a real database file; what it stored is then
 * checked by verifying keys in process, as the host app would.
 */

beforeAll(async () => {
  await ensureBuilt()
}, 150_000)

async function created(database: string, extra: string[]): Promise<KeyObject & { key: string }> {
  const run = await cli([
    'create',
    '--tenant',
    'acme',
    '--name',
    'Metered',
    '--scopes',
    'orders:read',
    '--json',
    '--database',
    database,
    ...extra,
  ])
  expect(run).toMatchObject({ code: 0, stderr: '' })
  return JSON.parse(run.stdout) as KeyObject & { key: string }
}

describe('keyward create and update with per-key controls', () => {
  it('creates a key with rate limits, credits with a refill and allowed IPs, and shows them', async () => {
    const database = tempSqlitePath('cli-controls.db')
    const key = await created(database, [
      '--rate-limit',
      'burst:10/1s,hourly:1000/1h',
      '--credits',
      '500',
      '--refill',
      '500/month',
      '--allowed-ips',
      '10.0.0.0/8, 203.0.113.7',
    ])
    expect(key.rate_limits).toEqual([
      { name: 'burst', limit: 10, window_ms: 1000 },
      { name: 'hourly', limit: 1000, window_ms: 3_600_000 },
    ])
    expect(key.credits).toEqual({ remaining: 500, refill: { amount: 500, interval: 'month' } })
    expect(key.allowed_ips).toEqual(['10.0.0.0/8', '203.0.113.7/32'])
    const shown = await cli(['get', '--tenant', 'acme', key.id, '--database', database])
    expect(shown.stdout).toMatch(/rate limit\s+burst: 10 per 1s/)
    expect(shown.stdout).toMatch(/rate limit\s+hourly: 1000 per 1h/)
    expect(shown.stdout).toMatch(/credits\s+500 left, refilled to 500 each month/)
    expect(shown.stdout).toMatch(/allowed IPs\s+10\.0\.0\.0\/8, 203\.0\.113\.7\/32/)
  })

  it('updates, clears, disables and enables a key; a disabled key is refused until enabled', async () => {
    const database = tempSqlitePath('cli-controls.db')
    const key = await created(database, ['--credits', '5'])
    const db = ['--database', database]

    const updated = await cli([
      'update',
      '--tenant',
      'acme',
      key.id,
      '--name',
      'Renamed',
      '--rate-limit',
      'minute:60/1m',
      '--no-credits',
      '--json',
      ...db,
    ])
    expect(updated).toMatchObject({ code: 0, stderr: '' })
    expect(JSON.parse(updated.stdout)).toMatchObject({
      name: 'Renamed',
      rate_limits: [{ name: 'minute', limit: 60, window_ms: 60_000 }],
      credits: null,
    })

    const disabled = await cli(['update', '--tenant', 'acme', key.id, '--disable', ...db])
    expect(disabled.code).toBe(0)
    expect(disabled.stdout).toContain(`Updated ${key.id} "Renamed".`)
    expect(disabled.stdout).toMatch(/status\s+disabled/)
    const kw = keyward({ database, cache: false })
    try {
      expect(await kw.verify(key.key)).toMatchObject({ ok: false, code: 'api_key_disabled' })
      expect((await cli(['update', '--tenant', 'acme', key.id, '--enable', '--no-rate-limits', '--json', ...db])).code).toBe(0)
      expect(await kw.verify(key.key)).toMatchObject({ ok: true })
      expect(await kw.getKey({ tenantId: 'acme' }, key.id)).toMatchObject({
        ok: true,
        value: { rateLimits: [], credits: null, enabled: true },
      })
    } finally {
      await kw.close()
    }
  })

  it('refuses malformed or contradictory control flags before touching the database, naming the flag', async () => {
    const database = tempSqlitePath('cli-controls.db')
    const key = await created(database, [])
    const db = ['--database', database]
    const cases: [string[], RegExp][] = [
      [
        ['create', '--tenant', 'acme', '--name', 'x', '--unrestricted', '--rate-limit', 'burst:10'],
        /--rate-limit takes name:limit\/window items/,
      ],
      [['create', '--tenant', 'acme', '--name', 'x', '--unrestricted', '--refill', '10/day'], /--refill needs --credits/],
      [
        ['create', '--tenant', 'acme', '--name', 'x', '--unrestricted', '--credits', '10', '--refill', '10/week'],
        /--refill takes amount\/day or amount\/month/,
      ],
      [['create', '--tenant', 'acme', '--name', 'x', '--unrestricted', '--credits=-3'], /--credits must not be negative/],
      [['update', '--tenant', 'acme', key.id], /"update" needs something to change/],
      [['update', '--tenant', 'acme', key.id, '--disable', '--enable'], /give --disable or --enable, not both/],
      [['update', '--tenant', 'acme', key.id, '--credits', '3', '--no-credits'], /give --credits or --no-credits, not both/],
      [['update', '--tenant', 'acme', key.id, '--scopes', 'a', '--unrestricted'], /give --scopes or --unrestricted, not both/],
    ]
    for (const [args, message] of cases) {
      const run = await cli([...args, ...db])
      expect(run.code, args.join(' ')).toBe(2)
      expect(run.stderr).toMatch(message)
    }
    // Refused by the core's rules, named by the flag: a zero limit and an invalid CIDR.
    const invalid = await cli(['update', '--tenant', 'acme', key.id, '--rate-limit', 'burst:0/1s', '--allowed-ips', '10.0.0.0/99', ...db])
    expect(invalid.code).toBe(2)
    expect(invalid.stderr).toMatch(/--rate-limit \(item 1\): /)
    expect(invalid.stderr).toMatch(/--allowed-ips \(item 1\): /)
    // A refill's amount is checked by the core too, and named by the flag that set it.
    const refill = await cli(['update', '--tenant', 'acme', key.id, '--credits', '5', '--refill', '0/day', ...db])
    expect(refill.code).toBe(2)
    expect(refill.stderr).toMatch(/^ {2}--refill: /m)
    const unchanged = JSON.parse((await cli(['get', '--tenant', 'acme', key.id, '--json', ...db])).stdout) as KeyObject
    expect(unchanged).toMatchObject({ rate_limits: [], allowed_ips: [], enabled: true, name: 'Metered' })
  })
})
