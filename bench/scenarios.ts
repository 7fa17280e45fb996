/**
 * What the bench measures: one scenario is one server (bench/server.ts), one store and one way of
 * presenting keys. Every route answers `GET /v1/ping` with the same `ok`, so the only difference
 * between scenarios is what sits in front of it.
 */
import { generateKey } from '../src/core/key-format.js'
import type { KeyFixture, KeySet } from './fixtures.js'
import type { Options } from './options.js'
import type { ServerKind } from './server.js'

/**
 * - `small`: an SQLite file of its own, `--small` keys, one of them real
 * - `large`: the cached SQLite file of `--large` keys, one of them real
 * - `postgres`: a PostgreSQL database of its own, `--small` keys, one of them real
 * - `active`, `active-postgres`: `--miss-keys` keys, every one real (the key set)
 */
export type StoreKind = 'small' | 'large' | 'postgres' | 'active' | 'active-postgres'

/**
 * What the load generator sends in `x-api-key`:
 * - `valid`: the store's real key, every request
 * - `bad-checksum`: that key with its last character changed
 * - `unknown`: one well-formed key the store does not hold
 * - `active-random`: a key drawn uniformly from the key set, per request
 * - `unknown-mix`: the valid key, or (`UNKNOWN_SHARE` of requests) a key drawn from the key set,
 *   which the small stores do not hold: well-formed, valid checksum, unknown
 */
export type Presented = 'none' | 'valid' | 'bad-checksum' | 'unknown' | 'active-random' | 'unknown-mix'

/** Of the requests in the `unknown-mix` scenarios, the share carrying an unknown key. */
export const UNKNOWN_SHARE = 0.2

export interface Scenario {
  id: string
  label: string
  server: ServerKind
  store?: StoreKind
  presented: Presented
  /** What a correct server answers; anything else is reported. */
  expectedStatuses: number[]
  /** The scenario run before and after this one in every round, whose figures it is divided by. */
  reference?: string
  /** A second comparison, to another member of the same reference (same rounds). */
  compareTo?: string
  /** The server's `cache.max` (keyward's default when absent). */
  cacheMax?: number
  /** Issue 14: the presented key gets a rate limit or credits (never exhausted), counted in process or in Redis. */
  controls?: 'rate-limit' | 'credits'
  redis?: boolean
  /** The host answers HTTPExceptions in its own `app.onError` (see bench/server.ts). */
  hostOnError?: boolean
}

/** In the order they are printed and measured (each member between two runs of its reference). */
export function allScenarios(options: Pick<Options, 'large' | 'small' | 'missKeys' | 'missCache'>): Scenario[] {
  const keys = (count: number) => count.toLocaleString('en-US')
  const hono = { reference: 'hono-bare' }
  const auth = { server: 'hono-auth' as const, ...hono }
  const beyondCache = `${keys(options.missKeys)} keys at random, cache ${keys(options.missCache)}`
  return [
    { id: 'hono-bare', label: 'Hono, bare', server: 'hono-bare', presented: 'none', expectedStatuses: [200] },
    {
      id: 'hono-empty',
      label: 'Hono + empty middleware (floor)',
      server: 'hono-empty',
      presented: 'none',
      expectedStatuses: [200],
      ...hono,
    },
    {
      id: 'hono-header',
      label: 'Hono + middleware reading the header',
      server: 'hono-header',
      presented: 'unknown',
      expectedStatuses: [200],
      ...hono,
    },
    {
      id: 'hono-floor',
      label: 'Hono + header, SHA-256, Map hit (minimal key check)',
      server: 'hono-floor',
      presented: 'unknown',
      expectedStatuses: [200],
      ...hono,
    },
    {
      id: 'hono-valid',
      label: 'Hono + apiKeyAuth, valid key',
      store: 'small',
      presented: 'valid',
      expectedStatuses: [200],
      compareTo: 'hono-empty',
      ...auth,
    },
    {
      id: 'hono-valid-large',
      label: `Hono + apiKeyAuth, valid key, large store (${keys(options.large)} keys)`,
      store: 'large',
      presented: 'valid',
      expectedStatuses: [200],
      compareTo: 'hono-valid',
      ...auth,
    },
    {
      id: 'hono-bad-checksum',
      label: 'Hono + apiKeyAuth, bad checksum',
      store: 'small',
      presented: 'bad-checksum',
      expectedStatuses: [401],
      compareTo: 'hono-empty',
      ...auth,
    },
    {
      id: 'hono-bad-checksum-onerror',
      label: 'Hono + apiKeyAuth, bad checksum, host onError',
      store: 'small',
      presented: 'bad-checksum',
      expectedStatuses: [401],
      compareTo: 'hono-empty',
      hostOnError: true,
      ...auth,
    },
    { id: 'hono-unknown', label: 'Hono + apiKeyAuth, unknown key', store: 'small', presented: 'unknown', expectedStatuses: [401], ...auth },
    {
      id: 'hono-postgres',
      label: 'Hono + apiKeyAuth, valid key, PostgreSQL',
      store: 'postgres',
      presented: 'valid',
      expectedStatuses: [200],
      ...auth,
    },
    {
      // The load generator's own cost of drawing a key per request: bare Hono ignores the header.
      id: 'hono-bare-keys',
      label: 'Hono, bare, a random key per request (load generator check)',
      server: 'hono-bare',
      presented: 'active-random',
      expectedStatuses: [200],
      ...hono,
    },
    {
      id: 'hono-miss-sqlite',
      label: `Hono + apiKeyAuth, ${beyondCache}, SQLite`,
      store: 'active',
      presented: 'active-random',
      expectedStatuses: [200],
      compareTo: 'hono-bare-keys',
      cacheMax: options.missCache,
      ...auth,
    },
    {
      id: 'hono-miss-postgres',
      label: `Hono + apiKeyAuth, ${beyondCache}, PostgreSQL`,
      store: 'active-postgres',
      presented: 'active-random',
      expectedStatuses: [200],
      compareTo: 'hono-bare-keys',
      cacheMax: options.missCache,
      ...auth,
    },
    {
      id: 'hono-unknown-mix',
      label: `Hono + apiKeyAuth, ${UNKNOWN_SHARE * 100} % unknown keys, SQLite`,
      store: 'small',
      presented: 'unknown-mix',
      expectedStatuses: [200, 401],
      compareTo: 'hono-valid',
      ...auth,
    },
    {
      id: 'hono-unknown-mix-postgres',
      label: `Hono + apiKeyAuth, ${UNKNOWN_SHARE * 100} % unknown keys, PostgreSQL`,
      store: 'postgres',
      presented: 'unknown-mix',
      expectedStatuses: [200, 401],
      compareTo: 'hono-postgres',
      ...auth,
    },
    ...(['rate-limit', 'credits'] as const).flatMap((controls) =>
      [false, true].map(
        (redis): Scenario => ({
          id: `hono-${controls === 'rate-limit' ? 'limit' : 'credits'}-${redis ? 'redis' : 'local'}`,
          label: `Hono + apiKeyAuth, valid key with ${controls === 'rate-limit' ? 'one rate limit' : 'credits'}, ${redis ? 'Redis' : 'in process'}`,
          store: 'small',
          presented: 'valid',
          expectedStatuses: [200],
          compareTo: 'hono-valid',
          controls,
          redis,
          ...auth,
        }),
      ),
    ),
    { id: 'express-bare', label: 'Express, bare', server: 'express-bare', presented: 'none', expectedStatuses: [200] },
    {
      id: 'express-empty',
      label: 'Express + empty middleware (floor)',
      server: 'express-empty',
      presented: 'none',
      expectedStatuses: [200],
      reference: 'express-bare',
    },
    {
      id: 'express-valid',
      label: 'Express + apiKeyAuth, valid key',
      server: 'express-auth',
      store: 'small',
      presented: 'valid',
      expectedStatuses: [200],
      reference: 'express-bare',
      compareTo: 'express-empty',
    },
  ]
}

