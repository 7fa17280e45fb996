#!/usr/bin/env node
/**
 * The `keyward` binary: `npx keyward help`. The commands live in `main.ts`; this file only binds
 * them to the process.
 */
import { runCli } from './main.js'

const code = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
})
// exitCode, not exit(): stdout is flushed before the process ends, even into a pipe.
process.exitCode = code
