import type { AuditEvent, ListEventsQuery, StoredEvent, WebhookEndpointRecord } from './audit/types.js'
import type { ApiKeyRecord, AuditActor, KeyPatch, ListKeysQuery, UsageDay, UsageIncrement, WebhookDelivery } from './types.js'

/**
 * The fields the verification reads of a key (`findKeyByHash`): what a handler sees of it, what
 * decides whether it is good now (revocation, expiry, grace, disable) and its controls (lineage,
 * limits, allowlist, credits); `keyHash` matches a batch's rows to their misses. Nothing else:
 * every cache miss reads these, and on SQLite decoding the row cost about as much as finding it
 * (`npm run bench -- --micro` on the 200,000-key file: 12.5 µs a read with every column through
 * drizzle, 8.2 µs with these through the SQLite store's row decoder, 6.9 µs for the driver alone). Not the key's last use either: last uses live with the usage counts
 * a flush rewrites every second, and reading them would make each miss read those pages too.
 */
export const VERIFICATION_FIELDS = [
  'id',
  'tenantId',
  'projectId',
  'name',
  'environment',
  'scopes',
  'metadata',
  'keyHash',
  'expiresAt',
  'revokedAt',
  'disabledAt',
  'replacedByKeyId',
  'graceExpiresAt',
  'lineageId',
  'rateLimits',
  'allowedIps',
  'creditsRemaining',
  'creditsRefillAmount',
  'creditsRefillInterval',
  'creditsRefilledAt',
  'creditsVersion',
] as const satisfies readonly (keyof ApiKeyRecord)[]

/** A key as the verification reads it (see `VERIFICATION_FIELDS`). */
export type StoredKey = Pick<ApiKeyRecord, (typeof VERIFICATION_FIELDS)[number]>

/**
 * What keyward needs from a database: the one contract every store implements and one suite
 * (test/contract/store-contract.ts) checks. Every method is one atomic step; no method does a
 * read-modify-write in JavaScript. Every write that changes what verification must answer (update,
 * revoke, rotate) also appends to a change log in the same transaction, so other processes on
 * the same database can evict their caches (`readChanges`).
 *
 * Every key write takes the audit events that record it (issue 15) and writes them, with their
 * webhook deliveries, in the same transaction: a change that does not happen (not found, a lost
 * race) writes no event, and no change is committed without its event.
 *
 * Stores throw {@link StoreUnavailableError} when the database cannot be reached; anything else
 * they throw is a bug.
 */
export interface KeyStore {
  /** A short name for logs and benchmarks, e.g. `sqlite` or `postgres`. */
  readonly dialect: string
  insertKey(record: ApiKeyRecord, audit?: AuditWrite): Promise<void>
  /** The verification read: the key's `VERIFICATION_FIELDS`, or null for an unknown hash. */
  findKeyByHash(keyHash: string): Promise<StoredKey | null>
  /**
   * The keys among `keyHashes` the store holds, in any order (one query: verification batches
   * concurrent cache misses of different keys this way), with the fields `findKeyByHash` reads.
   */
  findKeysByHash(keyHashes: readonly string[]): Promise<StoredKey[]>
  findKey(tenantId: string, id: string): Promise<ApiKeyRecord | null>
  /** Newest first (created_at desc, id desc). */
  listKeys(query: ListKeysQuery): Promise<ApiKeyRecord[]>
  /**
   * `audit` is called inside the transaction with the row as it was (read under the write lock, so
   * exact under concurrent updates) and as it is now; what it returns is written with the change.
   */
  updateKey(tenantId: string, id: string, patch: KeyPatch, now: Date, audit?: AuditOf): Promise<ApiKeyRecord | null>
  /**
   * Idempotent: an already revoked key is returned unchanged (its first `revoked_at` and
   * `revoked_by` stay, nothing is written and `audit` is not called).
   */
  revokeKey(
    tenantId: string,
    id: string,
    now: Date,
    revokedBy?: AuditActor | null,
    audit?: (revoked: ApiKeyRecord) => AuditWrite,
  ): Promise<ApiKeyRecord | null>
  /**
   * One transaction: mark the old key replaced (only if it still is not), insert the new one. The
   * new row continues the old one's lineage and credits as the old row holds them under the lock
   * (`inheritLineage` in records.ts), whatever `newKey` says of them; `newKey` of the outcome is
   * the row as inserted.
   */
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
   * (an atomic claim, so two schedulers never send the same attempt). With `ids`, only those.
   */
  claimDeliveries(now: Date, lockUntil: Date, limit: number, ids?: string[]): Promise<WebhookDelivery[]>
  /** Records an attempt's outcome and releases the lock. */
  saveDelivery(delivery: WebhookDelivery): Promise<void>
  /** Rotation webhook deliveries of these keys (not the endpoints' event deliveries). */
  listDeliveries(tenantId: string, keyIds: string[]): Promise<WebhookDelivery[]>

