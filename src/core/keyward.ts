import { z } from 'zod'
import { VerificationCache, type VerificationCacheOptions } from './cache.js'
import { type Decision, decide, verdictInput } from './decide.js'
import { fail, ok, type Result } from './errors.js'
import { assertPrefix, generateKey, hashKey, newId, parseKey } from './key-format.js'
import {
  environmentSchema,
  expiresInSecondsSchema,
  fieldErrors,
  gracePeriodSecondsSchema,
  metadataSchema,
  nameSchema,
  projectIdSchema,
  rotationIntervalDaysSchema,
  scopesSchema,
  tenantIdSchema,
  webhookUrlSchema,
} from './schemas.js'
import { type DeliveryObject, type KeyObject, toDeliveryObject, toKeyObject } from './serialize.js'
import type { Actor, ApiKeyRecord, Environment, KeyPatch, KeyStatus, KeyStore, ListCursor, Metadata, WebhookDelivery } from './types.js'
import { StoreUnavailableError } from './types.js'
import { UsageBuffer, utcDay } from './usage.js'
import { DEFAULT_RETRY_SCHEDULE_SECONDS, newWebhookSecret, openPayload, sealPayload, webhookHeaders } from './webhooks.js'

const DAY_MS = 86_400_000

export interface KeywardOptions {
  /** The key store, or a promise of one (opened lazily by the `keyward()` factory). */
  store: KeyStore | Promise<KeyStore>
  /**
   * The first part of every key: `<prefix>_<live|test>_<body>`. 1-12 of `[a-z0-9]`.
   * @default 'sk'
   */
  prefix?: string
  /**
   * A server-side secret. When set, key hashes are HMAC-SHA256 under it (a stolen table alone
   * cannot be checked against guesses) and pending rotation webhooks are stored encrypted.
   * Changing it invalidates every existing key.
   * @default process.env.KEYWARD_PEPPER (unset: plain SHA-256)
   */
  pepper?: string
  /**
   * The clock, as epoch milliseconds. Tests inject one to drive expiry, grace and scheduling.
   * @default Date.now
   */
  now?: () => number
  /** In-process verification cache, or `false` to read the store on every request. */
  cache?: (VerificationCacheOptions & CacheSyncOptions) | false
  /** Usage buffering, or `false` to stop recording usage. */
  usage?: { /** @default 1000 */ flushIntervalMs?: number } | false
  rotation?: {
    /**
     * Grace period when a rotate call names none (and for scheduled rotations).
     * @default 3600
     */
    defaultGracePeriodSeconds?: number
  }
  webhooks?: {
    /** @default globalThis.fetch */
    fetch?: typeof fetch
    /** @default 10_000 */
    timeoutMs?: number
    /**
     * Delays before each retry, in seconds; the delivery fails for good after the last.
     * @default [5, 30, 120, 600, 1800, 7200, 18000]
     */
    retryScheduleSeconds?: number[]
  }
  /** Where keyward reports background failures (sync, flush, delivery). Never receives secrets. */
  onError?: (error: unknown, context: string) => void
}

export interface CacheSyncOptions {
  /**
   * How often the change log is read, so changes made by other processes evict this cache.
   * @default 250
   */
  syncIntervalMs?: number
  /**
   * The bound on how stale the cache may be: if the change log has not been read successfully
   * for this long, cached entries are not trusted and every request reads the store.
   * @default 1000
   */
  maxStalenessMs?: number
}

export interface CreateKeyInput {
  name: string
  scopes?: string[]
  metadata?: Metadata
  environment?: Environment
  projectId?: string
  /** An instant in the future (Date or ISO 8601 string). */
  expiresAt?: Date | string
  expiresInSeconds?: number
  rotationIntervalDays?: number
  rotationWebhookUrl?: string
}

export interface UpdateKeyInput {
  name?: string
  scopes?: string[]
  metadata?: Metadata
  /** A future instant, or `null` to remove the expiry. */
  expiresAt?: Date | string | null
  rotationIntervalDays?: number | null
  rotationWebhookUrl?: string | null
}

export interface ListKeysInput {
  limit?: number
  cursor?: string
  status?: KeyStatus
  projectId?: string
  environment?: Environment
}

export interface CreatedKey {
  /** The full secret. Shown once: keyward keeps only its hash. */
  key: string
  record: ApiKeyRecord
  /** The key object, ready to send. */
  object: KeyObject
  /** `whsec_...` for verifying rotation webhooks; present when a webhook URL was set. */
  rotationWebhookSecret?: string
}

export interface RotatedKey {
  key: string
  oldKey: ApiKeyRecord
  newKey: ApiKeyRecord
  graceExpiresAt: Date
}

export interface KeyUsage {
  key_id: string
  name: string
  created_at: string
  last_used_at: string | null
  days_since_creation: number
  days_since_last_use: number | null
  total_requests: number
  /** The keys counted: this one, plus its predecessors when asked to follow the rotation chain. */
  key_ids: string[]
  daily: { date: string; requests: number }[]
}

export interface SchedulerRun {
  rotated: number
  delivered: number
  failed: number
}

