/**
 * `npm run bench -- --micro`: what a cache hit costs in process, with no HTTP around it. A loop
 * calls `Keyward#verifyFast(key)` on a warm cache; the reference loop does the least any key check
 * can do (SHA-256 of the key with `crypto.hash`, one `Map` lookup). Both yield to the event loop
 * every 10,000 calls, so keyward's cache-sync and usage-flush timers run as in a server, and both
 * are timed by the wall clock, timers included. Rounds interleave as in the HTTP bench: minimal,
 * verifyFast, minimal, verifyFast, ..., each verifyFast run divided by the mean of the two minimal
 * runs around it.
 */
import { hash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { eq, getTableColumns, sql } from 'drizzle-orm'
import type { Keyward } from '../src/core/keyward.js'
import { keyward } from '../src/index.js'
import { verificationColumns } from '../src/store/conditions.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'
import { apiKeys } from '../src/store/sqlite/schema.js'
import { cachedKeySet, cachedSqlite, seedSqlite } from './fixtures.js'
import { log } from './log.js'
import type { Options } from './options.js'
import { fixed, median, table, thousands } from './stats.js'

const YIELD_EVERY = 10_000
const TARGET = 2
/** Store reads per run of the miss-read comparison (a read costs about 10 µs, a hit 0.5 µs). */
const READS_PER_RUN = 50_000

interface Timing {
  nsPerCall: number
  /** Calls answered from the cache with a valid key (must be every call). */
  hits: number
  /** Calls that returned a promise: the cache was not trusted (a late sync) or lost the key. */
  misses: number
}

async function timeVerifyFast(kw: Keyward, key: string, calls: number): Promise<Timing> {
  let hits = 0
  let misses = 0
  const started = process.hrtime.bigint()
  for (let done = 0; done < calls; ) {
    const end = Math.min(calls, done + YIELD_EVERY)
    for (; done < end; done++) {
      const decision = kw.verifyFast(key)
      if (decision instanceof Promise) misses++
      else if (decision.ok) hits++
    }
    await new Promise(setImmediate)
  }
  return { nsPerCall: Number(process.hrtime.bigint() - started) / calls, hits, misses }
}

async function timeMinimal(known: Map<string, string>, key: string, calls: number): Promise<Timing> {
  let hits = 0
  const started = process.hrtime.bigint()
  for (let done = 0; done < calls; ) {
    const end = Math.min(calls, done + YIELD_EVERY)
    for (; done < end; done++) if (known.get(hash('sha256', key, 'hex')) !== undefined) hits++
    await new Promise(setImmediate)
  }
  return { nsPerCall: Number(process.hrtime.bigint() - started) / calls, hits, misses: 0 }
}

export async function runMicro(options: Options, interrupted: () => boolean): Promise<void> {
  const runDir = mkdtempSync(join(tmpdir(), 'keyward-bench-micro-'))
  // The store is seeded with plain SHA-256 hashes: a pepper in the environment must not apply.
  delete process.env.KEYWARD_PEPPER
  let kw: Keyward | undefined
  try {
    const fixture = seedSqlite(join(runDir, 'micro.db'), options.small)
    // keyward's defaults otherwise: cache on (synced every 250 ms), usage counted and flushed every second.
    kw = keyward({ store: createSqliteStore({ url: join(runDir, 'micro.db') }) })
    await kw.ready()
    const first = await kw.verify(fixture.key)
    if (!first.ok) throw new Error(`bench: the seeded key does not verify (${first.code})`)
    const warm = kw.verifyFast(fixture.key)
    if (warm instanceof Promise || !warm.ok) throw new Error('bench: the seeded key is not answered from the cache')
    const known = new Map([[hash('sha256', fixture.key, 'hex'), fixture.keyId]])

    log(`micro-benchmark: ${options.rounds} rounds × ${thousands(options.calls)} calls, after one warm-up run of each`)
    await timeMinimal(known, fixture.key, options.calls)
    await timeVerifyFast(kw, fixture.key, options.calls)
    const minimal: Timing[] = [await timeMinimal(known, fixture.key, options.calls)]
    const verify: Timing[] = []
    const ratios: number[] = []
    const differences: number[] = []
    for (let round = 0; round < options.rounds && !interrupted(); round++) {
      const own = await timeVerifyFast(kw, fixture.key, options.calls)
      const after = await timeMinimal(known, fixture.key, options.calls)
      const around = ((minimal.at(-1) as Timing).nsPerCall + after.nsPerCall) / 2
      verify.push(own)
      minimal.push(after)
      ratios.push(own.nsPerCall / around)
      differences.push(own.nsPerCall - around)
      log(`round ${round + 1}/${options.rounds}: verifyFast ${fixed(own.nsPerCall, 0)} ns, minimal ${fixed(after.nsPerCall, 0)} ns`)
    }
    if (interrupted()) return

    const ratio = median(ratios)
    const misses = verify.reduce((sum, timing) => sum + timing.misses, 0)
    const wrongHits =
      verify.some((timing) => timing.hits + timing.misses !== options.calls) || minimal.some((t) => t.hits !== options.calls)
    const rows = [
      ['check', 'ns/call', '× minimal', 'min–max × minimal'],
      ['minimal check: crypto.hash SHA-256 + one Map lookup', fixed(median(minimal.map((t) => t.nsPerCall)), 0), '1.00', ''],
      [
        `Keyward#verifyFast, cache hit (SQLite store, ${thousands(options.small)} keys)`,
        fixed(median(verify.map((t) => t.nsPerCall)), 0),
        fixed(ratio, 2),
        ratios.length > 0 ? `${fixed(Math.min(...ratios), 2)}–${fixed(Math.max(...ratios), 2)}` : '',
      ],
      [`  ↳ keyward adds per call (median of same-round differences)`, fixed(median(differences), 0), '', ''],
    ]
    const verdict = !Number.isFinite(ratio) ? 'n/a ' : ratio <= TARGET ? 'PASS' : 'MISS'
    process.stdout.write(
      `${[
        '',
        `keyward micro-benchmark — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, node ${process.version}, ${cpus().length} CPUs`,
        `${options.rounds} interleaved rounds × ${thousands(options.calls)} calls after one warm-up run of each; every loop yields to the event loop`,
        `every ${thousands(YIELD_EVERY)} calls (await new Promise(setImmediate)), so keyward's cache-sync and usage-flush timers run as in a server.`,
        'ns/call: wall time per call, timers included, median over the rounds. × minimal: median over the rounds of the verifyFast run divided',
        'by the mean of the two minimal-check runs just before and after it.',
        '',
        table(rows),
        ...(misses > 0 ? [`(!) ${thousands(misses)} verifyFast calls missed the cache (a late cache sync): they are in the figure.`] : []),
        ...(wrongHits ? ['(!) some calls did not find the key: the figures do not measure a cache hit.'] : []),
        '',
        'Targets (issue 17):',
        `  ${verdict}  ${`cache hit ≤ ${TARGET}× the minimal check`.padEnd(48)} ${fixed(ratio, 3)}×`,
      ].join('\n')}\n`,
    )
    const reads = interrupted() ? undefined : missReads(options, interrupted)
    if (reads !== undefined) process.stdout.write(`\n${reads.report}\n`)
    if (options.json !== undefined) {
      writeFileSync(
        options.json,
        `${JSON.stringify({ options, micro: { minimal, verifyFast: verify, ratios, differences, missReads: reads?.timings } }, null, 2)}\n`,
      )
      log(`raw figures written to ${options.json}`)
    }
  } finally {
    await kw?.close()
    rmSync(runDir, { recursive: true, force: true })
  }
}

/**
 * What a cache miss's store read costs on SQLite, outside HTTP: the verification read
 * (`findKeyByHash`) of keys drawn at random from the beyond-the-cache store (200,000 keys, 95 MB),
 * against two references in interleaved rounds, on one connection with keyward's own pragmas:
 * - the driver alone: the same SQL through better-sqlite3, rows as arrays, nothing decoded;
 * - the read keyward made before 2026-11-30: drizzle's select of every column but the last use.
 */
function missReads(options: Options, interrupted: () => boolean): { report: string; timings: Record<string, number[]> } {
  const keySet = cachedKeySet(options.cacheDir, options.missKeys, log)
  const { path } = cachedSqlite(options.cacheDir, options.missKeys, log, keySet)
  const client = new Database(path, { readonly: true })
  try {
    client.pragma('mmap_size = 268435456')
    client.pragma('cache_size = -16384')
    const store = createSqliteStore({ database: client, migrate: false })
    const hashes = keySet.keys.map((key) => hash('sha256', key, 'hex'))
    const { lastUsedAt: _unread, ...everyColumnButLastUse } = getTableColumns(apiKeys)
    const byHash = eq(apiKeys.keyHash, sql.placeholder('keyHash'))
    const before = store.db.select(everyColumnButLastUse).from(apiKeys).where(byHash).prepare()
    const driver = client
      .prepare<[string], unknown[]>(
        store.db
          .select(verificationColumns(getTableColumns(apiKeys)))
          .from(apiKeys)
          .where(byHash)
          .toSQL().sql,
      )
      .raw()
    const variants: [string, (keyHash: string) => unknown][] = [
      ['driver', (keyHash) => driver.get(keyHash)],
      ['keyward', (keyHash) => store.findKeyByHash(keyHash)],
      ['before', (keyHash) => before.get({ keyHash })],
    ]
    const time = (read: (keyHash: string) => unknown): number => {
      let found = 0
      const started = process.hrtime.bigint()
      for (let i = 0; i < READS_PER_RUN; i++) if (read(hashes[Math.floor(Math.random() * hashes.length)] as string) != null) found++
      const ns = Number(process.hrtime.bigint() - started) / READS_PER_RUN
      if (found !== READS_PER_RUN) throw new Error(`bench: ${READS_PER_RUN - found} reads found no row`)
      return ns
    }
    for (const [, read] of variants) time(read)
    const timings: Record<string, number[]> = { driver: [], keyward: [], before: [] }
    for (let round = 0; round < options.rounds && !interrupted(); round++) {
      for (const [name, read] of variants) timings[name]?.push(time(read))
    }
    const ratio = (name: string) => median((timings[name] ?? []).map((ns, i) => ns / (timings.driver?.[i] ?? Number.NaN)))
    const ns = (name: string) => fixed(median(timings[name] ?? []), 0)
    const rows = [
      [`read of one key by hash, SQLite, a random key of ${thousands(options.missKeys)}`, 'ns/read', '× driver'],
      ['the driver alone: the same SQL, rows as arrays, nothing decoded', ns('driver'), '1.00'],
      ["keyward's verification read (findKeyByHash)", ns('keyward'), fixed(ratio('keyward'), 2)],
      ['before 2026-11-30: drizzle, every column but the last use', ns('before'), fixed(ratio('before'), 2)],
    ]
    const report = [
      `Cache-miss reads: ${timings.driver?.length ?? 0} interleaved rounds × ${thousands(READS_PER_RUN)} reads; × driver: median of same-round ratios.`,
      '',
      table(rows),
    ].join('\n')
    return { report, timings }
  } finally {
    client.close()
  }
}
