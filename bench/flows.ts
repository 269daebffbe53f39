// Flow benches on the real stack (built runtime, origin, moto), with curl as the loader's client:
// raw /upload against a curl --aws-sigv4 PUT of the same size to the same S3; cold /load against
// a curl --aws-sigv4 GET of the same big part; warm /load against `openssl enc -d -in` on the same
// ciphertext. Each: the first run after a start, then several alternating runs (median and best).
import { existsSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { startStack, RESOURCE_AES, type Stack } from '../test/helpers/stack'
import { alternate, ciphertextOf, curlSigV4, curlTimed, MiB, OUT, opensslDecrypt, peakRss, randomFile, stats, type Row } from './lib'
import { profileLoader } from './profile'
import { makeCa } from '../test/helpers/tls'

const ADMIN = ['bench@example.com', 'bench-password']

export async function benchFlows(sizes: number[], runs: number): Promise<Row[]> {
  const rows: Row[] = []
  // moto (Python) needs tens of seconds to store a GiB: timeouts fit the bench, not the tests.
  const vars = { MAX_CONCURRENT_TRANSFERS: '64', CDN_TIMEOUT_MS: '300000', API_TIMEOUT_MS: '60000' }
  const s = await startStack({ [ADMIN[0]]: [ADMIN[1], 'ApiAdmin'] }, vars)
  // The HTTPS row: a CA and a certificate for 127.0.0.1 made with openssl, as in the tests.
  const ca = makeCa('Loader Bench CA')
  const cert = ca.issue('bench-server', 'server')
  const login = async (st: Stack = s) => {
    const r = await fetch(`${st.loader.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: ADMIN[0], password: ADMIN[1] }) })
    if (!r.ok) throw new Error(`login ${r.status}`)
  }
  const restart = async (more: Record<string, string> = {}) => {
    await s.restartLoader(more)
    await login()
  }
  try {
    s.setCdnYaml({ host: s.moto.url })
    for (const size of sizes) {
      const plain = await randomFile(`plain-${size}.bin`, size)
      const name = `bench-${size}.bin`
      const big = () => join(s.loader.cacheDir, `cache/models/${name}.big`)

      // Upload: the loader's raw /upload (Content-Length known: one pass) against a plain PUT.
      // (curl's time to the first byte of an upload's answer says nothing: it is dropped.)
      const uploadOurs = async () => ({ ms: (await curlTimed(['-X', 'POST', '-H', 'content-type: application/octet-stream', '-T', plain, `${s.loader.url}/upload/${name}?folder=models`])).ms })
      const refObject = `${s.moto.url}/models/bench-ref-${size}.bin`
      const uploadRef = async () => ({ ms: (await curlTimed([...curlSigV4(s.moto.uploader), '-T', plain, refObject])).ms })
      await restart() // a fresh process, so the peak RSS is the upload's
      const upFirst = await uploadOurs()
      const upRss = peakRss(s.loader.child.pid!)
      const up = await alternate(runs, uploadOurs, uploadRef)
      rows.push(row('upload', 'raw /upload, first after start', size, [upFirst], undefined, { peakRssMiB: upRss }))
      rows.push(row('upload', 'raw /upload (one pass: encrypt, split, PUT to S3 and cache)', size, up.ours, { name: 'curl --aws-sigv4 -T (same size, same S3)', ms: up.ref },
        { peakRssMiB: peakRss(s.loader.child.pid!), target: 'ratio ≥ 0.8, RSS ≤ 128 MiB', minRatio: 0.8, phases: uploadPhases(s.loader.output(), name, runs) }))
      // The reference object is emptied (the uploader may not delete), so moto does not keep its bytes.
      await curlTimed([...curlSigV4(s.moto.uploader), '-X', 'PUT', '--data-binary', '', refObject])

      // Cold load: the cache entry removed before each run; reference: the same big part with curl.
      const dropCache = () => { rmSync(big(), { force: true }); rmSync(`${big()}.json`, { force: true }) }
      const loadOurs = () => curlTimed(['-X', 'POST', `${s.loader.url}/load/${name}`])
      // A cold run ends when the download is committed to the cache, not when curl has the last
      // byte: the shared download outlives the response by its whole-part hash, and a next run that
      // found it still in memory would attach to it and measure a warm load, not a cold one.
      const coldOurs = async () => {
        // …and the loader must have let go of the part: a load finding it still open (a hold the
        // last response keeps a moment longer) would serve the removed file, warm.
        await closedBy(s.loader.child.pid!, big())
        dropCache()
        const r = await loadOurs()
        await committed(big())
        return r
      }
      const coldRef = () => curlTimed([...curlSigV4(s.moto.downloader), `${s.moto.url}/models/${name}.big`])
      dropCache()
      await restart()
      const coldFirst = await coldOurs()
      const cold = await alternate(runs, coldOurs, coldRef)
      const coldTarget = size >= 256 * MiB ? { target: 'ratio ≥ 0.85, TTFB ≤ 1 s', minRatio: 0.85, maxTtfbMs: 1000 } : {}
      rows.push(row('load (cold)', '/load, big part from S3, first after start', size, [coldFirst], undefined, {}))
      rows.push(row('load (cold)', '/load, big part from S3', size, cold.ours, { name: 'curl --aws-sigv4 GET of the big part', ms: cold.ref },
        { peakRssMiB: peakRss(s.loader.child.pid!), ...coldTarget }))

      // Warm load: the cache holds the big part; reference: openssl on the same ciphertext file.
      await loadOurs() // fills the cache
      const ct = join(OUT, `flow-ct-${size}.bin`)
      const { ivHex } = ciphertextOf(s.origin.files.get(`models/${name}.small`)!, big(), ct)
      const key = RESOURCE_AES.toString('hex')
      await restart()
      const warmFirst = await loadOurs()
      const warm = await alternate(runs, loadOurs, () => opensslDecrypt(key, ivHex, ct))
      rows.push(row('load (warm)', '/load, cached, first after start', size, [warmFirst], undefined, {}))
      rows.push(row('load (warm)', '/load, cached, steady state', size, warm.ours, { name: 'openssl enc -d -in (same ciphertext)', ms: warm.ref },
        { peakRssMiB: peakRss(s.loader.child.pid!), target: 'ratio ≥ 0.8', minRatio: 0.8 }))

      // The same warm load over HTTPS (TLS_CERT_FILE): what transport security costs.
      await s.restartLoader({ TLS_CERT_FILE: cert.cert, TLS_KEY_FILE: cert.key })
      const tls = ['--cacert', ca.cert]
      await curlTimed([...tls, '-H', 'content-type: application/json', '-d', JSON.stringify({ email: ADMIN[0], password: ADMIN[1] }), `${s.loader.url}/login`])
      const loadTls = () => curlTimed([...tls, '-X', 'POST', `${s.loader.url}/load/${name}`])
      await loadTls()
      const warmTls = await alternate(runs, loadTls, () => opensslDecrypt(key, ivHex, ct))
      rows.push(row('load (warm)', '/load over HTTPS, cached, steady state', size, warmTls.ours, { name: 'openssl enc -d -in (same ciphertext)', ms: warmTls.ref },
        { peakRssMiB: peakRss(s.loader.child.pid!) }))
      await restart()

      // Where the time goes, for the largest size, when a target is missed: a CPU profile of the loader.
      // The first warm load after a start is profiled too (why is it slower than the next ones?).
      if (size === sizes[sizes.length - 1]) {
        for (const r of rows.filter((x) => x.bytes === size && (missed(x) || x.what === '/load, cached, first after start'))) {
          const run = r.area === 'upload' ? uploadOurs : r.area === 'load (cold)' ? coldOurs : loadOurs
          const steady = r.area === 'load (warm)' && !r.what.includes('first after start')
          r.profile = await profileLoader(s, () => login(), run, steady ? loadOurs : undefined)
        }
      }
      rmSync(ct, { force: true })
    }
  } finally {
    await s.stop()
    ca.remove()
  }
  return rows
}

/** The medians of the last `runs` upload log lines of `name`: ms per phase (functions/upload/phases.ts). */
function uploadPhases(output: string, name: string, runs: number): string | undefined {
  const lines = output.split('\n').filter((l) => l.includes('"msg":"upload"') && l.includes(`"filename":"${name}"`)).slice(-runs)
  const logged = lines.map((l) => (JSON.parse(l) as { ms?: Record<string, number> }).ms).filter((ms) => ms !== undefined)
  if (!logged.length) return undefined
  const median = (phase: string) => stats(logged.map((ms) => ms[phase] ?? 0)).median.toFixed(0)
  return `the body streamed (received, encrypted, hashed, sent to S3 and the cache file) ${median('body')} ms, ` +
    `then S3's answer after the last byte ${median('cdn')} ms, the Resource API ${median('api')} ms, the local cache commit ${median('cache')} ms ` +
    `(medians of the loader's log lines over ${logged.length} runs)`
}

/** Waits until the cache holds `path` (a download's commit), at most two minutes. */
async function committed(path: string): Promise<void> {
  for (const t = Date.now(); !existsSync(path); await new Promise((ok) => setTimeout(ok, 5))) {
    if (Date.now() - t > 120_000) throw new Error(`${path} was not committed within 2 minutes`)
  }
}

/** Waits until process `pid` has no descriptor open on `path`, at most two minutes. */
async function closedBy(pid: number, path: string): Promise<void> {
  const open = () => readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try { return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(path) } catch { return false }
  })
  for (const t = Date.now(); open(); await new Promise((ok) => setTimeout(ok, 5))) {
    if (Date.now() - t > 120_000) throw new Error(`${path} is still open in the loader after 2 minutes`)
  }
}

/** A row from our timings and, optionally, the reference's. */
export function row(area: string, what: string, bytes: number, ours: { ms: number; ttfbMs?: number }[], ref: { name: string; ms: number[] } | undefined, more: Partial<Row>): Row {
  const o = stats(ours.map((x) => x.ms))
  const ttfb = ours.every((x) => x.ttfbMs !== undefined) ? stats(ours.map((x) => x.ttfbMs!)).median : undefined
  const r = ref ? stats(ref.ms) : undefined
  return { area, what, bytes, ms: o.median, msMin: o.min, runs: ours.length, ttfbMs: ttfb, refName: ref?.name, refMs: r?.median, refMin: r?.min, ...more }
}

/** Whether a row misses its target (median ratio, median time to first byte). */
export function missed(r: Row): boolean {
  if (r.minRatio !== undefined && r.refMs !== undefined && r.refMs / r.ms < r.minRatio) return true
  return r.maxTtfbMs !== undefined && r.ttfbMs !== undefined && r.ttfbMs > r.maxTtfbMs
}
