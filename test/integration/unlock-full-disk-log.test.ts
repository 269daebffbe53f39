// POST /unlock on a full disk answers 507 (its first state write fails) and logs it as what it is:
// no 'background work failed' error line with a stack, as if the loader had a bug.
import { expect, it } from 'vitest'
import unlockFn from '../../functions/unlock/index'
import { makeApp } from '../helpers/env'
import { tempDir } from '../helpers/tmp'

it('a full disk at POST /unlock: a 507, and no error line with a stack', async () => {
  const w = await makeApp([unlockFn], { RESOURCE_API_URL: 'http://127.0.0.1:9', UNLOCK_ARCHIVE: tempDir('loader-test-arch-'), LOGIN_RATE_PER_MINUTE: '1000' })
  w.env.state.setItem = () => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' }))
  const r = await w.app.request('/unlock', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'unlock@example.com', password: 'unlock-pass' }) })
  expect(r.status).toBe(507)
  await new Promise((ok) => setTimeout(ok, 50))
  const lines = w.logs.map((l) => JSON.parse(l) as { level: number | string; msg: string })
  expect(lines.filter((l) => l.msg === 'background work failed')).toEqual([])
  expect(lines.some((l) => /disk|507|ENOSPC/i.test(JSON.stringify(l)))).toBe(true)
})
