import { defineConfig } from 'drizzle-kit'

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/store/postgres/schema.ts',
  out: './drizzle/postgres',
  // keyward's own bookkeeping table, so it never mixes with the host app's drizzle migrations.
  migrations: { table: '__keyward_migrations', schema: 'drizzle' },
})
