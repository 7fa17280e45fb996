import type { Context } from 'hono'
import { type ErrorStatus, type KeywardError, toProblem } from '../core/errors.js'
import { problemAnswer } from '../http/problem.js'

/**
 * An error value as a Hono answer: the status and headers of the one code → HTTP table
 * (src/http/problem.ts), typed like any other JSON answer so a route's handler is checked
 * against its declared problem responses.
 */
export function problemJson(c: Context, error: KeywardError, realm: string, extraHeaders?: Record<string, string>) {
  const answer = problemAnswer(error, { realm })
  return c.json(toProblem(error), answer.status as ErrorStatus, { ...answer.headers, ...extraHeaders })
}
