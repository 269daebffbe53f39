// The release store on the data volume (deploy.md §2): CACHE_DIR/functions/<name>/<version>-<sha12>/
// holding <name>.mjs, release.json and release.sig. A release is staged under CACHE_DIR/tmp/releases,
// checked, then renamed into place; once there it is never modified (only pruned).
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ATOMIC_TMP, syncDir, syncFile } from '../bindings/write-atomic'
import { releaseDirName, type Release } from './release'
import type { ReleaseFiles } from './verify'

/** A release folder in the store. */
export interface StoredRelease { name: string; version: number; dir: string }

/** The file names inside a release folder. */
export const artifactFile = (name: string) => `${name}.mjs`

/** The store of one CACHE_DIR. */
export function createStore(cacheDir: string) {
  const root = join(cacheDir, 'functions')
  const staging = join(cacheDir, 'tmp', 'releases')

  /** Writes the three files of a release to a folder of its own under the staging area. */
  async function writeFiles(dir: string, name: string, files: ReleaseFiles): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await writeFile(join(dir, artifactFile(name)), files.artifact, { mode: 0o600 })
    await writeFile(join(dir, 'release.json'), files.json, { mode: 0o600 })
    await writeFile(join(dir, 'release.sig'), files.sig, { mode: 0o600 })
    // On the disk before the folder is renamed into the store: after a power cut the pointers never
    // name a release whose files did not make it (it would be damaged, and the deployment lost).
    for (const f of [artifactFile(name), 'release.json', 'release.sig']) await syncFile(join(dir, f))
    await syncDir(dir)
  }

  /** True when the two folders hold the same three files of release `name`. */
  async function sameFiles(a: string, b: string, name: string): Promise<boolean> {
    for (const f of [artifactFile(name), 'release.json', 'release.sig']) {
      const [x, y] = await Promise.all([readFile(join(a, f)).catch(() => null), readFile(join(b, f)).catch(() => null)])
      if (!x || !y || !x.equals(y)) return false
    }
    return true
  }

  return {
    root,
    /** Creates the folders and removes what a crash left: the staging area, state.json's temporaries. */
    async init(): Promise<void> {
      await mkdir(root, { recursive: true, mode: 0o700 })
      for (const e of await readdir(root)) if (ATOMIC_TMP.test(e)) await rm(join(root, e), { force: true })
      await rm(staging, { recursive: true, force: true })
      await mkdir(staging, { recursive: true, mode: 0o700 })
    },
    /** Stages a release's files; returns the staged folder. */
    async stage(name: string, files: ReleaseFiles): Promise<string> {
      const dir = join(staging, `${name}-${randomBytes(6).toString('hex')}`)
      try {
        await writeFiles(dir, name, files)
      } catch (e) {
        // A full disk: nothing of this release stays behind.
        await rm(dir, { recursive: true, force: true }).catch(() => {})
        throw e
      }
      return dir
    },
    /** Renames a staged release into its final place; returns that folder. */
    async commit(staged: string, r: Release): Promise<string> {
      const parent = join(root, r.function)
      await mkdir(parent, { recursive: true, mode: 0o700 })
      const dir = join(parent, releaseDirName(r))
      // A folder already there was renamed in by an activation that never wrote its pointers (a
      // crash, a failed write): its version is above every pointer, so nothing runs it. The same
      // bytes are reused; anything else is replaced.
      if (await stat(dir).then(() => true, () => false)) {
        if (await sameFiles(dir, staged, r.function)) {
          await rm(staged, { recursive: true, force: true })
          return dir
        }
        await rm(dir, { recursive: true, force: true })
      }
      // So is another folder of the same version (other bytes, left the same way): one version, one
      // folder, or a later start could run the one it finds first.
      for (const other of await this.list(r.function)) {
        if (other.version === r.version && other.dir !== dir) await rm(other.dir, { recursive: true, force: true })
      }
      await rename(staged, dir)
      await syncDir(parent)
      return dir
    },
    /** Removes a staged folder (a refused or failed activation). */
    discard: (staged: string) => rm(staged, { recursive: true, force: true }),
    /**
     * The releases of a function on the device, oldest first. A folder that cannot be read (EACCES,
     * EIO) throws: "not on the device" would drop its releases from the pointers for good.
     */
    async list(name: string): Promise<StoredRelease[]> {
      const entries = await readdir(join(root, name)).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return [] as string[]
        throw e
      })
      return entries.flatMap((e) => {
        const m = /^(\d+)-[0-9a-f]{12}$/.exec(e)
        return m ? [{ name, version: Number(m[1]), dir: join(root, name, e) }] : []
      }).sort((a, b) => a.version - b.version)
    },
    /** The folder of a version of a function, if it is on the device. */
    async find(name: string, version: number): Promise<string | undefined> {
      return (await this.list(name)).find((r) => r.version === version)?.dir
    },
    /** Reads a stored release's three files. */
    async read(name: string, dir: string): Promise<ReleaseFiles> {
      const [artifact, json, sig] = await Promise.all(['artifact', 'release.json', 'release.sig']
        .map((f) => readFile(join(dir, f === 'artifact' ? artifactFile(name) : f))))
      return { artifact, json, sig }
    },
    /** Keeps the newest `kept` releases of a function and every version in `protect`. */
    async prune(name: string, kept: number, protect: ReadonlySet<number>): Promise<number[]> {
      const all = await this.list(name)
      const drop = all.slice(0, Math.max(0, all.length - kept)).filter((r) => !protect.has(r.version))
      for (const r of drop) await rm(r.dir, { recursive: true, force: true })
      return drop.map((r) => r.version)
    },
  }
}

/** The store of a CACHE_DIR. */
export type Store = ReturnType<typeof createStore>
