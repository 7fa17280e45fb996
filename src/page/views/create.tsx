import { plural } from '../format.js'
import type { CreateFormValues, FormProblem } from '../forms.js'
import type { Abilities } from '../options.js'
import { describedBy, ErrorSummary, FieldError, Layout, links, type ViewContext } from './layout.js'

export interface CreateViewProps {
  view: ViewContext
  abilities: Abilities
  values: CreateFormValues
  expiryDays: readonly number[]
  problem?: FormProblem
}

/** `365` → `In 1 year`, `30` → `In 30 days` */
function expiryLabel(days: number): string {
  return days % 365 === 0 ? `In ${plural(days / 365, 'year')}` : `In ${plural(days, 'day')}`
}

/**
 * The create form: name, environment, scopes and expiry, posted to `<mount>/new`. With errors it
 * comes back filled in, each message next to its field and all of them in a summary at the top.
 */
export function CreateView({ view, abilities, values, expiryDays, problem }: CreateViewProps) {
  const href = links(view.mount)
  const noScopesDeclared = view.options.scopes.length === 0
  // The summary links to the first control of a group of checkboxes.
  const scopesAnchor = abilities.fullAccess ? 'full_access' : abilities.scopes.length > 0 ? 'scope-0' : 'scopes'
  return (
    <Layout view={view} title="Create key">
      <h1>Create key</h1>
      <ErrorSummary problem={problem} anchors={{ scopes: scopesAnchor }} />
      <form class="stack" method="post" action={href.create} novalidate>
        <div class="field">
          <label for="name">Name</label>
          <p class="hint" id="name-hint">
            So you recognise it later, e.g. “Production server” or “CI”.
          </p>
          <FieldError id="name" message={problem?.fields.name} />
          <input
            type="text"
            id="name"
            name="name"
            value={values.name}
            maxlength={100}
            required
            autocomplete="off"
            spellcheck={false}
            aria-describedby={describedBy('name', problem)}
            aria-invalid={problem?.fields.name === undefined ? undefined : 'true'}
          />
        </div>

        <div class="field">
          <label for="environment">Environment</label>
          <p class="hint" id="environment-hint">
            Test keys are for trying things out; live keys act on real data.
          </p>
          <FieldError id="environment" message={problem?.fields.environment} />
          <select
            id="environment"
            name="environment"
            aria-describedby={describedBy('environment', problem)}
            aria-invalid={problem?.fields.environment === undefined ? undefined : 'true'}
          >
            {abilities.environments.map((environment) => (
              <option value={environment} selected={values.environment === environment}>
                {environment === 'live' ? 'Live' : 'Test'}
              </option>
            ))}
          </select>
        </div>

        <fieldset
          id="scopes"
          class={problem?.fields.scopes === undefined ? undefined : 'invalid'}
          aria-describedby={describedBy('scopes', problem)}
        >
          <legend>Scopes</legend>
          <p class="hint" id="scopes-hint">
            {noScopesDeclared
              ? 'Keys created here can do everything your account can.'
              : 'What the key may do. Choose only what the program needs.'}
          </p>
          <FieldError id="scopes" message={problem?.fields.scopes} />
          {(abilities.fullAccess && !noScopesDeclared) || abilities.scopes.length > 0 ? (
            <ul class="choices">
              {abilities.fullAccess && !noScopesDeclared ? (
                <li class="choice">
                  <input
                    type="checkbox"
                    id="full_access"
                    name="full_access"
                    checked={values.fullAccess}
                    aria-describedby="full_access-hint"
                  />
                  <label for="full_access">
                    Full access
                    <span class="hint" id="full_access-hint">
                      Everything your account can do, including what is added later.
                    </span>
                  </label>
                </li>
              ) : null}
              {abilities.scopes.map((scope, index) => (
                <li class="choice">
                  <input
                    type="checkbox"
                    id={`scope-${index}`}
                    name="scopes"
                    value={scope.name}
                    checked={values.scopes.includes(scope.name)}
                    aria-describedby={scope.description === undefined ? undefined : `scope-${index}-hint`}
                  />
                  <label for={`scope-${index}`}>
                    <code>{scope.name}</code>
                    {scope.description === undefined ? null : (
                      <span class="hint" id={`scope-${index}-hint`}>
                        {scope.description}
                      </span>
                    )}
                  </label>
                </li>
              ))}
            </ul>
          ) : !abilities.fullAccess ? (
            <p>You hold none of the scopes offered here, so a key you create would have more access than you: ask an administrator.</p>
          ) : null}
        </fieldset>

        <div class="field">
          <label for="expires">Expires</label>
          <p class="hint" id="expires-hint">
            An expired key is refused. You can revoke any key earlier.
          </p>
          <FieldError id="expires" message={problem?.fields.expires} />
          <select
            id="expires"
            name="expires"
            aria-describedby={describedBy('expires', problem)}
            aria-invalid={problem?.fields.expires === undefined ? undefined : 'true'}
          >
            <option value="never" selected={values.expires === 'never'}>
              Never
            </option>
            {expiryDays.map((days) => (
              <option value={String(days)} selected={values.expires === String(days)}>
                {expiryLabel(days)}
              </option>
            ))}
          </select>
        </div>

        {/*
          Issue 14 (rate limits, credits, allowed IPs): their fields go here, one `.field` or
          `<fieldset>` each, named `rate_limits`, `credits` and `allowed_ips` so the core's field
          errors land next to them (forms.ts: `formFieldOf`, `FIELD_LABELS`), read in
          `readCreateForm` into the core's `CreateKeyInput`.
        */}

        <div class="actions">
          <button type="submit" class="primary">
            Create key
          </button>
          <a href={href.list}>Cancel</a>
        </div>
      </form>
    </Layout>
  )
}
