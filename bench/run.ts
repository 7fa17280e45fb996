/**
 * `npm run bench`: what `apiKeyAuth` costs on a real HTTP server.
 *
 * Every scenario is a real server in its own child process (bench/server.ts); the load generator
 * (autocannon, 10 connections) runs here, in the parent. The machine is noisy, so each scenario is
 * run between two runs of its baseline (bare Hono or bare Express) in every round, and reported as
 * the median over the rounds of its ratio to the mean of those two baseline runs. Nothing here is
 * a test: no figure fails a build.
 *
 *   npm run bench                 full run (about 4 minutes)
 *   npm run bench -- --quick      a short run, for a first look
 *   npm run bench -- --help       every flag
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { generateKey } from '../src/core/key-format.js'
import { cachedSqlite, type KeyFixture, seedPostgres, seedSqlite } from './fixtures.js'
import { topSelfTime } from './profile.js'
import type { ServerConfig, ServerKind, ServerStats } from './server.js'
import { fixed, LatencyRecorder, median, percentile, table, thousands } from './stats.js'

const ROOT = new URL('..', import.meta.url).pathname
const SERVER_SCRIPT = new URL('./server.ts', import.meta.url).pathname
/** keyward's default `usage.flushIntervalMs`, which the bench servers keep. */
const FLUSH_INTERVAL_MS = 1000

// ------------------------------------------------------------------------------------------------
// Options

const HELP = `Usage: npm run bench -- [options]

  --quick              2 short rounds (about 1 minute) instead of the full run
  --rounds <n>         measured rounds per scenario              (default 10; quick 2)
  --duration <s>       seconds per run, whole                    (default 1)
  --warmup <s>         warm-up seconds per server before round 1 (default 2; quick 1)
  --connections <n>    concurrent connections                    (default 10)
  --large <n>          keys in the large store                   (default 1000000)
  --small <n>          keys in the small store                   (default 1000)
  --only <ids>         run only these scenarios (comma-separated; baselines are added)
  --skip <ids>         leave these scenarios out
  --pg-url <url>       PostgreSQL server for the bench database  (default $KEYWARD_BENCH_PG_URL
                       or postgres://postgres@127.0.0.1:5432/test; a fresh database is created and dropped)
  --cache-dir <dir>    where the seeded large SQLite store is kept between runs
                       (default <tmpdir>/keyward-bench-cache)
  --pin                pin the servers to CPU 1 and the load generator to CPU 0 (Linux taskset)
  --cpu-prof           write a V8 CPU profile per server (node --cpu-prof) and print the hottest functions
  --cpu-prof-dir <dir> where the profiles go                     (default <tmpdir>/keyward-bench-profiles/<time>)
  --json <file>        also write the raw per-round figures as JSON
  --help               this text

Scenarios:`

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '10' },
    large: { type: 'string', default: '1000000' },
    small: { type: 'string', default: '1000' },
    only: { type: 'string' },
    skip: { type: 'string' },
    'pg-url': { type: 'string', default: process.env.KEYWARD_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
    'cache-dir': { type: 'string', default: join(tmpdir(), 'keyward-bench-cache') },
    pin: { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    'cpu-prof-dir': { type: 'string' },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  allowPositionals: false,
})

function wholeNumber(value: string | undefined, fallback: number, name: string, min = 1, max = 100_000_000): number {
  if (value === undefined) return fallback
  const parsed = Number(value)
  if (!Number.isInteger(parsed) || parsed < min || parsed > max)
    throw new Error(`bench: --${name} must be a whole number from ${min} to ${max}`)
  return parsed
}

const options = {
  rounds: wholeNumber(flags.rounds, flags.quick ? 2 : 10, 'rounds', 1, 50),
  duration: wholeNumber(flags.duration, 1, 'duration', 1, 120),
  warmup: wholeNumber(flags.warmup, flags.quick ? 1 : 2, 'warmup', 0, 120),
  connections: wholeNumber(flags.connections, 10, 'connections', 1, 1000),
  large: wholeNumber(flags.large, 1_000_000, 'large', 1, 20_000_000),
  small: wholeNumber(flags.small, 1000, 'small', 1, 20_000_000),
}

// ------------------------------------------------------------------------------------------------
// Scenarios

type Presented = 'valid' | 'bad-checksum' | 'unknown' | 'none'
type StoreKind = 'small' | 'large' | 'postgres'

interface Scenario {
  id: string
  label: string
  server: ServerKind
  store?: StoreKind
  presented: Presented
  expectedStatus: number
  /** The scenario run before and after this one in every round, whose figures it is divided by. */
  reference?: string
  /** A second comparison (1M keys vs 1k keys). */
  compareTo?: string
  /** Run only when named in --only. */
  optional?: boolean
}

