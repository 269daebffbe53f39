// POST /unlock without RESOURCE_API_URL: a 503 to the caller (http.md §1), not a 202 for a job that
// can only fail in the background and overwrite the stored state; and the API description lists it.
import { expect, it } from 'vitest'
import unlockFn from '../../functions/unlock/index'
import { idle, readUnlock, writeUnlock } from '../../shared/contract/unlock-state'
import { makeApp } from '../helpers/env'
import { tempDir } from '../helpers/tmp'

it('answers 503 not-configured when RESOURCE_API_URL is not set, and keeps the stored state', async () => {
  const { app, env } = await makeApp([unlockFn], { UNLOCK_ARCHIVE: tempDir('unlock-arch-') })
  await writeUnlock(env.state, { ...idle(), state: 'ready', images: ['localhost/x:1'] })
  const r = await app.request('/unlock', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'a@b.co', password: 'pw', force: true }) })
  expect(r.status).toBe(503)
  expect(await r.json()).toMatchObject({ type: expect.stringMatching(/not-configured$/), detail: expect.stringMatching(/RESOURCE_API_URL/) })
  expect(await readUnlock(env.state)).toMatchObject({ state: 'ready', images: ['localhost/x:1'] })
})

it('documents its 503 and 507 in /openapi.json', async () => {
  const { app } = await makeApp([unlockFn])
  const doc = await (await app.request('/openapi.json')).json()
  expect(Object.keys(doc.paths['/unlock'].post.responses)).toEqual(expect.arrayContaining(['202', '200', '503', '507']))
})
