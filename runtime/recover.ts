// At start, background jobs a previous process left unfinished are marked as interrupted.
import type { Env } from '../shared/contract/function'

import { RUNNING, UNLOCK_KEY } from '../shared/contract/unlock-state'

/** Keys of `env.state` holding job states with a `state` field, and their unfinished states. */
const JOBS: Record<string, readonly string[]> = { [UNLOCK_KEY]: RUNNING }

/** Turns any unfinished job state into `error: interrupted` (best effort: a failed write is logged, never thrown). */
export async function recoverInterrupted(env: Env): Promise<void> {
  for (const [key, running] of Object.entries(JOBS)) {
    const s = await env.state.getItem<{ state: string }>(key)
    if (s && running.includes(s.state)) {
      try {
        await env.state.setItem(key, { ...s, state: 'error', error: 'interrupted', updatedAt: new Date().toISOString() })
      } catch (e) {
        // Best effort: a full disk must not stop the start; no job runs, so the state reads as error anyway.
        env.log.warn({ job: key, was: s.state, code: (e as NodeJS.ErrnoException).code }, 'a job left unfinished by the previous process could not be marked interrupted')
        continue
      }
      env.log.warn({ job: key, was: s.state }, 'a job left unfinished by the previous process is marked interrupted')
    }
  }
}
