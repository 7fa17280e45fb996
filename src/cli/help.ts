import { COMMANDS, type Command } from './commands.js'

/** The help texts: `keyward help`, `keyward help <command>`, `keyward <command> --help`. */

export function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length))
  return [
    'keyward: manage API keys straight against the database.',
    '',
    'Usage: keyward <command> [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`),
    `  ${'help'.padEnd(width)}  Show help for a command: keyward help create`,
    '',
    GLOBAL_HELP,
    '',
  ].join('\n')
}

export const HELP_HELP = [
  'Show the list of commands, or the help of one.',
  '',
  'Usage: keyward help [<command>]   (the same as: keyward <command> --help)',
  '',
  `Commands: ${Object.keys(COMMANDS).join(', ')}, help.`,
  '',
  'Example: keyward help create',
  '',
].join('\n')

export function commandHelp(command: Command): string {
  return [`${command.summary}.`, '', `Usage: ${command.usage}`, '', GLOBAL_HELP, '', `Example: ${command.example}`, ''].join('\n')
}

const GLOBAL_HELP = [
  'Options for every command:',
  '  --database <url>   SQLite path or postgres:// URL (default: $KEYWARD_DATABASE_URL, else ./keyward.db)',
  '  --prefix <prefix>  Key prefix your app configures (default: sk)',
  '  --json             Print JSON (the HTTP API shapes) instead of tables',
  '  -h, --help         Show help',
  '',
  'KEYWARD_PEPPER is read as the app reads it: set it to the same value, or created keys will not verify.',
  'Exit codes: 0 done; 1 refused or failed (e.g. no such key, database unreachable); 2 a bad command line,',
  'an invalid field or a bad set-up (no such database, pg not installed): retrying cannot help.',
].join('\n')
