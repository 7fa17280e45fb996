import type { AuditEvent } from '../core/audit/types.js'
import type { Keyward } from '../core/keyward.js'
import type { Actor, ApiKey } from '../core/types.js'
import type { KeyHistoryEntry } from './options.js'

/** How many of a key's latest events its page shows. */
const HISTORY_LENGTH = 50

/**
 * A key's history from keyward's own audit log, in words a customer reads: the default of the
 * page's `history` option. The person sees what the API would show them (`GET /api-keys/events`
 * with the same visibility rules).
 */
export async function auditHistory(keyward: Keyward, actor: Actor, key: ApiKey): Promise<readonly KeyHistoryEntry[] | null> {
  const events = await keyward.listEvents(actor, { keyId: key.id, limit: HISTORY_LENGTH })
  if (!events.ok) throw new Error(events.error.detail)
  return events.value.items.map((event) => ({ at: event.occurredAt, what: describe(event), who: whoDid(event) }))
}

function describe(event: AuditEvent): string {
  const changes = event.details.changes as Record<string, { after: unknown }> | undefined
  switch (event.type) {
    case 'api_key.created':
      return 'Created'
    case 'api_key.updated': {
      const renamed = changes?.name?.after
      if (typeof renamed === 'string' && Object.keys(changes ?? {}).length === 1) return `Renamed to “${renamed}”`
      const fields = Object.keys(changes ?? {}).map((field) => field.replaceAll('_', ' '))
      return fields.length === 0 ? 'Changed' : `Changed ${fields.join(', ')}`
    }
    case 'api_key.revoked':
      return 'Revoked'
    case 'api_key.rotated':
      return typeof event.details.new_key_id === 'string' ? `Rotated (replaced by ${event.details.new_key_id})` : 'Rotated'
    case 'api_key.disabled':
      return 'Disabled'
    case 'api_key.enabled':
      return 'Enabled'
    case 'api_key.expiring':
      return typeof event.details.expires_at === 'string'
        ? `Expiry warning (expires ${event.details.expires_at.slice(0, 16).replace('T', ' ')} UTC)`
        : 'Expiry warning'
    case 'api_key.expired':
      return 'Expired'
    default:
      return event.type
  }
}

function whoDid(event: AuditEvent): string | null {
  const { type, id } = event.actor
  if (type === 'api_key') return id === null ? 'an API key' : `API key ${id}`
  if (type === 'user') return id
  if (type === 'cli') return id === null ? 'the command line' : `${id} (command line)`
  return id === 'scheduler' ? 'Scheduled task' : 'System'
}