  // Audit log and event webhooks (issue 15) ------------------------------------------------------

  /**
   * Writes events that record no key write (the scheduler's expiry notices). An event whose id is
   * already stored is skipped with its deliveries, so two instances computing the same notice write
   * it once. Returns the ids written.
   */
  recordEvents(audit: AuditWrite): Promise<string[]>
  /** Which of these event ids are stored. */
  existingEventIds(ids: string[]): Promise<string[]>
  /** Newest first (occurred_at desc, seq desc). */
  listEvents(query: ListEventsQuery): Promise<StoredEvent[]>
  /**
   * Keys that stop working in (from, to]: by `expires_at` (not revoked), or by the end of their
   * rotation grace period (`grace_expires_at`, rotated, not revoked). Ascending by that instant, then id.
   */
  findKeysEnding(query: EndingKeysQuery): Promise<ApiKeyRecord[]>
  /**
   * Deletes up to `limit` events that occurred before `before`, and up to `limit` settled
   * deliveries created before it. Returns the number of events deleted.
   */
  pruneAudit(before: Date, limit: number): Promise<number>
  insertWebhookEndpoint(endpoint: WebhookEndpointRecord, audit?: AuditWrite): Promise<void>
  /** A tenant's endpoints, oldest first. */
  listWebhookEndpoints(tenantId: string): Promise<WebhookEndpointRecord[]>
  findWebhookEndpoint(tenantId: string, id: string): Promise<WebhookEndpointRecord | null>
  /** Deletes an endpoint and its deliveries; `audit` (called with the deleted row) is written with it. */
  deleteWebhookEndpoint(
    tenantId: string,
    id: string,
    audit?: (deleted: WebhookEndpointRecord) => AuditWrite,
  ): Promise<WebhookEndpointRecord | null>
  /** Stops deliveries to an endpoint whose receiver answered 410 Gone. */
  disableWebhookEndpoint(tenantId: string, id: string, now: Date): Promise<void>
  /** An endpoint's deliveries, newest first. */
  listEndpointDeliveries(tenantId: string, endpointId: string, limit: number): Promise<WebhookDelivery[]>
  /**
   * Takes up to `want` credits of a key lineage for this process (a lease), first applying a refill
   * that is due at `now`; `want = 0` reads them. One atomic step, so leases of several processes
   * never hand out more than the key has. Credits, leases, returns and settlements all address the
   * lineage's head (`lineageHead` in src/store/conditions.ts: the key of the lineage not replaced),
   * so a rotation in between moves nothing and loses nothing. Null when the key has no credits or
   * does not exist.
   */
  leaseCredits(lineageId: string, want: number, now: Date): Promise<CreditLease | null>
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
  /** The fully built replacement row (its lineage and credit columns are taken from the old row). */
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
  /** The `api_key.rotated` event and its deliveries: written only if this rotation wins. */
  audit?: AuditWrite
}

/** Audit events and the webhook deliveries that carry them, written with the change they record. */
export interface AuditWrite {
  events: AuditEvent[]
  /** At most one per (event, endpoint): a unique constraint makes a second one fail. */
  deliveries: WebhookDelivery[]
}

/** Builds a change's audit write from the row before and after it (inside the store's transaction). */
export type AuditOf = (before: ApiKeyRecord, after: ApiKeyRecord) => AuditWrite | undefined

export interface EndingKeysQuery {
  /** `expiresAt`: keys that expire; `graceExpiresAt`: rotated keys whose grace period ends. */
  deadline: 'expiresAt' | 'graceExpiresAt'
  from: Date
  to: Date
  /** Keys after this position (deadline asc, id asc). */
  after?: { at: Date; id: string }
  limit: number
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

/** Credits of one key lineage's setting (`version`) and period (`refilledAt`) to add back or take away. */
export interface CreditAdjustment {
  /** The lineage (see `lineageOf`): the adjustment goes to its head, whichever key spent. */
  lineageId: string
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
