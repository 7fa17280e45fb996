import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll } from 'vitest'

const dirs: string[] = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/** A path for a fresh, real SQLite file, removed when the test file finishes. */
export function tempSqlitePath(name = 'keyward.db'): string {
  const dir = mkdtempSync(join(tmpdir(), 'keyward-test-'))
  dirs.push(dir)
  return join(dir, name)
}
