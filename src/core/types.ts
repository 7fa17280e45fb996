/**
 * The domain types shared by the service, every store and every adapter. Nothing here knows about
 * HTTP or SQL.
 */

export type Environment = 'live' | 'test'
export const ENVIRONMENTS: readonly Environment[] = ['live', 'test']

/** Derived from the timestamps and the clock; never stored. */
export type KeyStatus = 'active' | 'expired' | 'revoked' | 'rotating' | 'rotated'
export const KEY_STATUSES: readonly KeyStatus[] = ['active', 'expired', 'revoked', 'rotating', 'rotated']

export type Metadata = Record<string, unknown>

/** One row of `api_keys`, as every store returns it. */
export interface ApiKeyRecord {
  id: string
  tenantId: string
  projectId: string | null
  name: string
  environment: Environment
  /** An empty list means the key is unrestricted within its tenant. */
  scopes: string[]
  metadata: Metadata
  keyHash: string
  keyPrefix: string
  keySuffix: string
  createdAt: Date
  updatedAt: Date
  lastUsedAt: Date | null
  expiresAt: Date | null
  revokedAt: Date | null
  /** Set on the old key when it is rotated. */
  replacedByKeyId: string | null
  /** Set on the new key when it comes from a rotation, so the chain can be walked both ways. */
  rotatedFromKeyId: string | null
  /** Until when a rotated-out key keeps working. */
  graceExpiresAt: Date | null
  rotationIntervalDays: number | null
  nextRotationAt: Date | null
  rotationWebhookUrl: string | null
  /** `whsec_...`, shown once at creation; needed in clear to sign webhooks. */
  rotationWebhookSecret: string | null
}

/** The fields a PATCH may change. `undefined` leaves a field alone; `null` clears it. */
export interface KeyPatch {
  name?: string
  scopes?: string[]
  metadata?: Metadata
  expiresAt?: Date | null
  rotationIntervalDays?: number | null
  nextRotationAt?: Date | null
  rotationWebhookUrl?: string | null
  rotationWebhookSecret?: string | null
}

export interface ListCursor {
  createdAt: Date
  id: string
}

export interface ListKeysQuery {
  tenantId: string
  /** Only keys of this project (a project-bound caller always sets it). */
  projectId?: string
  environment?: Environment
  status?: KeyStatus
  /** The clock reading that `status` is judged against. */
  now: Date
  /** Keys strictly older than this position (newest first). */
  after?: ListCursor
  limit: number
}

/** One (key, UTC day) usage bucket, added to what is stored. */
export interface UsageIncrement {
  keyId: string
  /** `YYYY-MM-DD`, UTC. */
  day: string
  count: number
  lastUsedAt: Date
}

export interface UsageDay {
  day: string
  count: number
}

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed'

export interface DeliveryAttempt {
  at: string
  /** HTTP status, or null when no response came back. */
  status: number | null
  error: string | null
  durationMs: number
}

/** One webhook message (Standard Webhooks: its id is stable across retries). */
export interface WebhookDelivery {
  id: string
  tenantId: string
  keyId: string
  newKeyId: string | null
  eventType: string
  url: string
  /** The exact JSON body to sign and send; wiped (null) once the delivery is settled. */
  payload: string | null
  status: DeliveryStatus
  attempts: DeliveryAttempt[]
  nextAttemptAt: Date | null
  lockedUntil: Date | null
  createdAt: Date
  updatedAt: Date
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

export interface ChangeBatch {
  /** The highest change sequence number read; pass it back as `afterSeq` next time. */
  seq: number
  keyHashes: string[]
}

/**
 * What keyward needs from a database. Every method is one atomic step; no method does a
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
   * Optional push channel (PostgreSQL LISTEN/NOTIFY): calls `onChange` soon after any process
   * commits a change, so caches sync at once instead of at the next poll. Returns an unsubscribe.
   */
  subscribeChanges?(onChange: () => void): Promise<() => Promise<void>>
  close(): Promise<void>
}

/** Thrown by stores when the database cannot be reached; surfaces as 503 `store_unavailable`. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
  }
}

/** Who is making a management call: resolved from an API key or from the host app's own auth. */
export interface Actor {
  tenantId: string
  /** A project-bound caller sees and manages only that project's keys. */
  projectId?: string | null
  /** The caller's scopes; `undefined`, `null` or `[]` means unrestricted within the tenant. */
  scopes?: readonly string[] | null
  /** Set when the caller is an API key; a `test` key cannot mint `live` keys. */
  environment?: Environment
  /** The calling key's id, when the caller is an API key. */
  keyId?: string
}

/** What `apiKeyAuth` puts on the request: a verified key, without its secret or hash. */
export interface VerifiedKey {
  readonly id: string
  readonly tenantId: string
  readonly projectId: string | null
  readonly name: string
  readonly environment: Environment
  readonly scopes: readonly string[]
  readonly metadata: Readonly<Metadata>
  readonly expiresAt: Date | null
}
