import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import ts from 'typescript'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt, REPO_ROOT } from './helpers/build.js'
import { freshPostgresDatabase, hasPostgres } from './helpers/postgres.js'
import { type ReadmeBlock, readmePrograms } from './helpers/readme.js'

/**
 * Packs keyward as `npm publish` would, installs the tarball into a fresh project next to nothing
 * of this repository, and runs the README's complete programs (the blocks marked
 * `<!-- ts-program: name -->`) as a reader would copy them: taken from README.md itself, so the
 * two cannot drift. This catches what the other tests cannot: a missing `exports` entry or file,
 * migrations not found relative to the installed module, a `bin` without its shebang, a quick
 * start that does not run or loses usage on shutdown.
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
    [
      'install',
      `./${tarball}`,
      'hono',
      'express',
      'pg',
      '@hono/node-server',
      // What a TypeScript consumer adds: the README's programs are type-checked here as well.
      '@types/node',
      '@types/express',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
    ],
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

const programs = readmePrograms()

interface RunningProgram {
  url: string
  /** SIGTERM, as a process manager stops an app; resolves with the exit code once it has exited. */
  stop(): Promise<number | null>
}

/**
 * Runs a README program in the consumer project, on `database` and a free port (its `PORT`);
 * resolves once it prints its "Listening on" line. The program is the README's TypeScript with
 * its types erased, nothing added.
 */
async function startProgram(name: string, block: ReadmeBlock, database: string): Promise<RunningProgram> {
  const file = `readme-${name}.mjs`
  const { outputText } = ts.transpileModule(block.code, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: `README.md-line-${block.line}.ts`,
  })
  writeFileSync(join(project, file), outputText)
  const port = await freePort()
  const child = spawn(process.execPath, [file], {
    cwd: project,
    env: { PATH: process.env.PATH, KEYWARD_DATABASE_URL: database, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  processes.push(child)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  let output = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 15 s:\n${output}`)), 15_000)
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('Listening on')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited with ${code}:\n${output}`))
    })
  })
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () => {
      child.kill('SIGTERM')
      return exited
    },
  }
}

/** A port nothing listens on now (the OS's choice for port 0, released at once). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** The installed `keyward` binary with `--json`, parsed. */
async function keywardCli<T>(args: string[], database: string): Promise<T> {
  const bin = join(project, 'node_modules/.bin/keyward')
  const { stdout } = await run(bin, [...args, '--json', '--database', database], { cwd: project, timeout: 20_000 })
  return JSON.parse(stdout) as T
}

/** A fresh SQLite file with one unrestricted key of `acme`, made with the CLI as an operator would. */
async function databaseWithKey(name: string): Promise<{ database: string; key: string; id: string }> {
  const database = join(project, `${name}-${Date.now()}.db`)
  const created = await keywardCli<{ key: string; id: string }>(
    ['create', '--tenant', 'acme', '--name', 'package test', '--unrestricted'],
    database,
  )
  return { database, key: created.key, id: created.id }
}

