// F4–F5: POST /unlock starts the unlock job (single flight); GET /unlock/status reports it.
import * as v from 'valibot'
import { defineFunction } from '../../shared/contract/function'
import { json, JSON_BODY_PROBLEMS, readJson } from '../../shared/http/json'
import { LoginBody } from '../../shared/http/login-body'
import { runUnlock, stillReady } from './job'
import { idle, publicView, readUnlock, UNLOCK_JOB, UnlockStatusAnswer, writeUnlock, type UnlockStatus } from '../../shared/contract/unlock-state'
import { isLocalFsError, localStorageProblem } from '../../shared/http/local-storage-error'
import { resourceApiUrl } from '../../shared/upstream/resource-api'

const UnlockBody = v.object({ ...LoginBody.entries, force: v.optional(v.boolean('must be true or false')) })

export default defineFunction({
  name: 'unlock',
  routes: [
    { method: 'POST', path: '/unlock', rateLimited: true, doc: {
      summary: 'Starts the unlock job in the background: archives decrypted straight into the Docker engine',
      description: 'authenticating → fetching_key → decrypting → loading → ready (or error); poll GET /unlock/status.',
      body: { 'application/json': UnlockBody },
      bodyRequired: true,
      answers: {
        200: { description: 'already ready for these archives (send force: true to run again)', content: { 'application/json': UnlockStatusAnswer } },
        202: { description: 'started, or already running: the current state', content: { 'application/json': UnlockStatusAnswer } },
      },
      problems: { ...JSON_BODY_PROBLEMS, 503: 'RESOURCE_API_URL is not configured', 507: 'the unlock state cannot be written (the device disk is full)' },
    } },
    { method: 'GET', path: '/unlock/status', body: 'none', doc: {
      summary: 'The unlock job state (survives restarts and redeploys)',
      answers: { 200: { description: 'the current state', content: { 'application/json': UnlockStatusAnswer } } },
      problems: {},
    } },
  ],
  async fetch(request, env, ctx) {
    if (request.method === 'GET') return json(publicView(await readUnlock(env.state, env.inflight)))
    const { email, password, force } = await readJson(request, UnlockBody)
    // Missing configuration is the caller's answer, not a job that fails in the background.
    resourceApiUrl(env)
    const ready = !force && await stillReady(env)
    // From here to inflight.run nothing awaits, so two requests cannot both start a job.
    if (env.inflight.has(UNLOCK_JOB)) return json(publicView(await readUnlock(env.state)), 202)
    if (ready) return json(publicView(await readUnlock(env.state)), 200)
    let started!: (s: UnlockStatus) => void
    const first = new Promise<UnlockStatus>((ok) => { started = ok })
    const job = env.inflight.run(UNLOCK_JOB, async () => {
      const s = await writeUnlock(env.state, { ...idle(), state: 'authenticating' })
      started(s)
      return runUnlock(env, email, password, s)
    })
    // A first write that fails is answered below (507); only anything else is background work that failed.
    ctx.waitUntil(job.catch((e) => { if (!isLocalFsError(e)) throw e }))
    try {
      return json(publicView(await Promise.race([first, job])), 202)
    } catch (e) {
      // The first state could not be written (a full disk): nothing started, and that is no bug.
      if (isLocalFsError(e)) throw localStorageProblem(e, 'the unlock state', 'local-storage')
      throw e
    }
  },
})
