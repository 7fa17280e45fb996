/**
 * One benchmark server, run as a child process by bench/run.ts (never imported). It builds the app
 * of one scenario, listens on a loopback port and talks to the parent over the IPC channel:
 *
 *   child → parent  { type: 'ready', port } | { type: 'failed', message }
 *   parent → child  { type: 'stats' } | { type: 'finish' } | { type: 'stop' }
 *   child → parent  { type: 'stats', stats } (answers 'stats' and 'finish')
 *
 * Every route answers `GET /v1/ping` with the same `ok`, so the only difference between scenarios
 * is the middleware in front of it. Usage writes are counted by wrapping the store's bulk write
 * (`recordUsage`), and every INSERT/UPDATE/DELETE statement the driver executes (better-sqlite3's
 * `prepare`, node-postgres' `Client#query`). Each `stats` answer carries the process's CPU time
 * and resident set size, so unbounded memory growth shows between runs.
 */
import { hash } from 'node:crypto'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks'
import type Database from 'better-sqlite3'
import type { RequestHandler } from 'express'
import type { Keyward } from '../src/core/keyward.js'
import type { KeyStore } from '../src/core/store.js'
import { keyward } from '../src/index.js'
import { OFF_THREAD_USAGE_ROWS, type SqliteStore } from '../src/store/sqlite/index.js'

export type ServerKind =
  | 'hono-bare'
  | 'hono-empty'
  | 'hono-header'
  | 'hono-floor'
  | 'hono-auth'
  | 'express-bare'
  | 'express-empty'
  | 'express-auth'

export interface ServerConfig {
  kind: ServerKind
  /** For `*-auth`: an SQLite file path or a `postgres://` URL. */
  database?: string
  /** For `hono-floor`: the key the load generator presents, known to its in-memory map. */
  presentedKey?: string
  /** The key whose usage is checked at the end. */
  keyId?: string
  tenantId?: string
  /**
   * Every key of the store is presented (the beyond-the-cache stores): check the usage of the
   * whole store instead of `keyId`'s.
   */
  checkAllKeys?: boolean
  /** keyward's `cache.max` (its default when absent). */
  cacheMax?: number
  /** Give the checked key a rate limit or credits that never run out (issue 14's scenarios). */
  controls?: 'rate-limit' | 'credits'
  /** Count limits and credits in Redis at this URL. */
  redis?: string
  /** The host's `app.onError` answers an `HTTPException` with its own response (Hono's documented pattern). */
  hostOnError?: boolean
}

/** What the parent reads between rounds; counters only grow. */
export interface ServerStats {
  /** `recordUsage` calls: one bulk write (one transaction) per flush that had something to write. */
  usageWrites: number
  /** Rows handed to `recordUsage` (one per key and day). */
  usageRows: number
  /** Rows that repeated a key and day already in the same write (there should be none). */
  usageDuplicateRows: number
  /**
   * Of `usageWrites`, those keyward's SQLite store hands to its writer thread (flushes of
   * `OFF_THREAD_USAGE_ROWS` rows or more): one statement each on the thread's own connection,
   * which `sqlUsageStatements` (this connection's statements) does not see.
   */
  offThreadWrites: number
  /** Requests those writes counted. */
  usageRequests: number
  /** SQL INSERT/UPDATE/DELETE statements executed (null for a server without a store). */
  sqlWriteStatements: number | null
  /** Of those, the ones run inside `recordUsage`. */
  sqlUsageStatements: number | null
  /** When each usage write started (ms since the server started). */
  writeTimesMs: number[]
  /**
   * The longest usage write (wall ms) and its rows. An SQLite write is synchronous: the event loop
   * serves no request meanwhile. A PostgreSQL write waits on the network, serving requests.
   */
  longestWrite: { ms: number; rows: number }
  /** CPU time this process has used (user + system, µs). */
  cpuUs: number
  /** `process.memoryUsage().rss` when the stats were taken, bytes. */
  rssBytes: number
  /**
   * The longest the event loop was held from when the server was ready until 'finish' (ms,
   * `monitorEventLoopDelay`):
   * a synchronous pause (a usage write on the main thread, a long GC) delays every request that
   * arrives during it, which a closed-loop load generator with 10 connections barely shows.
   */
  eventLoopMaxMs: number
  /** Filled by 'finish': what the store holds for the checked key after a final flush. */
  check?: UsageCheck
}

