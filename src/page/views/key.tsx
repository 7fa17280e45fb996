import type { ApiKey, KeyUsage } from '../../core/types.js'
import { type ChartDay, UsageChart } from '../chart.js'
import { formatCount, formatDate, formatDateTime, formatSeconds, maskedKey, plural } from '../format.js'
import type { FormProblem } from '../forms.js'
import type { KeyHistoryEntry } from '../options.js'
import { describedBy, ErrorSummary, FieldError, Flash, Layout, links, type ViewContext } from './layout.js'
import { EnvironmentBadge, Scopes, StatusBadge } from './parts.js'
import { RevokeDialog } from './revoke.js'

/** A key's history for the page: the entries, or why there are none to show. */
export type HistoryState = { entries: readonly KeyHistoryEntry[] } | { unavailable: true } | undefined

export interface KeyViewProps {
  view: ViewContext
  apiKey: ApiKey
  /** The last 30 days, including the keys it was rotated from; undefined when it could not be read. */
  usage: KeyUsage | undefined
  history: HistoryState
  canWrite: boolean
  gracePeriods: readonly number[]
  /** The name typed into the rename form, when it comes back with an error. */
  nameValue?: string
  flash?: string
  problem?: FormProblem
}

/**
 * The series the chart draws, from the core's daily usage: requests, and rate-limited requests when
 * there are any to show — the key has a rate limit, or some day has refusals (a limit since removed).
 */
export function usageSeries(usage: KeyUsage, key: Pick<ApiKey, 'rateLimits'>): ChartDay[] {
  const limited = key.rateLimits.length > 0 || usage.daily.some((day) => day.rateLimited > 0)
  return usage.daily.map((day) =>
    limited ? { date: day.date, requests: day.requests, rateLimited: day.rateLimited } : { date: day.date, requests: day.requests },
  )
}

/** `60000` → `minute`, `7200000` → `2 hours`: a rate limit's window as the page words it. */
function windowLabel(windowMs: number): string {
  const named: Record<number, string> = { 1000: 'second', 60000: 'minute', 3600000: 'hour', 86400000: 'day' }
  return named[windowMs] ?? (windowMs % 1000 === 0 ? formatSeconds(windowMs / 1000) : `${formatCount(windowMs)} ms`)
}

