// At start, background jobs a previous process left unfinished are marked as interrupted.
import type { Env } from '../shared/contract/function'

import { RUNNING, UNLOCK_KEY } from '../shared/contract/unlock-state'

/** Keys of `env.state` holding job states with a `state` field, and their unfinished states. */
const JOBS: Record<string, readonly string[]> = { [UNLOCK_KEY]: RUNNING }

/** Turns any unfinished job state into `error: interrupted`. */
export async function recoverInterrupted(env: Env): Promise<void> {
  for (const [key, running] of Object.entries(JOBS)) {
    const s = await env.state.getItem<{ state: string }>(key)
    if (s && running.includes(s.state)) {
      await env.state.setItem(key, { ...s, state: 'error', error: 'interrupted', updatedAt: new Date().toISOString() })
      env.log.warn({ job: key, was: s.state }, 'a job left unfinished by the previous process is marked interrupted')
    }
  }
}
