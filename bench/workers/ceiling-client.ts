// Bench worker: GETs a URL with node:http (with the given headers, e.g. a SigV4 signature) and
// hashes every received chunk `hashes` times with SHA-256 as it comes, nothing else (no file, no
// cipher): what a cold load does at the least. Prints {ms, bytes, maxRssKiB}.
import { get } from 'node:http'
import { createHash } from 'node:crypto'

const [url, hashesArg = '1', headersArg = '{}'] = process.argv.slice(2)
const t0 = performance.now()
const bytes = await new Promise<number>((ok, ko) => {
  get(url, { headers: JSON.parse(headersArg) as Record<string, string> }, (res) => {
    if (res.statusCode !== 200) return ko(new Error(`GET ${url}: ${res.statusCode}`))
    const hashes = Array.from({ length: Number(hashesArg) }, () => createHash('sha256'))
    let n = 0
    res.on('data', (c: Buffer) => {
      n += c.length
      for (const h of hashes) h.update(c)
    })
    res.on('end', () => {
      for (const h of hashes) h.digest()
      ok(n)
    })
    res.on('error', ko)
  }).on('error', ko)
})
console.log(JSON.stringify({ ms: performance.now() - t0, bytes, maxRssKiB: process.resourceUsage().maxRSS }))
