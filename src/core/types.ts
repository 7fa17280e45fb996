import type { Credits, RefillInterval } from './controls/credits.js'
import type { RateLimit } from './controls/rate-limit.js'

/**
 * The domain types shared by the service, every store and every adapter. Nothing here knows about
 * HTTP or SQL. Times are `Date`s and names are camelCase; the wire shapes (snake_case, ISO strings)
 * live in src/http/ alone.
 */

/** Every environment a key can belong to, in one list (zod enums and the OpenAPI document use it). */
export const ENVIRONMENTS = ['live', 'test'] as const
export type Environment = (typeof ENVIRONMENTS)[number]

/** Every status a key can show. Derived from the timestamps and the clock; never stored. */
export const KEY_STATUSES = ['active', 'expired', 'revoked', 'disabled', 'rotating', 'rotated'] as const
export type KeyStatus = (typeof KEY_STATUSES)[number]

export type Metadata = Record<string, unknown>

/** One row of `api_keys`, as every store returns it. Holds the hash: never leaves the core. */
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
  /**
   * The key a chain of rotations began with; null: this key's own id (a key never rotated from
   * another). Internal: rate-limit counters and credits belong to the lineage, not the row, so a
   * rotation neither resets nor doubles them (see `lineageOf` in records.ts).
   */
  lineageId: string | null
  /** Until when a rotated-out key keeps working. */
  graceExpiresAt: Date | null
  rotationIntervalDays: number | null
  nextRotationAt: Date | null
  rotationWebhookUrl: string | null
  /** `whsec_...`, shown once at creation; needed in clear to sign webhooks. */
  rotationWebhookSecret: string | null
  /** Named sliding-window limits; empty: none. */
  rateLimits: RateLimit[]
  /** CIDR ranges the key may be used from; empty: anywhere. */
  allowedIps: string[]
  /** Credits left as last stored; null: the key has no credits. */
  creditsRemaining: number | null
  creditsRefillAmount: number | null
  creditsRefillInterval: RefillInterval | null
  /** The start of the period `creditsRemaining` belongs to (when credits were set, or last refilled). */
  creditsRefilledAt: Date | null
  /** Changes whenever credits are set, so counters of an earlier setting are never added back. */
  creditsVersion: number
  /** Set while the key is disabled (`enabled: false`). */
  disabledAt: Date | null
  /** Who created the key (audit log, issue 15); null for keys made before it was recorded. */
  createdBy: AuditActor | null
  /** Who revoked the key; null while it is not revoked. */
  revokedBy: AuditActor | null
}

/**
 * A key as management calls return it: everything a tenant may see, with its derived status, and
 * neither the hash nor the webhook signing secret.
 */
export interface ApiKey {
  id: string
  tenantId: string
  projectId: string | null
  name: string
  environment: Environment
  /** `<prefix>_<env>_` and the first body characters, for display. */
  keyPrefix: string
  /** The last characters of the key, for display. */
  keySuffix: string
  scopes: string[]
  metadata: Metadata
  status: KeyStatus
  createdAt: Date
  updatedAt: Date
  lastUsedAt: Date | null
  expiresAt: Date | null
  revokedAt: Date | null
  replacedByKeyId: string | null
  rotatedFromKeyId: string | null
  graceExpiresAt: Date | null
  rotationIntervalDays: number | null
  nextRotationAt: Date | null
  rotationWebhookUrl: string | null
  rateLimits: RateLimit[]
  /** What the key may spend, and how it comes back; null: no credits. */
  credits: Credits | null
  allowedIps: string[]
  /** False while the key is disabled: it answers 401 `api_key_disabled` until enabled again. */
  enabled: boolean
  createdBy: AuditActor | null
  revokedBy: AuditActor | null
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
  rateLimits?: RateLimit[]
  allowedIps?: string[]
  /** Setting credits (or removing them with all four null) also moves `creditsVersion` on. */
  credits?: {
    remaining: number | null
    refillAmount: number | null
    refillInterval: RefillInterval | null
    refilledAt: Date | null
  }
  disabledAt?: Date | null
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
  /** Requests admitted. */
  count: number
  /** Requests refused for a rate limit, and for lack of credits. @default 0 */
  rateLimited?: number
  creditsRefused?: number
  /** The latest admitted request, or null when the bucket holds only refusals. */
  lastUsedAt: Date | null
}

