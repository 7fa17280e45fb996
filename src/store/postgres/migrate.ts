import { fileURLToPath } from 'node:url'
import { drizzle } from 'drizzle-orm/node-postgres'
import { migrate } from 'drizzle-orm/node-postgres/migrator'
import type pg from 'pg'

const MIGRATIONS = fileURLToPath(new URL('../../../drizzle/postgres', import.meta.url))

/** Several instances starting at once must not run the same migration twice. */
export async function migrateSerialized(pool: pg.Pool): Promise<void> {
  const client = await pool.connect()
  client.on('error', ignore)
  try {
    await client.query(`select pg_advisory_lock(hashtext('keyward:migrate'))`)
    await migrate(drizzle({ client }), {
      migrationsFolder: MIGRATIONS,
      migrationsSchema: 'drizzle',
      migrationsTable: '__keyward_migrations',
    })
    await client.query(`select pg_advisory_unlock(hashtext('keyward:migrate'))`)
    client.removeListener('error', ignore)
    client.release()
  } catch (error) {
    // Destroying the connection also frees the session-level lock.
    client.release(error instanceof Error ? error : true)
    throw error
  }
}

/** An error listener for a checked-out connection whose failure the running query reports anyway. */
export function ignore(): void {}
