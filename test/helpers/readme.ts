import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from './build.js'

/**
 * The TypeScript blocks of README.md, so tests can compile and run exactly what a reader copies.
 *
 * A block may be preceded, on the line just before its fence, by an HTML comment that GitHub does
 * not render:
 * - `<!-- ts-assumes: hono-app, kw -->`: the block is a fragment that continues an app shown
 *   elsewhere; it names what it uses without defining (see `ASSUMED` in test/readme.test.ts).
 * - `<!-- ts-program: express -->`: the block is a complete program; test/package.test.ts runs it
 *   from the packed tarball under that name.
 */
export interface ReadmeBlock {
  /** 1-based line of the block's first code line in README.md. */
  line: number
  code: string
  /** Names from a `ts-assumes` comment. */
  assumes: string[]
  /** The name from a `ts-program` comment. */
  program?: string
}

export const README_PATH = join(REPO_ROOT, 'README.md')

const FENCE_OPEN = /^```(ts|typescript)\s*$/
const FENCE_CLOSE = /^```\s*$/
const MARKER = /^<!--\s*(ts-assumes|ts-program):(.*)-->\s*$/

/** Every ```ts block, in order. Throws on a marker that is not followed by a ```ts fence. */
export function readmeTypeScriptBlocks(markdown = readFileSync(README_PATH, 'utf8')): ReadmeBlock[] {
  const lines = markdown.split('\n')
  const blocks: ReadmeBlock[] = []
  let inOtherFence = false
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] as string
    if (inOtherFence) {
      if (FENCE_CLOSE.test(line)) inOtherFence = false
      continue
    }
    const marker = MARKER.exec(line)
    if (marker !== null && !FENCE_OPEN.test(lines[index + 1] ?? '')) {
      throw new Error(`README.md:${index + 1}: a ${marker[1]} comment must be the line just before a \`\`\`ts fence`)
    }
    if (FENCE_OPEN.test(line)) {
      const end = lines.findIndex((candidate, at) => at > index && FENCE_CLOSE.test(candidate))
      if (end === -1) throw new Error(`README.md:${index + 1}: the \`\`\`ts block is never closed`)
      const previous = MARKER.exec(lines[index - 1] ?? '')
      const names = (previous?.[2] ?? '')
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name !== '')
      blocks.push({
        line: index + 2,
        code: lines.slice(index + 1, end).join('\n'),
        assumes: previous?.[1] === 'ts-assumes' ? names : [],
        ...(previous?.[1] === 'ts-program' ? { program: names.join(',') } : {}),
      })
      index = end
      continue
    }
    if (line.startsWith('```')) inOtherFence = true
  }
  return blocks
}

/** The complete programs marked `<!-- ts-program: name -->`, by name. */
export function readmePrograms(): Map<string, ReadmeBlock> {
  const programs = new Map<string, ReadmeBlock>()
  for (const block of readmeTypeScriptBlocks()) {
    if (block.program === undefined) continue
    if (programs.has(block.program)) throw new Error(`README.md:${block.line}: a second ts-program named "${block.program}"`)
    programs.set(block.program, block)
  }
  return programs
}
