// Bench worker: GETs a URL with node:http and hashes every received chunk with SHA-256 as it comes
// (what a verified cold load must do at the least), then prints {ms, bytes, maxRssKiB}.
import { get } from 'node:http'
import { createHash } from 'node:crypto'

const url = process.argv[2]
const t0 = performance.now()
const bytes = await new Promise<number>((ok, ko) => {
  get(url, (res) => {
    const hash = createHash('sha256')
    let n = 0
    res.on('data', (c: Buffer) => { n += c.length; hash.update(c) })
    res.on('end', () => { hash.digest(); ok(n) })
    res.on('error', ko)
  }).on('error', ko)
})
console.log(JSON.stringify({ ms: performance.now() - t0, bytes, maxRssKiB: process.resourceUsage().maxRSS }))
