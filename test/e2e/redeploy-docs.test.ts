// A redeployed function updates /openapi.json and the function info metric, without a restart.
import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ROOT, startLoader, type LoaderProcess } from '../helpers/spawn'

const dirs: string[] = []
let p: LoaderProcess | undefined
afterAll(async () => {
  await p?.stop()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

const tmp = (prefix: string) => { const d = mkdtempSync(join(tmpdir(), prefix)); dirs.push(d); return d }

describe('redeploy', () => {
  it('/openapi.json and loader_function_info follow a rebuilt function', async () => {
    const out = tmp('loader-dist-')
    const src = tmp('loader-src-')
    for (const f of ['functions', 'shared', 'runtime', 'build.mjs', 'package.json']) cpSync(join(ROOT, f), join(src, f), { recursive: true })
    symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'))
    const build = (name?: string) => execFileSync(process.execPath, ['build.mjs', ...(name ? [name] : [])], { cwd: src, env: { ...process.env, BUILD_OUT_DIR: out } })
    build()
    p = await startLoader({ FUNCTIONS_DIR: out })
    const shaOf = () => JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).functions.find((f: { name: string }) => f.name === 'health').sha256
    const before = shaOf()
    const doc = async () => (await fetch(`${p!.url}/openapi.json`)).json()
    expect((await doc()).paths['/health'].get.summary).toMatch(/^Liveness/)
    expect(await (await fetch(`${p.url}/metrics`)).text()).toContain(`sha256="${before}"} 1`)

    const file = join(src, 'functions/health/index.ts')
    writeFileSync(file, readFileSync(file, 'utf8').replace(/summary: '[^']*'/, "summary: 'Liveness, redeployed'"))
    build('health')
    const after = shaOf()
    expect(after).not.toBe(before)
    await expect.poll(async () => (await doc()).paths['/health'].get.summary, { timeout: 10_000 }).toBe('Liveness, redeployed')
    const metrics = await (await fetch(`${p.url}/metrics`)).text()
    // The function's own release (the image's artifacts, not deployed: `factory`, as /status says), not the loader's version.
    expect(metrics).toContain(`loader_function_info{function="health",version="factory",sha256="${after}"} 1`)
    expect(metrics).not.toContain(before)
  })
})