export interface UsageCheck {
  /** Requests recorded for the checked keys since this server started, read back from the store. */
  storedRequests: number
  /** Requests this server counted and wrote. */
  countedRequests: number
  /** The checked key's `last_used_at` (checking a whole store: the latest of its keys'). */
  lastUsedAt: string | null
  startedAt: string
}

type Message = { type: 'stats' } | { type: 'finish' } | { type: 'stop' }

const stats: ServerStats = {
  usageWrites: 0,
  usageRows: 0,
  usageDuplicateRows: 0,
  offThreadWrites: 0,
  usageRequests: 0,
  sqlWriteStatements: null,
  sqlUsageStatements: null,
  writeTimesMs: [],
  longestWrite: { ms: 0, rows: 0 },
  cpuUs: 0,
  rssBytes: 0,
  eventLoopMaxMs: 0,
}
const startedAt = new Date()
let loopDelay: IntervalHistogram | undefined
/** Usage writes in progress (PostgreSQL's are asynchronous, so a count rather than a flag). */
let usageWritesInFlight = 0
/** A write, including a data-modifying CTE (`with v as (...) insert ...`). */
const WRITE_STATEMENT = /^\s*(?:insert|update|delete|replace|merge)\b|^\s*with\b[\s\S]*\b(?:insert|update|delete)\b/i

function countWriteStatement(): void {
  stats.sqlWriteStatements = (stats.sqlWriteStatements ?? 0) + 1
  if (usageWritesInFlight > 0) stats.sqlUsageStatements = (stats.sqlUsageStatements ?? 0) + 1
}

function snapshot(): ServerStats {
  const cpu = process.cpuUsage()
  stats.cpuUs = cpu.user + cpu.system
  stats.rssBytes = process.memoryUsage().rss
  stats.eventLoopMaxMs = loopDelay === undefined ? 0 : loopDelay.max / 1e6
  return stats
}

function send(message: unknown): void {
  process.send?.(message)
}

/** Counts INSERT/UPDATE/DELETE statements run through this connection. Reads are left untouched. */
function countSqlWrites(client: Database.Database): Database.Database {
  stats.sqlWriteStatements = 0
  stats.sqlUsageStatements = 0
  const prepare = client.prepare.bind(client)
  client.prepare = ((source: string) => {
    const statement = prepare(source)
    if (WRITE_STATEMENT.test(source)) {
      const run = statement.run.bind(statement)
      statement.run = ((...params: unknown[]) => {
        countWriteStatement()
        return run(...params)
      }) as typeof statement.run
    }
    return statement
  }) as typeof client.prepare
  return client
}

/** Counts INSERT/UPDATE/DELETE statements sent by any node-postgres client in this process. */
async function countPostgresWrites(): Promise<void> {
  stats.sqlWriteStatements = 0
  stats.sqlUsageStatements = 0
  const { default: pg } = await import('pg')
  const query = pg.Client.prototype.query as (...args: unknown[]) => unknown
  pg.Client.prototype.query = function countingQuery(this: unknown, ...args: unknown[]) {
    const first = args[0]
    const text =
      typeof first === 'string' ? first : typeof (first as { text?: unknown })?.text === 'string' ? (first as { text: string }).text : ''
    if (WRITE_STATEMENT.test(text)) countWriteStatement()
    return query.apply(this, args)
  } as typeof pg.Client.prototype.query
}

/** Wraps the store's one usage write; every other method is the store's own. */
function countUsageWrites(store: KeyStore, offThread: boolean): KeyStore {
  const recordUsage = store.recordUsage.bind(store)
  store.recordUsage = async (increments) => {
    stats.usageWrites++
    stats.usageRows += increments.length
    const seen = new Set<string>()
    for (const increment of increments) {
      stats.usageRequests += increment.count
      const row = `${increment.keyId} ${increment.day}`
      if (seen.has(row)) stats.usageDuplicateRows++
      seen.add(row)
    }
    if (offThread && seen.size >= OFF_THREAD_USAGE_ROWS) stats.offThreadWrites++
    const started = performance.now()
    stats.writeTimesMs.push(Math.round(started))
    usageWritesInFlight++
    try {
      return await recordUsage(increments)
    } finally {
      usageWritesInFlight--
      const ms = performance.now() - started
      if (ms > stats.longestWrite.ms) stats.longestWrite = { ms, rows: increments.length }
    }
  }
  return store
}

