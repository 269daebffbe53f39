// The memory session: one login written in one step, and stale credentials forgotten when upstream refuses them.
import { http, HttpResponse } from 'msw'
import { describe, expect, it, vi } from 'vitest'
import { API } from '../mocks/resource-api'
import { CDN } from '../mocks/cdn'
import { server } from '../mocks/server'
import { contractWorld, USER } from '../helpers/contract'
import { getAuth, getCdn, getSession } from '../../shared/upstream/session'

const OTHER = { email: 'other@example.com', password: 'other-pass-1' }
const cdnYaml = (tag: string) => Buffer.from(`host: ${CDN}\ndownloader_access_key: DL-${tag}\ndownloader_access_secret: dl-${tag}\nuploader_access_key: UP-${tag}\nuploader_access_secret: up-${tag}\n`)
const logins = (calls: { path: string }[]) => calls.filter((c) => c.path === '/login').length

describe('session', () => {
  it('two concurrent logins never pair one user\'s credentials with the other\'s CDN keys', async () => {
    const w = await contractWorld()
    w.api.state.users.set(OTHER.email, { password: OTHER.password, role: 'ApiAdmin' })
    w.api.state.files.set('cdn.yaml', cdnYaml('first'))
    // Hold the first storage write that carries the first user's login, until the second login has answered.
    const setItem = w.env.session.setItem.bind(w.env.session)
    let release: (() => void) | undefined
    let holding = true
    w.env.session.setItem = (async (key: string, value: unknown, opts?: unknown) => {
      if (holding && JSON.stringify(value).includes(USER.email)) {
        holding = false
        await new Promise<void>((ok) => { release = ok })
      }
      return setItem(key, value as never, opts as never)
    }) as typeof w.env.session.setItem
    const first = w.login()
    await vi.waitFor(() => expect(release).toBeDefined(), { timeout: 15_000 })
    w.api.state.files.set('cdn.yaml', cdnYaml('second'))
    expect((await w.req('/login', OTHER)).status).toBe(200)
    release!()
    expect((await first).status).toBe(200)
    const [auth, cdn] = [await getAuth(w.env.session), await getCdn(w.env.session)]
    const tag = auth!.email === USER.email ? 'first' : 'second'
    expect(cdn!.downloaderAccessKey).toBe(`DL-${tag}`)
    expect(cdn!.uploaderAccessSecret).toBe(`up-${tag}`)
  })

  it('a re-login refused with 401 forgets the session: "log in again", no more attempts with the stale password', async () => {
    const w = await contractWorld()
    const plain = w.seed('m.bin')
    expect((await w.login()).status).toBe(200)
    // The password was changed elsewhere: every call with the old one is refused.
    w.api.state.users.set(USER.email, { password: 'rotated-pass', role: 'ApiAdmin' })
    const r = await w.req('/load/m.bin')
    expect(r.status).toBe(401)
    expect((await r.json()).detail).toMatch(/log in again/)
    expect(logins(w.api.state.calls)).toBe(2)
    const st = await (await w.app.request('/status')).json()
    expect(st).toMatchObject({ authenticated: false, user: null, cdn: 'not-configured' })
    // Later flows answer 401 at once and never send the stale credentials again.
    const again = await w.req('/load/m.bin')
    expect(again.status).toBe(401)
    expect(logins(w.api.state.calls)).toBe(2)
    // A new login with the new password works.
    expect((await w.req('/login', { ...USER, password: 'rotated-pass' })).status).toBe(200)
    const ok = await w.req('/load/m.bin')
    expect(ok.status).toBe(200)
    // Read to its end: an unread body keeps its cache hold and descriptor until the garbage collector.
    expect(Buffer.from(await ok.arrayBuffer()).equals(plain)).toBe(true)
  })

  it('concurrent callers refused together share the one refused re-login', async () => {
    const w = await contractWorld()
    w.seed('m.bin')
    expect((await w.login()).status).toBe(200)
    server.use(http.post(`${API}/resources/get/models`, () => HttpResponse.json({}, { status: 401 })))
    w.api.state.users.set(USER.email, { password: 'rotated-pass', role: 'ApiAdmin' })
    const rs = await Promise.all([1, 2, 3].map(() => w.req('/load/m.bin')))
    expect(rs.map((r) => r.status)).toEqual([401, 401, 401])
    expect(logins(w.api.state.calls)).toBe(2)
    expect((await w.req('/load/m.bin')).status).toBe(401)
    expect(logins(w.api.state.calls)).toBe(2)
  })

  // A re-login of user A held upstream while A logs out and B logs in: the re-login must neither
  // write A's token into B's session nor, when refused, clear B's session.
  for (const outcome of ['accepted', 'refused'] as const) {
    it(`a re-login ${outcome} after a logout and another user's login leaves that user's session alone`, async () => {
      const w = await contractWorld()
      w.api.state.users.set(OTHER.email, { password: OTHER.password, role: 'ApiAdmin' })
      w.seed('m.bin')
      expect((await w.login()).status).toBe(200)
      let held: (() => void) | undefined
      server.use(
        http.post(`${API}/resources/get/models`, () => HttpResponse.json({}, { status: 401 }), { once: true }),
        http.post(`${API}/login`, async ({ request }) => {
          if ((await request.clone().json() as { email?: string }).email !== USER.email) return
          await new Promise<void>((ok) => { held = ok })
        }, { once: true }),
      )
      if (outcome === 'refused') w.api.state.users.set(USER.email, { password: 'rotated-pass', role: 'ApiAdmin' })
      const load = w.req('/load/m.bin')
      await vi.waitFor(() => expect(held).toBeDefined(), { timeout: 15_000 })
      expect((await w.req('/logout')).status).toBe(200)
      expect((await w.req('/login', OTHER)).status).toBe(200)
      const other = await getSession(w.env.session)
      held!()
      // A's request is never finished with B's token.
      expect((await load).status).toBe(401)
      expect(await getSession(w.env.session)).toEqual(other)
      expect(other!.auth.email).toBe(OTHER.email)
    })
  }

  it('a login still running when /logout is called does not bring the session back', async () => {
    const w = await contractWorld()
    let held: (() => void) | undefined
    server.use(http.post(`${API}/login`, async () => { await new Promise<void>((ok) => { held = ok }) }, { once: true }))
    const login = w.login()
    await vi.waitFor(() => expect(held).toBeDefined(), { timeout: 15_000 })
    expect((await w.req('/logout')).status).toBe(200)
    held!()
    expect((await login).status).toBe(409)
    expect(await getSession(w.env.session)).toBeNull()
    expect((await w.login()).status).toBe(200)
  })
})