/** In the order they are printed and measured (each member between two runs of its reference). */
const SCENARIOS: Scenario[] = [
  { id: 'hono-bare', label: 'Hono, bare', server: 'hono-bare', presented: 'none', expectedStatus: 200 },
  {
    id: 'hono-empty',
    label: 'Hono + empty middleware (floor)',
    server: 'hono-empty',
    presented: 'none',
    expectedStatus: 200,
    reference: 'hono-bare',
  },
  {
    id: 'hono-header',
    label: 'Hono + middleware reading the header',
    server: 'hono-header',
    presented: 'unknown',
    expectedStatus: 200,
    reference: 'hono-bare',
  },
  {
    id: 'hono-floor',
    label: 'Hono + header, SHA-256, Map hit (minimal key check)',
    server: 'hono-floor',
    presented: 'unknown',
    expectedStatus: 200,
    reference: 'hono-bare',
  },
  {
    id: 'hono-valid',
    label: 'Hono + apiKeyAuth, valid key',
    server: 'hono-auth',
    store: 'small',
    presented: 'valid',
    expectedStatus: 200,
    reference: 'hono-bare',
  },
  {
    id: 'hono-valid-large',
    label: 'Hono + apiKeyAuth, valid key, large store',
    server: 'hono-auth',
    store: 'large',
    presented: 'valid',
    expectedStatus: 200,
    reference: 'hono-bare',
    compareTo: 'hono-valid',
  },
  {
    id: 'hono-bad-checksum',
    label: 'Hono + apiKeyAuth, bad checksum',
    server: 'hono-auth',
    store: 'small',
    presented: 'bad-checksum',
    expectedStatus: 401,
    reference: 'hono-bare',
  },
  {
    id: 'hono-unknown',
    label: 'Hono + apiKeyAuth, unknown key',
    server: 'hono-auth',
    store: 'small',
    presented: 'unknown',
    expectedStatus: 401,
    reference: 'hono-bare',
  },
  {
    id: 'hono-postgres',
    label: 'Hono + apiKeyAuth, valid key, PostgreSQL',
    server: 'hono-auth',
    store: 'postgres',
    presented: 'valid',
    expectedStatus: 200,
    reference: 'hono-bare',
  },
  { id: 'express-bare', label: 'Express, bare', server: 'express-bare', presented: 'none', expectedStatus: 200 },
  {
    id: 'express-empty',
    label: 'Express + empty middleware (floor)',
    server: 'express-empty',
    presented: 'none',
    expectedStatus: 200,
    reference: 'express-bare',
    optional: true,
  },
  {
    id: 'express-valid',
    label: 'Express + apiKeyAuth, valid key',
    server: 'express-auth',
    store: 'small',
    presented: 'valid',
    expectedStatus: 200,
    reference: 'express-bare',
  },
]

interface Target {
  scenario: string
  text: string
  check: (figures: Map<string, Figures>) => boolean | undefined
}

const TARGETS: Target[] = [
  { scenario: 'hono-valid', text: 'valid key ≥ 0.70× bare Hono', check: (f) => atLeast(f.get('hono-valid')?.ratio, 0.7) },
  { scenario: 'hono-valid', text: 'valid key p99 ≤ 2 ms', check: (f) => atMost(f.get('hono-valid')?.p99, 2) },
  { scenario: 'hono-bad-checksum', text: 'bad checksum ≥ 0.75× bare Hono', check: (f) => atLeast(f.get('hono-bad-checksum')?.ratio, 0.75) },
  {
    scenario: 'hono-valid-large',
    text: 'large store within 10 % of the small one',
    check: (f) => {
      const ratio = f.get('hono-valid-large')?.comparison
      return ratio === undefined || Number.isNaN(ratio) ? undefined : Math.abs(ratio - 1) <= 0.1
    },
  },
  { scenario: 'express-valid', text: 'Express valid key ≥ 0.80× bare Express', check: (f) => atLeast(f.get('express-valid')?.ratio, 0.8) },
]

function atLeast(value: number | undefined, bound: number): boolean | undefined {
  return value === undefined || Number.isNaN(value) ? undefined : value >= bound
}

function atMost(value: number | undefined, bound: number): boolean | undefined {
  return value === undefined || Number.isNaN(value) ? undefined : value <= bound
}

// ------------------------------------------------------------------------------------------------
// Child processes: always killed, also on errors and Ctrl-C

interface Running {
  scenario: Scenario
  child: ChildProcess
  port: number
  headers: Record<string, string>
  /** 2xx answers the load generator saw from this server, and in how many runs (warm-up included). */
  seen2xx: number
  runs: number
}

const children = new Set<ChildProcess>()
const cleanups: (() => Promise<void>)[] = []
let currentLoad: autocannon.Instance | undefined
let interrupted = false
let shuttingDown: Promise<void> | undefined

function killAll(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  children.clear()
}

process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true
    log(`\n${signal}: stopping the servers and cleaning up`)
    currentLoad?.stop()
    void shutDown(130)
  })
}

/** Stops every server, runs the cleanups (the PostgreSQL database, the run folder) once, exits. */
function shutDown(code: number): Promise<void> {
  shuttingDown ??= (async () => {
    await Promise.allSettled([...children].map((child) => stopServer(child)))
    killAll()
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((error) => log(`cleanup failed: ${messageOf(error)}`))
    // Stray handles (a PostgreSQL socket, a timer) must not keep a finished bench alive.
    process.exit(code)
  })()
  return shuttingDown
}

