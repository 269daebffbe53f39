// `npm run deploy -- <name…> --to <unix:///path.sock | https://host:port> [--token-file F] [--ca F]`:
// pushes the newest release of each named function (dist/releases/) as one deployment, then
// follows it and prints its progress; exits 0 only when it is committed. `--releases <dir>` reads
// the releases from there instead of dist/releases; `--ca <pem>` trusts that CA for https;
// `--timeout <s>` (default 600) bounds the whole run. Exit codes (README "Field deployment"):
// 0 committed; 1 refused, rejected or rolled back; 2 bad arguments or a local file that cannot be
// read; 3 the device cannot be reached or answered unexpectedly; 4 no end state within --timeout.
// A device that restarts while the deployment is followed is waited for (within --timeout), and the
// end state is then read from its journal.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { adminRequest, multipart, type AdminTarget } from './admin-client'

const args = process.argv.slice(2)
const names: string[] = []
let to: string | undefined
let tokenFile: string | undefined
let caFile: string | undefined
let releasesDir = join(process.cwd(), 'dist', 'releases')
let timeoutS = 600
const EXIT = { committed: 0, refused: 1, usage: 2, unreachable: 3, timeout: 4 } as const
/** A failure with the exit code it ends the run with. */
class Fail extends Error {
  constructor(message: string, readonly code: number) {
    super(message)
  }
}
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--to') to = args[++i]
  else if (args[i] === '--timeout') timeoutS = Number(args[++i])
  else if (args[i] === '--token-file') tokenFile = args[++i]
  else if (args[i] === '--ca') caFile = args[++i]
  else if (args[i] === '--releases') releasesDir = args[++i]
  else names.push(args[i])
}
if (!names.length || !to || !(timeoutS > 0)) {
  console.error('usage: npm run deploy -- <name…> --to <unix:///path.sock | https://host:port> [--token-file F] [--ca F] [--releases DIR] [--timeout S]')
  process.exit(EXIT.usage)
}
/** Reads a file named on the command line; one line naming the option when it cannot. */
function readArg(option: string, file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (e) {
    throw new Fail(`${option}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, EXIT.usage)
  }
}
const timer = setTimeout(() => {
  console.error(`deploy: no end state within ${timeoutS} s (--timeout); the deployment may still finish: GET /admin/deployments on the device`)
  process.exit(EXIT.timeout)
}, timeoutS * 1000)
timer.unref()

/** The folder of the newest release of `name`. */
function newest(name: string): string {
  let entries: string[]
  try {
    entries = readdirSync(releasesDir)
  } catch (e) {
    throw new Fail(`--releases: cannot read ${releasesDir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, EXIT.usage)
  }
  const versions = entries.flatMap((d) => {
    const m = new RegExp(`^${name}-(\\d+)$`).exec(d)
    return m ? [Number(m[1])] : []
  })
  if (!versions.length) throw new Fail(`no release of ${name} in ${releasesDir}: run npm run release -- ${name} --key <private.pem>`, EXIT.usage)
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

/** The last end state (committed, rolled back, rejected) the device's journal holds for deployment `id`. */
async function endInJournal(target: AdminTarget, id: string): Promise<{ event: string; at: string; reason: string | null } | undefined> {
  const r = await request(target, 'GET', '/admin/journal')
  if (r.status !== 200) return undefined
  let end: { event: string; at: string; reason: string | null } | undefined
  for (const line of r.text.split('\n')) {
    try {
      const e = JSON.parse(line) as { event: string; at: string; deployment: string | null; reason: string | null }
      if (e.deployment === id && ['committed', 'rolled_back', 'rejected'].includes(e.event)) end = e
    } catch { /* a line cut by a crash */ }
  }
  return end
}

/** An admin request; a socket or TLS error is exit 3. */
const request = (target: AdminTarget, method: string, path: string, body?: Parameters<typeof adminRequest>[3]) =>
  adminRequest(target, method, path, body).catch((e: Error) => {
    throw new Fail(`cannot reach ${target.to}: ${e.message}`, EXIT.unreachable)
  })

try {
  const target: AdminTarget = {
    to,
    token: tokenFile ? readArg('--token-file', tokenFile).toString('utf8').trim() : undefined,
    ca: caFile ? readArg('--ca', caFile) : undefined,
  }
  const parts: [string, Uint8Array][] = []
  for (const name of names) {
    const dir = newest(name)
    const meta = JSON.parse(readArg('--releases', join(dir, 'release.json')).toString('utf8')) as { version: number; sha256: string }
    console.log(`${name} ${meta.version} ${meta.sha256.slice(0, 12)} from ${dir}`)
    parts.push([`${name}.release.json`, readArg('--releases', join(dir, 'release.json'))])
    parts.push([`${name}.release.sig`, readArg('--releases', join(dir, 'release.sig'))])
    parts.push([`${name}.mjs`, readArg('--releases', join(dir, `${name}.mjs`))])
  }
  const res = await request(target, 'POST', '/admin/deployments', await multipart(parts))
  if (res.status !== 202) {
    console.error(`deploy: refused (${res.status}): ${detail(res.text)}`)
    process.exit(res.status >= 400 && res.status < 500 ? EXIT.refused : EXIT.unreachable)
  }
  const { id } = JSON.parse(res.text) as { id: string }
  console.log(`deployment ${id} accepted`)
  let printed = 0
  let away = false
  for (;;) {
    // The device may restart while the deployment runs (a crash, a container restart): its socket is
    // gone for a while, then the new process no longer knows the id. The journal on its volume
    // does: the end state is read there (a trial the process died in was rolled back at start).
    const r = await request(target, 'GET', `/admin/deployments/${id}`).catch((e: Fail) => {
      if (!away) console.error(`deploy: ${e.message}; waiting for the device to come back (--timeout)`)
      away = true
      return undefined
    })
    if (!r) {
      await new Promise((ok) => setTimeout(ok, 500))
      continue
    }
    if (r.status === 404) {
      const end = await endInJournal(target, id)
      if (end) {
        console.log(`${end.at}  ${end.event.padEnd(11)} ${end.reason ?? ''} (from the device's journal: it restarted)`)
        if (end.event === 'committed') process.exit(EXIT.committed)
        console.error(`deploy: ${end.event}: ${end.reason}`)
        process.exit(EXIT.refused)
      }
    }
    if (r.status !== 200) throw new Fail(`GET /admin/deployments/${id}: ${r.status} ${detail(r.text)}`, EXIT.unreachable)
    const dep = JSON.parse(r.text) as { state: string; reason: string | null; events: { at: string; state: string; detail: string }[] }
    for (const e of dep.events.slice(printed)) console.log(`${e.at}  ${e.state.padEnd(11)} ${e.detail}`)
    printed = dep.events.length
    if (dep.state === 'committed') process.exit(EXIT.committed)
    if (dep.state === 'rolled_back' || dep.state === 'rejected') {
      console.error(`deploy: ${dep.state}: ${dep.reason}`)
      process.exit(EXIT.refused)
    }
    await new Promise((r) => setTimeout(r, 250))
  }
} catch (e) {
  console.error(`deploy: ${(e as Error).message}`)
  process.exit(e instanceof Fail ? e.code : EXIT.unreachable)
}
