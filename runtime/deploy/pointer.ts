// The pointer file CACHE_DIR/functions/state.json (deploy.md §2), written atomically: per function
// which release is active, previous, last known good, the highest version accepted, and the trial.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeAtomic } from '../bindings/write-atomic'

/** A release version, or the image's own artifact. */
export type Ref = number | 'factory'

/** One function's pointers. */
export interface Pointer {
  active: Ref
  previous: Ref | null
  lastKnownGood: Ref
  /** The highest version ever put on trial: a deployment must carry a higher one. */
  highest: number
  /** Set while the active release is in its trial window. */
  trial: { deployment: string; since: string; restorePrevious: Ref | null } | null
}

/** Every function's pointers. */
export type Pointers = Record<string, Pointer>

/** The pointers of a function nothing was deployed to. */
export const factoryPointer = (): Pointer => ({ active: 'factory', previous: null, lastKnownGood: 'factory', highest: 0, trial: null })

/** Reads and writes state.json. */
export function createPointerFile(root: string) {
  const path = join(root, 'state.json')
  return {
    path,
    /** The pointers; a missing file is an empty set (nothing deployed yet). */
    async read(): Promise<Pointers> {
      const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return '{"functions":{}}'
        throw e
      })
      const data = JSON.parse(text) as { functions?: Pointers }
      return data.functions ?? {}
    },
    /** Replaces the file in one rename. */
    write: (p: Pointers) => writeAtomic(path, JSON.stringify({ v: 1, functions: p }, null, 2) + '\n'),
  }
}

export type PointerFile = ReturnType<typeof createPointerFile>
