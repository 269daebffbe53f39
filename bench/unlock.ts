// Unlock bench: an archive into a sink engine (the loader's own speed, against `openssl enc -d -in`
// on the same ciphertext, with /health p99 while it runs), and a real docker-archive into podman
// against `podman load -i` of the plaintext archive (the engine's own speed). Alternating runs.
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { aesKey } from '../shared/crypto/blob'
import { startPodman } from '../test/helpers/podman'
import { post, startStack, type Stack } from '../test/helpers/stack'
import { alternate, OUT, opensslDecrypt, opensslEncryptFile, peakRss, randomFile, startWorker, type Row } from './lib'
import { missed, row } from './flows'
import { profileLoader } from './profile'

const USER = ['bench-unlock@example.com', 'bench-unlock-pass']
const FRAGMENT = 'bench-fragment-0123456789'
const IMAGE = 'localhost/bench-unlock:1'

/** One unlock (forced, so it runs again), timed by the loader's own `ready` stamp; /health latencies while it runs. */
async function unlockOnce(s: Stack): Promise<{ ms: number; latencies: number[]; failedProbes: number }> {
  const latencies: number[] = []
  let failedProbes = 0
  let running = true
  const prober = (async () => {
    while (running) {
      const t = performance.now()
      try {
        await (await fetch(`${s.loader.url}/health`)).arrayBuffer()
        latencies.push(performance.now() - t)
      } catch {
        // A keep-alive socket the server closed as the probe reused it: counted as a failed probe, not a crash of the bench.
        failedProbes++
      }
      await new Promise((r) => setTimeout(r, 20))
    }
  })()
  const t0 = Date.now()
  try {
    // One retry on a keep-alive socket the server closed as the client reused it (after a long
    // reference run); a second POST while one runs starts nothing (http.md), so it is safe.
    const unlock = () => post(s.loader.url, '/unlock', { email: USER[0], password: USER[1], force: true })
    const r = await unlock().catch(unlock)
    if (r.status >= 400) throw new Error(`unlock answered ${r.status}`)
    for (;;) {
      const st = await (await fetch(`${s.loader.url}/unlock/status`)).json()
      if (st.state === 'ready' && Date.parse(st.updatedAt) >= t0) return { ms: Date.parse(st.updatedAt) - t0, latencies, failedProbes }
      if (st.state === 'error') throw new Error(`unlock failed: ${st.error}`)
      await new Promise((r) => setTimeout(r, 100)) // the loader's own clock stamps `ready`: poll granularity does not count
    }
  } finally {
    running = false
    await prober
  }
}

export async function benchUnlock(sizes: number[], runs: number): Promise<Row[]> {
  const rows: Row[] = []
  const keyHex = aesKey(FRAGMENT).toString('hex')
  const socket = join(OUT, 'sink-engine.sock')
  const engine = await startWorker('sink-engine.ts', [socket])
  try {
    for (const size of sizes) {
      const dir = join(OUT, `archives-${size}`)
      mkdirSync(dir, { recursive: true })
      const ct = join(OUT, `unlock-ct-${size}.bin`)
      const { ivHex } = opensslEncryptFile(keyHex, await randomFile(`plain-${size}.bin`, size), ct, join(dir, 'image.enc'))
      const s = await startStack({ [USER[0]]: [USER[1], 'Operator'] }, { UNLOCK_ARCHIVE: dir, DOCKER_HOST: `unix://${socket}` })
      s.origin.keyFragment = FRAGMENT
      try {
        const all: number[] = []
        let failed = 0
        const r = await alternate(runs, async () => {
          const u = await unlockOnce(s)
          all.push(...u.latencies)
          failed += u.failedProbes
          return u
        }, () => opensslDecrypt(keyHex, ivHex, ct))
        const sorted = all.sort((a, b) => a - b)
        const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]
        const x = row('unlock', `archive → sink engine (/health p99 ${p99.toFixed(1)} ms over ${sorted.length} probes${failed ? `, ${failed} failed` : ''})`, size, r.ours,
          { name: 'openssl enc -d -in (same ciphertext)', ms: r.ref },
          { peakRssMiB: peakRss(s.loader.child.pid!), target: 'ratio ≥ 0.6, RSS ≤ 96 MiB, p99 < 50 ms', minRatio: 0.6 })
        if (size === sizes[sizes.length - 1] && missed(x)) x.profile = await profileLoader(s, async () => {}, () => unlockOnce(s))
        rows.push(x)
      } finally {
        await s.stop()
        rmSync(dir, { recursive: true, force: true })
        rmSync(ct, { force: true })
      }
    }
  } finally {
    engine.stop()
  }
  rows.push(...await benchPodman(sizes, runs))
  return rows
}