/** One key: its details, its usage over the last 30 days, what can be done with it, and its history. */
export function KeyView({ view, apiKey: key, usage, history, canWrite, gracePeriods, nameValue, flash, problem }: KeyViewProps) {
  const href = links(view.mount)
  const active = key.status === 'active'
  // A key in its grace period, or disabled, can still be revoked; revoked, rotated-out and expired keys are done.
  const revocable = active || key.status === 'rotating' || key.status === 'disabled'
  return (
    <Layout view={view} title={key.name}>
      <p>
        <a href={href.list}>All keys</a>
      </p>
      <div class="page-head title-row">
        <h1>{key.name}</h1>
        <StatusBadge status={key.status} />
      </div>
      <Flash message={flash} />
      <ErrorSummary problem={problem} />
      <div class="grid-2">
        <section class="card" aria-labelledby="details-title">
          <h2 id="details-title">Details</h2>
          <dl class="details">
            <dt>Key</dt>
            <dd>
              <code>{maskedKey(key)}</code>
            </dd>
            <dt>Environment</dt>
            <dd>
              <EnvironmentBadge environment={key.environment} />
            </dd>
            <dt>Scopes</dt>
            <dd>
              <Scopes scopes={key.scopes} />
            </dd>
            {key.projectId === null ? null : (
              <>
                <dt>Project</dt>
                <dd>{key.projectId}</dd>
              </>
            )}
            <dt>Created</dt>
            <dd>
              <time datetime={key.createdAt.toISOString()}>{formatDateTime(key.createdAt)}</time>
            </dd>
            <dt>Last used</dt>
            <dd>
              {key.lastUsedAt === null ? 'Never' : <time datetime={key.lastUsedAt.toISOString()}>{formatDateTime(key.lastUsedAt)}</time>}
            </dd>
            <dt>Expires</dt>
            <dd>
              {key.expiresAt === null ? 'Never' : <time datetime={key.expiresAt.toISOString()}>{formatDateTime(key.expiresAt)}</time>}
            </dd>
            {key.rateLimits.length === 0 ? null : (
              <>
                <dt>Rate limit{key.rateLimits.length === 1 ? '' : 's'}</dt>
                <dd>
                  {key.rateLimits.map((limit, index) => (
                    <>
                      {index === 0 ? '' : ', '}
                      {plural(limit.limit, 'request')} per {windowLabel(limit.windowMs)}
                    </>
                  ))}
                </dd>
              </>
            )}
            {key.credits === null ? null : (
              <>
                <dt>Credits</dt>
                <dd>
                  {formatCount(key.credits.remaining)} left
                  {key.credits.refill === null
                    ? ''
                    : `, set back to ${formatCount(key.credits.refill.amount)} every ${key.credits.refill.interval}`}
                </dd>
              </>
            )}
            {key.allowedIps.length === 0 ? null : (
              <>
                <dt>Allowed IP addresses</dt>
                <dd>
                  <ul class="scopes">
                    {key.allowedIps.map((range) => (
                      <li>
                        <code>{range}</code>
                      </li>
                    ))}
                  </ul>
                </dd>
              </>
            )}
            {key.enabled ? null : (
              <>
                <dt>Disabled</dt>
                <dd>Every request made with it is refused until it is enabled again.</dd>
              </>
            )}
            {key.graceExpiresAt === null ? null : (
              <>
                <dt>{key.status === 'rotating' ? 'Works until' : 'Stopped working'}</dt>
                <dd>
                  <time datetime={key.graceExpiresAt.toISOString()}>{formatDateTime(key.graceExpiresAt)}</time>
                </dd>
              </>
            )}
            {key.revokedAt === null ? null : (
              <>
                <dt>Revoked</dt>
                <dd>
                  <time datetime={key.revokedAt.toISOString()}>{formatDateTime(key.revokedAt)}</time>
                </dd>
              </>
            )}
            {key.replacedByKeyId === null ? null : (
              <>
                <dt>Replaced by</dt>
                <dd>
                  <a href={href.key(key.replacedByKeyId)}>the new key</a>
                </dd>
              </>
            )}
            {key.rotatedFromKeyId === null ? null : (
              <>
                <dt>Replaces</dt>
                <dd>
                  <a href={href.key(key.rotatedFromKeyId)}>the previous key</a>
                </dd>
              </>
            )}
          </dl>
        </section>

        {canWrite && revocable ? (
          <section class="card" aria-labelledby="actions-title">
            <h2 id="actions-title">Manage</h2>
            {active ? (
              <>
                <form class="inline-form" method="post" action={href.rename(key.id)}>
                  <div class="field">
                    <label for="name">Name</label>
                    <FieldError id="name" message={problem?.fields.name} />
                    <input
                      type="text"
                      id="name"
                      name="name"
                      value={nameValue ?? key.name}
                      maxlength={100}
                      required
                      autocomplete="off"
                      spellcheck={false}
                      aria-describedby={describedBy('name', problem, false)}
                      aria-invalid={problem?.fields.name === undefined ? undefined : 'true'}
                    />
                  </div>
                  <button type="submit">Rename</button>
                </form>
                <form class="inline-form" method="post" action={href.rotate(key.id)}>
                  <div class="field">
                    <label for="grace">Old key keeps working for</label>
                    <p class="hint" id="grace-hint">
                      Rotating shows a new secret once; the old one is refused after this time.
                    </p>
                    <FieldError id="grace" message={problem?.fields.grace} />
                    <select id="grace" name="grace" aria-describedby={describedBy('grace', problem)}>
                      {gracePeriods.map((seconds, index) => (
                        <option value={String(seconds)} selected={index === 0}>
                          {seconds === 0 ? 'No time: stop it now' : formatSeconds(seconds)}
                        </option>
                      ))}
                    </select>
                  </div>
                  <button type="submit">Rotate</button>
                </form>
              </>
            ) : null}
            <form method="get" action={href.revoke(key.id)} data-confirm="revoke-dialog" class="inline-form">
              <p class="hint" id="revoke-hint">
                Revoking refuses every request made with this key, at once.
              </p>
              <button type="submit" class="danger" aria-describedby="revoke-hint">
                Revoke
              </button>
            </form>
            <RevokeDialog view={view} apiKey={key} />
          </section>
        ) : null}
      </div>

      <section class="card" aria-labelledby="usage-title">
        <h2 id="usage-title">Usage in the last 30 days</h2>
        {usage === undefined ? (
          <p>The usage of this key cannot be shown right now.</p>
        ) : (
          <>
            <ul class="totals">
              <li>
                <strong>{formatCount(usage.daily.reduce((sum, day) => sum + day.requests, 0))}</strong>
                requests in 30 days
              </li>
              <li>
                <strong>{formatCount(usage.totalRequests)}</strong>
                requests since {formatDate(usage.createdAt)}
              </li>
            </ul>
            {usage.keyIds.length > 1 ? (
              <p class="hint">Counts include the {plural(usage.keyIds.length - 1, 'key')} this one replaced.</p>
            ) : null}
            <UsageChart days={usageSeries(usage, key)} id="usage-chart" />
          </>
        )}
      </section>

      {/* History: the audit log's events of the key by default (options.ts `history`). */}
      {history === undefined ? null : (
        <section class="card" aria-labelledby="history-title">
          <h2 id="history-title">History</h2>
          {'unavailable' in history ? (
            <p>The history of this key cannot be shown right now.</p>
          ) : history.entries.length === 0 ? (
            <p>Nothing recorded yet.</p>
          ) : (
            <ol class="history">
              {history.entries.map((entry) => (
                <li>
                  <time datetime={entry.at.toISOString()}>{formatDateTime(entry.at)}</time> — {entry.what}
                  {entry.who ? <span class="muted"> · {entry.who}</span> : null}
                </li>
              ))}
            </ol>
          )}
        </section>
      )}
    </Layout>
  )
}
