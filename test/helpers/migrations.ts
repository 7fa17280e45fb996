import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll } from 'vitest'

const folders: string[] = []
afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true })
})

/**
 * A copy of a dialect's migrations folder as an earlier release shipped it: the journal cut after
 * the migration whose tag starts with `lastTag` (`'0000_'`, `'0003_'`). Upgrade tests migrate a
 * database with it, write rows the old way, then open the store, which applies the rest. The
 * copy is removed when the test file finishes.
 */
export function migrationsUpTo(dialect: 'sqlite' | 'postgres', lastTag: string): string {
  const folder = mkdtempSync(join(tmpdir(), `keyward-${dialect}-migrations-`))
  folders.push(folder)
  cpSync(fileURLToPath(new URL(`../../drizzle/${dialect}`, import.meta.url)), folder, { recursive: true })
  const journalPath = join(folder, 'meta', '_journal.json')
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: { tag: string }[] }
  const upTo = journal.entries.findIndex((entry) => entry.tag.startsWith(lastTag))
  if (upTo < 0) throw new Error(`migrationsUpTo: no ${dialect} migration tagged ${lastTag}*`)
  writeFileSync(journalPath, JSON.stringify({ ...journal, entries: journal.entries.slice(0, upTo + 1) }))
  return folder
}
