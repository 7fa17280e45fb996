import type { RequestFacts } from './controls/enforcer.js'
import type { Result } from './errors.js'
import { Outbox } from './lifecycle/outbox.js'
import { RotationScheduler, type SchedulerRun } from './lifecycle/scheduler.js'
import { createWebhookTransport } from './lifecycle/transport.js'
import type { CreateKeyInput, ListKeysInput, RotateKeyInput, UpdateKeyInput, UsageInput } from './management/inputs.js'
import { type CreatedKey, KeyManager, type KeyPage, type RotatedKey } from './management/keys.js'
import { type KeywardOptions, resolveOptions } from './options.js'
import { Runtime } from './runtime.js'
import type { KeyStore } from './store.js'
import type { Actor, ApiKey, DeliveryView, KeyUsage, VerifiedKey } from './types.js'
import { getUsage } from './usage/report.js'
import type { Decision } from './verification/decide.js'
import { spendCredits, Verifier } from './verification/verifier.js'

/**
 * The keyward service: one facade over its capabilities — verification (./verification), key
 * management with its one policy (./management), rotation and webhooks (./lifecycle) and usage
 * (./usage). Callable from code (a host app bootstrapping a tenant's first key, the CLI, a test)
 * and used by the HTTP adapters. It knows nothing of HTTP or SQL. Management methods return a
 * `Result`; `verify` returns a `Decision`; neither throws for bad input or an unreachable store.
 */
export class Keyward {
  /** The first part of every key this instance mints and accepts. */
  readonly prefix: string
  readonly #runtime: Runtime
  readonly #verifier: Verifier
  readonly #keys: KeyManager
  readonly #outbox: Outbox
  readonly #scheduler: RotationScheduler

  constructor(options: KeywardOptions) {
    const resolved = resolveOptions(options)
    this.prefix = resolved.prefix
    this.#runtime = new Runtime(resolved, options.store)
    this.#verifier = new Verifier(this.#runtime)
    this.#keys = new KeyManager(this.#runtime)
    const transport = createWebhookTransport({ policy: resolved.outboundPolicy, lookup: resolved.webhookLookup, ca: resolved.webhookCa })
    this.#outbox = new Outbox(this.#runtime, transport)
    this.#scheduler = new RotationScheduler(this.#runtime, this.#outbox)
  }

  /** Resolves once the store is open, the cache is synced and the background loops run. */
  ready(): Promise<KeyStore> {
    return this.#runtime.ready()
  }

  // Verification (the hot path) ------------------------------------------------------------------

  /**
   * Verifies a presented key. Never throws: a bad key, a revoked one or an unreachable store all
   * come back as `{ ok: false, code }`.
   */
  verify<R>(candidate: string, request?: R, facts?: RequestFacts<R>): Promise<Decision> {
    const decision = this.#verifier.verifyFast(candidate, request, facts)
    return decision instanceof Promise ? decision : Promise.resolve(decision)
  }

  /**
   * `verify` without a promise on the common path: a malformed key or a cache hit is answered
   * synchronously, only a cache miss (or a Redis-limited key) returns a promise. Adapters use this
   * to skip a microtask. For a key with controls, `facts` tells the client address (IP allowlist)
   * and the request's cost; without them an allowlisted key is refused and the cost is 1.
   */
  verifyFast<R>(candidate: string, request?: R, facts?: RequestFacts<R>): Decision | Promise<Decision> {
    return this.#verifier.verifyFast(candidate, request, facts)
  }

  /**
   * Spends up to `amount` more credits of a key this instance verified (metering after the work
   * was done, e.g. tokens): never below 0 and never refused. Null when the key has no credits.
   */
  spendCredits(key: VerifiedKey, amount: number): Promise<{ charged: number; remaining: number } | null> {
    return spendCredits(key, amount)
  }