function startServer(
  scenario: Scenario,
  config: ServerConfig,
  profileDir: string | undefined,
): Promise<{ child: ChildProcess; port: number }> {
  const nodeArgs = ['--import', 'tsx']
  // One folder per server: node also profiles the module-loader thread, into a file of its own.
  if (profileDir !== undefined) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${join(profileDir, scenario.id)}`)
  const command = flags.pin ? 'taskset' : process.execPath
  const args = flags.pin ? ['-c', '1', process.execPath, ...nodeArgs, SERVER_SCRIPT] : [...nodeArgs, SERVER_SCRIPT]
  const env: NodeJS.ProcessEnv = { ...process.env, KEYWARD_BENCH_SERVER: JSON.stringify(config) }
  // The bench hashes keys with plain SHA-256, as seeded: a pepper in the environment must not leak in.
  delete env.KEYWARD_PEPPER
  delete env.KEYWARD_DATABASE_URL
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  // A closed IPC channel (the server died) surfaces where it is used; never as an unhandled event.
  child.on('error', (error) => log(`${scenario.id}: ${error.message}`))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('did not start within 60 s')), 60_000)
    const onEarlyExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(new Error(`exited (${signal ?? code}) before listening`))
    const fail = (error: Error) => {
      clearTimeout(timer)
      child.off('exit', onEarlyExit)
      child.kill('SIGKILL')
      reject(error)
    }
    child.once('exit', onEarlyExit)
    child.on('message', (message: { type: string; port?: number; message?: string }) => {
      if (message.type === 'ready' && typeof message.port === 'number') {
        clearTimeout(timer)
        child.off('exit', onEarlyExit)
        resolve({ child, port: message.port })
      }
      if (message.type === 'failed') fail(new Error(message.message ?? 'failed'))
    })
  })
}

/** Sends a request over IPC and waits for the next `stats` answer. */
function askStats(child: ChildProcess, type: 'stats' | 'finish', timeoutMs = 15_000): Promise<ServerStats> {
  return new Promise((resolve, reject) => {
    if (!child.connected) return reject(new Error('the server is gone'))
    const done = (error?: Error | null, stats?: ServerStats) => {
      clearTimeout(timer)
      child.off('message', onMessage)
      if (stats !== undefined) resolve(stats)
      else reject(error ?? new Error('no answer'))
    }
    const timer = setTimeout(() => done(new Error(`no answer to ${type} within ${timeoutMs} ms`)), timeoutMs)
    const onMessage = (message: { type: string; stats?: ServerStats }) => {
      if (message.type === 'stats' && message.stats !== undefined) done(null, message.stats)
    }
    child.on('message', onMessage)
    child.send({ type }, (error) => {
      if (error) done(error)
    })
  })
}

/** Asks the server to close (so a CPU profile is written), then kills it if it does not exit. */
function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      resolve()
    }, 10_000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    if (child.connected) child.send({ type: 'stop' }, (error) => error && child.kill('SIGTERM'))
    else child.kill('SIGTERM')
  })
}

// ------------------------------------------------------------------------------------------------
// Load

/** One run: one scenario driven for `--duration` seconds. */
interface RunFigures {
  rps: number
  /** Server CPU time (user + system) per request, µs. */
  cpuPerRequest: number
  p50: number
  p99: number
  requests: number
  statuses: Record<string, number>
  errors: number
}

async function load(running: Running, seconds: number): Promise<RunFigures> {
  const before = await askStats(running.child, 'stats')
  const figures = await drive(running, seconds)
  running.runs++
  for (const [code, count] of Object.entries(figures.statuses)) if (code.startsWith('2')) running.seen2xx += count
  const after = await askStats(running.child, 'stats')
  figures.cpuPerRequest = (after.cpuUs - before.cpuUs) / Math.max(1, figures.requests)
  return figures
}

function drive(running: Running, seconds: number): Promise<RunFigures> {
  const latencies = new LatencyRecorder()
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: `http://127.0.0.1:${running.port}/v1/ping`,
        connections: options.connections,
        duration: seconds,
        headers: running.headers,
      },
      (error, result) => {
        currentLoad = undefined
        if (error) return reject(error)
        const sorted = latencies.sorted()
        const statuses: Record<string, number> = {}
        for (const [code, entry] of Object.entries(result.statusCodeStats ?? {})) statuses[code] = entry.count ?? 0
        resolve({
          rps: result.requests.total / result.duration,
          cpuPerRequest: Number.NaN,
          p50: percentile(sorted, 50),
          p99: percentile(sorted, 99),
          requests: result.requests.total,
          statuses,
          errors: result.errors,
        })
      },
    )
    currentLoad = instance
    // Exact latencies (autocannon's own histogram keeps whole milliseconds only).
    instance.on('response', (_client, _status, _bytes, responseTime) => latencies.add(responseTime))
  })
}

// ------------------------------------------------------------------------------------------------
// Run

