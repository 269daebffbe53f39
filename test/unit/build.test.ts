// The build refuses a function artifact over its size limit: exit 1, a message naming it, no manifest.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'

const ROOT = resolve(import.meta.dirname, '../..')
let out: string | undefined
afterEach(() => { if (out) rmSync(out, { recursive: true, force: true }) })

const build = (limitKiB?: number) => {
  out = mkdtempSync(join(tmpdir(), 'loader-build-'))
  try {
    const stdout = execFileSync(process.execPath, [join(ROOT, 'build.mjs'), 'health', 'status'], {
      cwd: ROOT, encoding: 'utf8', stdio: 'pipe',
      env: { ...process.env, BUILD_OUT_DIR: out, ...(limitKiB ? { BUILD_FUNCTION_MAX_KIB: String(limitKiB) } : {}) },
    })
    return { code: 0, stdout, stderr: '' }
  } catch (e) {
    const x = e as { status: number; stdout: string; stderr: string }
    return { code: x.status, stdout: x.stdout, stderr: x.stderr }
  }
}

describe('build size limit', () => {
  it('writes artifacts and the manifest under the limit', () => {
    const r = build()
    expect(r.code).toBe(0)
    expect(existsSync(join(out!, 'manifest.json'))).toBe(true)
    expect(existsSync(join(out!, 'functions/status.mjs'))).toBe(true)
  })

  it('fails past the limit, naming the artifact, and writes neither it nor the manifest', () => {
    const r = build(6) // status.mjs is about 8 KiB, health.mjs about 4 KiB
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/functions\/status\.mjs would be [\d.]+ KiB, over the 6 KiB limit/)
    expect(r.stderr).not.toMatch(/health/)
    expect(existsSync(join(out!, 'functions/status.mjs'))).toBe(false)
    expect(existsSync(join(out!, 'manifest.json'))).toBe(false)
  })
})