export interface UsageDay {
  day: string
  count: number
  rateLimited: number
  creditsRefused: number
}

/** Request counts of a key, as `getUsage` reports them. */
export interface KeyUsage {
  keyId: string
  name: string
  createdAt: Date
  lastUsedAt: Date | null
  daysSinceCreation: number
  daysSinceLastUse: number | null
  totalRequests: number
  /** The keys counted: this one, plus its predecessors when asked to follow the rotation chain. */
  keyIds: string[]
  /** One entry per UTC day, oldest first: admitted requests, and requests refused for a rate limit or credits. */
  daily: { date: string; requests: number; rateLimited: number; creditsRefused: number }[]
}

export const DELIVERY_STATUSES = ['pending', 'succeeded', 'failed'] as const
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number]

export interface DeliveryAttempt {
  at: string
  /** HTTP status, or null when no response came back. */
  status: number | null
  error: string | null
  durationMs: number
}

/**
 * One webhook message (Standard Webhooks: its id is stable across retries): a key's rotation
 * webhook (`endpointId` null) or an audit event sent to a tenant's webhook endpoint.
 */
export interface WebhookDelivery {
  id: string
  tenantId: string
  /** The key the message is about; `''` for an endpoint's event that concerns no key. */
  keyId: string
  newKeyId: string | null
  /** The webhook endpoint it goes to; null for a rotation webhook. */
  endpointId: string | null
  /** The audit event it carries; null for a rotation webhook. One delivery per (event, endpoint). */
  eventId: string | null
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

/** A delivery as a tenant may see it: outcome and attempts, never the payload (it holds a secret). */
export type DeliveryView = Omit<WebhookDelivery, 'payload' | 'lockedUntil' | 'tenantId' | 'endpointId' | 'eventId'>

/** Who made a change, as the audit log names them (issue 15). */
export const ACTOR_TYPES = ['api_key', 'user', 'system', 'cli'] as const
export type ActorType = (typeof ACTOR_TYPES)[number]

/**
 * `api_key`: the calling key's id. `user`: the subject the host's `authenticate` returned (or null).
 * `system`: a code caller (null) or keyward itself (`"scheduler"`). `cli`: the operating-system user.
 */
export interface AuditActor {
  type: ActorType
  id: string | null
}

/** The request a management call came from, recorded with its audit event. */
export interface RequestInfo {
  /** The socket's peer address, or the client named by trusted proxies (`trustProxy`). */
  ip?: string | null
  userAgent?: string | null
  /** The incoming `X-Request-Id`, or the one the router generated (echoed in the answer). */
  requestId?: string | null
}

/** Who is making a management call: resolved from an API key or from the host app's own auth. */
export interface Actor {
  tenantId: string
  /** A project-bound caller sees and manages only that project's keys. */
  projectId?: string | null
  /** The caller's scopes; `undefined`, `null` or `[]` means unrestricted within the tenant. */
  scopes?: readonly string[] | null
  /** Set when the caller is an API key: a `test` key sees and manages `test` keys only. */
  environment?: Environment
  /** The calling key's id, when the caller is an API key. */
  keyId?: string
  /**
   * Who acts, as the audit log records it.
   * @default 'api_key' when `keyId` is set, else 'user' when `subject` is, else 'system'
   */
  type?: ActorType
  /**
   * The acting person's id in the host app (a JWT's `sub`, a session's user id), or the CLI's user:
   * the `id` of the audit log's actor for `user`, `cli` and `system` callers.
   */
  subject?: string | null
  /** The request the call came from; the keys router fills it in. */
  request?: RequestInfo
  /**
   * The calling key's own controls, when the caller is an API key: a caller may not grant or
   * touch a key with looser ones (no escalation through limits, credits or IP ranges).
   */
  controls?: CallerControls
}

/** What a calling key may itself do, compared with what it grants. */
export interface CallerControls {
  rateLimits: readonly RateLimit[]
  /** What the caller has left now, and its refill; null: no credits (unlimited). */
  credits: Credits | null
  allowedIps: readonly string[]
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
