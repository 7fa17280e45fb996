import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import type { FieldError, Result } from '../src/core/errors.js'
import { fieldErrors, fieldWording } from '../src/core/schemas.js'
import { keyward } from '../src/index.js'
import { TestClock } from './helpers/clock.js'
import { tempSqlitePath } from './helpers/sqlite.js'

/**
 * Issue 12, defect 9: field errors read as predicates of their field ("is required", "must be a
 * string"), whichever zod issue code raised them and whichever schema: the router's wire schemas,
 * the core's own (the code API) or one defined elsewhere. The HTTP side is in the behaviour suite.
 */

const HOUSE_WORDING = /^(?:is|must|cannot|has) /

function errorsOf(schema: z.ZodType, input: unknown): FieldError[] {
  const parsed = schema.safeParse(input)
  expect(parsed.success, JSON.stringify(input)).toBe(false)
  return fieldErrors((parsed as { error: z.ZodError }).error)
}

function validationErrors(result: Result<unknown>): FieldError[] {
  expect(result.ok).toBe(false)
  if (result.ok) return []
  expect(result.error.code).toBe('validation_error')
  for (const error of result.error.errors ?? []) expect(error.message).toMatch(HOUSE_WORDING)
  return result.error.errors ?? []
}

describe('fieldErrors', () => {
  // Plain zod schemas, as written anywhere in the code base without keyward's wording: zod's own
  // sentences come in, keyward's words come out.
  const cases: [string, z.ZodType, unknown, string][] = [
    ['a wrong type', z.object({ a: z.string() }), { a: 1 }, 'must be a string'],
    ['null', z.object({ a: z.number() }), { a: null }, 'must be a number'],
    ['a fraction for an integer', z.object({ a: z.number().int() }), { a: 1.5 }, 'must be a whole number'],
    ['a number from a query string that is not one', z.object({ a: z.coerce.number() }), { a: 'abc' }, 'must be a number'],
    ['a boolean', z.object({ a: z.boolean() }), { a: 'yes' }, 'must be true or false'],
    ['an array', z.object({ a: z.array(z.string()) }), { a: 'x' }, 'must be an array'],
    ['an object', z.object({ a: z.record(z.string(), z.string()) }), { a: [] }, 'must be an object'],
    ['a short string', z.object({ a: z.string().min(3) }), { a: 'x' }, 'must be at least 3 characters'],
    ['an empty string', z.object({ a: z.string().min(1) }), { a: '' }, 'must not be empty'],
    ['a long string', z.object({ a: z.string().max(2) }), { a: 'xyz' }, 'must be at most 2 characters'],
    ['a string of the wrong length', z.object({ a: z.string().length(2) }), { a: 'xyz' }, 'must be exactly 2 characters'],
    ['a small number', z.object({ a: z.number().min(1) }), { a: 0 }, 'must be at least 1'],
    ['a number not above a bound', z.object({ a: z.number().gt(1) }), { a: 1 }, 'must be more than 1'],
    ['a large number', z.object({ a: z.number().max(9) }), { a: 10 }, 'must be at most 9'],
    ['a number not below a bound', z.object({ a: z.number().lt(9) }), { a: 9 }, 'must be less than 9'],
    ['an empty array', z.object({ a: z.array(z.string()).nonempty() }), { a: [] }, 'must not be empty'],
    ['a long array', z.object({ a: z.array(z.string()).max(1) }), { a: ['x', 'y'] }, 'must hold at most 1 item'],
    ['an unknown option', z.object({ a: z.enum(['live', 'test']) }), { a: 'prod' }, 'must be one of: live, test'],
    ['a literal', z.object({ a: z.literal('yes') }), { a: 'no' }, 'must be yes'],
    ['a URL', z.object({ a: z.url() }), { a: 'nope' }, 'must be a URL'],
    ['a date-time', z.object({ a: z.iso.datetime() }), { a: 'tomorrow' }, 'must be an ISO 8601 date-time'],
    ['a pattern', z.object({ a: z.string().regex(/^x+$/) }), { a: 'y' }, 'is not in the expected format'],
    ['a prefix', z.object({ a: z.string().startsWith('sk_') }), { a: 'pk_' }, 'must start with "sk_"'],
    ['a multiple', z.object({ a: z.number().multipleOf(5) }), { a: 7 }, 'must be a multiple of 5'],
    ['a record key', z.object({ a: z.record(z.string().min(3), z.string()) }), { a: { y: 'v' } }, 'has an invalid key'],
    ['a map item', z.object({ a: z.map(z.object({}), z.number()) }), { a: new Map([[{}, 'v']]) }, 'has an invalid item'],
    ['a union of types', z.object({ a: z.union([z.date(), z.string()]) }), { a: 5 }, 'must be a date or a string'],
    ['a union with the right type', z.object({ a: z.union([z.date(), z.iso.datetime()]) }), { a: 'soon' }, 'must be an ISO 8601 date-time'],
    ['a refinement without a message', z.object({ a: z.string().refine(() => false) }), { a: 'x' }, 'is not valid'],
  ]
  for (const [what, schema, input, message] of cases) {
    it(`words ${what} as "${message}"`, () => {
      const errors = errorsOf(schema, input)
      expect(errors[0]?.message).toBe(message)
      expect(errors[0]?.message).toMatch(HOUSE_WORDING)
    })
  }

  it('keeps a rule’s own message', () => {
    const schema = z.object({ a: z.string().refine(() => false, 'must not be blank'), b: z.number().min(0, 'must not be negative') })
    expect(errorsOf(schema, { a: 'x', b: -1 })).toEqual([
      { field: 'a', message: 'must not be blank' },
      { field: 'b', message: 'must not be negative' },
    ])
  })

  it('says "is required" for a missing field of a schema worded by fieldWording, and names each unknown field', () => {
    const schema = z.strictObject({ name: z.string(fieldWording), count: z.number(fieldWording).optional() }, fieldWording)
    expect(errorsOf(schema, { extra: 1, other: 2 })).toEqual([
      { field: 'name', message: 'is required' },
      { field: 'extra', message: 'is not a known field' },
      { field: 'other', message: 'is not a known field' },
    ])
    expect(errorsOf(schema, [])).toEqual([{ field: '(body)', message: 'must be an object' }])
  })

  it('rewords zod’s messages in another locale too', () => {
    const schema = z.object({ a: z.string() })
    const parsed = schema.safeParse({ a: 1 }, { error: () => 'Ungültige Eingabe' })
    expect(fieldErrors((parsed as { error: z.ZodError }).error)).toEqual([{ field: 'a', message: 'must be a string' }])
  })
})

