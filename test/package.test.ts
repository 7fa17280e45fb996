import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt, REPO_ROOT } from './helpers/build.js'
import { freshPostgresDatabase, hasPostgres } from './helpers/postgres.js'

/**
 * Packs keyward as `npm publish` would, installs the tarball into a fresh project next to nothing
 * of this repository, and runs apps that import it exactly as the README shows. This catches what
 * the other tests cannot: a missing `exports` entry or file, migrations not found relative to the
 * installed module, a `bin` without its shebang.
 */

const run = promisify(execFile)
let project = ''
let tarballPath = ''

beforeAll(async () => {
  await ensureBuilt()
  project = mkdtempSync(join(tmpdir(), 'keyward-package-'))
  // --ignore-scripts: dist/ is fresh (ensureBuilt), and a prepack build here would rewrite dist/
  // under the feet of test files running the binary in parallel.
  await run('npm', ['pack', '--ignore-scripts', '--pack-destination', project], { cwd: REPO_ROOT, timeout: 60_000 })
  const tarball = readdirSync(project).find((name) => name.endsWith('.tgz'))
  if (tarball === undefined) throw new Error('npm pack wrote no tarball')
  tarballPath = join(project, tarball)
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'keyward-consumer', private: true, type: 'module' }))
  // Install scripts are skipped and better-sqlite3's native addon is taken from this repository when
  // the versions match: compiling it offline takes minutes, and it is better-sqlite3's build, not ours.
  await run(
    'npm',
    ['install', `./${tarball}`, 'hono', 'express', 'pg', '@hono/node-server', '--ignore-scripts', '--no-audit', '--no-fund'],
    {
      cwd: project,
      timeout: 120_000,
    },
  )
  await provideBetterSqlite3Addon(project)
}, 280_000)

afterAll(() => {
  if (project !== '') rmSync(project, { recursive: true, force: true })
})

const processes: ChildProcess[] = []
afterEach(() => {
  for (const child of processes.splice(0)) child.kill('SIGKILL')
})

async function provideBetterSqlite3Addon(dir: string): Promise<void> {
  const installed = join(dir, 'node_modules/better-sqlite3')
  const ours = join(REPO_ROOT, 'node_modules/better-sqlite3')
  const version = (path: string) => (JSON.parse(readFileSync(join(path, 'package.json'), 'utf8')) as { version: string }).version
  const addon = 'build/Release/better_sqlite3.node'
  if (version(installed) === version(ours) && existsSync(join(ours, addon))) {
    mkdirSync(join(installed, 'build/Release'), { recursive: true })
    copyFileSync(join(ours, addon), join(installed, addon))
    return
  }
  await run('npm', ['rebuild', 'better-sqlite3'], {
    cwd: dir,
    timeout: 240_000,
    env: { ...process.env, npm_config_build_from_source: 'true' },
  })
}

/** Starts `node <file>` in the consumer project; resolves with the first JSON line it prints. */
function start(file: string, source: string, env: Record<string, string>): Promise<{ port: number; key: string }> {
  writeFileSync(join(project, file), source)
  const child = spawn(process.execPath, [file], {
    cwd: project,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  processes.push(child)
  let stderr = ''
  child.stderr?.on('data', (chunk) => {
    stderr += chunk
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start within 15 s: ${stderr}`)), 15_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${file} exited with ${code}: ${stderr}`))
    })
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', (line) => {
      clearTimeout(timer)
      resolve(JSON.parse(line) as { port: number; key: string })
    })
  })
}

/** The same checks for both frameworks: the README's two lines protect /v1 and serve /api-keys. */
async function expectProtectedAndManaged(base: string, key: string) {
  const withKey = await fetch(`${base}/v1/hello`, { headers: { 'x-api-key': key } })
  expect(withKey.status).toBe(200)
  expect(await withKey.json()).toEqual({ tenant: 'acme' })

  const withoutKey = await fetch(`${base}/v1/hello`)
  expect(withoutKey.status).toBe(401)
  expect(withoutKey.headers.get('www-authenticate')).toBe('Bearer realm="keyward"')
  expect(await withoutKey.json()).toMatchObject({ code: 'missing_api_key' })

  const keys = await fetch(`${base}/api-keys`, { headers: { authorization: `Bearer ${key}` } })
  expect(keys.status).toBe(200)
  expect(((await keys.json()) as { name: string }[]).map((item) => item.name)).toEqual(['package test'])

  const document = await fetch(`${base}/api-keys/openapi.json`)
  expect(document.status).toBe(200)
  expect(Object.keys(((await document.json()) as { paths: object }).paths)).toContain('/api-keys/{id}')
}

// Creating the key through the core on the same file is what a host app does to bootstrap a tenant.
const BOOTSTRAP = `
const kw = keyward()
const created = await kw.createKey({ tenantId: 'acme' }, { name: 'package test' })
if (!created.ok) throw new Error(created.error.detail)
await kw.close()
`

