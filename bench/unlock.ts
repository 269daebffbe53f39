// Unlock bench: a large archive into a sink engine vs `openssl enc -d`, peak RSS, /health p99 while it runs.
import { join } from 'node:path'
import { aesKey } from '../shared/crypto/blob'
import { post, startStack } from '../test/helpers/stack'
import { OUT, opensslDecryptMs, opensslEncryptFile, randomFile, startWorker, type Row, peakRss } from './lib'
import { mkdirSync } from 'node:fs'

const USER = ['bench-unlock@example.com', 'bench-unlock-pass']
const FRAGMENT = 'bench-fragment-0123456789'

export async function benchUnlock(sizes: number[]): Promise<Row[]> {
  const rows: Row[] = []
  const keyHex = aesKey(FRAGMENT).toString('hex')
  const socket = join(OUT, 'sink-engine.sock')
  const engine = await startWorker('sink-engine.ts', [socket])
  for (const size of sizes) {
    const dir = join(OUT, `archives-${size}`)
    mkdirSync(dir, { recursive: true })
    const archive = join(dir, 'image.enc')
    opensslEncryptFile(keyHex, await randomFile(`plain-${size}.bin`, size), archive)
    const s = await startStack({ [USER[0]]: [USER[1], 'Operator'] }, { UNLOCK_ARCHIVE: dir, DOCKER_HOST: `unix://${socket}` })
    s.origin.keyFragment = FRAGMENT
    try {
      const latencies: number[] = []
      let running = true
      const prober = (async () => {
        while (running) {
          const t = performance.now()
          await (await fetch(`${s.loader.url}/health`)).arrayBuffer()
          latencies.push(performance.now() - t)
          await new Promise((r) => setTimeout(r, 20))
        }
      })()
      const t0 = Date.now()
      await post(s.loader.url, '/unlock', { email: USER[0], password: USER[1] })
      let readyAt = 0
      for (;;) {
        const st = await (await fetch(`${s.loader.url}/unlock/status`)).json()
        if (st.state === 'ready') { readyAt = Date.parse(st.updatedAt); break }
        if (st.state === 'error') throw new Error(`unlock failed: ${st.error}`)
        await new Promise((r) => setTimeout(r, 250)) // a status poller, as a client would

      }
      const ms = readyAt - t0 // the loader's own clock stamps `ready`: poll granularity does not count
      running = false
      await prober
      const sorted = latencies.sort((a, b) => a - b)
      const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]
      const ref = await opensslDecryptMs(keyHex, archive)
      rows.push({ area: 'unlock', what: `archive → sink engine (/health p99 ${p99.toFixed(1)} ms over ${sorted.length} probes)`, bytes: size, ms,
        refName: 'openssl enc -d', refMs: ref, peakRssMiB: peakRss(s.loader.child.pid!), target: 'ratio ≥ 0.6, RSS ≤ 96 MiB, p99 < 50 ms' })
    } finally {
      await s.stop()
    }
  }
  engine.stop()
  return rows
}
