// .ci/run on a fresh Debian: every program the tests, the bench and the dev stack start is either in
// Debian's essential set (or priority required) or installed by .ci/run (or checked there, moto_server).
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../helpers/spawn'

/** Programs every Debian has: essential or priority-required packages (bash, coreutils, diffutils, tar, util-linux, mount). */
const BASE = new Set(['bash', 'sh', 'cp', 'stat', 'cmp', 'tar', 'unshare', 'mount', 'umount', 'git'])

/** The first argument of every spawn/exec call with a literal program name, under `dirs`. */
function programs(dirs: string[]): Set<string> {
  const found = new Set<string>()
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) { if (e.name !== 'node_modules' && e.name !== 'out') walk(p) } else if (/\.(ts|mjs)$/.test(e.name)) {
        for (const m of readFileSync(p, 'utf8').matchAll(/\b(?:execFileSync|execFile|spawnSync|spawn|execSync)\(\s*['"`]([A-Za-z0-9_.-]+)['"`]/g)) found.add(m[1])
      }
    }
  }
  for (const d of dirs) walk(join(ROOT, d))
  return found
}

describe('.ci/run on a fresh Debian', () => {
  it('installs (or checks for) every program the tests, the bench and the dev stack start', () => {
    const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8')
    // The commands whose absence makes .ci/run apt-get their package: `for cmd:pkg in …` entries.
    const need = /for \w+ in ([^;]+);/.exec(ci)![1].trim().split(/\s+/).map((e) => e.split(':')[0])
    const missing = [...programs(['test', 'bench', 'scripts'])].filter((p) => !BASE.has(p) && !need.includes(p) && !ci.includes(`command -v ${p} `))
    expect(missing).toEqual([])
  })
})