/** `--only` and `--skip` applied; a ratio needs its reference (and comparison) in the same rounds. */
export function selectScenarios(all: readonly Scenario[], only: readonly string[] | undefined, skip: readonly string[]): Scenario[] {
  for (const id of [...(only ?? []), ...skip]) {
    if (!all.some((scenario) => scenario.id === id)) throw new Error(`bench: no scenario "${id}" (${all.map((s) => s.id).join(', ')})`)
  }
  const wanted = new Set(only ?? all.map((scenario) => scenario.id))
  for (const id of [...wanted]) {
    const scenario = all.find((candidate) => candidate.id === id)
    if (scenario?.reference) wanted.add(scenario.reference)
    if (scenario?.compareTo) wanted.add(scenario.compareTo)
  }
  // A comparison's own reference too (hono-miss-* → hono-bare-keys → hono-bare).
  for (const id of [...wanted]) {
    const reference = all.find((candidate) => candidate.id === id)?.reference
    if (reference) wanted.add(reference)
  }
  const skipped = new Set(skip)
  return all.filter((scenario) => wanted.has(scenario.id) && !skipped.has(scenario.id))
}

/** Whether a scenario needs the key set (its store is made of it, or it draws keys from it). */
export function needsKeySet(scenario: Scenario): boolean {
  return (
    scenario.store === 'active' ||
    scenario.store === 'active-postgres' ||
    scenario.presented === 'active-random' ||
    scenario.presented === 'unknown-mix'
  )
}

/** What the load generator sends in `x-api-key`. */
export type Presentation =
  | { kind: 'none' }
  | { kind: 'fixed'; key: string }
  /** Per request: with probability `share` a key drawn uniformly from `pool`, else `otherwise`. */
  | { kind: 'drawn'; pool: readonly string[]; share: number; otherwise: string | undefined; probe: string }

export function presentationFor(presented: Presented, fixture: KeyFixture | undefined, keySet: KeySet | undefined): Presentation {
  if (presented === 'none') return { kind: 'none' }
  if (presented === 'unknown') return { kind: 'fixed', key: generateKey('sk', 'live').key }
  if (presented === 'active-random' || presented === 'unknown-mix') {
    if (keySet === undefined) throw new Error('bench: the key set is needed')
    if (presented === 'active-random')
      return { kind: 'drawn', pool: keySet.keys, share: 1, otherwise: undefined, probe: keySet.keys[0] as string }
    if (fixture === undefined) throw new Error('bench: a key is needed')
    return { kind: 'drawn', pool: keySet.keys, share: UNKNOWN_SHARE, otherwise: fixture.key, probe: fixture.key }
  }
  if (fixture === undefined) throw new Error('bench: a key is needed')
  if (presented === 'valid') return { kind: 'fixed', key: fixture.key }
  // Same shape, last checksum character changed: rejected by arithmetic alone.
  const last = fixture.key.at(-1) === 'A' ? 'B' : 'A'
  return { kind: 'fixed', key: fixture.key.slice(0, -1) + last }
}

/** The one key a first request (and `hono-floor`'s map) uses, or none. */
export function probeKey(presentation: Presentation): string | undefined {
  if (presentation.kind === 'none') return undefined
  return presentation.kind === 'fixed' ? presentation.key : presentation.probe
}
