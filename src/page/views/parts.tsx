import type { Environment, KeyStatus } from '../../core/types.js'
import { STATUS_LABELS } from '../format.js'

/** A status in words (never colour alone). */
export function StatusBadge({ status }: { status: KeyStatus }) {
  return <span class={`badge ${status}`}>{STATUS_LABELS[status]}</span>
}

export function EnvironmentBadge({ environment }: { environment: Environment }) {
  return <span class={`badge env ${environment}`}>{environment === 'live' ? 'Live' : 'Test'}</span>
}

/** A key's scopes; no scopes is full access within the tenant (the API's `[]`). */
export function Scopes({ scopes }: { scopes: readonly string[] }) {
  if (scopes.length === 0) return <span>Full access</span>
  return (
    <ul class="scopes">
      {scopes.map((scope) => (
        <li>
          <code>{scope}</code>
        </li>
      ))}
    </ul>
  )
}
