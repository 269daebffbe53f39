// Temporary directories of the tests and the bench: made under the OS temp dir, removed when done.
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const made = new Set<string>()

/** A fresh directory under the OS temp dir, removed by `removeTempDirs()` (after each test file). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  made.add(dir)
  return dir
}

/** Removes `dir` with the others, at the end of the test file. */
export const removeLater = (dir: string) => void made.add(dir)

/** Removes every directory made or registered so far. */
export async function removeTempDirs(): Promise<void> {
  const dirs = [...made]
  made.clear()
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 })))
}

/** Synchronous removal, for exit handlers. */
export function removeTempDirsSync(): void {
  for (const d of made) rmSync(d, { recursive: true, force: true })
  made.clear()
}

/** Every file under `dir` (none when it is missing), with its size. */
export function filesUnder(dir: string): { path: string; bytes: number }[] {
  if (!existsSync(dir)) return []
  return (readdirSync(dir, { recursive: true }) as string[]).map((n) => join(dir, n))
    .filter((p) => statSync(p, { throwIfNoEntry: false })?.isFile())
    .map((path) => ({ path, bytes: statSync(path).size }))
}
