// `npm run dev` as a newcomer uses it: start the stack, run every printed curl line in order, Ctrl-C.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort, ROOT } from '../helpers/spawn'

let dev: ChildProcess | undefined
let cwd: string | undefined
afterAll(async () => {
  if (dev && dev.exitCode === null && dev.signalCode === null) {
    process.kill(-dev.pid!, 'SIGINT')
    await new Promise((r) => dev!.once('exit', r))
  }
  if (cwd) rmSync(cwd, { recursive: true, force: true })
})

describe('npm run dev', () => {
  it('prints where it is, every printed line succeeds in order (unlock ends in ready with the demo image), Ctrl-C removes what it started', async () => {
    cwd = mkdtempSync(join(tmpdir(), 'dev-stack-'))
    // Its own temp folder: everything the run makes there must be gone after Ctrl-C.
    const tmp = join(cwd, 'tmp')
    mkdirSync(tmp)
    const port = await freePort()
    // As package.json's dev script runs it (after the build global-setup made), in its own process group:
    // Ctrl-C in a terminal signals the whole group, the engine, moto and the loader included.
    dev = spawn(process.execPath, ['--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, join(ROOT, 'test/origin/dev.ts')], {
      // No CACHE_DIR: a fresh cache of this run's own, removed on exit.
      cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: tmp, PORT: String(port), LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    })
    let out = ''
    dev.stdout!.on('data', (d) => { out += d })
    dev.stderr!.on('data', (d) => { out += d })
    const exited = new Promise<number | null>((r) => dev!.once('exit', (code) => r(code)))
    await Promise.race([
      new Promise<void>((ok) => { const t = setInterval(() => { if (out.includes('Ctrl-C stops everything.')) { clearInterval(t); ok() } }, 100) }),
      exited.then((c) => { throw new Error(`npm run dev exited ${c}:\n${out}`) }),
    ])
    expect(out).toMatch(/^dev: starting moto/m)
    expect(out).toMatch(/^dev: starting podman's Docker-compatible API service/m)
    expect(out).toMatch(/^dev: making the demo image/m)
    const podmanDir = /storage (\/\S+)\)/.exec(out)![1]
    const archives = /archive (\/\S+)\/demo-image\.enc/.exec(out)![1]
    const cache = /^cache +(\/\S+)/m.exec(out)![1]
    expect(cache.startsWith(`${tmp}/`)).toBe(true)
    expect(existsSync(podmanDir) && existsSync(archives) && existsSync(cache)).toBe(true)

    const block = out.slice(out.indexOf('Try every flow:'), out.indexOf('Ctrl-C stops everything.'))
    const lines = block.split('\n').filter((l) => l.startsWith('  ')).map((l) => l.trim())
    expect(lines.length).toBeGreaterThanOrEqual(12)
    const results: Record<string, string> = {}
    for (const line of lines) {
      const r = spawnSync('bash', ['-o', 'pipefail', '-c', line], { cwd, encoding: 'utf8', timeout: 60_000 })
      expect(r.status, `${line}\n${r.stdout}${r.stderr}`).toBe(0)
      // A problem body (RFC 9457) carries a numeric status; no line may answer one.
      expect(r.stdout, line).not.toMatch(/"status":\s*[45]\d\d/)
      results[line] = r.stdout
    }
    const answer = (part: string) => Object.entries(results).find(([l]) => l.includes(part))![1]
    expect(answer('/login')).toContain('"status":"ok"')
    expect(answer('/load/demo.bin')).toContain('demo model: the loader decrypted this.')
    expect(answer('cmp - my.bin')).toContain('same')
    expect(answer('until curl')).toMatch(/"state":"ready".*"images":\["localhost\/loader-demo:latest"\]/)
    expect(answer('/metrics')).toMatch(/^loader_cache_misses_total 1$/m)
    expect(answer('/metrics')).toMatch(/^loader_unlock_state\{state="ready"\} 1$/m)
    expect(answer('/openapi.json')).toMatch(/^\{"openapi":"3\.1\.0"/)
    expect(answer('/logout')).toContain('"wasAuthenticated":true')

    process.kill(-dev.pid!, 'SIGINT')
    expect(await exited).toBe(0)
    expect(existsSync(podmanDir)).toBe(false)
    expect(existsSync(archives)).toBe(false)
    expect(existsSync(cache)).toBe(false)
    expect(readdirSync(tmp).filter((d) => !d.startsWith('tsx-'))).toEqual([]) // tsx's own compile cache aside
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow()
  })

  it('Ctrl-C while it is still starting removes what it made so far (podman\'s storage)', async () => {
    cwd ??= mkdtempSync(join(tmpdir(), 'dev-stack-'))
    const tmp = mkdtempSync(join(cwd, 'tmp-'))
    const early = spawn(process.execPath, ['--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, join(ROOT, 'test/origin/dev.ts')], {
      cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: tmp, PORT: String(await freePort()), LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    })
    dev = early
    let out = ''
    early.stdout!.on('data', (d) => { out += d })
    early.stderr!.on('data', (d) => { out += d })
    const exited = new Promise<number | null>((r) => early.once('exit', (code) => r(code)))
    await Promise.race([
      new Promise<void>((ok) => { const t = setInterval(() => { if (out.includes('starting podman')) { clearInterval(t); ok() } }, 20) }),
      exited.then((c) => { throw new Error(`npm run dev exited ${c}:\n${out}`) }),
    ])
    // podman's storage folder is made as soon as it starts coming up.
    await new Promise<void>((ok) => { const t = setInterval(() => { if (readdirSync(tmp).some((d) => d.startsWith('podman-'))) { clearInterval(t); ok() } }, 10) })
    process.kill(-early.pid!, 'SIGINT')
    await exited
    expect(readdirSync(tmp).filter((d) => !d.startsWith('tsx-'))).toEqual([]) // tsx's own compile cache aside
  })
})
