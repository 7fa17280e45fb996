import { expect } from 'vitest'

/** Helpers for the keys page tests: posting its forms and reading its HTML the way a person would. */

/** A urlencoded form body; an array value is sent as repeated fields (as checkboxes are). */
export function formBody(fields: Record<string, string | readonly string[]>): string {
  const body = new URLSearchParams()
  for (const [name, value] of Object.entries(fields))
    for (const item of typeof value === 'string' ? [value] : value) body.append(name, item)
  return body.toString()
}

/** The secret shown once on the page answering a create or a rotate, or undefined. */
export function secretIn(html: string): string | undefined {
  return /<code class="secret" id="secret-value">([^<]+)<\/code>/.exec(html)?.[1]
}

/** The message shown next to a form field (`<p class="field-error" id="<id>-error">`), without its hidden "Error: ". */
export function fieldErrorIn(html: string, id: string): string | undefined {
  const match = new RegExp(`<p class="field-error" id="${id}-error"><span class="visually-hidden">Error: </span>([^<]*)</p>`).exec(html)
  return match?.[1] === undefined ? undefined : decode(match[1])
}

/** Text content of the HTML: tags dropped, entities of our own markup decoded, spaces collapsed. */
export function textOf(html: string): string {
  return decode(html.replace(/<[^>]+>/g, ' '))
    .replace(/\s+/g, ' ')
    .trim()
}

function decode(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
}

/** The ids of the keys linked from a list page, in order. */
export function keyIdsIn(html: string): string[] {
  return [...html.matchAll(/<th scope="row" class="key-name"><a href="[^"]*\/(key_[A-Za-z0-9]+)">/g)].map((match) => match[1] as string)
}

/**
 * The page's response headers: a strict CSP (no inline script, nothing from other origins, no
 * framing), no caching of anything that shows key data, no framing by old browsers either.
 */
export function expectPageHeaders(response: Response, cache: 'no-store' | 'immutable' = 'no-store'): void {
  const csp = response.headers.get('content-security-policy') ?? ''
  const directives = new Map(
    csp.split(';').map((directive) => {
      const [name = '', ...values] = directive.trim().split(/\s+/)
      return [name, values] as const
    }),
  )
  expect(directives.get('default-src')).toEqual(["'none'"])
  expect(directives.get('script-src')).toEqual(["'self'"])
  expect(directives.get('style-src')).toEqual(["'self'"])
  expect(directives.get('frame-ancestors')).toEqual(["'none'"])
  expect(directives.get('form-action')).toEqual(["'self'"])
  expect(csp).not.toContain('unsafe-inline')
  expect(csp).not.toMatch(/https?:/)
  expect(response.headers.get('x-frame-options')).toBe('DENY')
  expect(response.headers.get('x-content-type-options')).toBe('nosniff')
  if (cache === 'no-store') expect(response.headers.get('cache-control')).toBe('no-store')
  else expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
}
