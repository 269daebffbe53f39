// Deploy bench: time from POST /admin/deployments to the new code serving, and the p99 latency of a
// steady stream of /status requests across the swaps.
import { rmSync } from 'node:fs'
import { healthArtifact, HEALTH_ROUTES, keyPair, push, releaseParts, socketOf, tempDir, until } from '../test/helpers/deploy'
import { startLoader } from '../test/helpers/spawn'
import type { Row } from './lib'

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]

export async function benchDeploy(swaps: number): Promise<Row[]> {
  const dir = tempDir('loader-bench-deploy-')
  const key = keyPair(dir)
  const p = await startLoader({ RELEASE_KEYS: key.pubFile, DEPLOY_TRIAL_S: '1', LOG_LEVEL: 'warn' })
  const sock = socketOf(p.cacheDir)
  let streaming = true
  const latencies: number[] = []
  let failures = 0
  // One client asking /status back to back for the whole run.
  const stream = (async () => {
    while (streaming) {
      const t0 = performance.now()
      const r = await fetch(`${p.url}/status`).catch(() => undefined)
      if (r?.status === 200) await r.arrayBuffer()
      else failures++
      latencies.push(performance.now() - t0)
    }
  })()
  try {
    await new Promise((r) => setTimeout(r, 300))
    const times: number[] = []
    let bytes = 0
    for (let i = 1; i <= swaps; i++) {
      const artifact = healthArtifact(`v${i}`)
      bytes = artifact.length
      const parts = releaseParts({ name: 'health', artifact, routes: HEALTH_ROUTES, version: i, key: key.privateKey })
      const t0 = performance.now()
      const r = await push(sock, parts)
      if (r.status !== 202) throw new Error(`deploy ${i}: ${r.status} ${r.body.detail}`)
      for (;;) {
        const h = await (await fetch(`${p.url}/health`)).json() as { version?: string }
        if (h.version === `v${i}`) break
      }
      times.push(performance.now() - t0)
      await until(sock, r.body.id!, ['committed'])
    }
    streaming = false
    await stream
    if (failures) throw new Error(`deploy bench: ${failures} /status requests failed across the swaps`)
    const t = [...times].sort((a, b) => a - b)
    const l = [...latencies].sort((a, b) => a - b)
    return [{
      area: 'deploy',
      what: `POST /admin/deployments → new code serving: median ${pct(t, 0.5).toFixed(1)} ms, max ${t[t.length - 1].toFixed(1)} ms over ${swaps} swaps; /status p99 ${pct(l, 0.99).toFixed(1)} ms (median ${pct(l, 0.5).toFixed(1)} ms) over ${l.length} requests across them, 0 failed`,
      bytes, ms: pct(t, 0.5), target: 'no /status request fails across a swap',
    }]
  } finally {
    streaming = false
    await stream.catch(() => {})
    await p.stop('SIGKILL')
    rmSync(p.cacheDir, { recursive: true, force: true })
    rmSync(dir, { recursive: true, force: true })
  }
}
