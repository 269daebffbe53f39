// `npm run deploy -- <name…> --to <unix:///path.sock | https://host:port> [--token-file F] [--ca F]`:
// pushes the newest release of each named function (dist/releases/) as one deployment, then
// follows it and prints its progress; exits 0 only when it is committed. `--releases <dir>` reads
// the releases from there instead of dist/releases; `--ca <pem>` trusts that CA for https.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { adminRequest, multipart, type AdminTarget } from './admin-client'

const args = process.argv.slice(2)
const names: string[] = []
let to: string | undefined
let tokenFile: string | undefined
let caFile: string | undefined
let releasesDir = join(process.cwd(), 'dist', 'releases')
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--to') to = args[++i]
  else if (args[i] === '--token-file') tokenFile = args[++i]
  else if (args[i] === '--ca') caFile = args[++i]
  else if (args[i] === '--releases') releasesDir = args[++i]
  else names.push(args[i])
}
if (!names.length || !to) {
  console.error('usage: npm run deploy -- <name…> --to <unix:///path.sock | https://host:port> [--token-file F] [--ca F]')
  process.exit(2)
}
const target: AdminTarget = {
  to,
  token: tokenFile ? readFileSync(tokenFile, 'utf8').trim() : undefined,
  ca: caFile ? readFileSync(caFile) : undefined,
}

/** The folder of the newest release of `name`. */
function newest(name: string): string {
  const versions = readdirSync(releasesDir).flatMap((d) => {
    const m = new RegExp(`^${name}-(\\d+)$`).exec(d)
    return m ? [Number(m[1])] : []
  })
  if (!versions.length) throw new Error(`no release of ${name} in ${releasesDir}: run npm run release -- ${name} --key <private.pem>`)
  return join(releasesDir, `${name}-${Math.max(...versions)}`)
}

const detail = (text: string) => {
  try {
    const j = JSON.parse(text) as { detail?: string }
    return j.detail ?? text
  } catch {
    return text
  }
}

try {
  const parts: [string, Uint8Array][] = []
  for (const name of names) {
    const dir = newest(name)
    const meta = JSON.parse(readFileSync(join(dir, 'release.json'), 'utf8')) as { version: number; sha256: string }
    console.log(`${name} ${meta.version} ${meta.sha256.slice(0, 12)} from ${dir}`)
    parts.push([`${name}.release.json`, readFileSync(join(dir, 'release.json'))])
    parts.push([`${name}.release.sig`, readFileSync(join(dir, 'release.sig'))])
    parts.push([`${name}.mjs`, readFileSync(join(dir, `${name}.mjs`))])
  }
  const res = await adminRequest(target, 'POST', '/admin/deployments', await multipart(parts))
  if (res.status !== 202) {
    console.error(`deploy: refused (${res.status}): ${detail(res.text)}`)
    process.exit(1)
  }
  const { id } = JSON.parse(res.text) as { id: string }
  console.log(`deployment ${id} accepted`)
  let printed = 0
  for (;;) {
    const r = await adminRequest(target, 'GET', `/admin/deployments/${id}`)
    if (r.status !== 200) throw new Error(`GET /admin/deployments/${id}: ${r.status} ${detail(r.text)}`)
    const dep = JSON.parse(r.text) as { state: string; reason: string | null; events: { at: string; state: string; detail: string }[] }
    for (const e of dep.events.slice(printed)) console.log(`${e.at}  ${e.state.padEnd(11)} ${e.detail}`)
    printed = dep.events.length
    if (dep.state === 'committed') process.exit(0)
    if (dep.state === 'rolled_back' || dep.state === 'rejected') {
      console.error(`deploy: ${dep.state}: ${dep.reason}`)
      process.exit(1)
    }
    await new Promise((r) => setTimeout(r, 250))
  }
} catch (e) {
  console.error(`deploy: ${(e as Error).message}`)
  process.exit(1)
}
