import type { ApiKey } from '../../core/types.js'
import { formatDate, formatDateTime, maskedKey } from '../format.js'
import { Layout, links, type ViewContext } from './layout.js'
import { EnvironmentBadge, Scopes } from './parts.js'

export interface SecretViewProps {
  view: ViewContext
  /** The full secret: in this response's body and nowhere else (never a URL, never a cache). */
  secret: string
  apiKey: ApiKey
  /** After a rotation: the key it replaced, which works until its `graceExpiresAt`. */
  replaced?: ApiKey
}

/**
 * The secret, once: the answer to the POST that created (or rotated) the key, as plain selectable
 * text with a copy button and a plain warning. Nothing redirects with it and nothing caches it
 * (`Cache-Control: no-store`); leaving the page is the end of it.
 */
export function SecretView({ view, secret, apiKey: key, replaced }: SecretViewProps) {
  const href = links(view.mount)
  return (
    <Layout view={view} title={replaced === undefined ? 'Key created' : 'Key rotated'}>
      <h1>{replaced === undefined ? 'Key created' : 'Key rotated'}</h1>
      <section class="secret-card" aria-labelledby="secret-title">
        <h2 id="secret-title">Copy the secret of “{key.name}” now</h2>
        <p class="warning" id="secret-warning">
          It will not be shown again. We keep only a hash of it, so nobody can show it to you later. Store it somewhere safe, such as a
          password manager or your deployment’s secret settings.
        </p>
        <p class="label" id="secret-label">
          Secret key
        </p>
        <div class="secret-row">
          <code class="secret" id="secret-value">
            {secret}
          </code>
          <button type="button" class="primary" data-copy="secret-value" hidden>
            Copy<span class="visually-hidden"> the secret key</span>
          </button>
        </div>
        <p id="kw-live" class="live-region" role="status"></p>
        {replaced === undefined ? null : <GraceNote replaced={replaced} />}
        <dl class="details">
          <dt>Name</dt>
          <dd>{key.name}</dd>
          <dt>Environment</dt>
          <dd>
            <EnvironmentBadge environment={key.environment} />
          </dd>
          <dt>Scopes</dt>
          <dd>
            <Scopes scopes={key.scopes} />
          </dd>
          <dt>Expires</dt>
          <dd>{key.expiresAt === null ? 'Never' : formatDate(key.expiresAt)}</dd>
        </dl>
        <p class="actions">
          <a class="button" href={href.key(key.id)}>
            Done
          </a>
          <span class="hint">Only once you have stored the secret.</span>
        </p>
      </section>
    </Layout>
  )
}

/** When the replaced key stops working, so programs can be moved to the new one in time. */
function GraceNote({ replaced }: { replaced: ApiKey }) {
  const ends = replaced.graceExpiresAt
  if (replaced.status !== 'rotating' || ends === null) {
    return (
      <p>
        The old key <code>{maskedKey(replaced)}</code> stopped working at once.
      </p>
    )
  }
  return (
    <p id="grace-note">
      The old key <code>{maskedKey(replaced)}</code> keeps working until{' '}
      <strong>
        <time datetime={ends.toISOString()}>{formatDateTime(ends)}</time>
      </strong>
      , then it is refused. Move your programs to the new secret before then.
    </p>
  )
}