interface Figures {
  runs: RunFigures[]
  rps: number
  p50: number
  p99: number
  /** Median of per-round ratios to the reference runs around each run. */
  ratio: number
  /** Per round (NaN where a round had no figure). */
  ratios: number[]
  /** Median server CPU µs per request, and its median per-round ratio to the reference's. */
  cpuPerRequest: number
  cpuRatio: number
  /** Median of per-round ratios to `compareTo`. */
  comparison: number
  statusProblem?: string
}

function log(line: string): void {
  process.stderr.write(`${line}\n`)
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function headersFor(presented: Presented, fixture: KeyFixture | undefined): Record<string, string> {
  if (presented === 'none') return {}
  if (presented === 'unknown') return { 'x-api-key': generateKey('sk', 'live').key }
  if (fixture === undefined) throw new Error('a key is needed')
  if (presented === 'valid') return { 'x-api-key': fixture.key }
  // Same shape, last checksum character changed: rejected by arithmetic alone.
  const last = fixture.key.at(-1) === 'A' ? 'B' : 'A'
  return { 'x-api-key': fixture.key.slice(0, -1) + last }
}

function selectScenarios(): Scenario[] {
  const only = flags.only
    ?.split(',')
    .map((id) => id.trim())
    .filter(Boolean)
  const skip = new Set(
    flags.skip
      ?.split(',')
      .map((id) => id.trim())
      .filter(Boolean),
  )
  for (const id of [...(only ?? []), ...skip]) {
    if (!SCENARIOS.some((scenario) => scenario.id === id))
      throw new Error(`bench: no scenario "${id}" (${SCENARIOS.map((s) => s.id).join(', ')})`)
  }
  const wanted = new Set(only ?? SCENARIOS.filter((scenario) => !scenario.optional).map((scenario) => scenario.id))
  // A ratio needs its reference in the same rounds.
  for (const id of [...wanted]) {
    const scenario = SCENARIOS.find((candidate) => candidate.id === id)
    if (scenario?.reference) wanted.add(scenario.reference)
    if (scenario?.compareTo) wanted.add(scenario.compareTo)
  }
  return SCENARIOS.filter((scenario) => wanted.has(scenario.id) && !skip.has(scenario.id))
}

async function main(): Promise<void> {
  if (flags.help) {
    process.stdout.write(
      `${HELP}${SCENARIOS.map((s) => `\n  ${s.id.padEnd(20)} ${s.label}${s.optional ? ' (only with --only)' : ''}`).join('')}\n`,
    )
    return
  }
  const runStartedAt = Date.now()
  const selected = selectScenarios()
  const pending = new Map<string, string>()
  const runDir = mkdtempSync(join(tmpdir(), 'keyward-bench-'))
  cleanups.push(async () => rmSync(runDir, { recursive: true, force: true }))
  let profileDir: string | undefined
  if (flags['cpu-prof']) {
    profileDir = flags['cpu-prof-dir'] ?? join(tmpdir(), 'keyward-bench-profiles', new Date().toISOString().replace(/[:.]/g, '-'))
    mkdirSync(profileDir, { recursive: true })
  }
  if (flags.pin) execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' })

  log(
    `keyward bench: ${selected.length} scenarios, ${options.rounds} rounds × ${options.duration} s, warm-up ${options.warmup} s, ${options.connections} connections`,
  )
  log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}${flags.pin ? ', servers pinned to CPU 1' : ''}`)

  // Stores ---------------------------------------------------------------------------------------
  const fixtures = new Map<string, { database: string; fixture: KeyFixture }>()
  let large: { path: string; fixture: KeyFixture } | undefined
  let postgres: { url: string; fixture: KeyFixture } | undefined | Error
  for (const scenario of selected) {
    try {
      if (scenario.server === 'express-auth' && !existsSync(join(ROOT, 'src/express/index.ts'))) {
        throw new Error('pending: src/express/index.ts does not exist yet (issue 5)')
      }
      if (scenario.store === 'small') {
        // Each server its own small store, so no two servers share a write lock or a change log.
        const path = join(runDir, `${scenario.id}.db`)
        fixtures.set(scenario.id, { database: path, fixture: seedSqlite(path, options.small) })
      }
      if (scenario.store === 'large') {
        large ??= cachedSqlite(flags['cache-dir'] as string, options.large, log)
        fixtures.set(scenario.id, { database: large.path, fixture: large.fixture })
      }
      if (scenario.store === 'postgres') {
        if (postgres === undefined) {
          try {
            log(`seeding ${options.small.toLocaleString('en-US')} keys into a fresh PostgreSQL database ...`)
            const seeded = await seedPostgres(flags['pg-url'] as string, options.small)
            cleanups.push(seeded.drop)
            postgres = seeded
          } catch (error) {
            const reason = messageOf(error).split('\n')[0] ?? ''
            // The store stub throws "not yet" until issue 6 lands; anything else is a real failure.
            postgres = new Error(`${/not yet/i.test(reason) ? 'pending' : 'not run'}: the PostgreSQL store did not open (${reason})`)
          }
        }
        if (postgres instanceof Error) throw postgres
        fixtures.set(scenario.id, { database: postgres.url, fixture: postgres.fixture })
      }
    } catch (error) {
      pending.set(scenario.id, messageOf(error))
    }
  }

  // Servers --------------------------------------------------------------------------------------
  log('starting servers ...')
  const running = new Map<string, Running>()
  const started = await Promise.allSettled(
    selected
      .filter((scenario) => !pending.has(scenario.id))
      .map(async (scenario) => {
        const stored = fixtures.get(scenario.id)
        const headers = headersFor(scenario.presented, stored?.fixture)
        const config: ServerConfig = {
          kind: scenario.server,
          database: stored?.database,
          presentedKey: headers['x-api-key'],
          keyId: stored?.fixture.keyId,
          tenantId: stored?.fixture.tenantId,
        }
        try {
          const { child, port } = await startServer(scenario, config, profileDir)
          running.set(scenario.id, { scenario, child, port, headers, seen2xx: 0, runs: 0 })
        } catch (error) {
          const reason = messageOf(error)
          const isAdapterMissing = /Cannot find module|ERR_MODULE_NOT_FOUND|not yet/.test(reason)
          pending.set(scenario.id, `${isAdapterMissing ? 'pending' : 'not run'}: the server did not start (${reason.split('\n')[0]})`)
        }
      }),
  )
  for (const result of started) if (result.status === 'rejected') throw result.reason

  // One request each: a server that answers the wrong status is reported, not measured.
  for (const [id, server] of running) {
    const response = await fetch(`http://127.0.0.1:${server.port}/v1/ping`, { headers: server.headers })
    const body = await response.text()
    if (response.ok) server.seen2xx++
    if (response.status !== server.scenario.expectedStatus) {
      pending.set(id, `not run: answered ${response.status} instead of ${server.scenario.expectedStatus}: ${body.slice(0, 200)}`)
      await stopServer(server.child)
      running.delete(id)
    }
  }
  // A scenario is only measured between runs of its reference.
  for (const scenario of selected) {
    if (running.has(scenario.id) && scenario.reference !== undefined && !running.has(scenario.reference)) {
      pending.set(scenario.id, `not run: its reference ${scenario.reference} did not start`)
      await stopServer((running.get(scenario.id) as Running).child)
      running.delete(scenario.id)
    }
  }
  const order = selected.filter((scenario) => running.has(scenario.id))
  for (const [id, reason] of pending) log(`  ${id}: ${reason}`)
  if (order.length === 0) throw new Error('bench: no server started')

  // Warm-up, then interleaved rounds -------------------------------------------------------------
  if (options.warmup > 0) {
    log(`warm-up: ${options.warmup} s per server`)
    for (const scenario of order) await load(running.get(scenario.id) as Running, options.warmup)
  }
  const measured = await measureRounds(order, running)
  if (interrupted) return

  // Usage writes: a final flush, then what each server wrote ------------------------------------
  const writes = new Map<string, ServerStats>()
  for (const scenario of order) {
    if (scenario.store === undefined) continue
    const server = running.get(scenario.id) as Running
    try {
      writes.set(scenario.id, await askStats(server.child, 'finish'))
    } catch (error) {
      log(`  ${scenario.id}: no usage figures (${messageOf(error)})`)
    }
  }
  await Promise.all([...running.values()].map((server) => stopServer(server.child)))

  // Report ---------------------------------------------------------------------------------------
  const figures = summarize(order, measured)
  const elapsedS = (Date.now() - runStartedAt) / 1000
  const report = [
    '',
    `keyward bench — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, node ${process.version}, ${cpus().length} CPUs, ${options.connections} connections,`,
    `${options.rounds} interleaved rounds × ${options.duration} s after ${options.warmup} s warm-up (${elapsedS.toFixed(0)} s in all); small store ${thousands(options.small)} keys, large ${thousands(options.large)}.`,
    `versions: ${['hono', '@hono/node-server', 'express'].map((name) => `${name} ${installedVersion(name)}`).join(', ')}`,
    `command: npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    'Each round measures reference, A, reference, B, reference, ... (B and A swap every other round). req/s, p50, p99: medians over the rounds;',
    '× ref: median over the rounds of the ratio to the mean of the two reference runs just before and after (so a drift in machine load cancels).',
    'Compare scenarios by × ref, not by req/s: each req/s median comes from different moments of a machine whose load changes.',
    "CPU µs/req: the server process's CPU time (user + system) per request, a second view of cost (it too rises when the machine is busy).",
    '',
    throughputTable(figures, pending),
    '',
    writesTable(order, writes, running),
    '',
    targetsReport(figures, writes, pending, running),
  ].join('\n')
  process.stdout.write(`${report}\n`)

  if (profileDir !== undefined) printProfiles(profileDir)
  if (flags.json !== undefined) {
    writeFileSync(
      flags.json,
      `${JSON.stringify({ options, pending: Object.fromEntries(pending), figures: Object.fromEntries(figures), writes: Object.fromEntries(writes) }, null, 2)}\n`,
    )
    log(`raw figures written to ${flags.json}`)
  }
}

/** What one scenario got: its runs, and per round its ratios to the reference runs around it. */
interface Measured {
  runs: RunFigures[]
  /** Indexed by round. */
  ratios: number[]
  cpuRatios: number[]
}

/**
 * The rounds. Every scenario runs right between two runs of its reference (bare Hono, bare
 * Express), and is divided by their mean: a change in machine load between runs cancels to first
 * order. The others' order reverses every other round, so no scenario always follows the same one.
 */
async function measureRounds(order: Scenario[], running: Map<string, Running>): Promise<Map<string, Measured>> {
  const measured = new Map<string, Measured>(order.map((scenario) => [scenario.id, { runs: [], ratios: [], cpuRatios: [] }]))
  const references = order.filter((scenario) => scenario.reference === undefined)
  for (let round = 0; round < options.rounds && !interrupted; round++) {
    const line: string[] = []
    for (const reference of references) {
      const members = order.filter((scenario) => scenario.reference === reference.id)
      const sequence = round % 2 === 0 ? members : [...members].reverse()
      const run = async (scenario: Scenario) => {
        const figures = await load(running.get(scenario.id) as Running, options.duration)
        measured.get(scenario.id)?.runs.push(figures)
        line.push(`${scenario.id} ${thousands(figures.rps)}`)
        return figures
      }
      let before = await run(reference)
      for (const scenario of sequence) {
        const own = await run(scenario)
        const after = await run(reference)
        const entry = measured.get(scenario.id) as Measured
        entry.ratios[round] = own.rps / ((before.rps + after.rps) / 2)
        entry.cpuRatios[round] = own.cpuPerRequest / ((before.cpuPerRequest + after.cpuPerRequest) / 2)
        before = after
      }
    }
    log(`round ${round + 1}/${options.rounds}: ${line.join(', ')}`)
  }
  return measured
}

function summarize(order: Scenario[], measured: Map<string, Measured>): Map<string, Figures> {
  const figures = new Map<string, Figures>()
  for (const scenario of order) {
    const own = measured.get(scenario.id) as Measured
    const compared = scenario.compareTo === undefined ? undefined : measured.get(scenario.compareTo)
    // Both bracketed by the same reference in the same round: their quotient compares them directly.
    const comparison =
      compared === undefined ? [] : own.ratios.map((ratio, round) => ratio / (compared.ratios[round] ?? Number.NaN)).filter(Number.isFinite)
    const statusProblem = own.runs.flatMap((run) =>
      Object.entries(run.statuses).filter(([code]) => Number(code) !== scenario.expectedStatus),
    )
    const errors = own.runs.reduce((sum, run) => sum + run.errors, 0)
    figures.set(scenario.id, {
      runs: own.runs,
      rps: median(own.runs.map((run) => run.rps)),
      p50: median(own.runs.map((run) => run.p50)),
      p99: median(own.runs.map((run) => run.p99)),
      ratio: median(own.ratios.filter(Number.isFinite)),
      ratios: own.ratios,
      cpuPerRequest: median(own.runs.map((run) => run.cpuPerRequest)),
      cpuRatio: median(own.cpuRatios.filter(Number.isFinite)),
      comparison: median(comparison),
      statusProblem:
        statusProblem.length > 0 || errors > 0
          ? `unexpected: ${statusProblem.map(([code, count]) => `${count}× ${code}`).join(', ')}${errors > 0 ? ` ${errors} connection errors` : ''}`
          : undefined,
    })
  }
  return figures
}

function throughputTable(figures: Map<string, Figures>, pending: Map<string, string>): string {
  const rows: string[][] = [['scenario', 'req/s', 'p50 ms', 'p99 ms', '× ref', 'min–max × ref', 'CPU µs/req', 'CPU × ref', 'ref']]
  for (const scenario of SCENARIOS) {
    const figure = figures.get(scenario.id)
    const label = scenario.id === 'hono-valid-large' ? `${scenario.label} (${thousands(options.large)} keys)` : scenario.label
    if (figure === undefined) {
      const reason = pending.get(scenario.id)
      if (reason !== undefined) rows.push([label, reason.startsWith('pending') ? 'pending' : 'not run', '', '', '', '', '', '', ''])
      continue
    }
    const finite = figure.ratios.filter(Number.isFinite)
    const spread = finite.length > 0 ? `${fixed(Math.min(...finite), 2)}–${fixed(Math.max(...finite), 2)}` : ''
    const reference = scenario.reference === undefined ? '(reference)' : scenario.reference
    rows.push([
      label,
      thousands(figure.rps),
      fixed(figure.p50, 2),
      fixed(figure.p99, 2),
      scenario.reference ? fixed(figure.ratio, 2) : '1.00',
      spread,
      fixed(figure.cpuPerRequest, 1),
      scenario.reference ? fixed(figure.cpuRatio, 2) : '1.00',
      reference,
    ])
    if (scenario.compareTo !== undefined) {
      rows.push([
        `  ↳ vs ${scenario.compareTo} (${thousands(options.small)} keys)`,
        '',
        '',
        '',
        fixed(figure.comparison, 2),
        '',
        '',
        '',
        scenario.compareTo,
      ])
    }
    if (figure.statusProblem !== undefined) rows.push([`  ↳ ${figure.statusProblem}`, '', '', '', '', '', '', '', ''])
  }
  const notes = [...pending].map(([id, reason]) => `  ${id}: ${reason}`)
  return [table(rows), ...(notes.length > 0 ? ['', 'Not measured:', ...notes] : [])].join('\n')
}

function writesTable(order: Scenario[], writes: Map<string, ServerStats>, running: Map<string, Running>): string {
  const rows: string[][] = [
    [
      'database writes (usage)',
      'client 2xx',
      'counted',
      'writes',
      'SQL stmts',
      'writes/1k req',
      'stmts/1k req',
      'min gap ms',
      'stored = counted',
      'last_used_at',
    ],
  ]
  if (writes.size === 0) return 'database writes: no server with a store was measured.'
  for (const scenario of order) {
    const stats = writes.get(scenario.id)
    if (stats === undefined) continue
    const perThousand = (count: number | null) =>
      count === null ? 'n/a' : stats.usageRequests === 0 ? '0' : fixed((count / stats.usageRequests) * 1000, 3)
    const check = stats.check
    const server = running.get(scenario.id)
    rows.push([
      scenario.id,
      server === undefined ? '?' : thousands(server.seen2xx),
      `${thousands(stats.usageRequests)}${server !== undefined && !countedEverything(server, stats) ? ' (!)' : ''}`,
      String(stats.usageWrites),
      stats.sqlUsageStatements === null ? 'n/a' : String(stats.sqlUsageStatements),
      perThousand(stats.usageWrites),
      perThousand(stats.sqlUsageStatements),
      minimumGap(stats.writeTimesMs),
      check === undefined
        ? '?'
        : check.storedRequests === check.countedRequests
          ? `yes (${thousands(check.storedRequests)})`
          : `NO: ${check.storedRequests} ≠ ${check.countedRequests}`,
      check?.lastUsedAt === null || check === undefined
        ? stats.usageRequests === 0
          ? '—'
          : 'NOT WRITTEN'
        : check.lastUsedAt >= check.startedAt
          ? check.lastUsedAt.slice(11, 23)
          : `STALE ${check.lastUsedAt}`,
    ])
  }
  return [
    table(rows),
    `writes = bulk usage writes (one transaction each, every key buffered since the last flush); flush interval ${FLUSH_INTERVAL_MS} ms;`,
    'SQL stmts = write statements the driver sent for those writes (one each: the daily counts and last_used_at go in one statement);',
    'min gap = shortest time between two writes of one server; "stored = counted": the requests the server counted, read back from the store after a final flush.',
    `client 2xx = valid-key answers the load generator saw; the server counts those plus any still in flight when a run stopped (at most ${options.connections} a run; (!) marks a count outside that).`,
  ].join('\n')
}

/** Every 2xx the client saw was counted, and at most the requests in flight at each run's end more. */
function countedEverything(server: Running, stats: ServerStats): boolean {
  return stats.usageRequests >= server.seen2xx && stats.usageRequests <= server.seen2xx + options.connections * server.runs
}

/** The version node_modules holds, as the servers load it. */
function installedVersion(name: string): string {
  const manifest = new URL(`../node_modules/${name}/package.json`, import.meta.url)
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version
}

function minimumGap(times: number[]): string {
  if (times.length < 2) return '—'
  let gap = Number.POSITIVE_INFINITY
  for (let i = 1; i < times.length; i++) gap = Math.min(gap, (times[i] as number) - (times[i - 1] as number))
  return String(gap)
}

function targetsReport(
  figures: Map<string, Figures>,
  writes: Map<string, ServerStats>,
  pending: Map<string, string>,
  running: Map<string, Running>,
): string {
  const verdict = (ok: boolean | undefined) => (ok === undefined ? 'n/a ' : ok ? 'PASS' : 'MISS')
  const lines = ['Targets (issues 4, 5):']
  for (const target of TARGETS) {
    const reason = pending.get(target.scenario)
    const ok = target.check(figures)
    const figure = figures.get(target.scenario)
    let measured = ''
    if (figure !== undefined) {
      if (target.text.includes('p99')) measured = `p99 ${fixed(figure.p99, 2)} ms`
      else if (target.scenario === 'hono-valid-large') measured = `${fixed(figure.comparison, 3)}× the small store`
      else measured = `${fixed(figure.ratio, 3)}×`
    }
    lines.push(
      `  ${reason !== undefined && ok === undefined ? 'PEND' : verdict(ok)}  ${target.text.padEnd(46)} ${measured || (reason ?? '')}`,
    )
  }
  // ≤ 1 write per key per flush interval: every write carries at most one row per key and day,
  // and no two writes of a server come closer than (almost) one interval.
  const written = [...writes.entries()].filter(([, stats]) => stats.usageWrites > 0)
  if (written.length > 0) {
    const gaps = written.flatMap(([, stats]) => stats.writeTimesMs.slice(1).map((time, i) => time - (stats.writeTimesMs[i] as number)))
    const minGap = gaps.length > 0 ? Math.min(...gaps) : Number.POSITIVE_INFINITY
    const maxRowsPerWrite = Math.max(...written.map(([, stats]) => stats.usageRows / stats.usageWrites))
    const ok = minGap >= FLUSH_INTERVAL_MS * 0.9 && maxRowsPerWrite <= 1
    const perThousand = Math.max(...written.map(([, stats]) => (stats.usageWrites / stats.usageRequests) * 1000))
    lines.push(
      `  ${verdict(ok)}  ${'≤ 1 write per key per flush interval'.padEnd(46)} ${fixed(perThousand, 3)} writes/1k requests at most, min gap ${Number.isFinite(minGap) ? minGap : '—'} ms, ${fixed(maxRowsPerWrite, 2)} rows per write per key`,
    )
    const statementsPerWrite = Math.max(
      ...written.map(([, stats]) => (stats.sqlUsageStatements === null ? Number.NaN : stats.sqlUsageStatements / stats.usageWrites)),
    )
    lines.push(
      `  ${verdict(Number.isNaN(statementsPerWrite) ? undefined : statementsPerWrite === 1)}  ${'one SQL statement per usage write'.padEnd(46)} ${fixed(statementsPerWrite, 2)} statements per write at most`,
    )
    const exact = [...writes.entries()].every(([id, stats]) => {
      const server = running.get(id)
      const stored = stats.check !== undefined && stats.check.storedRequests === stats.check.countedRequests
      const lastUsed = stats.usageRequests === 0 || (stats.check?.lastUsedAt ?? '') >= (stats.check?.startedAt ?? '~')
      return stored && lastUsed && server !== undefined && countedEverything(server, stats)
    })
    lines.push(
      `  ${verdict(exact)}  ${'usage counts and last_used_at written'.padEnd(46)} ${writes.size} servers checked after a final flush`,
    )
  }
  const floor = figures.get('hono-empty')
  if (floor !== undefined) lines.push(`  info  ${'floor: empty middleware / bare Hono'.padEnd(46)} ${fixed(floor.ratio, 2)}×`)
  const expressFloor = figures.get('express-empty')
  if (expressFloor !== undefined)
    lines.push(`  info  ${'floor: empty middleware / bare Express'.padEnd(46)} ${fixed(expressFloor.ratio, 2)}×`)
  const valid = figures.get('hono-valid')
  // Both bracketed by bare Hono in the same rounds: their quotient compares them directly.
  const versus = (a: Figures, b: Figures) =>
    median(a.ratios.map((ratio, round) => ratio / (b.ratios[round] ?? Number.NaN)).filter(Number.isFinite))
  const header = figures.get('hono-header')
  if (header !== undefined) lines.push(`  info  ${'floor: header-reading middleware / bare Hono'.padEnd(46)} ${fixed(header.ratio, 2)}×`)
  const anchor = figures.get('hono-floor')
  if (anchor !== undefined)
    lines.push(`  info  ${'floor: minimal key check / bare Hono'.padEnd(46)} ${fixed(anchor.ratio, 2)}× (issue 4 measured about 0.75×)`)
  if (valid !== undefined && header !== undefined)
    lines.push(
      `  info  ${'apiKeyAuth valid / header-reading middleware'.padEnd(46)} ${fixed(versus(valid, header), 2)}× (what keyward adds to reading a header)`,
    )
  if (valid !== undefined && anchor !== undefined)
    lines.push(`  info  ${'apiKeyAuth valid / minimal key check'.padEnd(46)} ${fixed(versus(valid, anchor), 2)}×`)
  const pg = figures.get('hono-postgres')
  const bare = figures.get('hono-bare')
  if (bare !== undefined && valid !== undefined) {
    lines.push(
      `  info  ${'p99: valid key vs bare Hono'.padEnd(46)} ${fixed(valid.p99, 2)} ms vs ${fixed(bare.p99, 2)} ms (the bare app's p99 bounds what any middleware can show)`,
    )
  }
  if (pg !== undefined)
    lines.push(`  info  ${'PostgreSQL valid key / bare Hono'.padEnd(46)} ${fixed(pg.ratio, 2)}× (p99 ${fixed(pg.p99, 2)} ms)`)
  return lines.join('\n')
}

function printProfiles(profileDir: string): void {
  process.stdout.write(`\nCPU profiles in ${profileDir} (main thread, self time, idle excluded):\n`)
  for (const scenario of readdirSync(profileDir).sort()) {
    // The main thread's file is the one whose thread id is 0: CPU.<date>.<time>.<pid>.0.<seq>.cpuprofile
    const main = readdirSync(join(profileDir, scenario)).find((name) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(name))
    if (main === undefined) continue
    process.stdout.write(`\n${scenario} (${join(scenario, main)})\n${topSelfTime(join(profileDir, scenario, main), 14).join('\n')}\n`)
  }
}

try {
  await main()
} catch (error) {
  if (!interrupted) {
    log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
    process.exitCode = 1
  }
}
await shutDown(interrupted ? 130 : ((process.exitCode as number | undefined) ?? 0))
