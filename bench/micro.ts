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
import type { Keyward } from '../src/core/keyward.js'
import { keyward } from '../src/index.js'
import { createSqliteStore } from '../src/store/sqlite/index.js'
import { seedSqlite } from './fixtures.js'
import { log } from './log.js'
import type { Options } from './options.js'
import { fixed, median, table, thousands } from './stats.js'

const YIELD_EVERY = 10_000
const TARGET = 2

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
    if (options.json !== undefined) {
      writeFileSync(options.json, `${JSON.stringify({ options, micro: { minimal, verifyFast: verify, ratios, differences } }, null, 2)}\n`)
      log(`raw figures written to ${options.json}`)
    }
  } finally {
    await kw?.close()
    rmSync(runDir, { recursive: true, force: true })
  }
}
