/**
 * `npm run bench`: what `apiKeyAuth` costs on a real HTTP server.
 *
 * Every scenario (bench/scenarios.ts) is a real server in its own child process (bench/server.ts,
 * started by bench/children.ts); the load generator (autocannon, 10 connections) runs here, in the
 * parent. The machine is noisy, so each scenario is run between two runs of its baseline (bare
 * Hono or bare Express) in every round, and reported as the median over the rounds of its ratio
 * to the mean of those two baseline runs (bench/measure.ts). The report (bench/report.ts,
 * bench/targets.ts) goes to stdout, progress to stderr. Nothing here is a test: no figure fails a
 * build.
 *
 *   npm run bench                 full run (about 6 minutes)
 *   npm run bench -- --quick      a short run, for a first look
 *   npm run bench -- --micro      the in-process micro-benchmark of a cache hit
 *   npm run bench -- --help       every flag
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { askStats, onShutDown, shutDown, startServer, stopServer } from './children.js'
import {
  cachedKeySet,
  cachedPostgres,
  cachedSqlite,
  type KeyFixture,
  type KeySet,
  type PostgresFixture,
  seedPostgres,
  seedSqlite,
} from './fixtures.js'
import { log, messageOf } from './log.js'
import { load, measureRounds, type Running, stopLoad, summarize } from './measure.js'
import { runMicro } from './micro.js'
import { HELP, type Options, parseOptions } from './options.js'
import { header, printProfiles, throughputTable, writesTable } from './report.js'
import { allScenarios, needsKeySet, presentationFor, probeKey, type Scenario, selectScenarios } from './scenarios.js'
import type { ServerConfig, ServerStats } from './server.js'
import { targetsReport } from './targets.js'

const ROOT = new URL('..', import.meta.url).pathname

let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true
    log(`\n${signal}: stopping the servers and cleaning up`)
    stopLoad()
    void shutDown(130)
  })
}

/** Where each scenario's server finds its keys. */
interface Stored {
  database: string
  fixture: KeyFixture
  /** Every key of the store is real and presented: the usage check covers the whole store. */
  allKeysPresented?: boolean
}

/** Seeds (or finds cached) the store of every selected scenario; a store that cannot be made marks its scenario. */
async function prepareStores(
  selected: Scenario[],
  options: Options,
  runDir: string,
  pending: Map<string, string>,
): Promise<{ stores: Map<string, Stored>; keySet: KeySet | undefined }> {
  const stores = new Map<string, Stored>()
  const keySet = selected.some(needsKeySet) ? cachedKeySet(options.cacheDir, options.missKeys, log) : undefined
  let large: { path: string; fixture: KeyFixture } | undefined
  let postgresProblem: Error | undefined
  const postgres = async (seed: () => Promise<PostgresFixture>): Promise<PostgresFixture> => {
    if (postgresProblem !== undefined) throw postgresProblem
    try {
      const seeded = await seed()
      onShutDown(seeded.drop)
      return seeded
    } catch (error) {
      // One unreachable server explains every PostgreSQL row; the rest of the bench goes on.
      postgresProblem = new Error(`not run: the PostgreSQL store did not open (${messageOf(error).split('\n')[0] ?? ''})`)
      throw postgresProblem
    }
  }
  for (const scenario of selected) {
    try {
      if (scenario.server === 'express-auth' && !existsSync(join(ROOT, 'src/express/index.ts'))) {
        throw new Error('pending: src/express/index.ts does not exist yet (issue 5)')
      }
      if (scenario.store === 'small') {
        // Each server its own small store, so no two servers share a write lock or a change log.
        const path = join(runDir, `${scenario.id}.db`)
        stores.set(scenario.id, { database: path, fixture: seedSqlite(path, options.small) })
      }
      if (scenario.store === 'large') {
        large ??= cachedSqlite(options.cacheDir, options.large, log)
        stores.set(scenario.id, { database: large.path, fixture: large.fixture })
      }
      if (scenario.store === 'active') {
        const active = cachedSqlite(options.cacheDir, options.missKeys, log, keySet)
        stores.set(scenario.id, { database: active.path, fixture: active.fixture, allKeysPresented: true })
      }
      if (scenario.store === 'postgres') {
        log(`${scenario.id}: seeding ${options.small.toLocaleString('en-US')} keys into a fresh PostgreSQL database ...`)
        const seeded = await postgres(() => seedPostgres(options.pgUrl, options.small))
        stores.set(scenario.id, { database: seeded.url, fixture: seeded.fixture })
      }
      if (scenario.store === 'active-postgres') {
        const seeded = await postgres(() => cachedPostgres(options.pgUrl, keySet as KeySet, log))
        stores.set(scenario.id, { database: seeded.url, fixture: seeded.fixture, allKeysPresented: true })
      }
    } catch (error) {
      pending.set(scenario.id, messageOf(error))
    }
  }
  return { stores, keySet }
}

