import pg from 'pg'
import { afterAll } from 'vitest'

/** The server CI and every session machine run (trust auth). Override with KEYWARD_TEST_PG_URL. */
export const PG_ADMIN_URL = process.env.KEYWARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

async function probe(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
    await client.query('select 1')
    return null
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  } finally {
    await client.end().catch(() => undefined)
  }
}

/**
 * Whether PostgreSQL tests can run. In CI (CI=true) an unreachable server is a failure, not a
 * skip: `describe.skipIf(!hasPostgres)` would otherwise turn a broken setup green.
 */
const problem = await probe()
if (problem !== null) {
  if (process.env.CI === 'true') {
    throw new Error(`PostgreSQL is required in CI but ${PG_ADMIN_URL} is unreachable: ${problem}`)
  }
  console.warn(`\n[keyward tests] SKIPPING PostgreSQL tests: ${PG_ADMIN_URL} is unreachable (${problem}).\n`)
}
export const hasPostgres = problem === null

const created: string[] = []
afterAll(async () => {
  if (created.length === 0) return
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL })
  await admin.connect()
  for (const name of created.splice(0)) {
    await admin.query(`drop database if exists "${name}" with (force)`).catch(() => undefined)
  }
  await admin.end()
})

/** A fresh, empty database on the test server (dropped after the file); returns its URL. */
export async function freshPostgresDatabase(): Promise<string> {
  const name = `keyward_t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL })
  await admin.connect()
  await admin.query(`create database "${name}"`)
  await admin.end()
  created.push(name)
  const url = new URL(PG_ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}
