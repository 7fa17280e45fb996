import type { KeyStore } from '../store.js'
import type { Actor, ApiKeyRecord } from '../types.js'
import { canSee } from './policy.js'

/**
 * A key by id as this caller may see it, or null: another tenant's, another project's or (for a
 * test key) a live key is simply not there, so the caller gets 404, never 403.
 */
export async function findVisible(store: KeyStore, actor: Actor, id: string): Promise<ApiKeyRecord | null> {
  if (typeof id !== 'string' || id.length > 64) return null
  const record = await store.findKey(actor.tenantId, id)
  return record !== null && canSee(actor, record) ? record : null
}