/** Starts the servers, checks each answers its expected status once; returns those that do. */
async function startServers(
  selected: Scenario[],
  stores: Map<string, Stored>,
  keySet: KeySet | undefined,
  options: Options,
  profileDir: string | undefined,
  pending: Map<string, string>,
): Promise<Map<string, Running>> {
  log('starting servers ...')
  const running = new Map<string, Running>()
  const started = await Promise.allSettled(
    selected
      .filter((scenario) => !pending.has(scenario.id))
      .map(async (scenario) => {
        const stored = stores.get(scenario.id)
        const presentation = presentationFor(scenario.presented, stored?.fixture, keySet)
        const config: ServerConfig = {
          kind: scenario.server,
          database: stored?.database,
          presentedKey: probeKey(presentation),
          ...(stored?.allKeysPresented === undefined
            ? { keyId: stored?.fixture.keyId, tenantId: stored?.fixture.tenantId }
            : { checkAllKeys: true }),
          cacheMax: scenario.cacheMax,
          controls: scenario.controls,
          redis: scenario.redis ? options.redisUrl : undefined,
          hostOnError: scenario.hostOnError,
        }
        try {
          const { child, port } = await startServer(scenario.id, config, { profileDir, pin: options.pin })
          running.set(scenario.id, { scenario, child, port, presentation, seen2xx: 0, runs: 0, rss: [] })
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
    const key = probeKey(server.presentation)
    const response = await fetch(`http://127.0.0.1:${server.port}/v1/ping`, { headers: key === undefined ? {} : { 'x-api-key': key } })
    const body = await response.text()
    if (response.ok) server.seen2xx++
    if (!server.scenario.expectedStatuses.includes(response.status)) {
      pending.set(
        id,
        `not run: answered ${response.status} instead of ${server.scenario.expectedStatuses.join(' or ')}: ${body.slice(0, 200)}`,
      )
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
  return running
}

async function main(options: Options): Promise<void> {
  const scenarios = allScenarios(options)
  if (options.help) {
    process.stdout.write(`${HELP}${scenarios.map((s) => `\n  ${s.id.padEnd(26)} ${s.label}`).join('')}\n`)
    return
  }
  if (options.micro) return runMicro(options, () => interrupted)
  const runStartedAt = Date.now()
  const selected = selectScenarios(scenarios, options.only, options.skip)
  const pending = new Map<string, string>()
  const runDir = mkdtempSync(join(tmpdir(), 'keyward-bench-'))
  onShutDown(async () => rmSync(runDir, { recursive: true, force: true }))
  let profileDir: string | undefined
  if (options.cpuProf) {
    profileDir = options.cpuProfDir ?? join(tmpdir(), 'keyward-bench-profiles', new Date().toISOString().replace(/[:.]/g, '-'))
    mkdirSync(profileDir, { recursive: true })
  }
  if (options.pin) execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' })

  log(
    `keyward bench: ${selected.length} scenarios, ${options.rounds} rounds × ${options.duration} s, warm-up ${options.warmup} s, ${options.connections} connections`,
  )
  log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}${options.pin ? ', servers pinned to CPU 1' : ''}`)

  const { stores, keySet } = await prepareStores(selected, options, runDir, pending)
  const running = await startServers(selected, stores, keySet, options, profileDir, pending)
  const order = selected.filter((scenario) => running.has(scenario.id))
  for (const [id, reason] of pending) log(`  ${id}: ${reason}`)
  if (order.length === 0) throw new Error('bench: no server started')

  // Warm-up, then interleaved rounds -------------------------------------------------------------
  if (options.warmup > 0) {
    log(`warm-up: ${options.warmup} s per server`)
    for (const scenario of order) await load(running.get(scenario.id) as Running, options.warmup, options)
  }
  const measured = await measureRounds(order, running, { ...options, interrupted: () => interrupted })
  if (interrupted) return

  // Usage writes: a final flush, then what each server wrote ------------------------------------
  const writes = new Map<string, ServerStats>()
  for (const scenario of order) {
    if (scenario.store === undefined) continue
    const server = running.get(scenario.id) as Running
    try {
      // Summing 200,000 keys' usage takes a while on a busy PostgreSQL.
      writes.set(scenario.id, await askStats(server.child, 'finish', 120_000))
    } catch (error) {
      log(`  ${scenario.id}: no usage figures (${messageOf(error)})`)
    }
  }
  await Promise.all([...running.values()].map((server) => stopServer(server.child)))

  // Report ---------------------------------------------------------------------------------------
  const figures = summarize(order, measured)
  const report = [
    '',
    header(options, (Date.now() - runStartedAt) / 1000),
    '',
    throughputTable(scenarios, figures, pending, running, options),
    '',
    writesTable(order, writes, running, options),
    '',
    targetsReport(figures, writes, pending, running, options),
  ].join('\n')
  process.stdout.write(`${report}\n`)

  if (profileDir !== undefined) printProfiles(profileDir)
  if (options.json !== undefined) {
    const rss = Object.fromEntries([...running].map(([id, server]) => [id, server.rss]))
    writeFileSync(
      options.json,
      `${JSON.stringify({ options, pending: Object.fromEntries(pending), figures: Object.fromEntries(figures), writes: Object.fromEntries(writes), rss }, null, 2)}\n`,
    )
    log(`raw figures written to ${options.json}`)
  }
}

try {
  await main(parseOptions())
} catch (error) {
  if (!interrupted) {
    log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
    process.exitCode = 1
  }
}
await shutDown(interrupted ? 130 : ((process.exitCode as number | undefined) ?? 0))