const createSchema = z.strictObject({
  name: nameSchema,
  scopes: scopesSchema.optional(),
  metadata: metadataSchema.optional(),
  environment: environmentSchema.optional(),
  projectId: projectIdSchema.optional(),
  expiresAt: z.union([z.date(), z.iso.datetime({ offset: true })]).optional(),
  expiresInSeconds: expiresInSecondsSchema.optional(),
  rotationIntervalDays: rotationIntervalDaysSchema.optional(),
  rotationWebhookUrl: webhookUrlSchema.optional(),
})

const updateSchema = z.strictObject({
  name: nameSchema.optional(),
  scopes: scopesSchema.optional(),
  metadata: metadataSchema.optional(),
  expiresAt: z
    .union([z.date(), z.iso.datetime({ offset: true })])
    .nullable()
    .optional(),
  rotationIntervalDays: rotationIntervalDaysSchema.nullable().optional(),
  rotationWebhookUrl: webhookUrlSchema.nullable().optional(),
})

const listSchema = z.strictObject({
  limit: z.number().int().min(1).max(100).optional(),
  cursor: z.string().max(512).optional(),
  status: z.enum(['active', 'expired', 'revoked', 'rotating', 'rotated']).optional(),
  projectId: projectIdSchema.optional(),
  environment: environmentSchema.optional(),
})

const actorSchema = z.object({ tenantId: tenantIdSchema }).loose()

/**
 * The keyward service: verification and every management operation, callable from code (a host
 * app bootstrapping a tenant's first key, the CLI, a test) and used by the HTTP adapters. It knows
 * nothing of HTTP or SQL. Management methods return a `Result`; `verify` returns a `Decision`.
 * Neither throws for bad input or an unreachable store.
 */
export class Keyward {
  readonly prefix: string
  readonly #pepper: string | undefined
  readonly #now: () => number
  readonly #cache: VerificationCache | undefined
  readonly #syncIntervalMs: number
  readonly #maxStalenessMs: number
  readonly #flushIntervalMs: number
  readonly #defaultGraceSeconds: number
  readonly #fetch: typeof fetch
  readonly #webhookTimeoutMs: number
  readonly #retrySchedule: number[]
  readonly #onError: (error: unknown, context: string) => void
  readonly #storePromise: Promise<KeyStore>
  #store: KeyStore | undefined
  #usage: UsageBuffer | undefined
  readonly #usageEnabled: boolean
  #ready: Promise<KeyStore> | undefined
  #changeSeq = 0
  #lastSyncOkAt = Number.NEGATIVE_INFINITY
  #lastPruneAt = 0
  #syncing: Promise<void> | undefined
  #syncAgain: Promise<void> | undefined
  #timers: NodeJS.Timeout[] = []
  #unsubscribe: (() => Promise<void>) | undefined
  #scheduler: NodeJS.Timeout | undefined
  #schedulerRun: Promise<unknown> | undefined
  #closed = false

