import { join } from 'node:path'
import ts from 'typescript'
import { beforeAll, describe, expect, it } from 'vitest'
import { REPO_ROOT } from './helpers/build.js'
import { type ReadmeBlock, readmeTypeScriptBlocks } from './helpers/readme.js'

/**
 * Every ```ts block of README.md type-checks, so the docs cannot promise code that does not compile.
 *
 * - Compiler options are the repository's tsconfig.json (strict, NodeNext, noUncheckedIndexedAccess),
 *   and every block is a module of its own. `keyward` and its subpaths resolve to src/ (no build
 *   needed, and an error points at the source); test/package.test.ts checks the published
 *   declarations and runs the README's programs from the packed tarball.
 * - A block should be complete: its imports, its app, its instance. A block that continues an app
 *   shown elsewhere says so on the line just before its fence, in an HTML comment GitHub does not
 *   render: `<!-- ts-assumes: express-app, kw -->`. Each name adds the ambient declaration in
 *   `ASSUMED` below (a `declare const`: nothing runs, and nothing to import twice).
 * - A failure names the README line and the compiler's message.
 * - The blocks are compiled as one program (one compile, a few seconds), so a global augmentation
 *   that one block imports (keyward/express's `req.apiKey`, hono/jwt's `jwtPayload`) is visible in
 *   all. test/package.test.ts type-checks the `ts-program` blocks again, against the published
 *   declarations and `@types/express`, as a consumer project.
 */
const ASSUMED: Record<string, string> = {
  'hono-app': "declare const app: import('hono').Hono",
  'express-app': "declare const app: import('express').Express",
  kw: "declare const kw: import('keyward').Keyward",
  pool: "declare const pool: import('pg').Pool",
  requireLogin: "declare const requireLogin: import('express').RequestHandler",
  'openapi-document': "declare const mine: import('keyward/hono').OpenApiDocument",
}

const blocks = readmeTypeScriptBlocks()
const fileOf = (block: ReadmeBlock) => join(REPO_ROOT, 'test', `README.md-line-${block.line}.ts`)

let program: ts.Program
/** Each block's problems, by README line: all computed up front, where the time limit is generous. */
const problems = new Map<number, string[]>()

beforeAll(() => {
  const config = ts.readConfigFile(join(REPO_ROOT, 'tsconfig.json'), ts.sys.readFile)
  if (config.error) throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, '\n'))
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, REPO_ROOT)
  const compilerOptions: ts.CompilerOptions = {
    ...options,
    noEmit: true,
    declaration: false,
    sourceMap: false,
    moduleDetection: ts.ModuleDetectionKind.Force,
    paths: {
      keyward: ['./src/index.ts'],
      'keyward/*': ['./src/*/index.ts'],
    },
  }
  // The blocks live in memory, as files of test/ (so `type: module` and node_modules apply).
  const sources = new Map(blocks.map((block) => [fileOf(block), withAssumptions(block)]))
  const host = ts.createCompilerHost(compilerOptions)
  const { fileExists, readFile, getSourceFile } = host
  host.fileExists = (file) => sources.has(file) || fileExists(file)
  host.readFile = (file) => sources.get(file) ?? readFile(file)
  host.getSourceFile = (file, language, ...rest) => {
    const text = sources.get(file)
    return text === undefined ? getSourceFile(file, language, ...rest) : ts.createSourceFile(file, text, language, true)
  }
  program = ts.createProgram({ rootNames: [...sources.keys()], options: compilerOptions, host })
  for (const block of blocks) problems.set(block.line, problemsOf(block))
}, 180_000)

/** The block, then the declarations it assumes: appended, so README line numbers stay exact. */
function withAssumptions(block: ReadmeBlock): string {
  const declarations = block.assumes.map((name) => {
    const declaration = ASSUMED[name]
    if (declaration === undefined) {
      throw new Error(`README.md:${block.line - 1}: ts-assumes names "${name}"; known: ${Object.keys(ASSUMED).join(', ')}`)
    }
    return declaration
  })
  return [block.code, ...declarations].join('\n')
}

/** `README.md:<line>:<column> TS<code>: <message>` for each problem in the block. */
function problemsOf(block: ReadmeBlock): string[] {
  const source = program.getSourceFile(fileOf(block))
  if (source === undefined) return [`README.md:${block.line}: the block was not compiled`]
  const diagnostics = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]
  return diagnostics.map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ')
    if (diagnostic.start === undefined) return `README.md:${block.line} TS${diagnostic.code}: ${message}`
    const { line, character } = source.getLineAndCharacterOfPosition(diagnostic.start)
    const where = line < block.code.split('\n').length ? `${block.line + line}:${character + 1}` : `${block.line} (in its ts-assumes)`
    return `README.md:${where} TS${diagnostic.code}: ${message}`
  })
}

describe('README.md TypeScript', () => {
  it('has TypeScript blocks to check, and the compiler accepts the options', () => {
    expect(blocks.length).toBeGreaterThan(10)
    expect(program.getOptionsDiagnostics().map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, ' '))).toEqual([])
  })

  it.each(blocks.map((block) => [block.line, block] as const))('compiles the block at README.md line %i', (_line, block) => {
    expect(problems.get(block.line)).toEqual([])
  })
})

describe('reading the README’s blocks', () => {
  it('gives each ts block its first code line, what it assumes and its program name, and skips other fences', () => {
    const markdown = [
      '# title',
      '<!-- ts-assumes: kw, pool -->',
      '```ts',
      'a()',
      '```',
      '```sh',
      '```ts',
      '```',
      '<!-- ts-program: demo -->',
      '```ts',
      'b()',
      '```',
    ].join('\n')
    expect(readmeTypeScriptBlocks(markdown)).toEqual([
      { line: 4, code: 'a()', assumes: ['kw', 'pool'] },
      { line: 11, code: 'b()', assumes: [], program: 'demo' },
    ])
  })

  it('refuses a marker that is not on the line just above a ts fence', () => {
    expect(() => readmeTypeScriptBlocks(['<!-- ts-assumes: kw -->', '', '```ts', 'x()', '```'].join('\n'))).toThrow(/^README\.md:1: /)
  })
})