async function openKeyward(
  database: string,
  cacheMax: number | undefined,
  redis?: string,
): Promise<{ kw: Keyward; store: KeyStore; sqlite: Database.Database | undefined; close: () => Promise<void> }> {
  const isPostgres = /^postgres(ql)?:\/\//.test(database)
  let sqlite: Database.Database | undefined
  let opened: KeyStore
  if (isPostgres) {
    await countPostgresWrites()
    const { createPostgresStore } = await import('../src/store/postgres/index.js')
    opened = await createPostgresStore({ url: database })
  } else {
    const { createSqliteStore } = await import('../src/store/sqlite/index.js')
    // Opened by keyward, as `keyward()` opens its own file (memory map, page cache, the usage
    // writer thread); this connection's write statements are counted from here on.
    opened = createSqliteStore({ url: database })
    sqlite = countSqlWrites((opened as SqliteStore).db.$client)
  }
  const store = countUsageWrites(opened, !isPostgres)
  // Everything else is keyward's default configuration: cache on, usage flushed every second.
  const kw = keyward({
    store,
    ...(cacheMax !== undefined && { cache: { max: cacheMax } }),
    ...(redis !== undefined && { redis, limiter: { keyPrefix: `keyward-bench:${process.pid}:` } }),
  })
  await kw.ready()
  const close = async () => {
    // Closes the store, and with it the file keyward opened (which checkpoints the WAL).
    await kw.close()
  }
  return { kw, store, sqlite, close }
}

/** Loads a module that may not exist yet (adapters written in parallel), without tsc resolving it. */
async function importOptional<T>(relative: string): Promise<T> {
  const specifier = new URL(relative, import.meta.url).href
  return (await import(specifier)) as T
}

async function honoApp(kind: ServerKind, kw: Keyward | undefined, presentedKey: string | undefined, hostOnError = false) {
  const { Hono } = await import('hono')
  const { HTTPException } = await import('hono/http-exception')
  const { apiKeyAuth } = await import('../src/hono/index.js')
  const app = new Hono()
  if (hostOnError) app.onError((error, c) => (error instanceof HTTPException ? error.getResponse() : c.text('error', 500)))
  if (kind === 'hono-empty') {
    app.use('/v1/*', async (_c, next) => {
      await next()
    })
  }
  if (kind === 'hono-header') {
    // What any header-based auth pays before its own work (Hono's bearerAuth reads it the same way).
    app.use('/v1/*', async (c, next) => {
      if (!c.req.header('x-api-key')) return c.text('missing', 401)
      await next()
    })
  }
  if (kind === 'hono-floor') {
    // The least a key check can do (read the header, SHA-256, one Map lookup): issue 4's anchor.
    const known = new Map([[hash('sha256', presentedKey ?? '', 'hex'), true]])
    app.use('/v1/*', async (c, next) => {
      const presented = c.req.header('x-api-key')
      if (!presented || !known.has(hash('sha256', presented, 'hex'))) return c.text('unauthorized', 401)
      await next()
    })
  }
  if (kind === 'hono-auth') app.use('/v1/*', apiKeyAuth({ keyward: kw }))
  app.get('/v1/ping', (c) => c.text('ok'))
  const { serve } = await import('@hono/node-server')
  return new Promise<Server>((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(server as Server))
  })
}

async function expressApp(kind: ServerKind, kw: Keyward | undefined) {
  const { default: express } = await import('express')
  const app = express()
  if (kind === 'express-empty') app.use('/v1', (_req, _res, next) => next())
  if (kind === 'express-auth') {
    const adapter = await importOptional<{ apiKeyAuth: (options: { keyward?: Keyward }) => RequestHandler }>('../src/express/index.ts')
    app.use('/v1', adapter.apiKeyAuth({ keyward: kw }))
  }
  app.get('/v1/ping', (_req, res) => {
    res.send('ok')
  })
  return new Promise<Server>((resolve, reject) => {
    const server = app.listen(0, '127.0.0.1', (error?: Error) => (error ? reject(error) : resolve(server)))
  })
}

/** What the store holds for the checked keys: requests counted so far, and the latest use. */
interface UsageReader {
  totalRequests(): Promise<number>
  latestUse(): Promise<Date | null>
}

/**
 * One key through the store's own reads; a whole store (200,000 keys) through two plain SQL
 * aggregates, instead of 200,000 ids through the store's per-key reads, which would cost the
 * server seconds of CPU (and show in its --cpu-prof profile).
 */
