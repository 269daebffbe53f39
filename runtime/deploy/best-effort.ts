// Writes at start that must not stop it (deploy.md §2: start-up never fails because of a function):
// a journal line or state.json on a full or read-only volume is logged and shown in env.warnings.
import type { Env } from '../../shared/contract/function'
import { errorSummary } from '../app'

/**
 * A write at start (journal line, state.json) that fails (full or read-only volume) is logged and
 * shown in env.warnings; the start goes on with the decision kept in memory.
 */
export async function bestEffort(env: Env, what: string, write: () => Promise<unknown>): Promise<void> {
  try {
    await write()
  } catch (e) {
    const warning = `${what} failed at start (${e instanceof Error ? e.message : String(e)}): the start goes on with the choice kept in memory`
    env.log.warn({ err: errorSummary(e) }, warning)
    env.warnings.push(warning)
  }
}
