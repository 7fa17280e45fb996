import { plural } from '../format.js'
import { CREDIT_REFILLS, type CreateFormValues, type FormProblem, RATE_LIMIT_WINDOWS } from '../forms.js'
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

        {view.options.controls ? <ControlsFields values={values} problem={problem} /> : null}

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

/**
 * The per-key controls (issue 14), folded away under "Limits" until they are used: one rate limit,
 * credits with an optional refill, and the IP addresses the key may be used from. Open when any is
 * filled in or has a problem, so a person sees what the form kept and what is wrong.
 */
function ControlsFields({ values, problem }: { values: CreateFormValues; problem: FormProblem | undefined }) {
  const used = values.rateLimit !== '' || values.credits !== '' || values.allowedIps.trim() !== ''
  const wrong = ['rate_limits', 'credits', 'allowed_ips'].some((field) => problem?.fields[field] !== undefined)
  return (
    <details class="more" open={used || wrong}>
      <summary>Limits: requests, credits and IP addresses (optional)</summary>
      <div class="field">
        <label for="rate_limits">Rate limit</label>
        <p class="hint" id="rate_limits-hint">
          At most this many requests in any moving window; more are refused with 429. Empty: no limit.
        </p>
        <FieldError id="rate_limits" message={problem?.fields.rate_limits} />
        <div class="row">
          <input
            type="text"
            inputmode="numeric"
            id="rate_limits"
            name="rate_limit"
            value={values.rateLimit}
            aria-describedby={describedBy('rate_limits', problem)}
            aria-invalid={problem?.fields.rate_limits === undefined ? undefined : 'true'}
            autocomplete="off"
          />
          <label for="rate_limit_window">requests per</label>
          <select id="rate_limit_window" name="rate_limit_window">
            {Object.entries(RATE_LIMIT_WINDOWS).map(([value, window]) => (
              <option value={value} selected={values.rateLimitWindow === value}>
                {window.label}
              </option>
            ))}
          </select>
        </div>
      </div>
      <div class="field">
        <label for="credits">Credits</label>
        <p class="hint" id="credits-hint">
          What the key may spend: each request uses one credit (or its cost); with none left, requests are refused. A refill sets the
          credits back to this number. Empty: no credits needed.
        </p>
        <FieldError id="credits" message={problem?.fields.credits} />
        <div class="row">
          <input
            type="text"
            inputmode="numeric"
            id="credits"
            name="credits"
            value={values.credits}
            aria-describedby={describedBy('credits', problem)}
            aria-invalid={problem?.fields.credits === undefined ? undefined : 'true'}
            autocomplete="off"
          />
          <label for="credits_refill">refilled</label>
          <select id="credits_refill" name="credits_refill">
            {CREDIT_REFILLS.map((refill) => (
              <option value={refill} selected={values.creditsRefill === refill}>
                {refill === 'never' ? 'never' : `every ${refill}`}
              </option>
            ))}
          </select>
        </div>
      </div>
      <div class="field">
        <label for="allowed_ips">Allowed IP addresses</label>
        <p class="hint" id="allowed_ips-hint">
          One per line: an address or a range, e.g. 203.0.113.0/24 or 2001:db8::/32. Requests from elsewhere are refused. Empty: from
          anywhere.
        </p>
        <FieldError id="allowed_ips" message={problem?.fields.allowed_ips} />
        <textarea
          id="allowed_ips"
          name="allowed_ips"
          rows={3}
          spellcheck={false}
          autocomplete="off"
          aria-describedby={describedBy('allowed_ips', problem)}
          aria-invalid={problem?.fields.allowed_ips === undefined ? undefined : 'true'}
        >
          {values.allowedIps}
        </textarea>
      </div>
    </details>
  )
}
