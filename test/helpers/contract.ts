// In-process loader over source functions with MSW standing in for the Resource API and the CDN.
import { createHash, randomBytes } from 'node:crypto'
import loginFn from '../../functions/login/index'
import loadFn from '../../functions/load/index'
import uploadFn from '../../functions/upload/index'
import statusFn from '../../functions/status/index'
import { encryptBuffer } from '../../shared/crypto/blob'
import { smallSizeOf } from '../../functions/upload/split'
import { cdn, CDN } from '../mocks/cdn'
import { API, resourceApi } from '../mocks/resource-api'
import { server } from '../mocks/server'
import type { OriginOptions } from '../origin/origin'
import { makeApp } from './env'
import { RESOURCE_AES } from './stack'

export const USER = { email: 'user@example.com', password: 's3cret-pass' }

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** Starts a contract-test world: origin + CDN mocks installed, a loader app over the source functions. */
export async function contractWorld(vars: Record<string, string> = {}, role: string | number = 'ApiAdmin', origin: Partial<OriginOptions> = {}) {
  const api = resourceApi(origin)
  const c = cdn()
  server.use(api.handler, ...c.handlers)
  api.state.users.set(USER.email, { password: USER.password, role: role as never })
  api.state.files.set('cdn.yaml', Buffer.from(`host: ${CDN}\ndownloader_access_key: DL\ndownloader_access_secret: dl-secret\nuploader_access_key: UP\nuploader_access_secret: up-secret\n`))
  const loader = await makeApp([loginFn, loadFn, uploadFn, statusFn], { RESOURCE_API_URL: API, LOGIN_RATE_PER_MINUTE: '1000', API_READ_RETRIES: '2', CDN_READ_RETRIES: '2', ...vars })
  const req = (path: string, body?: unknown) => loader.app.request(path, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  })
  /** Seeds a resource with the given plaintext; returns the plaintext. */
  const seed = (name: string, plain: Buffer = randomBytes(20_000), folder = 'models') => {
    const blob = encryptBuffer(RESOURCE_AES, plain)
    const n = smallSizeOf(blob.length)
    const small = blob.subarray(0, n)
    const big = blob.subarray(n)
    c.put(`${folder}/${name}.big`, Buffer.from(big), { 'x-amz-meta-sha256': sha(big), 'x-amz-meta-small-sha256': sha(small) })
    api.state.files.set(`${folder}/${name}.small`, Buffer.from(small))
    return plain
  }
  return { api, cdn: c, ...loader, req, seed, login: () => req('/login', USER) }
}
