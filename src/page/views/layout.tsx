import type { Child } from 'hono/jsx'
import type { Actor } from '../../core/types.js'
import { SCRIPT_ASSET, STYLE_ASSET } from '../assets/index.js'
import type { FormProblem } from '../forms.js'
import type { ResolvedPageOptions } from '../options.js'

/** What every view needs: where the page is mounted, its options, and who is signed in (if anyone). */
export interface ViewContext {
  /** The mount path without a trailing slash (`/settings/api-keys`; '' at the root). */
  mount: string
  options: ResolvedPageOptions
  actor: Actor | null
}

/** The page's URLs, all under the mount path. Key ids are URL-safe; they are encoded all the same. */
export function links(mount: string) {
  const key = (id: string) => `${mount}/${encodeURIComponent(id)}`
  return {
    list: mount === '' ? '/' : mount,
    create: `${mount}/new`,
    key,
    rename: (id: string) => `${key(id)}/rename`,
    rotate: (id: string) => `${key(id)}/rotate`,
    revoke: (id: string) => `${key(id)}/revoke`,
    asset: (file: string) => `${mount}/assets/${file}`,
  }
}

export function Layout({ view, title, children }: { view: ViewContext; title: string; children: Child }) {
  const { options, actor, mount } = view
  const href = links(mount)
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{title === options.title ? title : `${title} – ${options.title}`}</title>
        <link rel="stylesheet" href={href.asset(STYLE_ASSET.file)} />
        <script src={href.asset(SCRIPT_ASSET.file)} defer></script>
      </head>
      <body>
        <header class="site-header">
          <div class="inner">
            <a class="brand" href={href.list}>
              {options.title}
            </a>
            {actor === null ? null : (
              <p class="who">
                Signed in for <strong>{actor.tenantId}</strong>
                {actor.projectId ? ` · project ${actor.projectId}` : ''}
                {actor.environment === 'test' ? ' · test keys only' : ''}
              </p>
            )}
            {options.homeUrl === undefined ? null : <a href={options.homeUrl}>Back to the app</a>}
          </div>
        </header>
        <main id="main">
          {options.notice === undefined ? null : (
            <p class="notice" role="note">
              {options.notice}
            </p>
          )}
          {children}
        </main>
      </body>
    </html>
  )
}

/** A one-line confirmation after a change (announced by screen readers). */
export function Flash({ message }: { message: string | undefined }) {
  if (message === undefined) return null
  return (
    <p class="flash" role="status">
      {message}
    </p>
  )
}

/**
 * Every problem of a form at the top of the page, each linking to its field (the GOV.UK error
 * summary), announced as an alert. The same messages stand next to the fields.
 */
export function ErrorSummary({ problem, anchors = {} }: { problem: FormProblem | undefined; anchors?: Record<string, string> }) {
  if (problem === undefined) return null
  const fields = Object.entries(problem.fields)
  if (fields.length === 0 && problem.general.length === 0) return null
  return (
    <div class="error-summary" role="alert" aria-labelledby="error-summary-title">
      <h2 id="error-summary-title">There is a problem</h2>
      <ul>
        {problem.general.map((message) => (
          <li>{message}</li>
        ))}
        {fields.map(([field, message]) => (
          <li>
            <a href={`#${anchors[field] ?? field}`}>{message}</a>
          </li>
        ))}
      </ul>
    </div>
  )
}

/** A field's message, next to it; the field names it in `aria-describedby`. */
export function FieldError({ id, message }: { id: string; message: string | undefined }) {
  if (message === undefined) return null
  return (
    <p class="field-error" id={`${id}-error`}>
      <span class="visually-hidden">Error: </span>
      {message}
    </p>
  )
}

/** `aria-describedby` of a field: its hint and, when it has one, its error. */
export function describedBy(id: string, problem: FormProblem | undefined, hint = true): string | undefined {
  const ids = [hint ? `${id}-hint` : undefined, problem?.fields[id] === undefined ? undefined : `${id}-error`].filter(Boolean)
  return ids.length === 0 ? undefined : ids.join(' ')
}

/** A page that only says something: sign in, no such key, try again later. */
export function MessagePage({ view, title, children }: { view: ViewContext; title: string; children: Child }) {
  return (
    <Layout view={view} title={title}>
      <h1>{title}</h1>
      {children}
    </Layout>
  )
}