describe('the packed package, installed into a fresh project', () => {
  it('ships ESM, type declarations, the migrations and the CLI, and nothing from src/ or test/', () => {
    const installed = join(project, 'node_modules/keyward')
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }
    expect(Object.keys(manifest.exports)).toEqual(['.', './hono', './express', './store/sqlite', './store/postgres', './package.json'])
    for (const file of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/hono/index.d.ts',
      'dist/express/index.js',
      'drizzle/sqlite/meta/_journal.json',
    ]) {
      expect(existsSync(join(installed, file)), file).toBe(true)
    }
    expect(existsSync(join(installed, 'drizzle/postgres'))).toBe(true)
    expect(readFileSync(join(installed, 'dist/cli/index.js'), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/)
    for (const absent of ['src', 'test', 'example-app', 'scratch', 'bench']) expect(existsSync(join(installed, absent)), absent).toBe(false)
  })

  it('passes publint --strict and arethetypeswrong (ESM-only profile) on the tarball', async () => {
    const bin = (name: string) => join(REPO_ROOT, 'node_modules/.bin', name)
    const publint = await run(bin('publint'), ['run', '--strict', tarballPath], { cwd: project, timeout: 60_000 })
    expect(publint.stdout).toContain('All good!')
    // esm-only: keyward ships no CommonJS; `require()` consumers and node10 resolution are out of scope.
    await expect(
      run(bin('attw'), [tarballPath, '--profile', 'esm-only', '--format', 'ascii'], { cwd: project, timeout: 60_000 }),
    ).resolves.toBeDefined()
  })

  it('runs a Hono app that imports keyward/hono as the README shows: 200 with a key, 401 without', async () => {
    const database = join(project, `hono-${Date.now()}.db`)
    const app = await start(
      'hono-app.mjs',
      `import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { keyward } from 'keyward'
import { apiKeyAuth, keysRouter } from 'keyward/hono'
${BOOTSTRAP}
const app = new Hono()
app.route('/api-keys', keysRouter)
app.use('/v1/*', apiKeyAuth())
app.get('/v1/hello', (c) => c.json({ tenant: c.var.apiKey.tenantId }))
serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => console.log(JSON.stringify({ port: info.port, key: created.value.key })))
`,
      { KEYWARD_DATABASE_URL: database },
    )
    await expectProtectedAndManaged(`http://127.0.0.1:${app.port}`, app.key)
  })

  it('runs an Express app that imports keyward/express as the README shows: 200 with a key, 401 without', async () => {
    const database = join(project, `express-${Date.now()}.db`)
    const app = await start(
      'express-app.mjs',
      `import express from 'express'
import { keyward } from 'keyward'
import { apiKeyAuth, keysRouter } from 'keyward/express'
${BOOTSTRAP}
const app = express()
app.use('/api-keys', keysRouter)
app.use('/v1', apiKeyAuth())
app.get('/v1/hello', (req, res) => res.json({ tenant: req.apiKey.tenantId }))
const server = app.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port, key: created.value.key })))
`,
      { KEYWARD_DATABASE_URL: database },
    )
    await expectProtectedAndManaged(`http://127.0.0.1:${app.port}`, app.key)
  })

  it('installs the keyward binary: npx keyward creates and lists keys', async () => {
    const database = join(project, `cli-${Date.now()}.db`)
    const bin = join(project, 'node_modules/.bin/keyward')
    const created = await run(
      bin,
      ['create', '--tenant', 'acme', '--name', 'from npx', '--unrestricted', '--json', '--database', database],
      {
        cwd: project,
        timeout: 15_000,
      },
    )
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'from npx', key: expect.stringMatching(/^sk_live_/) })
    const listed = await run(bin, ['list', '--tenant', 'acme', '--database', database], { cwd: project, timeout: 15_000 })
    expect(listed.stdout).toMatch(/from npx/)
  })

  it.skipIf(!hasPostgres)('finds the PostgreSQL migrations in the installed package: npx keyward runs on a fresh database', async () => {
    const database = await freshPostgresDatabase()
    const bin = join(project, 'node_modules/.bin/keyward')
    const created = await run(
      bin,
      ['create', '--tenant', 'acme', '--name', 'on postgres', '--unrestricted', '--json', '--database', database],
      {
        cwd: project,
        timeout: 20_000,
      },
    )
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'on postgres', tenant_id: 'acme' })
    const listed = await run(bin, ['list', '--tenant', 'acme', '--json', '--database', database], { cwd: project, timeout: 20_000 })
    expect((JSON.parse(listed.stdout) as { keys: { name: string }[] }).keys.map((key) => key.name)).toEqual(['on postgres'])
  })

  it('type-checks a TypeScript consumer against the published declarations', async () => {
    writeFileSync(
      join(project, 'consumer.ts'),
      `import { Hono } from 'hono'
import { keyward, type ApiKey, type KeyObject, type KeyPage, type Result, toKeyObject } from 'keyward'
import { apiKeyAuth, keysOpenApiDocument, keysRouter, requireScopes } from 'keyward/hono'
import { apiKeyAuth as expressAuth } from 'keyward/express'
import { createSqliteStore } from 'keyward/store/sqlite'

const app = new Hono()
app.route('/api-keys', keysRouter)
app.route('/v1', new Hono().use(apiKeyAuth()).get('/orders', requireScopes('orders:read'), (c) => c.json({ tenant: c.var.apiKey.tenantId satisfies string })))
const kw = keyward({ store: createSqliteStore({ url: ':memory:' }) })
const created = await kw.createKey({ tenantId: 'acme' }, { name: 'typed' })
const object: KeyObject | undefined = created.ok ? toKeyObject(created.value.apiKey) : undefined
const listed: Result<KeyPage> = await kw.listKeys({ tenantId: 'acme' })
const first: ApiKey | undefined = listed.ok ? listed.value.items[0] : undefined
export const checks = [object, listed, first, keysOpenApiDocument().openapi satisfies string, expressAuth]
`,
    )
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: [],
        },
        files: ['consumer.ts'],
      }),
    )
    const tsc = join(REPO_ROOT, 'node_modules/typescript/bin/tsc')
    const result = await run(process.execPath, [tsc, '-p', project], { cwd: project, timeout: 60_000 }).catch(
      (error: { stdout: string }) => error,
    )
    expect(result.stdout).toBe('')
  })
})
