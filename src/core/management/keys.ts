import { fail, ok, type Result } from '../errors.js'
import { newWebhookSecret } from '../lifecycle/signing.js'
import { checkWebhookUrl } from '../lifecycle/ssrf.js'
import { creditColumns, mintKeyRecord, mintSuccessor, nextRotationAt, toApiKey } from '../records.js'
import type { Runtime } from '../runtime.js'
import type { Actor, ApiKey, ApiKeyRecord, CallerControls, KeyPatch } from '../types.js'
import { decodeCursor, encodeCursor } from './cursor.js'
import {
  type CreateKeyInput,
  checkActor,
  createInputSchema,
  type ListKeysInput,
  listInputSchema,
  parseInput,
  type RotateKeyInput,
  rotateInputSchema,
  type UpdateKeyInput,
  updateInputSchema,
} from './inputs.js'
import { findVisible } from './lookup.js'
import {
  controlsCeiling,
  controlsOf,
  environmentForNewKey,
  grantCeiling,
  listFilter,
  projectForNewKey,
  requireScope,
  targetCeiling,
  writable,
} from './policy.js'

export interface CreatedKey {
  /** The full secret. Shown once: keyward keeps only its hash. */
  key: string
  apiKey: ApiKey
  /** `whsec_...` for verifying rotation webhooks; present when a webhook URL was set. Shown once. */
  rotationWebhookSecret?: string
}

export interface RotatedKey {
  /** The new secret. Shown once. */
  key: string
  /** The replacement. */
  newKey: ApiKey
  /** The old key, now `rotating` until its `graceExpiresAt` (or `rotated` with a zero grace). */
  oldKey: ApiKey
}

export interface KeyPage {
  items: ApiKey[]
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null
}

/**
 * The key-management operations. Every one checks the caller against the one policy
 * (./policy.ts), validates its input with zod, and returns a `Result`; none throws for bad input or
 * an unreachable store.
 */
export class KeyManager {
  readonly #runtime: Runtime

  constructor(runtime: Runtime) {
    this.#runtime = runtime
  }