describe('the code API', () => {
  const cleanups: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  function fresh() {
    const kw = keyward({ database: tempSqlitePath(), now: new TestClock().now })
    cleanups.push(() => kw.close())
    return kw
  }
  const actor = { tenantId: 'acme' }

  it('answers kw.createKey with bad input in the same words as the HTTP API', async () => {
    const kw = fresh()
    expect(validationErrors(await kw.createKey(actor, {} as never))).toEqual([{ field: 'name', message: 'is required' }])
    expect(validationErrors(await kw.createKey(actor, { name: 42 } as never))).toEqual([{ field: 'name', message: 'must be a string' }])
    expect(validationErrors(await kw.createKey(actor, { name: 'x', environment: 'prod' } as never))).toEqual([
      { field: 'environment', message: 'must be one of: live, test' },
    ])
    expect(validationErrors(await kw.createKey(actor, { name: 'x', expiresAt: 5 } as never))).toEqual([
      { field: 'expires_at', message: 'must be a date or a string' },
    ])
    expect(validationErrors(await kw.createKey(actor, { name: 'x', expiresAt: 'tomorrow' }))).toEqual([
      { field: 'expires_at', message: 'must be an ISO 8601 date-time' },
    ])
    expect(validationErrors(await kw.createKey(actor, { name: 'x', rotationIntervalDays: 0 }))).toEqual([
      { field: 'rotation_interval_days', message: 'must be at least 1' },
    ])
    expect(validationErrors(await kw.createKey(actor, { name: 'x', colour: 'red' } as never))).toEqual([
      { field: 'colour', message: 'is not a known field' },
    ])
  })

  it('answers kw.listKeys and kw.updateKey with bad input in the same words', async () => {
    const kw = fresh()
    const created = await kw.createKey(actor, { name: 'x' })
    if (!created.ok) throw new Error(created.error.detail)
    expect(validationErrors(await kw.listKeys(actor, { limit: 0 }))).toEqual([{ field: 'limit', message: 'must be at least 1' }])
    expect(validationErrors(await kw.listKeys(actor, { limit: 1.5 }))).toEqual([{ field: 'limit', message: 'must be a whole number' }])
    expect(validationErrors(await kw.listKeys(actor, { status: 'gone' } as never))).toEqual([
      { field: 'status', message: 'must be one of: active, expired, revoked, disabled, rotating, rotated' },
    ])
    expect(validationErrors(await kw.updateKey(actor, created.value.apiKey.id, { name: null } as never))).toEqual([
      { field: 'name', message: 'must be a string' },
    ])
  })
})
