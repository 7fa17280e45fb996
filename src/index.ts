import { Keyward, type KeywardOptions } from './core/keyward.js'
import { outboundPolicyFromEnv } from './core/lifecycle/transport.js'
import type { KeyStore } from './core/store.js'
import { type DatabaseInput, openStore } from './store/open.js'

export * from './core/index.js'
export {
  type CreatedKeyObject,
  type DeliveryObject,
  type KeyObject,
  type RotatedKeyObject,
  toCreatedObject,
  toDeliveryObject,
  toKeyObject,
  toRotatedObject,
  toUsageObject,
  type UsageObject,
} from './http/serialize.js'
export { type DatabaseInput, isPostgresUrl, openStore, type PostgresPoolLike, type SqliteClientLike } from './store/open.js'

export interface KeywardConfig extends Omit<KeywardOptions, 'store'> {
  /** A ready store. Takes precedence over `database`. */
  store?: KeyStore
  /**
   * Where keys live: an SQLite path (`./keyward.db`, `file:...`, `:memory:`), a `postgres://` URL,
   * an open better-sqlite3 database, a node-postgres `Pool`, or a drizzle instance over either.
   * @default env.KEYWARD_DATABASE_URL ?? './keyward.db'
   */
  database?: DatabaseInput
  /**
   * Where the `KEYWARD_*` variables are read from: `KEYWARD_DATABASE_URL` (when `database` is
   * absent), `KEYWARD_PEPPER` (when `pepper` is absent), `KEYWARD_REDIS_URL` (when `redis` is
   * absent), `KEYWARD_WEBHOOKS_ALLOW_PRIVATE_NETWORKS`
   * and `KEYWARD_WEBHOOKS_ALLOW_INSECURE_HTTP` (`true` or `1`, when the `webhooks` option does not
   * say). The factory is the only place keyward reads the environment.
   * @default process.env
   */
  env?: Record<string, string | undefined>
}

/**
 * Builds a keyward instance on the database you name. The store opens on first use.
 *
 * @example
 * const kw = keyward({ database: process.env.DATABASE_URL })
 * app.use('/v1/*', apiKeyAuth({ keyward: kw }))
 */
export function keyward(config: KeywardConfig = {}): Keyward {
  const { store, database, env = process.env, ...options } = config
  return new Keyward({
    ...options,
    pepper: options.pepper ?? env.KEYWARD_PEPPER,
    redis: options.redis ?? (env.KEYWARD_REDIS_URL || undefined),
    webhooks: { ...outboundPolicyFromEnv(env), ...definedOnly(options.webhooks) },
    store: store ?? openStore(database ?? env.KEYWARD_DATABASE_URL ?? './keyward.db'),
  })
}

/** An options object without its `undefined` entries, so they do not hide what the environment says. */
function definedOnly<T extends object>(value: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(value ?? {}).filter(([, entry]) => entry !== undefined)) as Partial<T>
}

let defaultInstance: Keyward | undefined

/**
 * The instance zero-config `apiKeyAuth()` and `keysRouter` share: `keyward()` with every setting
 * from the environment (SQLite at `./keyward.db` unless `KEYWARD_DATABASE_URL` says otherwise),
 * opened on first use.
 */
export function defaultKeyward(): Keyward {
  defaultInstance ??= keyward()
  return defaultInstance
}

/** Closes the default instance, writing its buffered usage: call it on shutdown (and in tests). */
export async function closeDefaultKeyward(): Promise<void> {
  const instance = defaultInstance
  defaultInstance = undefined
  await instance?.close()
}