async function usageReader(config: ServerConfig, opened: Awaited<ReturnType<typeof openKeyward>>): Promise<UsageReader | undefined> {
  if (config.checkAllKeys) {
    const totalSql = 'select coalesce(sum(request_count), 0) as total from api_key_usage'
    // A key's last use lives in api_key_usage (see latestUse in src/store/conditions.ts).
    const latestSql = 'select max(last_used_at) as latest from api_key_usage'
    const toDate = (value: unknown) => (value === null || value === undefined ? null : new Date(value as number | string | Date))
    if (opened.sqlite !== undefined) {
      const sqlite = opened.sqlite
      return {
        totalRequests: async () => Number((sqlite.prepare(totalSql).get() as { total: number }).total),
        latestUse: async () => toDate((sqlite.prepare(latestSql).get() as { latest: unknown }).latest),
      }
    }
    const { default: pg } = await import('pg')
    const query = async (text: string) => {
      const client = new pg.Client({ connectionString: config.database })
      await client.connect()
      try {
        return (await client.query(text)).rows[0] as Record<string, unknown>
      } finally {
        await client.end()
      }
    }
    return {
      totalRequests: async () => Number((await query(totalSql)).total),
      latestUse: async () => toDate((await query(latestSql)).latest),
    }
  }
  const { keyId, tenantId } = config
  if (keyId === undefined || tenantId === undefined) return undefined
  return {
    totalRequests: () => opened.store.totalRequests([keyId]),
    latestUse: async () => (await opened.store.findKey(tenantId, keyId))?.lastUsedAt ?? null,
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(process.env.KEYWARD_BENCH_SERVER ?? '{}') as ServerConfig
  const needsKeys = config.kind.endsWith('-auth')
  if (needsKeys && config.database === undefined) throw new Error(`${config.kind} needs a database`)
  const opened = needsKeys ? await openKeyward(config.database as string, config.cacheMax, config.redis) : undefined
  if (opened !== undefined && config.controls !== undefined && config.keyId !== undefined && config.tenantId !== undefined) {
    // Generous enough never to refuse: the scenario measures the cost of counting, not of refusing.
    const controls =
      config.controls === 'rate-limit'
        ? { rateLimits: [{ name: 'bench', limit: 1_000_000_000, windowMs: 1000 }] }
        : { credits: { remaining: 1_000_000_000_000 } }
    const updated = await opened.kw.updateKey({ tenantId: config.tenantId }, config.keyId, controls)
    if (!updated.ok) throw new Error(`bench: could not set the key's controls: ${updated.error.detail}`)
  }
  const usage = opened === undefined ? undefined : await usageReader(config, opened)
  const baseline = (await usage?.totalRequests()) ?? 0
  const server = config.kind.startsWith('hono')
    ? await honoApp(config.kind, opened?.kw, config.presentedKey, config.hostOnError)
    : await expressApp(config.kind, opened?.kw)

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    server.closeAllConnections?.()
    await new Promise((resolve) => server.close(resolve))
    await opened?.close()
    // process.exit (not a kill) so --cpu-prof can write its profile.
    process.exit(0)
  }
  process.on('disconnect', () => void stop())
  process.on('SIGTERM', () => void stop())
  process.on('SIGINT', () => void stop())
  process.on('message', (message: Message) => {
    if (message.type === 'stop') void stop()
    if (message.type === 'stats') send({ type: 'stats', stats: snapshot() })
    if (message.type === 'finish') {
      // The event loop's longest hold is that of serving: not the final flush and the checks below.
      loopDelay?.disable()
      void (async () => {
        try {
          if (opened !== undefined && usage !== undefined) {
            await opened.kw.flushUsage()
            const total = await usage.totalRequests()
            const lastUsedAt = await usage.latestUse()
            stats.check = {
              storedRequests: total - baseline,
              countedRequests: stats.usageRequests,
              lastUsedAt: lastUsedAt?.toISOString() ?? null,
              startedAt: startedAt.toISOString(),
            }
          }
        } catch (error) {
          // Reported as an unchecked row by the parent; the error itself goes to stderr.
          console.error('bench server: the final usage check failed:', error)
        }
        send({ type: 'stats', stats: snapshot() })
      })()
    }
  })
  loopDelay = monitorEventLoopDelay({ resolution: 5 })
  loopDelay.enable()
  send({ type: 'ready', port: (server.address() as AddressInfo).port })
}

main().catch((error: unknown) => {
  send({ type: 'failed', message: error instanceof Error ? error.message : String(error) })
  setTimeout(() => process.exit(1), 100).unref()
})
