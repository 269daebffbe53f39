// Development origin: a small Resource API implementing http.md §2.1 on Hono (dev stack and e2e tests).
import { Hono, type Context, type Next } from 'hono'
import { SignJWT, jwtVerify } from 'jose'
import type { KeyObject } from 'node:crypto'
import { aesKey, encryptBuffer } from '../../shared/crypto/blob'
import { apiDownloadKey, hardwareHash } from '../../shared/crypto/keys'
import { ROLES, type Role } from '../../shared/upstream/roles'

/** A user of the origin. */
export interface OriginUser { password: string; role: Role | number }

/** What the origin serves; tests reach into it to seed files and to count calls. */
export interface OriginState {
  users: Map<string, OriginUser>
  /** `folder/fileName` (root files: `fileName`) → raw bytes, before the per-user encryption. */
  files: Map<string, Buffer>
  keyFragment: string
  /** Fingerprints refused with 403 (empty: every device allowed). */
  deniedHardware: Set<string>
  calls: { method: string; path: string }[]
}

export interface OriginOptions {
  jwtSecret: string
  salts: { HARDWARE_SALT: string; API_KEY_SALT: string }
  tokenTtlSeconds?: number
  /** Sign tokens with this private key (RS256/ES256…) instead of the HS256 secret; verify with its public key. */
  signingKey?: { alg: string; privateKey: CryptoKey | KeyObject; publicKey: CryptoKey | KeyObject; kid?: string }
}

/** Creates the origin app and its state. */
export function createOrigin(opts: OriginOptions) {
  const state: OriginState = { users: new Map(), files: new Map(), keyFragment: '', deniedHardware: new Set(), calls: [] }
  const secret = new TextEncoder().encode(opts.jwtSecret)
  const signWith = opts.signingKey?.privateKey ?? secret
  const verifyWith = opts.signingKey?.publicKey ?? secret
  const header = opts.signingKey ? { alg: opts.signingKey.alg, kid: opts.signingKey.kid } : { alg: 'HS256' }
  type E = { Variables: { email: string; role: number } }
  const app = new Hono<E>()

  app.use('*', async (c, next) => {
    state.calls.push({ method: c.req.method, path: c.req.path })
    await next()
  })

  app.post('/login', async (c) => {
    const { email, password } = await c.req.json<{ email: string; password: string }>()
    const u = state.users.get(email)
    if (!u || u.password !== password) return c.json({ error: 'bad credentials' }, 401)
    const role = typeof u.role === 'number' ? u.role : ROLES[u.role]
    const token = await new SignJWT({ email, role: String(role) }).setProtectedHeader(header)
      .setIssuedAt().setExpirationTime(`${opts.tokenTtlSeconds ?? 3600}s`).sign(signWith)
    return c.json({ token })
  })

  app.use('/resources/*', bearer)
  app.use('/binary-split/*', bearer)
  async function bearer(c: Context<E>, next: Next) {
    const m = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')
    try {
      const { payload } = await jwtVerify(m?.[1] ?? '', verifyWith)
      c.set('email', String(payload.email))
      c.set('role', Number(payload.role))
    } catch {
      return c.json({ error: 'unauthorized' }, 401)
    }
    await next()
  }

  const getFile = async (c: Context<E>, folder: string | null) => {
    const { password, hardware, fileName } = await c.req.json<{ password: string; hardware: string; fileName: string }>()
    const email = c.get('email')
    if (state.users.get(email)?.password !== password) return c.json({ error: 'bad password' }, 401)
    if (state.deniedHardware.has(hardware)) return c.json({ error: 'hardware not allowed' }, 403)
    const file = state.files.get(folder ? `${folder}/${fileName}` : fileName)
    if (!file) return c.json({ error: 'not found' }, 404)
    const hw = hardwareHash(hardware, opts.salts.HARDWARE_SALT)
    const key = aesKey(apiDownloadKey(email, password, hw, opts.salts.API_KEY_SALT))
    return c.body(new Uint8Array(encryptBuffer(key, file)), 200, { 'content-type': 'application/octet-stream' })
  }
  app.post('/resources/get', (c) => getFile(c, null))
  app.post('/resources/get/:folder', (c) => getFile(c, c.req.param('folder')))

  app.post('/resources/:folder', async (c) => {
    if (![ROLES.Admin, ROLES.ResourceUploader, ROLES.ApiAdmin].includes(c.get('role') as never)) return c.json({ error: 'forbidden' }, 403)
    const form = await c.req.formData()
    const data = form.get('data')
    if (!(data instanceof File)) return c.json({ error: 'no data' }, 400)
    state.files.set(`${c.req.param('folder')}/${data.name}`, Buffer.from(await data.arrayBuffer()))
    return c.json({ ok: true }, 201)
  })

  app.get('/binary-split/key-fragment', (c) => c.json({ keyFragment: state.keyFragment }))
  return { app, state }
}
