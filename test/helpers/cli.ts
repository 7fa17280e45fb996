import { execFile } from 'node:child_process'
import { CLI_PATH } from './build.js'

/** What one run of the real binary printed, and its exit code. */
export interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Runs `node dist/cli/index.js ...args` as `npx keyward` would, with only PATH and `env` set. */
export function cli(args: string[], env: Record<string, string | undefined> = {}, script = CLI_PATH): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [script, ...args],
      { env: { PATH: process.env.PATH, ...env }, timeout: 15_000, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== 'number') reject(error)
        else resolve({ code: error === null ? 0 : (error.code as number), stdout, stderr })
      },
    )
  })
}
