/** Progress goes to stderr, so stdout carries the report alone (`npm run bench > report.txt`). */
export function log(line: string): void {
  process.stderr.write(`${line}\n`)
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