  constructor(options: KeywardOptions) {
    if (options === undefined || options.store === undefined) throw new Error('keyward: option "store" is required')
    this.prefix = options.prefix ?? 'sk'
    assertPrefix(this.prefix)
    this.#pepper = options.pepper ?? process.env.KEYWARD_PEPPER ?? undefined
    if (this.#pepper === '') throw new Error('keyward: option "pepper" must not be empty')
    this.#now = options.now ?? Date.now
    const cacheOptions = options.cache === false ? undefined : (options.cache ?? {})
    this.#cache = cacheOptions === undefined ? undefined : new VerificationCache(cacheOptions)
    this.#syncIntervalMs = positive(cacheOptions?.syncIntervalMs ?? 250, 'cache.syncIntervalMs')
    this.#maxStalenessMs = positive(cacheOptions?.maxStalenessMs ?? 1000, 'cache.maxStalenessMs')
    this.#usageEnabled = options.usage !== false
    this.#flushIntervalMs = positive((options.usage || undefined)?.flushIntervalMs ?? 1000, 'usage.flushIntervalMs')
    this.#defaultGraceSeconds = options.rotation?.defaultGracePeriodSeconds ?? 3600
    if (!gracePeriodSecondsSchema.safeParse(this.#defaultGraceSeconds).success) {
      throw new Error('keyward: option "rotation.defaultGracePeriodSeconds" must be a whole number from 0 to 2592000')
    }
    this.#fetch = options.webhooks?.fetch ?? globalThis.fetch
    this.#webhookTimeoutMs = positive(options.webhooks?.timeoutMs ?? 10_000, 'webhooks.timeoutMs')
    this.#retrySchedule = options.webhooks?.retryScheduleSeconds ?? DEFAULT_RETRY_SCHEDULE_SECONDS
    this.#onError = options.onError ?? ((error, context) => console.error(`keyward: ${context}:`, errorMessage(error)))
    this.#storePromise = Promise.resolve(options.store)
    // A store that fails to open is reported when first used, not as an unhandled rejection.
    this.#storePromise.catch(() => undefined)
  }

  /** Resolves once the store is open, the cache is synced and the background loops run. */
  ready(): Promise<KeyStore> {
    this.#ready ??= this.#start()
    return this.#ready
  }

  async #start(): Promise<KeyStore> {
    if (this.#closed) throw new Error('keyward: this instance is closed')
    const store = await this.#storePromise
    if (this.#cache !== undefined) {
      this.#changeSeq = await store.latestChangeSeq()
      this.#lastSyncOkAt = performance.now()
      this.#timers.push(setInterval(() => void this.syncCache(), this.#syncIntervalMs).unref())
      if (store.subscribeChanges !== undefined) {
        this.#unsubscribe = await store.subscribeChanges(() => void this.syncCache())
      }
    }
    if (this.#usageEnabled) {
      this.#usage = new UsageBuffer(store)
      this.#timers.push(setInterval(() => void this.flushUsage().catch(() => undefined), this.#flushIntervalMs).unref())
    }
    this.#store = store
    return store
  }

  async #storeOrFail(): Promise<KeyStore> {
    if (this.#store !== undefined) return this.#store
    try {
      return await this.ready()
    } catch (error) {
      // A failed start is retried by the next call (the database may come back).
      this.#ready = undefined
      throw new StoreUnavailableError(`keyward: the store could not be opened: ${errorMessage(error)}`, { cause: error })
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Verification (the hot path)

  /**
   * Verifies a presented key. Never throws: a bad key, a revoked one or an unreachable store all
   * come back as `{ ok: false, code }`.
   */
  verify(candidate: string): Promise<Decision> {
    const decision = this.verifyFast(candidate)
    return decision instanceof Promise ? decision : Promise.resolve(decision)
  }

  /**
   * `verify` without a promise on the common path: a malformed key or a cache hit is answered
   * synchronously, only a cache miss returns a promise. Adapters use this to skip a microtask.
   */
  verifyFast(candidate: string): Decision | Promise<Decision> {
    // Shape and checksum first: a mistyped or invented key costs no hashing and no I/O.
    if (parseKey(candidate, this.prefix) === null) return INVALID
    const keyHash = hashKey(candidate, this.#pepper)
    const nowMs = this.#now()
    const cache = this.#cache
    if (cache !== undefined && this.#store !== undefined) {
      const monotonicMs = performance.now()
      if (monotonicMs - this.#lastSyncOkAt <= this.#maxStalenessMs) {
        const hit = cache.get(keyHash, monotonicMs)
        if (hit !== undefined) return this.#conclude(hit.verdict, nowMs)
      }
    }
    return this.#verifyFromStore(keyHash, nowMs)
  }

  async #verifyFromStore(keyHash: string, nowMs: number): Promise<Decision> {
    try {
      const store = await this.#storeOrFail()
      const fence = this.#cache?.fence() ?? 0
      const record = await store.findKeyByHash(keyHash)
      const verdict = record === null ? null : verdictInput(record)
      this.#cache?.fill(keyHash, { verdict, loadedAtMs: performance.now() }, fence)
      return this.#conclude(verdict, nowMs)
    } catch (error) {
      // Fail closed: no verdict without the store.
      this.#onError(error, 'verify')
      return UNAVAILABLE
    }
  }

  #conclude(verdict: ReturnType<typeof verdictInput> | null, nowMs: number): Decision {
    if (verdict === null) return INVALID
    const decision = decide(verdict, nowMs)
    if (decision.ok) this.#usage?.record(decision.key.id, nowMs)
    return decision
  }

  /**
   * Reads the change log and evicts what other processes changed. Runs on a timer (and at once on
   * a store notification); exposed for tests and for hosts that want a sync point.
   */
  syncCache(): Promise<void> {
    const cache = this.#cache
    const store = this.#store
    if (cache === undefined || store === undefined || this.#closed) return Promise.resolve()
    if (this.#syncing !== undefined) {
      // The running sync may have read the change log before the change that asks for this one
      // committed: run once more after it, instead of leaving that change to the next poll.
      this.#syncAgain ??= this.#syncing.then(() => {
        this.#syncAgain = undefined
        return this.syncCache()
      })
      return this.#syncAgain
    }
    this.#syncing = (async () => {
      try {
        const startedAt = performance.now()
        for (;;) {
          const batch = await store.readChanges(this.#changeSeq, 1000)
          if (batch.keyHashes.length > 0) cache.invalidate(batch.keyHashes)
          this.#changeSeq = batch.seq
          if (batch.keyHashes.length < 1000) break
        }
        // After a gap longer than the bound, change-log entries may have been pruned: start over.
        if (startedAt - this.#lastSyncOkAt > this.#maxStalenessMs) cache.clear()
        this.#lastSyncOkAt = startedAt
        if (startedAt - this.#lastPruneAt > 600_000) {
          this.#lastPruneAt = startedAt
          await store.pruneChanges(new Date(this.#now() - 3_600_000))
        }
      } catch (error) {
        this.#onError(error, 'cache sync')
      } finally {
        this.#syncing = undefined
      }
    })()
    return this.#syncing
  }

  /** Writes buffered usage now (also runs on a timer and on `close()`). */
  async flushUsage(): Promise<void> {
    if (this.#usage === undefined) return
    try {
      await this.#usage.flush()
    } catch (error) {
      this.#onError(error, 'usage flush')
      throw error
    }
  }

  /** Requests counted in memory and not yet written. */
  get pendingUsage(): number {
    return this.#usage?.pendingRequests ?? 0
  }

  // ---------------------------------------------------------------------------------------------
  // Management

  /** Creates a key for the actor's tenant. The secret is in the result and nowhere else. */
  async createKey(actor: Actor, input: CreateKeyInput): Promise<Result<CreatedKey>> {
    const denied = checkActor(actor) ?? this.#needScope(actor, 'api_keys:write')
    if (denied) return denied
    const parsed = createSchema.safeParse(input)
    if (!parsed.success) return fail('validation_error', 'The request has invalid fields.', fieldErrors(parsed.error))
    const data = parsed.data
    const now = new Date(this.#now())

    let projectId = data.projectId ?? null
    if (actor.projectId) {
      if (projectId !== null && projectId !== actor.projectId) {
        return fail('forbidden', 'A project-bound caller can only create keys in its own project.')
      }
      projectId = actor.projectId
    }
    // A key created by a test key is a test key unless it says otherwise (and it may not say live).
    const environment = data.environment ?? actor.environment ?? 'live'
    if (actor.environment === 'test' && environment === 'live') {
      return fail('forbidden', 'A test key cannot create live keys.')
    }
    const scopes = data.scopes ?? []
    const ceiling = scopeCeiling(actor, scopes)
    if (ceiling) return ceiling

    const expiry = resolveExpiry(data.expiresAt, data.expiresInSeconds, now)
    if (!expiry.ok) return expiry
    if (data.rotationIntervalDays !== undefined && data.rotationWebhookUrl === undefined) {
      return fail('validation_error', 'A rotation schedule needs a webhook to deliver the new key to.', [
        { field: 'rotation_webhook_url', message: 'is required with rotation_interval_days' },
      ])
    }
    const webhookSecret = data.rotationWebhookUrl !== undefined ? newWebhookSecret() : undefined
    const generated = generateKey(this.prefix, environment)
    const record: ApiKeyRecord = {
      id: newId('key'),
      tenantId: actor.tenantId,
      projectId,
      name: data.name,
      environment,
      scopes,
      metadata: data.metadata ?? {},
      keyHash: hashKey(generated.key, this.#pepper),
      keyPrefix: generated.keyPrefix,
      keySuffix: generated.keySuffix,
      createdAt: now,
      updatedAt: now,
      lastUsedAt: null,
      expiresAt: expiry.value,
      revokedAt: null,
      replacedByKeyId: null,
      rotatedFromKeyId: null,
      graceExpiresAt: null,
      rotationIntervalDays: data.rotationIntervalDays ?? null,
      nextRotationAt: data.rotationIntervalDays !== undefined ? new Date(now.getTime() + data.rotationIntervalDays * DAY_MS) : null,
      rotationWebhookUrl: data.rotationWebhookUrl ?? null,
      rotationWebhookSecret: webhookSecret ?? null,
    }
    return this.#guard(async (store) => {
      await store.insertKey(record)
      const created: CreatedKey = { key: generated.key, record, object: toKeyObject(record, now) }
      if (webhookSecret !== undefined) created.rotationWebhookSecret = webhookSecret
      return ok(created)
    })
  }

  /** A page of the actor's keys, newest first, and the cursor of the next page (if any). */
  async listKeys(actor: Actor, input: ListKeysInput = {}): Promise<Result<{ items: KeyObject[]; nextCursor: string | null }>> {
    const denied = checkActor(actor) ?? this.#needScope(actor, 'api_keys:read')
    if (denied) return denied
    const parsed = listSchema.safeParse(input)
    if (!parsed.success) return fail('validation_error', 'The request has invalid fields.', fieldErrors(parsed.error))
    const { limit = 20, cursor, status, projectId, environment } = parsed.data
    let after: ListCursor | undefined
    if (cursor !== undefined) {
      after = decodeCursor(cursor)
      if (after === undefined)
        return fail('validation_error', 'The cursor is not valid.', [{ field: 'cursor', message: 'is not a cursor this API issued' }])
    }
    if (actor.projectId && projectId !== undefined && projectId !== actor.projectId) {
      return ok({ items: [], nextCursor: null })
    }
    const now = new Date(this.#now())
    return this.#guard(async (store) => {
      const rows = await store.listKeys({
        tenantId: actor.tenantId,
        projectId: actor.projectId || projectId,
        environment,
        status,
        now,
        after,
        limit: limit + 1,
      })
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      const nextCursor = rows.length > limit && last !== undefined ? encodeCursor(last) : null
      return ok({ items: page.map((row) => toKeyObject(row, now)), nextCursor })
    })
  }

  async getKey(actor: Actor, id: string): Promise<Result<KeyObject>> {
    const denied = checkActor(actor) ?? this.#needScope(actor, 'api_keys:read')
    if (denied) return denied
    return this.#guard(async (store) => {
      const record = await this.#findVisible(store, actor, id)
      if (record === null) return fail('not_found')
      return ok(toKeyObject(record, new Date(this.#now())))
    })
  }

  /** Renames a key or changes its scopes, metadata, expiry or rotation schedule. */
  async updateKey(actor: Actor, id: string, input: UpdateKeyInput): Promise<Result<KeyObject>> {
    const denied = checkActor(actor) ?? this.#needScope(actor, 'api_keys:write')
    if (denied) return denied
    const parsed = updateSchema.safeParse(input)
    if (!parsed.success) return fail('validation_error', 'The request has invalid fields.', fieldErrors(parsed.error))
    const data = parsed.data
    if (data.scopes !== undefined) {
      const ceiling = scopeCeiling(actor, data.scopes)
      if (ceiling) return ceiling
    }
    const now = new Date(this.#now())
    const patch: KeyPatch = {}
    if (data.name !== undefined) patch.name = data.name
    if (data.scopes !== undefined) patch.scopes = data.scopes
    if (data.metadata !== undefined) patch.metadata = data.metadata
    if (data.expiresAt !== undefined) {
      if (data.expiresAt === null) patch.expiresAt = null
      else {
        const expiry = resolveExpiry(data.expiresAt, undefined, now)
        if (!expiry.ok) return expiry
        patch.expiresAt = expiry.value
      }
    }
    return this.#guard(async (store) => {
      const current = await this.#findVisible(store, actor, id)
      if (current === null) return fail('not_found')
      if (data.rotationWebhookUrl !== undefined) {
        patch.rotationWebhookUrl = data.rotationWebhookUrl
        if (data.rotationWebhookUrl === null) {
          patch.rotationIntervalDays = null
          patch.nextRotationAt = null
        }
      }
      if (data.rotationIntervalDays !== undefined) {
        const webhookUrl = patch.rotationWebhookUrl !== undefined ? patch.rotationWebhookUrl : current.rotationWebhookUrl
        if (data.rotationIntervalDays !== null && webhookUrl === null) {
          return fail('validation_error', 'A rotation schedule needs a webhook to deliver the new key to.', [
            { field: 'rotation_webhook_url', message: 'is required with rotation_interval_days' },
          ])
        }
        patch.rotationIntervalDays = data.rotationIntervalDays
        patch.nextRotationAt = data.rotationIntervalDays === null ? null : new Date(now.getTime() + data.rotationIntervalDays * DAY_MS)
      }
      if (patch.rotationWebhookUrl && current.rotationWebhookSecret === null) patch.rotationWebhookSecret = newWebhookSecret()
      const updated = await store.updateKey(actor.tenantId, id, patch, now)
      if (updated === null) return fail('not_found')
      // Every security-relevant change evicts at once (pollinations/pollinations#9219).
      this.#cache?.invalidate([updated.keyHash])
      return ok(toKeyObject(updated, now))
    })
  }

  /** Revokes a key; it is rejected from the next request on. Revoking twice is not an error. */
  async revokeKey(actor: Actor, id: string): Promise<Result<KeyObject>> {
    const denied = checkActor(actor) ?? this.#needScope(actor, 'api_keys:write')
    if (denied) return denied
    return this.#guard(async (store) => {
      const current = await this.#findVisible(store, actor, id)
      if (current === null) return fail('not_found')
      const now = new Date(this.#now())
      const revoked = await store.revokeKey(actor.tenantId, id, now)
      if (revoked === null) return fail('not_found')
      this.#cache?.invalidate([revoked.keyHash])
      return ok(toKeyObject(revoked, now))
    })
  }

  /**
   * Replaces a key with a new one that inherits everything but the secret. The old key works until
   * `graceExpiresAt`. Atomic: of two concurrent rotations one wins and the other gets
   * `already_rotated`; a key in its grace period has been rotated already and is refused the same way.
   */
  async rotateKey(actor: Actor, id: string, input: { gracePeriodSeconds?: number } = {}): Promise<Result<RotatedKey>> {
    const denied = checkActor(actor) ?? this.#needScope(actor, 'api_keys:write')
    if (denied) return denied
    const grace = gracePeriodSecondsSchema.optional().safeParse(input.gracePeriodSeconds)
    if (!grace.success) {
      return fail(
        'validation_error',
        'The request has invalid fields.',
        fieldErrors(grace.error).map((e) => ({ ...e, field: 'grace_period_seconds' })),
      )
    }
    return this.#guard(async (store) => {
      const current = await this.#findVisible(store, actor, id)
      if (current === null) return fail('not_found')
      // Rotating hands the caller a fresh secret with the old key's powers: the same ceiling as create.
      const ceiling = scopeCeiling(actor, current.scopes)
      if (ceiling) return ceiling
      if (actor.environment === 'test' && current.environment === 'live') return fail('forbidden', 'A test key cannot rotate live keys.')
      const now = new Date(this.#now())
      const graceExpiresAt = new Date(now.getTime() + (grace.data ?? this.#defaultGraceSeconds) * 1000)
      const { newKey, key } = this.#successor(current, now)
      const outcome = await store.rotateKey({ tenantId: actor.tenantId, oldKeyId: id, newKey, graceExpiresAt, now })
      if (!outcome.ok) return rotateFailure(outcome.reason)
      this.#cache?.invalidate([outcome.oldKey.keyHash])
      return ok({ key, oldKey: outcome.oldKey, newKey: outcome.newKey, graceExpiresAt })
    })
  }

  /**
   * Request counts for a key: totals, last use and a daily series over `days` (≤ 90). With
   * `includePredecessors`, the keys it was rotated from are counted too.
   */
  async getUsage(actor: Actor, id: string, input: { days?: number; includePredecessors?: boolean } = {}): Promise<Result<KeyUsage>> {
    const denied = checkActor(actor) ?? this.#needScope(actor, 'api_keys:read')
    if (denied) return denied
    const days = z.number().int().min(1).max(90).optional().safeParse(input.days)
    if (!days.success)
      return fail('validation_error', 'The request has invalid fields.', [
        { field: 'days', message: 'must be a whole number from 1 to 90' },
      ])
    const dayCount = days.data ?? 30
    return this.#guard(async (store) => {
      // This process's buffer is written first, so a single instance reads its own counts (and
      // last use) exactly.
      await this.#usage?.flush()
      const record = await this.#findVisible(store, actor, id)
      if (record === null) return fail('not_found')
      const chain = [record]
      if (input.includePredecessors) {
        let previous = record.rotatedFromKeyId
        while (previous !== null && chain.length < 100) {
          const older = await store.findKey(record.tenantId, previous)
          if (older === null) break
          chain.push(older)
          previous = older.rotatedFromKeyId
        }
      }
      const keyIds = chain.map((key) => key.id)
      const nowMs = this.#now()
      const fromDay = utcDay(nowMs - (dayCount - 1) * DAY_MS)
      const [series, total] = await Promise.all([store.usageByDay(keyIds, fromDay), store.totalRequests(keyIds)])
      const counts = new Map(series.map((entry) => [entry.day, entry.count]))
      const daily: KeyUsage['daily'] = []
      for (let i = dayCount - 1; i >= 0; i--) {
        const date = utcDay(nowMs - i * DAY_MS)
        daily.push({ date, requests: counts.get(date) ?? 0 })
      }
      const lastUsedAt = chain.reduce<Date | null>(
        (latest, key) => (key.lastUsedAt !== null && (latest === null || key.lastUsedAt > latest) ? key.lastUsedAt : latest),
        null,
      )
      return ok({
        key_id: record.id,
        name: record.name,
        created_at: record.createdAt.toISOString(),
        last_used_at: lastUsedAt?.toISOString() ?? null,
        days_since_creation: Math.floor((nowMs - record.createdAt.getTime()) / DAY_MS),
        days_since_last_use: lastUsedAt === null ? null : Math.floor((nowMs - lastUsedAt.getTime()) / DAY_MS),
        total_requests: total,
        key_ids: keyIds,
        daily,
      })
    })
  }

  /** Rotation webhook deliveries for a key (and the rotations that produced it), newest first. */
  async listDeliveries(actor: Actor, id: string): Promise<Result<DeliveryObject[]>> {
    const denied = checkActor(actor) ?? this.#needScope(actor, 'api_keys:read')
    if (denied) return denied
    return this.#guard(async (store) => {
      const record = await this.#findVisible(store, actor, id)
      if (record === null) return fail('not_found')
      const keyIds = record.rotatedFromKeyId === null ? [record.id] : [record.id, record.rotatedFromKeyId]
      const deliveries = await store.listDeliveries(record.tenantId, keyIds)
      return ok(deliveries.map(toDeliveryObject))
    })
  }

