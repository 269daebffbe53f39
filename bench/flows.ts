// Flow benches on the real stack (built runtime, origin, moto): warm and cold /load, raw /upload, peak RSS.
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { startStack, RESOURCE_AES } from '../test/helpers/stack'
import { MiB, OUT, opensslDecryptMs, randomFile, timeCommand, type Row, peakRss } from './lib'
import { makeCa } from '../test/helpers/tls'


const ADMIN = ['bench@example.com', 'bench-password']

export async function benchFlows(sizes: number[]): Promise<Row[]> {
  const rows: Row[] = []
  // moto (Python) needs tens of seconds to store a GiB: timeouts fit the bench, not the tests.
  const s = await startStack({ [ADMIN[0]]: [ADMIN[1], 'ApiAdmin'] }, { MAX_CONCURRENT_TRANSFERS: '64', CDN_TIMEOUT_MS: '300000', API_TIMEOUT_MS: '60000' })
  // The HTTPS rows: a CA and a certificate for 127.0.0.1 made with openssl, as in the tests.
  const ca = makeCa('Loader Bench CA')
  const cert = ca.issue('bench-server', 'server')
  const tlsVars = { TLS_CERT_FILE: cert.cert, TLS_KEY_FILE: cert.key }
  try {
    s.setCdnYaml({ host: s.moto.url })
    const login = async () => {
      const r = await fetch(`${s.loader.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: ADMIN[0], password: ADMIN[1] }) })
      if (!r.ok) throw new Error(`login ${r.status}`)
    }
    const curl = (args: string[]) => timeCommand('curl', ['-sS', '-f', ...args])
    for (const size of sizes) {
      const plain = await randomFile(`plain-${size}.bin`, size)
      const name = `bench-${size}.bin`
      // Upload on a fresh process, so its peak RSS is the upload's.
      await s.restartLoader()
      await login()
      const up = await curl(['-o', '/dev/null', '-X', 'POST', '-H', 'content-type: application/octet-stream', '-T', plain, `${s.loader.url}/upload/${name}?folder=models`])
      rows.push({ area: 'upload', what: 'raw /upload (encrypt, split, PUT to S3)', bytes: size, ms: up.ms, peakRssMiB: peakRss(s.loader.child.pid!), target: 'RSS ≤ 128 MiB' })

      // Cold load: empty cache on a fresh process; reference: curl of the same big part from the same S3.
      rmSync(join(s.loader.cacheDir, 'cache'), { recursive: true, force: true })
      await s.restartLoader()
      await login()
      const cold = await curl(['-o', '/dev/null', '-X', 'POST', `${s.loader.url}/load/${name}`])
      const d = s.moto.downloader
      const ref = await curl(['-o', '/dev/null', '-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', '--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', `${d.accessKeyId}:${d.secretAccessKey}`, `${s.moto.url}/models/${name}.big`])
      rows.push({ area: 'load (cold)', what: '/load, big part from S3', bytes: size, ms: cold.ms, refName: 'curl of the big part', refMs: ref.ms, peakRssMiB: peakRss(s.loader.child.pid!) })

      // Warm load: the cache holds the big part; reference: openssl enc -d of the same blob.
      // Both the first load of a fresh process (JIT and heap still cold) and the next one are reported.
      await s.restartLoader()
      await login()
      const first = await curl(['-o', '/dev/null', '-X', 'POST', `${s.loader.url}/load/${name}`])
      const steady = await curl(['-o', '/dev/null', '-X', 'POST', `${s.loader.url}/load/${name}`])
      const blob = join(OUT, `flow-blob-${size}.enc`)
      const small = s.origin.files.get(`models/${name}.small`)!
      await timeCommand('bash', ['-c', 'cat "$S" "$B" > "$O"'], { ...process.env, S: await writeTemp(small), B: s.loader.cacheDir + `/cache/models/${name}.big`, O: blob })
      const ossl = await opensslDecryptMs(RESOURCE_AES.toString('hex'), blob)
      const rss = peakRss(s.loader.child.pid!)
      rows.push({ area: 'load (warm)', what: '/load over loopback HTTP, cached, steady state', bytes: size, ms: steady.ms, refName: 'openssl enc -d', refMs: ossl, peakRssMiB: rss, target: 'ratio ≥ 0.6' })
      rows.push({ area: 'load (warm)', what: 'first /load of a freshly started process', bytes: size, ms: first.ms, refName: 'openssl enc -d', refMs: ossl, peakRssMiB: rss })

      // The same steady-state warm load over HTTPS (TLS_CERT_FILE): what transport security costs.
      await s.restartLoader(tlsVars)
      const tls = ['--cacert', ca.cert]
      await curl([...tls, '-o', '/dev/null', '-H', 'content-type: application/json', '-d', JSON.stringify({ email: ADMIN[0], password: ADMIN[1] }), `${s.loader.url}/login`])
      await curl([...tls, '-o', '/dev/null', '-X', 'POST', `${s.loader.url}/load/${name}`])
      const overTls = await curl([...tls, '-o', '/dev/null', '-X', 'POST', `${s.loader.url}/load/${name}`])
      rows.push({ area: 'load (warm)', what: '/load over loopback HTTPS (TLS_CERT_FILE), cached, steady state', bytes: size, ms: overTls.ms, refName: 'openssl enc -d', refMs: ossl, peakRssMiB: peakRss(s.loader.child.pid!), target: 'ratio ≥ 0.6' })
    }
  } finally {
    await s.stop()
    ca.remove()
  }
  return rows
}

async function writeTemp(b: Buffer): Promise<string> {
  const { writeFileSync } = await import('node:fs')
  const p = join(OUT, 'small.part')
  writeFileSync(p, b)
  return p
}
