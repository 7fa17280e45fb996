import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

export const REPO_ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '')
export const CLI_PATH = join(REPO_ROOT, 'dist/cli/index.js')

function newestMtime(dir: string, pick: (name: string) => boolean, newest = 0): number {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) newest = newestMtime(path, pick, newest)
    else if (pick(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs)
  }
  return newest
}

/** Whether `dist/` is missing or older than a source file or the build config. */
function isStale(): boolean {
  if (!existsSync(CLI_PATH) || !existsSync(join(REPO_ROOT, 'dist/index.js'))) return true
  const sources = Math.max(
    newestMtime(join(REPO_ROOT, 'src'), (name) => name.endsWith('.ts')),
    statSync(join(REPO_ROOT, 'tsconfig.json')).mtimeMs,
    statSync(join(REPO_ROOT, 'tsconfig.build.json')).mtimeMs,
  )
  // Two outputs every build writes (an orphan of a deleted source file must not force rebuilds).
  return Math.min(statSync(CLI_PATH).mtimeMs, statSync(join(REPO_ROOT, 'dist/index.js')).mtimeMs) < sources
}

/**
 * Builds `dist/` when it is missing or stale, so tests of the real binary and the packed tarball
 * run what the sources say. `npm test` builds first and this is then a no-op. Test files run in
 * parallel: a lock directory makes one of them build while the others wait for it.
 */
export async function ensureBuilt(): Promise<void> {
  const lock = join(tmpdir(), `keyward-build-${Buffer.from(REPO_ROOT).toString('base64url')}.lock`)
  const deadline = Date.now() + 120_000
  for (;;) {
    if (!isStale()) return
    try {
      mkdirSync(lock)
    } catch {
      if (Date.now() > deadline) throw new Error(`ensureBuilt: gave up waiting for ${lock} (remove it if no build is running)`)
      await new Promise((resolve) => setTimeout(resolve, 250))
      continue
    }
    try {
      if (isStale()) await promisify(execFile)('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, timeout: 110_000 })
      return
    } finally {
      rmSync(lock, { recursive: true, force: true })
    }
  }
}