  async createKey(actor: Actor, input: CreateKeyInput): Promise<Result<CreatedKey>> {
    const denied = checkActor(actor) ?? requireScope(actor, 'api_keys:write')
    if (denied) return denied
    const parsed = parseInput(createInputSchema, input)
    if (!parsed.ok) return parsed
    const data = parsed.value
    const now = this.#runtime.now()
    const project = projectForNewKey(actor, data.projectId)
    if (!project.ok) return project
    const environment = environmentForNewKey(actor, data.environment)
    if (!environment.ok) return environment
    const scopes = data.scopes ?? []
    const controls = { rateLimits: data.rateLimits ?? [], credits: data.credits ?? null, allowedIps: data.allowedIps ?? [] }
    const ceiling = grantCeiling(actor, scopes) ?? controlsCeiling(actor, controls)
    if (ceiling) return ceiling
    const expiry = resolveExpiry(data.expiresAt, data.expiresInSeconds, now)
    if (!expiry.ok) return expiry
    if (data.rotationIntervalDays !== undefined && data.rotationWebhookUrl === undefined) return scheduleNeedsWebhook()
    const unsafeUrl = data.rotationWebhookUrl === undefined ? undefined : this.#checkWebhookUrl(data.rotationWebhookUrl)
    if (unsafeUrl) return unsafeUrl
    const webhookSecret = data.rotationWebhookUrl !== undefined ? newWebhookSecret() : undefined
    const { options } = this.#runtime
    const minted = mintKeyRecord(
      {
        tenantId: actor.tenantId,
        projectId: project.value,
        name: data.name,
        environment: environment.value,
        scopes,
        metadata: data.metadata ?? {},
        expiresAt: expiry.value,
        rotationIntervalDays: data.rotationIntervalDays ?? null,
        rotationWebhookUrl: data.rotationWebhookUrl ?? null,
        rotationWebhookSecret: webhookSecret ?? null,
        rotatedFromKeyId: null,
        ...controls,
      },
      now,
      options.prefix,
      options.pepper,
    )
    return this.#runtime.guard(async (store) => {
      await store.insertKey(minted.record)
      const created: CreatedKey = { key: minted.key, apiKey: this.#toApiKey(minted.record, now) }
      if (webhookSecret !== undefined) created.rotationWebhookSecret = webhookSecret
      return ok(created)
    })
  }

  /** A page of the keys the caller may see, newest first. */
  async listKeys(actor: Actor, input: ListKeysInput = {}): Promise<Result<KeyPage>> {
    const denied = checkActor(actor) ?? requireScope(actor, 'api_keys:read')
    if (denied) return denied
    const parsed = parseInput(listInputSchema, input)
    if (!parsed.ok) return parsed
    const { limit = 20, cursor, status, projectId, environment } = parsed.value
    const after = cursor === undefined ? undefined : decodeCursor(cursor)
    if (cursor !== undefined && after === undefined) {
      return fail('validation_error', 'The cursor is not valid.', [{ field: 'cursor', message: 'is not a cursor this API issued' }])
    }
    const filter = listFilter(actor, { projectId, environment })
    if (filter === null) return ok({ items: [], nextCursor: null })
    const now = this.#runtime.now()
    return this.#runtime.guard(async (store) => {
      const rows = await store.listKeys({ tenantId: actor.tenantId, ...filter, status, now, after, limit: limit + 1 })
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      const nextCursor = rows.length > limit && last !== undefined ? encodeCursor(last) : null
      return ok({ items: page.map((row) => this.#toApiKey(row, now)), nextCursor })
    })
  }

  async getKey(actor: Actor, id: string): Promise<Result<ApiKey>> {
    const denied = checkActor(actor) ?? requireScope(actor, 'api_keys:read')
    if (denied) return denied
    return this.#runtime.guard(async (store) => {
      const record = await findVisible(store, actor, id)
      return record === null ? fail('not_found') : ok(this.#toApiKey(record, this.#runtime.now()))
    })
  }

  /** Renames a key or changes its scopes, metadata, expiry or rotation schedule. An empty change writes nothing. */
  async updateKey(actor: Actor, id: string, input: UpdateKeyInput): Promise<Result<ApiKey>> {
    const denied = checkActor(actor) ?? requireScope(actor, 'api_keys:write')
    if (denied) return denied
    const parsed = parseInput(updateInputSchema, input)
    if (!parsed.ok) return parsed
    const data = parsed.value
    if (data.scopes !== undefined) {
      const ceiling = grantCeiling(actor, data.scopes)
      if (ceiling) return ceiling
    }
    const unsafeUrl = typeof data.rotationWebhookUrl === 'string' ? this.#checkWebhookUrl(data.rotationWebhookUrl) : undefined
    if (unsafeUrl) return unsafeUrl
    const now = this.#runtime.now()
    const patch: KeyPatch = {}
    if (data.name !== undefined) patch.name = data.name
    if (data.scopes !== undefined) patch.scopes = data.scopes
    if (data.metadata !== undefined) patch.metadata = data.metadata
    if (data.rateLimits !== undefined) patch.rateLimits = data.rateLimits
    if (data.allowedIps !== undefined) patch.allowedIps = data.allowedIps
    if (data.credits !== undefined) {
      const columns = creditColumns(data.credits, now)
      patch.credits = {
        remaining: columns.creditsRemaining,
        refillAmount: columns.creditsRefillAmount,
        refillInterval: columns.creditsRefillInterval,
        refilledAt: columns.creditsRefilledAt,
      }
    }
    if (data.enabled !== undefined) patch.disabledAt = data.enabled ? null : now
    if (data.expiresAt === null) patch.expiresAt = null
    else if (data.expiresAt !== undefined) {
      const expiry = resolveExpiry(data.expiresAt, undefined, now)
      if (!expiry.ok) return expiry
      patch.expiresAt = expiry.value
    }
    return this.#runtime.guard(async (store) => {
      const current = await findVisible(store, actor, id)
      if (current === null) return fail('not_found')
      const refused = targetCeiling(actor, current, now) ?? writable(current, now)
      if (refused) return refused
      // What the key will have: within the caller's powers like a new key (no escalation by PATCH).
      const resulting = controlsOf(current, now)
      const granted: CallerControls = {
        rateLimits: data.rateLimits ?? resulting.rateLimits,
        credits: data.credits === undefined ? resulting.credits : data.credits,
        allowedIps: data.allowedIps ?? resulting.allowedIps,
      }
      const looser =
        data.rateLimits !== undefined || data.credits !== undefined || data.allowedIps !== undefined
          ? controlsCeiling(actor, granted)
          : undefined
      if (looser) return looser
      // Enabling or disabling again is not a change: the key keeps its first disabled_at.
      if (patch.disabledAt !== undefined && (patch.disabledAt === null) === (current.disabledAt === null)) delete patch.disabledAt
      if (data.rotationWebhookUrl !== undefined) {
        patch.rotationWebhookUrl = data.rotationWebhookUrl
        if (data.rotationWebhookUrl === null) {
          patch.rotationIntervalDays = null
          patch.nextRotationAt = null
        }
      }
      if (data.rotationIntervalDays !== undefined) {
        const webhookUrl = patch.rotationWebhookUrl !== undefined ? patch.rotationWebhookUrl : current.rotationWebhookUrl
        if (data.rotationIntervalDays !== null && webhookUrl === null) return scheduleNeedsWebhook()
        patch.rotationIntervalDays = data.rotationIntervalDays
        patch.nextRotationAt = nextRotationAt(now, data.rotationIntervalDays)
      }
      if (patch.rotationWebhookUrl && current.rotationWebhookSecret === null) patch.rotationWebhookSecret = newWebhookSecret()
      // Nothing asked for: nothing written, not even updated_at, and no cache eviction.
      if (Object.keys(patch).length === 0) return ok(this.#toApiKey(current, now))
      const updated = await store.updateKey(actor.tenantId, id, patch, now)
      if (updated === null) return fail('not_found')
      this.#runtime.evict(updated.keyHash)
      return ok(this.#toApiKey(updated, now))
    })
  }

  /**
   * Revokes a key; it is rejected from the next request on. Revoking twice is not an error. A key
   * may revoke itself even without `api_keys:write`: whoever holds a leaked key can always kill it.
   */
  async revokeKey(actor: Actor, id: string): Promise<Result<ApiKey>> {
    const self = actor.keyId !== undefined && actor.keyId === id
    const denied = checkActor(actor) ?? (self ? undefined : requireScope(actor, 'api_keys:write'))
    if (denied) return denied
    return this.#runtime.guard(async (store) => {
      const current = await findVisible(store, actor, id)
      if (current === null) return fail('not_found')
      const refused = targetCeiling(actor, current, this.#runtime.now())
      if (refused) return refused
      const now = this.#runtime.now()
      const revoked = await store.revokeKey(actor.tenantId, id, now)
      if (revoked === null) return fail('not_found')
      this.#runtime.evict(revoked.keyHash)
      return ok(this.#toApiKey(revoked, now))
    })
  }

  /**
   * Replaces a key with a new one that inherits everything but the secret. The old key works until
   * its `graceExpiresAt`. Atomic: of two concurrent rotations one wins and the other gets
   * `already_rotated`; a key in its grace period has been rotated already and is refused the same way.
   */
  async rotateKey(actor: Actor, id: string, input: RotateKeyInput = {}): Promise<Result<RotatedKey>> {
    const denied = checkActor(actor) ?? requireScope(actor, 'api_keys:write')
    if (denied) return denied
    const parsed = parseInput(rotateInputSchema, input)
    if (!parsed.ok) return parsed
    const { options } = this.#runtime
    return this.#runtime.guard(async (store) => {
      const current = await findVisible(store, actor, id)
      if (current === null) return fail('not_found')
      const now = this.#runtime.now()
      const refused = targetCeiling(actor, current, now) ?? rotatable(current, now)
      if (refused) return refused
      const graceExpiresAt = new Date(now.getTime() + (parsed.value.gracePeriodSeconds ?? options.defaultGraceSeconds) * 1000)
      const minted = mintSuccessor(current, now, options.prefix, options.pepper)
      const outcome = await store.rotateKey({ tenantId: actor.tenantId, oldKeyId: id, newKey: minted.record, graceExpiresAt, now })
      if (!outcome.ok) return rotateFailure(outcome.reason)
      this.#runtime.evict(outcome.oldKey.keyHash)
      return ok({ key: minted.key, newKey: this.#toApiKey(outcome.newKey, now), oldKey: this.#toApiKey(outcome.oldKey, now) })
    })
  }

  /**
   * A key as this process answers for it: the credits this process holds (leased, not yet spent or
   * returned) are still the key's, so a single instance shows exactly what is left.
   */
  #toApiKey(record: ApiKeyRecord, now: Date): ApiKey {
    const apiKey = toApiKey(record, now)
    if (apiKey.credits !== null) apiKey.credits.remaining += this.#runtime.controls.held(record, now.getTime())
    return apiKey
  }

  /** Save-time SSRF check of a webhook URL (no DNS: a public-looking name is checked again at delivery). */
  #checkWebhookUrl(url: string) {
    const problem = checkWebhookUrl(url, this.#runtime.options.outboundPolicy)
    if (problem === undefined) return undefined
    return fail('validation_error', 'The request has invalid fields.', [{ field: 'rotation_webhook_url', message: problem }])
  }
}

/** Which lifecycle states refuse a rotation: revoked and expired keys cannot be revived by one. */
function rotatable(record: Parameters<typeof writable>[0], now: Date) {
  const refused = writable(record, now)
  // A rotated-out key is refused by the store's conditional update as `already_rotated`.
  return refused?.error.code === 'key_rotated' ? undefined : refused
}

function rotateFailure(reason: 'not_found' | 'already_rotated' | 'key_revoked' | 'not_due') {
  if (reason === 'not_found') return fail('not_found')
  if (reason === 'key_revoked') return fail('key_revoked')
  return fail('already_rotated')
}

function scheduleNeedsWebhook() {
  return fail('validation_error', 'A rotation schedule needs a webhook to deliver the new key to.', [
    { field: 'rotation_webhook_url', message: 'is required with rotation_interval_days' },
  ])
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