/** What every README program does: its key protects /v1 and serves /api-keys. */
async function expectProtectedAndManaged(base: string, key: string) {
  const withKey = await fetch(`${base}/v1/orders`, { headers: { 'x-api-key': key } })
  expect(withKey.status).toBe(200)
  expect(await withKey.json()).toEqual({ tenantId: 'acme' })

  const withoutKey = await fetch(`${base}/v1/orders`)
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

  it('finds the README programs this file runs', () => {
    expect([...programs.keys()]).toEqual(['hono', 'hono-side-by-side', 'express'])
  })

  it.each([...programs])(
    'runs the README program "%s" from the tarball: 200 with a key, 401 without, keys managed',
    async (name, block) => {
      const { database, key } = await databaseWithKey(name)
      const app = await startProgram(name, block, database)
      await expectProtectedAndManaged(app.url, key)
    },
  )

  // Issue 12, defect 10: the zero-config instance counts usage in memory and writes it every second,
  // so an app that dies on SIGTERM loses its last second of counts. The README's shutdown handler
  // (server.close, then closeDefaultKeyward) writes them. Without it the process is killed by the
  // signal, and the test fails unless a periodic flush happens to land between the last request
  // and the signal (a window of milliseconds in a 1 s interval).
  it.each([...programs])('keeps every request in the usage when the README program "%s" is stopped with SIGTERM', async (name, block) => {
    const { database, key, id } = await databaseWithKey(name)
    const app = await startProgram(name, block, database)
    const requests = 25
    for (let i = 0; i < requests; i++) {
      const response = await fetch(`${app.url}/v1/orders`, { headers: { 'x-api-key': key } })
      expect(response.status).toBe(200)
      await response.arrayBuffer()
    }
    const exitCode = await app.stop()
    const usage = await keywardCli<{ total_requests: number }>(['usage', '--tenant', 'acme', id], database)
    expect({ exitCode, totalRequests: usage.total_requests }).toEqual({ exitCode: 0, totalRequests: requests })
  })

  it('serves the keys page from the installed package: its compiled JSX and its assets are in the tarball', async () => {
    writeFileSync(
      join(project, 'keys-page.mjs'),
      `import { Hono } from 'hono'
import { keyward } from 'keyward'
import { createKeysPage } from 'keyward/hono'
const kw = keyward({ database: ':memory:' })
const app = new Hono().route('/keys', createKeysPage({ keyward: kw, authenticate: () => ({ tenantId: 'acme' }) }))
const page = await app.request('/keys')
const html = await page.text()
const stylesheet = await app.request(/href="([^"]+[.]css)"/.exec(html)[1])
console.log(JSON.stringify({ status: page.status, csp: page.headers.get('content-security-policy'), heading: /<h1>([^<]+)/.exec(html)[1], stylesheet: stylesheet.status }))
await kw.close()
`,
    )
    const { stdout } = await run(process.execPath, ['keys-page.mjs'], { cwd: project, timeout: 20_000 })
    expect(JSON.parse(stdout)).toEqual({
      status: 200,
      csp: expect.stringContaining("script-src 'self'"),
      heading: 'API keys',
      stylesheet: 200,
    })
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

  it('type-checks a TypeScript consumer and the README programs against the published declarations', async () => {
    const readmeFiles = [...programs].map(([name, block]) => {
      writeFileSync(join(project, `readme-${name}.ts`), block.code)
      return `readme-${name}.ts`
    })
    writeFileSync(
      join(project, 'consumer.ts'),
      `import { Hono } from 'hono'
import { keyward, type ApiKey, type KeyObject, type KeyPage, type Result, toKeyObject } from 'keyward'
import { apiKeyAuth, createKeysPage, keysOpenApiDocument, keysRouter, requireScopes } from 'keyward/hono'
import { apiKeyAuth as expressAuth, createKeysPage as expressKeysPage } from 'keyward/express'
import { createSqliteStore } from 'keyward/store/sqlite'

const app = new Hono()
app.route('/api-keys', keysRouter)
app.route('/v1', new Hono().use(apiKeyAuth()).get('/orders', requireScopes('orders:read'), (c) => c.json({ tenant: c.var.apiKey.tenantId satisfies string })))
const kw = keyward({ store: createSqliteStore({ url: ':memory:' }) })
const created = await kw.createKey({ tenantId: 'acme' }, { name: 'typed' })
const object: KeyObject | undefined = created.ok ? toKeyObject(created.value.apiKey) : undefined
const listed: Result<KeyPage> = await kw.listKeys({ tenantId: 'acme' })
const first: ApiKey | undefined = listed.ok ? listed.value.items[0] : undefined
app.route('/settings/api-keys', createKeysPage({ keyward: kw, authenticate: (c) => ({ tenantId: c.req.header('x-tenant') ?? 'acme' }), scopes: ['orders:read'] }))
export const checks = [object, listed, first, keysOpenApiDocument().openapi satisfies string, expressAuth, expressKeysPage({ authenticate: () => null })]
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
          types: ['node'],
        },
        files: ['consumer.ts', ...readmeFiles],
      }),
    )
    const tsc = join(REPO_ROOT, 'node_modules/typescript/bin/tsc')
    // The exit code too: a tsc killed by the timeout prints nothing either.
    const result = await run(process.execPath, [tsc, '-p', project], { cwd: project, timeout: 110_000 }).then(
      ({ stdout }) => ({ code: 0, stdout }),
      (error: { code?: number | string; stdout?: string }) => ({ code: error.code, stdout: error.stdout }),
    )
    expect(result).toEqual({ code: 0, stdout: '' })
  }, 120_000)

  // Issue 13: a consumer of keyward/hono with skipLibCheck: false got 73 errors, from drizzle-orm's
  // dialects and a missing @types/better-sqlite3. The entry points a web app imports must not drag
  // driver or ORM declarations in: these consumers compile strictly with what such an app installs
  // (@types/node, and @types/express for Express), and never read a driver's or drizzle's .d.ts.
  it.each([
    ['keyward/hono', 'strict-hono', STRICT_HONO_CONSUMER],
    ['keyward/express', 'strict-express', STRICT_EXPRESS_CONSUMER],
  ])(
    'type-checks a strict consumer of keyward and %s without skipLibCheck, reading no driver or ORM types',
    async (_entry, name, source) => {
      for (const absent of ['@types/better-sqlite3', '@types/pg'])
        expect(existsSync(join(project, 'node_modules', absent)), absent).toBe(false)
      writeFileSync(join(project, `${name}.ts`), source)
      const config = join(project, `tsconfig.${name}.json`)
      writeFileSync(
        config,
        JSON.stringify({
          compilerOptions: {
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            target: 'ES2022',
            strict: true,
            skipLibCheck: false,
            noEmit: true,
            types: ['node'],
          },
          files: [`${name}.ts`],
        }),
      )
      const tsc = join(REPO_ROOT, 'node_modules/typescript/bin/tsc')
      const compile = (...flags: string[]) =>
        run(process.execPath, [tsc, '-p', config, ...flags], { cwd: project, timeout: 110_000, maxBuffer: 16 * 1024 * 1024 }).then(
          ({ stdout }) => ({ code: 0, stdout }),
          (error: { code?: number | string; stdout?: string }) => ({ code: error.code, stdout: error.stdout }),
        )
      expect(await compile()).toEqual({ code: 0, stdout: '' })
      const files = await compile('--listFilesOnly')
      expect(files.code).toBe(0)
      const dragged = (files.stdout ?? '')
        .split('\n')
        .filter((file) => /node_modules\/(?:drizzle-orm|better-sqlite3|pg|ioredis|@types\/(?:better-sqlite3|pg))\//.test(file))
      expect(dragged).toEqual([])
    },
    240_000,
  )
})

/** A Hono app using only `keyward` and `keyward/hono`, the typed client included. */
const STRICT_HONO_CONSUMER = `import { Hono } from 'hono'
import { hc } from 'hono/client'
import { type ApiKey, type KeyObject, keyward, type Result, type KeyPage, toKeyObject, type VerifiedKey } from 'keyward'
import { apiKeyAuth, createKeysRouter, keysOpenApiDocument, requireScopes } from 'keyward/hono'

const kw = keyward({ database: './keys.db' })
const router = createKeysRouter({ keyward: kw })
const app = new Hono()
app.route('/api-keys', router)
app.route(
  '/v1',
  new Hono().use(apiKeyAuth({ keyward: kw })).get('/orders', requireScopes('orders:read'), (c) => {
    const key: VerifiedKey = c.var.apiKey
    return c.json({ tenant: key.tenantId })
  }),
)
const client = hc<typeof router>('http://localhost/api-keys')
export const firstPage = client.index.$get({ query: { limit: '10' } })
const created = await kw.createKey({ tenantId: 'acme' }, { name: 'typed' })
export const object: KeyObject | undefined = created.ok ? toKeyObject(created.value.apiKey) : undefined
export const apiKey: ApiKey | undefined = created.ok ? created.value.apiKey : undefined
export const listed: Result<KeyPage> = await kw.listKeys({ tenantId: 'acme' })
export const version: string = keysOpenApiDocument().openapi
export default app
`

/** An Express app using only `keyward` and `keyward/express`. */
const STRICT_EXPRESS_CONSUMER = `import express from 'express'
import { keyward, type VerifiedKey } from 'keyward'
import { apiKeyAuth, createKeysRouter, requireScopes, withApiKey } from 'keyward/express'

const kw = keyward({ database: './keys.db' })
const app = express()
app.use('/api-keys', createKeysRouter({ keyward: kw, authenticate: (req: express.Request) => (req.get('x-tenant') ? { tenantId: 'acme' } : null) }))
app.use('/v1', apiKeyAuth({ keyward: kw }))
app.get(
  '/v1/orders',
  requireScopes('orders:read'),
  withApiKey((_req: express.Request, res: express.Response, key) => {
    const verified: VerifiedKey = key
    res.json({ tenant: verified.tenantId })
  }),
)
app.get('/v1/me', (req, res) => {
  res.json({ id: req.apiKey?.id ?? null })
})
export default app
`
