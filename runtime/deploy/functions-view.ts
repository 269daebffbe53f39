// What GET /admin/functions answers: per function its pointers, the code running and the
// versions on the device (store and factory) with sha256, keyId and source.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { readManifest, type LoadedFunction } from '../registry'
import { pointerOf, type DeployContext } from './context'

/** One function's view. */
export async function functionsView(ctx: DeployContext, running: LoadedFunction[]) {
  const manifest = await readManifest(ctx.factoryDir).catch(() => ({ functions: [] as { name: string; sha256: string }[] }))
  const names = [...new Set([...manifest.functions.map((f) => f.name), ...Object.keys(ctx.pointers), ...running.map((f) => f.info.name)])].sort()
  return Promise.all(names.map(async (name) => {
    const p = pointerOf(ctx, name)
    const run = running.find((f) => f.info.name === name)
    const stored = await Promise.all((await ctx.store.list(name).catch(() => [])).map(async (r) => {
      const meta = await readFile(join(r.dir, 'release.json'), 'utf8').then((t) => JSON.parse(t) as { sha256?: string; keyId?: string; builtAt?: string; source?: string | null }, () => ({} as Record<string, undefined>))
      return { version: r.version as number | 'factory', sha256: meta.sha256 ?? null, keyId: meta.keyId ?? null, source: 'store', builtAt: meta.builtAt ?? null, commit: meta.source ?? null }
    }))
    const factory = manifest.functions.find((f) => f.name === name)
    return {
      name, active: p.active, previous: p.previous, lastKnownGood: p.lastKnownGood, highest: p.highest, trial: p.trial,
      running: run ? { version: run.info.version ?? 'factory', sha256: run.info.sha256, source: run.info.source ?? 'factory', trial: run.info.trial ?? false } : null,
      versions: [...stored, ...(factory ? [{ version: 'factory' as const, sha256: factory.sha256, keyId: null, source: 'factory', builtAt: null, commit: null }] : [])],
    }
  }))
}