  // ---------------------------------------------------------------------------------------------
  // Scheduled rotation

  /**
   * Rotates every key whose `next_rotation_at` has passed and sends the due webhooks. Safe to run
   * from several processes at once: each due time rotates once (the store's conditional update)
   * and each delivery attempt is claimed by one process. Call it from cron, or use `startScheduler`.
   */
  async runDueRotations(options: { limit?: number } = {}): Promise<SchedulerRun> {
    const store = await this.#storeOrFail()
    const limit = options.limit ?? 100
    const now = new Date(this.#now())
    let rotated = 0
    for (const due of await store.findDueRotations(now, limit)) {
      if (due.nextRotationAt === null || due.rotationWebhookUrl === null || due.rotationWebhookSecret === null) continue
      const graceExpiresAt = new Date(now.getTime() + this.#defaultGraceSeconds * 1000)
      const { newKey, key } = this.#successor(due, now)
      const messageId = newId('msg')
      const body = JSON.stringify({
        type: 'api_key.rotated',
        timestamp: now.toISOString(),
        data: {
          old_key_id: due.id,
          new_key_id: newKey.id,
          key,
          key_prefix: newKey.keyPrefix,
          grace_expires_at: graceExpiresAt.toISOString(),
          tenant_id: due.tenantId,
          project_id: due.projectId,
          name: due.name,
          next_rotation_at: newKey.nextRotationAt?.toISOString() ?? null,
        },
      })
      const delivery: WebhookDelivery = {
        id: messageId,
        tenantId: due.tenantId,
        keyId: due.id,
        newKeyId: newKey.id,
        eventType: 'api_key.rotated',
        url: due.rotationWebhookUrl,
        payload: sealPayload(body, this.#pepper),
        status: 'pending',
        attempts: [],
        nextAttemptAt: now,
        lockedUntil: null,
        createdAt: now,
        updatedAt: now,
      }
      const outcome = await store.rotateKey({
        tenantId: due.tenantId,
        oldKeyId: due.id,
        newKey,
        graceExpiresAt,
        now,
        expectedNextRotationAt: due.nextRotationAt,
        delivery,
      })
      if (outcome.ok) {
        rotated++
        this.#cache?.invalidate([outcome.oldKey.keyHash])
      }
    }
    const sent = await this.deliverWebhooks()
    return { rotated, ...sent }
  }

  /** Sends every due webhook delivery once (claimed, so concurrent schedulers never double-send). */
  async deliverWebhooks(): Promise<{ delivered: number; failed: number }> {
    const store = await this.#storeOrFail()
    const now = new Date(this.#now())
    const claimed = await store.claimDeliveries(now, new Date(now.getTime() + this.#webhookTimeoutMs * 3), 50)
    let delivered = 0
    let failed = 0
    await Promise.all(
      claimed.map(async (delivery) => {
        const settled = await this.#attempt(store, delivery)
        if (settled === 'succeeded') delivered++
        if (settled === 'failed') failed++
      }),
    )
    return { delivered, failed }
  }

  async #attempt(store: KeyStore, delivery: WebhookDelivery): Promise<WebhookDelivery['status']> {
    const startedAt = performance.now()
    const attemptAt = new Date(this.#now())
    let status: number | null = null
    let error: string | null = null
    let gone = false
    const key = delivery.newKeyId === null ? null : await store.findKey(delivery.tenantId, delivery.newKeyId)
    const secret = key?.rotationWebhookSecret ?? null
    if (delivery.payload === null || secret === null) {
      error = 'the payload or the signing secret is no longer available'
      gone = true
    } else {
      try {
        const body = openPayload(delivery.payload, this.#pepper)
        // The receiver checks this against its own wall clock (replay tolerance), so it is real
        // time, not the injected business clock.
        const timestamp = Math.floor(Date.now() / 1000)
        const response = await this.#fetch(delivery.url, {
          method: 'POST',
          headers: webhookHeaders(secret, delivery.id, timestamp, body),
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(this.#webhookTimeoutMs),
        })
        status = response.status
        await response.body?.cancel().catch(() => undefined)
        // Standard Webhooks: only 2xx is success; a redirect is a failure; 410 disables the endpoint.
        if (status < 200 || status >= 300) error = `HTTP ${status}`
        gone = status === 410
      } catch (cause) {
        error = errorMessage(cause)
      }
    }
    const attempts = [
      ...delivery.attempts,
      { at: attemptAt.toISOString(), status, error, durationMs: Math.round(performance.now() - startedAt) },
    ]
    const succeeded = error === null
    const exhausted = gone || attempts.length > this.#retrySchedule.length
    const next: WebhookDelivery = {
      ...delivery,
      attempts,
      status: succeeded ? 'succeeded' : exhausted ? 'failed' : 'pending',
      nextAttemptAt:
        succeeded || exhausted ? null : new Date(attemptAt.getTime() + jitter(this.#retrySchedule[attempts.length - 1] ?? 60) * 1000),
      lockedUntil: null,
      updatedAt: attemptAt,
      // Once settled, the copy of the new secret is wiped.
      payload: succeeded || exhausted ? null : delivery.payload,
    }
    await store.saveDelivery(next)
    if (gone && key !== null && key.rotationIntervalDays !== null) {
      // Nobody would receive the next secret: stop rotating this key on a schedule.
      await store.updateKey(key.tenantId, key.id, { rotationIntervalDays: null, nextRotationAt: null }, attemptAt)
    }
    return next.status
  }

  /**
   * Runs `runDueRotations` every `intervalMs` until `stopScheduler()` or `close()`. Nothing runs on
   * a schedule unless the host app calls this.
   */
  startScheduler(options: { intervalMs?: number } = {}): void {
    if (this.#scheduler !== undefined) return
    const intervalMs = positive(options.intervalMs ?? 30_000, 'intervalMs')
    const tick = () => {
      this.#schedulerRun ??= this.runDueRotations()
        .catch((error) => this.#onError(error, 'scheduled rotation'))
        .finally(() => {
          this.#schedulerRun = undefined
        })
    }
    this.#scheduler = setInterval(tick, intervalMs)
    tick()
  }

  /** Stops the scheduler and waits for a run in progress. */
  async stopScheduler(): Promise<void> {
    if (this.#scheduler !== undefined) clearInterval(this.#scheduler)
    this.#scheduler = undefined
    await this.#schedulerRun
  }

  /** Stops the background loops, writes buffered usage and closes a store keyward opened. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.stopScheduler()
    for (const timer of this.#timers) clearInterval(timer)
    this.#timers = []
    if (this.#ready === undefined) return
    const store = await this.#ready.catch(() => undefined)
    if (store === undefined) return
    await this.#syncing
    await this.#usage?.flush().catch((error) => this.#onError(error, 'usage flush on close'))
    await this.#unsubscribe?.()
    await store.close()
  }

  // ---------------------------------------------------------------------------------------------

  #successor(current: ApiKeyRecord, now: Date): { newKey: ApiKeyRecord; key: string } {
    const generated = generateKey(this.prefix, current.environment)
    // The successor keeps the old key's lifetime, counted from its own creation.
    const lifetimeMs = current.expiresAt === null ? null : current.expiresAt.getTime() - current.createdAt.getTime()
    const newKey: ApiKeyRecord = {
      ...current,
      id: newId('key'),
      keyHash: hashKey(generated.key, this.#pepper),
      keyPrefix: generated.keyPrefix,
      keySuffix: generated.keySuffix,
      createdAt: now,
      updatedAt: now,
      lastUsedAt: null,
      expiresAt: lifetimeMs === null ? null : new Date(now.getTime() + lifetimeMs),
      revokedAt: null,
      replacedByKeyId: null,
      rotatedFromKeyId: current.id,
      graceExpiresAt: null,
      nextRotationAt: current.rotationIntervalDays === null ? null : new Date(now.getTime() + current.rotationIntervalDays * DAY_MS),
    }
    return { newKey, key: generated.key }
  }

  async #findVisible(store: KeyStore, actor: Actor, id: string): Promise<ApiKeyRecord | null> {
    if (typeof id !== 'string' || id.length > 64) return null
    const record = await store.findKey(actor.tenantId, id)
    // Another tenant's key and another project's key are simply not there (404, never 403).
    if (record === null || (actor.projectId && record.projectId !== actor.projectId)) return null
    return record
  }

  #needScope(actor: Actor, scope: string) {
    if (isUnrestricted(actor) || actor.scopes?.includes(scope)) return undefined
    return fail('insufficient_scope', `This call needs the ${scope} scope.`)
  }

  async #guard<T>(work: (store: KeyStore) => Promise<Result<T>>): Promise<Result<T>> {
    try {
      return await work(await this.#storeOrFail())
    } catch (error) {
      if (error instanceof StoreUnavailableError) {
        this.#onError(error, 'store')
        return fail('store_unavailable')
      }
      throw error
    }
  }
}

const INVALID: Decision = Object.freeze({ ok: false, code: 'invalid_api_key' }) as Decision
const UNAVAILABLE: Decision = Object.freeze({ ok: false, code: 'store_unavailable' }) as Decision

function isUnrestricted(actor: Actor): boolean {
  return actor.scopes === undefined || actor.scopes === null || actor.scopes.length === 0
}

function checkActor(actor: Actor) {
  if (!actorSchema.safeParse(actor).success)
    return fail('validation_error', 'The caller has no valid tenant id.', [{ field: 'tenant_id', message: 'is required' }])
  return undefined
}

/**
 * Granted ⊆ caller's scopes, on create, update and rotate alike (decocms/studio#4119,
 * microclaw/microclaw#90). An empty list means "unrestricted", so a restricted caller may not
 * grant it either.
 */
function scopeCeiling(actor: Actor, granted: readonly string[]) {
  if (isUnrestricted(actor)) return undefined
  const own = actor.scopes as readonly string[]
  if (granted.length === 0) return fail('insufficient_scope', 'A key with limited scopes cannot grant unrestricted access.')
  const missing = granted.filter((scope) => !own.includes(scope))
  if (missing.length > 0) return fail('insufficient_scope', `Cannot grant scopes the caller does not have: ${missing.join(', ')}.`)
  return undefined
}

function resolveExpiry(expiresAt: Date | string | undefined, expiresInSeconds: number | undefined, now: Date): Result<Date | null> {
  if (expiresAt !== undefined && expiresInSeconds !== undefined) {
    return fail('validation_error', 'Give expires_at or expires_in_seconds, not both.', [
      { field: 'expires_in_seconds', message: 'cannot be combined with expires_at' },
    ])
  }
  if (expiresInSeconds !== undefined) return ok(new Date(now.getTime() + expiresInSeconds * 1000))
  if (expiresAt === undefined) return ok(null)
  const instant = expiresAt instanceof Date ? expiresAt : new Date(expiresAt)
  if (Number.isNaN(instant.getTime()) || instant.getTime() <= now.getTime()) {
    return fail('validation_error', 'expires_at must be a moment in the future.', [
      { field: 'expires_at', message: 'must be in the future' },
    ])
  }
  return ok(instant)
}

function rotateFailure(reason: 'not_found' | 'already_rotated' | 'key_revoked' | 'not_due') {
  if (reason === 'not_found') return fail('not_found')
  if (reason === 'key_revoked') return fail('key_revoked')
  return fail('already_rotated')
}

function encodeCursor(record: ApiKeyRecord): string {
  return Buffer.from(`${record.createdAt.getTime()}.${record.id}`).toString('base64url')
}

function decodeCursor(cursor: string): ListCursor | undefined {
  const match = /^(\d{1,15})\.(key_[0-9A-Za-z]{1,40})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'))
  if (match === null) return undefined
  return { createdAt: new Date(Number(match[1])), id: match[2] as string }
}

function jitter(seconds: number): number {
  return seconds * (1 + Math.random() * 0.2)
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`keyward: option "${name}" must be a positive number`)
  return value
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
