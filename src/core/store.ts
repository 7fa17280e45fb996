import type { ApiKeyRecord, KeyPatch, ListKeysQuery, UsageDay, UsageIncrement, WebhookDelivery } from './types.js'

/**
 * What keyward needs from a database: the one contract every store implements and one suite
 * (test/contract/store-contract.ts) checks. Every method is one atomic step; no method does a
 * read-modify-write in JavaScript. Every write that changes what verification must answer (update,
 * revoke, rotate) also appends to a change log in the same transaction, so other processes on
 * the same database can evict their caches (`readChanges`).
 *
 * Stores throw {@link StoreUnavailableError} when the database cannot be reached; anything else
 * they throw is a bug.
 */
export interface KeyStore {
  /** A short name for logs and benchmarks, e.g. `sqlite` or `postgres`. */
  readonly dialect: string
  insertKey(record: ApiKeyRecord): Promise<void>
  findKeyByHash(keyHash: string): Promise<ApiKeyRecord | null>
  findKey(tenantId: string, id: string): Promise<ApiKeyRecord | null>
  /** Newest first (created_at desc, id desc). */
  listKeys(query: ListKeysQuery): Promise<ApiKeyRecord[]>
  updateKey(tenantId: string, id: string, patch: KeyPatch, now: Date): Promise<ApiKeyRecord | null>
  /** Idempotent: an already revoked key keeps its first `revoked_at`. */
  revokeKey(tenantId: string, id: string, now: Date): Promise<ApiKeyRecord | null>
  /** One transaction: mark the old key replaced (only if it still is not), insert the new one. */
  rotateKey(request: RotateRequest): Promise<RotateOutcome>
  /** Adds counts and moves `last_used_at` forward only (never backwards), in bulk. */
  recordUsage(increments: UsageIncrement[]): Promise<void>
  /** Daily counts for these keys from `fromDay` on (inclusive), summed per day, ascending. */
  usageByDay(keyIds: string[], fromDay: string): Promise<UsageDay[]>
  totalRequests(keyIds: string[]): Promise<number>
  /** The current end of the change log. */
  latestChangeSeq(): Promise<number>
  readChanges(afterSeq: number, limit: number): Promise<ChangeBatch>
  /** Deletes change-log entries older than this. */
  pruneChanges(before: Date): Promise<void>
  /** Keys whose scheduled rotation is due: `next_rotation_at <= now`, not revoked, not rotated. */
  findDueRotations(now: Date, limit: number): Promise<ApiKeyRecord[]>
  /**
   * Pending deliveries due at `now` and not locked, locked until `lockUntil` for this caller only
   * (an atomic claim, so two schedulers never send the same attempt).
   */
  claimDeliveries(now: Date, lockUntil: Date, limit: number): Promise<WebhookDelivery[]>
  /** Records an attempt's outcome and releases the lock. */
  saveDelivery(delivery: WebhookDelivery): Promise<void>
  listDeliveries(tenantId: string, keyIds: string[]): Promise<WebhookDelivery[]>
  /**
   * Takes up to `want` credits of a key for this process (a lease), first applying a refill that is
   * due at `now`; `want = 0` reads them. One atomic step, so leases of several processes never hand
   * out more than the key has. Null when the key has no credits or does not exist.
   */
  leaseCredits(keyId: string, want: number, now: Date): Promise<CreditLease | null>
  /**
   * Adds back leased credits a process did not spend — only to the setting and period they were
   * taken from (a PATCH or a refill since then set the credits anew). Many keys in one call.
   */
  returnCredits(returns: CreditAdjustment[]): Promise<void>
  /**
   * Subtracts credits spent outside the database (Redis counters), after applying a due refill,
   * never below 0, and only to the setting and period they were spent from. Many keys in one call.
   */
  settleCredits(spends: CreditAdjustment[], now: Date): Promise<void>
  /**
   * Optional push channel (PostgreSQL LISTEN/NOTIFY): calls `onChange` soon after any process
   * commits a change, so caches sync at once instead of at the next poll. Returns an unsubscribe.
   */
  subscribeChanges?(onChange: () => void): Promise<() => Promise<void>>
  close(): Promise<void>
}

export type RotateOutcome =
  | { ok: true; oldKey: ApiKeyRecord; newKey: ApiKeyRecord }
  | { ok: false; reason: 'not_found' | 'already_rotated' | 'key_revoked' | 'not_due' }

export interface RotateRequest {
  tenantId: string
  oldKeyId: string
  /** The fully built replacement row. */
  newKey: ApiKeyRecord
  graceExpiresAt: Date
  now: Date
  /**
   * Scheduled rotation only: the `next_rotation_at` the scheduler saw. The rotation happens only
   * if it is still the stored value, so two schedulers can never rotate one due time twice.
   */
  expectedNextRotationAt?: Date
  /** Recorded in the same transaction as the rotation (the webhook for a scheduled rotation). */
  delivery?: WebhookDelivery
}

export interface CreditLease {
  /** Credits taken for the caller. */
  granted: number
  /** What the key has left after the lease. */
  remaining: number
  /** The setting and period the credits belong to: pass them back with a return or a settlement. */
  version: number
  refilledAt: Date
}

/** Credits of one key's setting (`version`) and period (`refilledAt`) to add back or take away. */
export interface CreditAdjustment {
  keyId: string
  version: number
  refilledAt: Date
  amount: number
}

export interface ChangeBatch {
  /** The highest change sequence number read; pass it back as `afterSeq` next time. */
  seq: number
  keyHashes: string[]
}

/** Thrown by stores when the database cannot be reached; surfaces as 503 `store_unavailable`. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
  }
}
