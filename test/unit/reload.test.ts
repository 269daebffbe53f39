// The two reload bugs deploy.md replaces: a reload asked during another was lost (it shared the
// promise that read the older manifest), and a failed import() was cached for its URL for good.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { importArtifact, type LoadedFunction } from '../../runtime/registry'
import { startRuntime, type Runtime } from '../../runtime/server'
import { makeEnv, fromSource } from '../helpers/env'
import type { LoaderFunction } from '../../shared/contract/function'

const cleanup: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c()
})

const fn = (version: string): LoaderFunction => ({
  name: 'health', routes: [{ method: 'GET', path: '/health', body: 'none', public: true }],
  fetch: async () => Response.json({ version }),
})

describe('reload', () => {
  it('a reload asked while another runs reads the newer manifest and is not lost', async () => {
    const { env, cacheDir } = await makeEnv({ PORT: '0' })
    cleanup.push(() => rmSync(cacheDir, { recursive: true, force: true }))
    let manifest = 'one'
    let gate: (() => void) | undefined
    const holder = { current: [] as LoadedFunction[] }
    const rt: Runtime = await startRuntime({
      env,
      async load() {
        const seen = manifest // what this reload read
        if (gate === undefined && seen !== 'one') await new Promise<void>((r) => { gate = r })
        return fromSource([fn(seen)])
      },
    }, holder)
    cleanup.push(() => rt.close())
    manifest = 'two'
    const first = rt.reload() // reads 'two', then waits
    while (!gate) await new Promise((r) => setTimeout(r, 5))
    manifest = 'three'
    const second = rt.reload() // asked during the first: must read 'three'
    gate()
    await Promise.all([first, second])
    const served = rt.functions()[0].mod.fetch(new Request('http://x/health'), env, {} as never)
    expect(await (await served).json()).toEqual({ version: 'three' })
  })

  it('retries an import that failed, instead of answering the cached failure', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loader-import-'))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
    const flag = join(dir, 'ready')
    const file = join(dir, 'health.mjs')
    writeFileSync(file, `import { existsSync } from 'node:fs'
      if (!existsSync(${JSON.stringify(flag)})) throw new Error('not ready yet')
      export default { name: 'health', routes: [], fetch: async () => new Response('ok') }`)
    await expect(importArtifact(file, 'a'.repeat(64), 'health')).rejects.toThrow('not ready yet')
    writeFileSync(flag, '')
    expect(existsSync(flag)).toBe(true)
    const mod = await importArtifact(file, 'a'.repeat(64), 'health')
    expect(mod.name).toBe('health')
  })
})

describe('server timeouts', () => {
  it('puts no whole-request bound on a slow upload body but keeps the headers bound', async () => {
    const { env, cacheDir } = await makeEnv({ PORT: '0' })
    cleanup.push(() => rmSync(cacheDir, { recursive: true, force: true }))
    const rt = await startRuntime({ env, load: async () => fromSource([fn('one')]) }, { current: [] })
    cleanup.push(() => rt.close())
    // Node's default (300 s) would cut an upload still streaming after five minutes with a bare 408.
    expect(rt.server.requestTimeout).toBe(0)
    expect(rt.server.headersTimeout).toBeGreaterThan(0)
  })
})
