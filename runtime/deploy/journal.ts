// The deployment journal CACHE_DIR/functions/journal.ndjson (deploy.md §2): append-only, one JSON
// object per line, each carrying the SHA-256 of the previous line's bytes, so an edited line
// breaks the chain. Appends are serialized; the last line's hash is kept in memory (only the file's
// end is read when the journal is first used), and a line cut by a crash is skipped, not tampering.
import { createHash } from 'node:crypto'
import { appendFile, open, readFile } from 'node:fs/promises'
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

/** The `prev` of a journal line, or undefined when the line is not a whole JSON object (cut by a crash). */
function prevOf(line: string): string | undefined | null {
  try {
    const prev = (JSON.parse(line) as { prev?: unknown }).prev
    return typeof prev === 'string' ? prev : null
  } catch {
    return undefined
  }
}

/** What `?verify=1` answers. */
export type ChainReport = { intact: true; torn?: number[]; tornTail?: true } | { intact: false; brokenAt: number }

/**
 * Checks the chain; the first line whose `prev` is wrong (1-based) breaks it. A line that is not
 * whole JSON is one an append cut short (a crash, a full disk): it is skipped, listed in `torn`
 * (`tornTail` when it is the last line) and the chain goes on from the line before it. A cut append
 * never wrote its newline, so a last line that is not JSON but ends with one was edited: it breaks
 * the chain (and the next append chains to it, so the break stays).
 */
export function verifyChain(text: string): ChainReport {
  let prev = ZERO
  const torn: number[] = []
  const lines = linesOf(text)
  for (let i = 0; i < lines.length; i++) {
    const got = prevOf(lines[i])
    if (got === undefined) {
      if (i === lines.length - 1 && text.endsWith('\n')) return { intact: false, brokenAt: i + 1 }
      torn.push(i + 1)
      continue
    }
    if (got !== prev) return { intact: false, brokenAt: i + 1 }
    prev = hash(lines[i])
  }
  if (!torn.length) return { intact: true }
  return torn.at(-1) === lines.length ? { intact: true, torn, tornTail: true } : { intact: true, torn }
}

/** How much of the journal's end is read to find its last line (doubled until one is found). */
const TAIL_BYTES = 64 * 1024

/** The end of the journal: the hash to chain to and whether the file ends mid-line. */
async function readTail(path: string): Promise<{ last: string; midLine: boolean }> {
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined
    throw e
  })
  if (!fh) return { last: ZERO, midLine: false }
  try {
    const { size } = await fh.stat()
    for (let want = TAIL_BYTES; ; want *= 2) {
      const from = Math.max(0, size - want)
      const buf = Buffer.alloc(size - from)
      await fh.read(buf, 0, buf.length, from)
      const text = buf.toString('utf8')
      const lines = text.split('\n')
      const midLine = size > 0 && !text.endsWith('\n')
      const cut = lines.pop()! // '' after the last newline, or the line being cut
      const cutStartsALine = from === 0 || lines.length > 0
      if (from > 0) lines.shift() // may start mid-line
      // A whole line that lost only its newline is a line of the chain (verifyChain counts it).
      if (midLine && cutStartsALine && prevOf(cut) !== undefined) return { last: hash(cut), midLine }
      // A whole last line that is not JSON was edited (see verifyChain): chained to as it is.
      if (!midLine && lines.length && prevOf(lines[lines.length - 1]) === undefined) return { last: hash(lines[lines.length - 1]), midLine }
      for (let i = lines.length - 1; i >= 0; i--) {
        if (prevOf(lines[i]) !== undefined) return { last: hash(lines[i]), midLine }
      }
      if (from === 0) return { last: ZERO, midLine }
    }
  } finally {
    await fh.close()
  }
}

/** Opens the journal under `root`. */
export function createJournal(root: string) {
  const path = join(root, 'journal.ndjson')
  let chain: Promise<unknown> = Promise.resolve()
  /** The end of the file as this process last wrote it; undefined: read it again (first use, failed append). */
  let tail: { last: string; midLine: boolean } | undefined
  return {
    path,
    /** Appends one line chained to the last whole line of the file (a cut line is closed, then skipped). */
    append(input: JournalInput): Promise<void> {
      const job = chain.then(async () => {
        const t = tail ?? await readTail(path)
        const line = JSON.stringify({
          event: input.event, at: new Date().toISOString(), deployment: input.deployment ?? null,
          function: input.function ?? null, version: input.version ?? null, sha256: input.sha256 ?? null,
          keyId: input.keyId ?? null, reason: input.reason ?? null, prev: t.last,
        })
        tail = undefined
        await appendFile(path, (t.midLine ? '\n' : '') + line + '\n', { mode: 0o600 })
        tail = { last: hash(line), midLine: false }
      })
      chain = job.catch(() => {})
      return job
    },
    /** The journal's text, newest last. */
    read: () => readFile(path, 'utf8').catch(() => ''),
  }
}

export type Journal = ReturnType<typeof createJournal>
