// The deployment journal CACHE_DIR/functions/journal.ndjson (deploy.md §2): append-only, one JSON
// object per line, each carrying the SHA-256 of the previous line's bytes, so an edited line
// breaks the chain. Appends are serialized.
import { createHash } from 'node:crypto'
import { appendFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'

export type JournalEvent = 'received' | 'rejected' | 'trial' | 'committed' | 'rolled_back' | 'fallback_at_start'

/** What a caller gives for one line; `at` and `prev` are added. */
export interface JournalInput {
  event: JournalEvent
  deployment?: string | null
  function?: string | null
  version?: number | 'factory' | null
  sha256?: string | null
  keyId?: string | null
  reason?: string | null
}

const ZERO = '0'.repeat(64)
const hash = (line: string) => createHash('sha256').update(line).digest('hex')

/** The lines of a journal's text (no trailing empty line). */
const linesOf = (text: string) => (text === '' ? [] : text.replace(/\n$/, '').split('\n'))

/** Checks the chain; the first line whose `prev` is wrong (1-based) breaks it. */
export function verifyChain(text: string): { intact: true } | { intact: false; brokenAt: number } {
  let prev = ZERO
  const lines = linesOf(text)
  for (let i = 0; i < lines.length; i++) {
    let got: unknown
    try {
      got = (JSON.parse(lines[i]) as { prev?: unknown }).prev
    } catch {
      got = undefined
    }
    if (got !== prev) return { intact: false, brokenAt: i + 1 }
    prev = hash(lines[i])
  }
  return { intact: true }
}

/** Opens the journal under `root`. */
export function createJournal(root: string) {
  const path = join(root, 'journal.ndjson')
  let chain: Promise<unknown> = Promise.resolve()
  return {
    path,
    /** Appends one line chained to the last line now in the file. */
    append(input: JournalInput): Promise<void> {
      const job = chain.then(async () => {
        const text = await readFile(path, 'utf8').catch(() => '')
        const lines = linesOf(text)
        const prev = lines.length ? hash(lines[lines.length - 1]) : ZERO
        const line = JSON.stringify({
          event: input.event, at: new Date().toISOString(), deployment: input.deployment ?? null,
          function: input.function ?? null, version: input.version ?? null, sha256: input.sha256 ?? null,
          keyId: input.keyId ?? null, reason: input.reason ?? null, prev,
        })
        await appendFile(path, (text === '' || text.endsWith('\n') ? '' : '\n') + line + '\n', { mode: 0o600 })
      })
      chain = job.catch(() => {})
      return job
    },
    /** The journal's text, newest last. */
    read: () => readFile(path, 'utf8').catch(() => ''),
  }
}

export type Journal = ReturnType<typeof createJournal>
