// Field deployment in tests: key pairs, hand-written artifacts, signed releases, pushes to the admin surface.
import { execFileSync } from 'node:child_process'
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { RouteDef } from '../../shared/contract/function'
import { adminRequest, multipart, type AdminTarget } from '../../scripts/admin-client'
import { makeRelease } from '../../scripts/release-files'
import { sha256Hex } from '../../runtime/deploy/verify'

/** An Ed25519 key pair; `pubFile` is a RELEASE_KEYS file holding the public key. */
export function keyPair(dir: string, name = 'release-key') {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const pubPem = publicKey.export({ type: 'spki', format: 'pem' }) as string
  const pubFile = join(dir, `${name}.pub.pem`)
  writeFileSync(pubFile, pubPem)
  const privFile = join(dir, `${name}.pem`)
  writeFileSync(privFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  return { privateKey, publicKey, pubPem, pubFile, privFile }
}

export const HEALTH_ROUTES: RouteDef[] = [{ method: 'GET', path: '/health', body: 'none', public: true }]

/**
 * A hand-written `health` artifact answering `{status, version}`; `?fail=1` answers 500, `?throw=1`
 * throws, `?bad=1` answers 400, `?wait=ms` answers after that long. `top` is code run at import; `extra` more members (selfTest).
 */
export const healthArtifact = (version: string, o: { top?: string; extra?: string } = {}) => Buffer.from(`${o.top ?? ''}
export default { name: 'health', routes: ${JSON.stringify(HEALTH_ROUTES)}, ${o.extra ?? ''}
  async fetch(request) {
    const q = new URL(request.url).searchParams
    if (q.get('wait')) await new Promise((r) => setTimeout(r, Number(q.get('wait'))))
    if (q.get('fail')) return new Response('no', { status: 500 })
    if (q.get('throw')) throw new Error('thrown on purpose')
    if (q.get('bad')) return new Response('bad', { status: 400 })
    return Response.json({ status: 'healthy', version: ${JSON.stringify(version)} })
  } }
`)

/** An artifact of a function `name` serving GET /<name> with `{name, version}`. */
export const plainArtifact = (name: string, version: string, routes: RouteDef[] = [{ method: 'GET', path: `/${name}`, body: 'none' }]) => Buffer.from(`
export default { name: ${JSON.stringify(name)}, routes: ${JSON.stringify(routes)}, async fetch() { return Response.json({ name: ${JSON.stringify(name)}, version: ${JSON.stringify(version)} }) } }
`)

/** The three parts of a release, signed by `key`; `partName` is the name the parts are sent under. */
export function releaseParts(o: { name: string; artifact: Buffer; routes: RouteDef[]; version: number; key: KeyObject; contract?: number; partName?: string }): [string, Uint8Array][] {
  const { json, sig } = makeRelease({ name: o.name, artifact: o.artifact, routes: o.routes, version: o.version, key: o.key, contract: o.contract })
  const n = o.partName ?? o.name
  return [[`${n}.release.json`, json], [`${n}.release.sig`, Buffer.from(sig)], [`${n}.mjs`, o.artifact]]
}

/** The admin surface on a loader's unix socket. */
export const socketOf = (cacheDir: string): AdminTarget => ({ to: `unix://${join(cacheDir, 'admin.sock')}` })

/** A JSON request to the admin surface. */
export async function admin(t: AdminTarget, method: string, path: string, body?: unknown) {
  const r = await adminRequest(t, method, path, body === undefined ? undefined : { type: 'application/json', bytes: Buffer.from(JSON.stringify(body)) })
  return { status: r.status, type: r.type, text: r.text, json: () => JSON.parse(r.text) }
}

/** POSTs a deployment of the given parts. */
export async function push(t: AdminTarget, parts: [string, Uint8Array][], chunked = false) {
  const r = await adminRequest(t, 'POST', '/admin/deployments', { ...await multipart(parts), chunked }).catch((e: NodeJS.ErrnoException) => {
    // The loader may answer 413 and close before the whole body is sent.
    if (e.code === 'EPIPE' || e.code === 'ECONNRESET') return { status: 0, type: '', text: JSON.stringify({ detail: e.code }) }
    throw e
  })
  return { status: r.status, type: r.type, body: JSON.parse(r.text) as { id?: string; state?: string; detail?: string } }
}

/** Polls a deployment until it reaches one of `states`. */
export async function until(t: AdminTarget, id: string, states: string[], ms = 60_000) {
  const end = Date.now() + ms
  for (;;) {
    const d = (await admin(t, 'GET', `/admin/deployments/${id}`)).json()
    if (states.includes(d.state)) return d as { state: string; reason: string | null; events: unknown[] }
    if (Date.now() > end) throw new Error(`deployment ${id} still ${d.state}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** A self-signed certificate for 127.0.0.1 made with the openssl CLI. */
export function selfSignedCert(dir: string) {
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  return { cert, key }
}

/** A fresh temporary folder. */
export const tempDir = (prefix = 'loader-deploy-') => mkdtempSync(join(tmpdir(), prefix))

/**
 * Writes a signed release straight into the store under `root` (`<name>/<version>-<sha256 12>/`), as a
 * deployment leaves it; `onDisk` is the artifact written instead of the signed one (a damaged copy).
 */
export function storeRelease(root: string, o: { name: string; artifact: Buffer; routes: RouteDef[]; version: number; key: KeyObject; onDisk?: Buffer }): string {
  const { json, sig } = makeRelease(o)
  const dir = join(root, o.name, `${o.version}-${sha256Hex(o.artifact).slice(0, 12)}`)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, `${o.name}.mjs`), o.onDisk ?? o.artifact)
  writeFileSync(join(dir, 'release.json'), json)
  writeFileSync(join(dir, 'release.sig'), sig)
  return dir
}
