// F4–F5: POST /unlock starts the unlock job (single flight); GET /unlock/status reports it.
import * as v from 'valibot'
import { defineFunction } from '../../shared/contract/function'
import { json, readJson } from '../../shared/http/json'
import { LoginBody } from '../../shared/http/login-body'
import { runUnlock, stillReady } from './job'
import { idle, publicView, readUnlock, writeUnlock, type UnlockStatus } from '../../shared/contract/unlock-state'

const UnlockBody = v.object({ ...LoginBody.entries, force: v.optional(v.boolean('must be true or false')) })

export default defineFunction({
  name: 'unlock',
  routes: [
    { method: 'POST', path: '/unlock', rateLimited: true },
    { method: 'GET', path: '/unlock/status', body: 'none' },
  ],
  async fetch(request, env, ctx) {
    if (request.method === 'GET') return json(publicView(await readUnlock(env.state)))
    const { email, password, force } = await readJson(request, UnlockBody)
    const ready = !force && await stillReady(env)
    // From here to inflight.run nothing awaits, so two requests cannot both start a job.
    if (env.inflight.has('unlock')) return json(publicView(await readUnlock(env.state)), 202)
    if (ready) return json(publicView(await readUnlock(env.state)), 200)
    let started!: (s: UnlockStatus) => void
    const first = new Promise<UnlockStatus>((ok) => { started = ok })
    const job = env.inflight.run('unlock', async () => {
      const s = await writeUnlock(env.state, { ...idle(), state: 'authenticating' })
      started(s)
      return runUnlock(env, email, password, s)
    })
    ctx.waitUntil(job)
    return json(publicView(await Promise.race([first, job])), 202)
  },
})