/** A real image of about `size` bytes (one incompressible file) into podman: the loader against `podman load -i`. */
async function benchPodman(sizes: number[], runs: number): Promise<Row[]> {
  const rows: Row[] = []
  const keyHex = aesKey(FRAGMENT).toString('hex')
  const podman = await startPodman()
  const rmi = () => { try { podman.cli(['rmi', '-f', IMAGE]) } catch { /* not there */ } }
  try {
    for (const size of sizes) {
      const work = join(OUT, `podman-${size}`)
      const dir = join(work, 'archives')
      mkdirSync(join(work, 'rootfs'), { recursive: true })
      mkdirSync(dir, { recursive: true })
      const tar = join(work, 'image.tar')
      try {
        execFileSync('cp', [await randomFile(`plain-${size}.bin`, size), join(work, 'rootfs', 'model.bin')])
        writeFileSync(join(work, 'rootfs', 'hello.txt'), 'bench\n')
        execFileSync('tar', ['-C', join(work, 'rootfs'), '-cf', join(work, 'rootfs.tar'), '.'])
        rmSync(join(work, 'rootfs'), { recursive: true, force: true })
        podman.cli(['import', join(work, 'rootfs.tar'), IMAGE])
        rmSync(join(work, 'rootfs.tar'), { force: true })
        rmSync(tar, { force: true }) // podman save refuses to write over an archive an interrupted run left
        podman.cli(['save', '-o', tar, IMAGE])
        rmi()
        opensslEncryptFile(keyHex, tar, join(work, 'ct.bin'), join(dir, 'image.enc'))
        rmSync(join(work, 'ct.bin'), { force: true })
        const s = await startStack({ [USER[0]]: [USER[1], 'Operator'] }, { UNLOCK_ARCHIVE: dir, DOCKER_HOST: `unix://${podman.socket}`, DOCKER_TIMEOUT_MS: '600000' })
        s.origin.keyFragment = FRAGMENT
        try {
          const ours = async () => { const u = await unlockOnce(s); rmi(); return u }
          const ref = async () => {
            const t0 = performance.now()
            podman.cli(['load', '-i', tar])
            const ms = performance.now() - t0
            rmi()
            return { ms }
          }
          const r = await alternate(runs, ours, ref)
          const bytes = Number(execFileSync('stat', ['-c', '%s', tar], { encoding: 'utf8' }).trim())
          const x = row('unlock (podman)', 'archive → podman (a real engine, vfs storage)', bytes, r.ours, { name: 'podman load -i (plaintext archive)', ms: r.ref },
            { peakRssMiB: peakRss(s.loader.child.pid!), target: 'ratio ≥ 0.8', minRatio: 0.8 })
          if (size === sizes[sizes.length - 1] && missed(x)) {
            x.profile = await profileLoader(s, async () => {}, ours)
          }
          rows.push(x)
        } finally {
          await s.stop()
        }
      } finally {
        rmi()
        rmSync(work, { recursive: true, force: true })
      }
    }
  } finally {
    await podman.stop()
  }
  return rows
}
