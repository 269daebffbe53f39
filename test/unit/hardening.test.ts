// Structural guarantees: no shell of our own, functions keep to their contract.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const ROOT = join(import.meta.dirname, '../..')
const files = (dir: string): string[] => readdirSync(join(ROOT, dir)).flatMap((n) => {
  const p = join(dir, n)
  return statSync(join(ROOT, p)).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
})
const source = ['functions', 'runtime', 'shared'].flatMap(files)

/** Process-wide memos that are not request or session state, with the reason. */
const MODULE_STATE_ALLOWED: Record<string, string> = {
  'shared/crypto/gc-pacer.ts': 'memoises the process-wide gc() function once; it holds no data',
}

/** Top-level declarations that hold mutable state: let/var, or a const bound to a new collection or a literal object/array. */
const moduleState = (text: string) => text.split('\n').filter((l) =>
  /^(export )?(let|var)\b/.test(l) || /^(export )?const \w+(\s*:[^=]+)?\s*=\s*(new (Map|Set|WeakMap|WeakSet|Array)\b|\[|\{)/.test(l))

describe('hardening', () => {
  it('no shell: the loader imports no child_process and runs no command of its own', () => {
    for (const f of source) expect(readFileSync(join(ROOT, f), 'utf8'), f).not.toMatch(/child_process|\bexecSync\b|\bspawn\(/)
  })

  it('functions (and the shared code bundled into them) never read process.env, never import Hono or runtime/, keep no module state', () => {
    for (const f of [...files('functions'), ...files('shared')]) {
      const text = readFileSync(join(ROOT, f), 'utf8')
      expect(text, f).not.toMatch(/process\.env|from ['"]hono|from ['"](\.\.\/)+runtime\//)
      if (!(f in MODULE_STATE_ALLOWED)) expect(moduleState(text), f).toEqual([])
      if (f.startsWith('functions/') && f.endsWith('index.ts')) expect(text, f).toMatch(/export default defineFunction\(/)
    }
  })

  it('the module-state check sees every kind of top-level mutable binding', () => {
    expect(moduleState('let n = 0')).toHaveLength(1)
    expect(moduleState('export var x')).toHaveLength(1)
    expect(moduleState('const seen = new Map()')).toHaveLength(1)
    expect(moduleState('const cache: Record<string, string> = {}')).toHaveLength(1)
    expect(moduleState('export const queue = []')).toHaveLength(1)
    expect(moduleState('const ids = new WeakSet<object>()')).toHaveLength(1)
    expect(moduleState('const Body = v.object({ a: v.string() })\nconst LIMIT = 4\n  let inside = 1')).toEqual([])
  })
})
