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

describe('hardening', () => {
  it('no shell: the loader imports no child_process and runs no command of its own', () => {
    for (const f of source) expect(readFileSync(join(ROOT, f), 'utf8'), f).not.toMatch(/child_process|\bexecSync\b|\bspawn\(/)
  })

  it('functions never read process.env, never import Hono, keep no module state', () => {
    for (const f of files('functions')) {
      const text = readFileSync(join(ROOT, f), 'utf8')
      expect(text, f).not.toMatch(/process\.env|from ['"]hono/)
      expect(text, f).not.toMatch(/^(let|var) /m)
      expect(text, f).toMatch(/satisfies LoaderFunction/)
    }
  })
})