  /**
   * Reads the change log and evicts what other processes changed. Runs on a timer (and at once on
   * a store notification); exposed for tests and for hosts that want a sync point.
   */
  syncCache(): Promise<void> {
    return this.#runtime.sync?.sync() ?? Promise.resolve()
  }

  /** Writes buffered usage now (also runs on a timer and on `close()`). */
  flushUsage(): Promise<void> {
    return this.#runtime.flushUsage()
  }

  /** Requests counted in memory and not yet written. */
  get pendingUsage(): number {
    return this.#runtime.usage?.pendingRequests ?? 0
  }

  // Management -----------------------------------------------------------------------------------

  /** Creates a key for the actor's tenant. The secret is in the result and nowhere else. */
  createKey(actor: Actor, input: CreateKeyInput): Promise<Result<CreatedKey>> {
    return this.#keys.createKey(actor, input)
  }

  /** A page of the keys the actor may see, newest first, and the cursor of the next page (if any). */
  listKeys(actor: Actor, input?: ListKeysInput): Promise<Result<KeyPage>> {
    return this.#keys.listKeys(actor, input)
  }

  getKey(actor: Actor, id: string): Promise<Result<ApiKey>> {
    return this.#keys.getKey(actor, id)
  }

  /** Renames a key or changes its scopes, metadata, expiry or rotation schedule. */
  updateKey(actor: Actor, id: string, input: UpdateKeyInput): Promise<Result<ApiKey>> {
    return this.#keys.updateKey(actor, id, input)
  }

  /** Revokes a key; it is rejected from the next request on. Revoking twice is not an error. */
  revokeKey(actor: Actor, id: string): Promise<Result<ApiKey>> {
    return this.#keys.revokeKey(actor, id)
  }

  /** Replaces a key with a new secret; the old one works until the grace period ends. */
  rotateKey(actor: Actor, id: string, input?: RotateKeyInput): Promise<Result<RotatedKey>> {
    return this.#keys.rotateKey(actor, id, input)
  }

  /** Request counts for a key: totals, last use and a daily series (optionally over its rotation chain). */
  getUsage(actor: Actor, id: string, input?: UsageInput): Promise<Result<KeyUsage>> {
    return getUsage(this.#runtime, actor, id, input)
  }

  /** Rotation webhook deliveries for a key (and the rotation that produced it), newest first. */
  listDeliveries(actor: Actor, id: string): Promise<Result<DeliveryView[]>> {
    return this.#outbox.listDeliveries(actor, id)
  }

  // Scheduled rotation ---------------------------------------------------------------------------

  /**
   * Rotates every key whose `next_rotation_at` has passed and sends the due webhooks. Safe to run
   * from several processes at once. Call it from cron, or use `startScheduler`.
   */
  runDueRotations(options?: { limit?: number }): Promise<SchedulerRun> {
    return this.#scheduler.run(options)
  }

  /** Sends every due webhook delivery once (claimed, so concurrent schedulers never double-send). */
  deliverWebhooks(): Promise<{ delivered: number; failed: number }> {
    return this.#outbox.deliverDue()
  }

  /**
   * Runs `runDueRotations` now and every `intervalMs` until `stopScheduler()` or `close()`. Nothing
   * runs on a schedule unless the host app calls this.
   */
  startScheduler(options?: { intervalMs?: number }): void {
    this.#scheduler.start(options)
  }

  /** Stops the scheduler and waits for a run in progress. */
  stopScheduler(): Promise<void> {
    return this.#scheduler.stop()
  }

  /** Stops the background loops, writes buffered usage and closes the store. */
  async close(): Promise<void> {
    await this.#scheduler.stop()
    await this.#runtime.close()
  }
}

export type { SchedulerRun } from './lifecycle/scheduler.js'
export type { CreateKeyInput, ListKeysInput, RotateKeyInput, UpdateKeyInput, UsageInput } from './management/inputs.js'
export type { CreatedKey, KeyPage, RotatedKey } from './management/keys.js'
export type { CacheSyncOptions, KeywardOptions, WebhookOptions } from './options.js'
