// The built runtime's session: a password changed upstream ends the session instead of retrying stale credentials.
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { post, startStack, type Stack } from '../helpers/stack'

const USER = ['rotating@example.com', 'first-pass-1']
let s: Stack
beforeAll(async () => {
  s = await startStack({ [USER[0]]: [USER[1], 'Admin'] })
})
afterAll(async () => s?.stop())

const logins = () => s.origin.calls.filter((c) => c.path === '/login').length

describe('a refused re-login', () => {
  it('clears the session: 401 "log in again", /status logged out, the stale password never sent again', async () => {
    expect((await post(s.loader.url, '/login', { email: USER[0], password: USER[1] })).status).toBe(200)
    const up = await fetch(`${s.loader.url}/upload/rot.bin`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(randomBytes(20_000)) })
    expect(up.status).toBe(201)
    s.origin.users.set(USER[0], { password: 'second-pass-2', role: 'Admin' })
    const before = logins()
    const r = await post(s.loader.url, '/load/rot.bin', {})
    expect(r.status).toBe(401)
    expect((await r.json()).detail).toMatch(/log in again/)
    expect(logins()).toBe(before + 1)
    expect(await (await fetch(`${s.loader.url}/status`)).json()).toMatchObject({ authenticated: false, user: null, cdn: 'not-configured' })
    expect((await post(s.loader.url, '/load/rot.bin', {})).status).toBe(401)
    expect(logins()).toBe(before + 1)
    expect((await post(s.loader.url, '/login', { email: USER[0], password: 'second-pass-2' })).status).toBe(200)
    expect((await post(s.loader.url, '/load/rot.bin', {})).status).toBe(200)
  })
})
