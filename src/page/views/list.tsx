import type { ApiKey } from '../../core/types.js'
import { ENVIRONMENTS, KEY_STATUSES } from '../../core/types.js'
import { formatDate, formatDateTime, maskedKey, STATUS_LABELS } from '../format.js'
import type { FormProblem } from '../forms.js'
import { describedBy, ErrorSummary, FieldError, Flash, Layout, links, type ViewContext } from './layout.js'
import { EnvironmentBadge, Scopes, StatusBadge } from './parts.js'

export interface ListFilters {
  status: string
  environment: string
  cursor: string
}

export interface ListViewProps {
  view: ViewContext
  keys: readonly ApiKey[]
  filters: ListFilters
  nextCursor: string | null
  canWrite: boolean
  flash?: string
  problem?: FormProblem
}

/** The tenant's keys, one row per key, with the filters and the way to create one. */
export function ListView({ view, keys, filters, nextCursor, canWrite, flash, problem }: ListViewProps) {
  const href = links(view.mount)
  const filtered = filters.status !== '' || filters.environment !== ''
  const pageLink = (cursor: string | null) => {
    const query = new URLSearchParams()
    if (filters.status !== '') query.set('status', filters.status)
    if (filters.environment !== '') query.set('environment', filters.environment)
    if (cursor !== null) query.set('cursor', cursor)
    const search = query.toString()
    return search === '' ? href.list : `${href.list}?${search}`
  }
  return (
    <Layout view={view} title={view.options.title}>
      <div class="page-head">
        <h1>{view.options.title}</h1>
        {canWrite ? (
          <a class="button primary" href={href.create}>
            Create key
          </a>
        ) : null}
      </div>
      <p class="lead">
        A key lets a program call the API for your account. Its secret is shown once, when the key is created; here you see each key by its
        first and last characters.
      </p>
      <Flash message={flash} />
      <ErrorSummary problem={problem} />
      <form class="filters" method="get" action={href.list} aria-label="Filter keys">
        <div class="field">
          <label for="status">Status</label>
          <FieldError id="status" message={problem?.fields.status} />
          <select id="status" name="status" aria-describedby={describedBy('status', problem, false)}>
            <option value="" selected={filters.status === ''}>
              All statuses
            </option>
            {KEY_STATUSES.map((status) => (
              <option value={status} selected={filters.status === status}>
                {STATUS_LABELS[status]}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="environment">Environment</label>
          <FieldError id="environment" message={problem?.fields.environment} />
          <select id="environment" name="environment" aria-describedby={describedBy('environment', problem, false)}>
            <option value="" selected={filters.environment === ''}>
              All environments
            </option>
            {ENVIRONMENTS.filter((environment) => view.actor?.environment !== 'test' || environment === 'test').map((environment) => (
              <option value={environment} selected={filters.environment === environment}>
                {environment === 'live' ? 'Live' : 'Test'}
              </option>
            ))}
          </select>
        </div>
        <button type="submit">Filter</button>
        {filtered ? <a href={href.list}>Show all keys</a> : null}
      </form>
      {keys.length === 0 ? (
        <p>{filtered || filters.cursor !== '' ? 'No keys match these filters.' : 'No keys yet. Create one to call the API.'}</p>
      ) : (
        <section class="table-wrap" aria-labelledby="keys-caption" tabindex={0}>
          <table>
            <caption id="keys-caption" class="visually-hidden">
              API keys{filtered ? ' matching the filters' : ''}
            </caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Key</th>
                <th scope="col">Environment</th>
                <th scope="col">Scopes</th>
                <th scope="col">Status</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">Expires</th>
              </tr>
            </thead>
            <tbody>
              {keys.map((key) => (
                <tr>
                  <th scope="row" class="key-name">
                    <a href={href.key(key.id)}>{key.name}</a>
                  </th>
                  <td class="nowrap">
                    <code>{maskedKey(key)}</code>
                  </td>
                  <td>
                    <EnvironmentBadge environment={key.environment} />
                  </td>
                  <td>
                    <Scopes scopes={key.scopes} />
                  </td>
                  <td>
                    <StatusBadge status={key.status} />
                  </td>
                  <td class="nowrap">
                    <time datetime={key.createdAt.toISOString()}>{formatDate(key.createdAt)}</time>
                  </td>
                  <td class="nowrap">
                    {key.lastUsedAt === null ? (
                      <span class="muted">Never</span>
                    ) : (
                      <time datetime={key.lastUsedAt.toISOString()} title={formatDateTime(key.lastUsedAt)}>
                        {formatDate(key.lastUsedAt)}
                      </time>
                    )}
                  </td>
                  <td>
                    <Expiry apiKey={key} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      {nextCursor !== null || filters.cursor !== '' ? (
        <nav class="pager" aria-label="Pages">
          {filters.cursor !== '' ? <a href={pageLink(null)}>First page</a> : null}
          {nextCursor !== null ? <a href={pageLink(nextCursor)}>Next page</a> : null}
        </nav>
      ) : null}
    </Layout>
  )
}

/** When a key stops working: its expiry, or the end of its grace period once it was rotated. */
function Expiry({ apiKey: key }: { apiKey: ApiKey }) {
  if (key.status === 'rotating' && key.graceExpiresAt !== null) {
    return (
      <span>
        Grace ends{' '}
        <time datetime={key.graceExpiresAt.toISOString()} title={formatDateTime(key.graceExpiresAt)}>
          {formatDate(key.graceExpiresAt)}
        </time>
      </span>
    )
  }
  if (key.expiresAt === null) return <span class="muted">Never</span>
  return <time datetime={key.expiresAt.toISOString()}>{formatDate(key.expiresAt)}</time>
}
