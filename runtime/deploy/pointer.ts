// The pointer file CACHE_DIR/functions/state.json (deploy.md §2), written atomically: per function
// which release is active, previous, last known good, the highest version accepted, and the trial.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as v from 'valibot'
import { writeAtomic } from '../bindings/write-atomic'
import { firstIssue } from './release'

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

const RefSchema = v.union([v.pipe(v.number(), v.integer(), v.minValue(1)), v.literal('factory')])
const PointerSchema = v.object({
  active: RefSchema,
  previous: v.nullable(RefSchema),
  lastKnownGood: RefSchema,
  highest: v.pipe(v.number(), v.integer(), v.minValue(0)),
  trial: v.nullable(v.object({ deployment: v.string(), since: v.string(), restorePrevious: v.nullable(RefSchema) })),
})
/** state.json: a file that parses but does not match is as unreadable as a torn one. */
const PointerFileSchema = v.object({ functions: v.optional(v.record(v.string(), PointerSchema), {}) })

/** The pointers of a function nothing was deployed to. */
export const factoryPointer = (): Pointer => ({ active: 'factory', previous: null, lastKnownGood: 'factory', highest: 0, trial: null })

/** Reads and writes state.json. */
export function createPointerFile(root: string) {
  const path = join(root, 'state.json')
  return {
    path,
    /** The pointers; a missing file is an empty set (nothing deployed yet); a malformed one throws. */
    async read(): Promise<Pointers> {
      const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return '{"functions":{}}'
        throw e
      })
      const parsed = v.safeParse(PointerFileSchema, JSON.parse(text))
      if (!parsed.success) throw new Error(`not a pointer file: ${firstIssue(parsed.issues)}`)
      // `highest` is never below a version a pointer names (a hand-edited or restored file): a
      // deployment of such a version would replace the folder of a release that runs.
      const functions = parsed.output.functions
      for (const p of Object.values(functions)) {
        const named = [p.active, p.previous, p.lastKnownGood, p.trial?.restorePrevious].filter((r): r is number => typeof r === 'number')
        p.highest = Math.max(p.highest, ...named)
      }
      return functions
    },
    /** Replaces the file in one rename. */
    write: (p: Pointers) => writeAtomic(path, JSON.stringify({ v: 1, functions: p }, null, 2) + '\n'),
  }
}

export type PointerFile = ReturnType<typeof createPointerFile>
