// Where /load and /prefetch take the folder from (http.md §1: the JSON body or ?folder=): a query
// folder is checked like any folder, and one that disagrees with the body's is refused, as upload does.
import { describe, expect, it } from 'vitest'
import { contractWorld } from '../helpers/contract'

describe('the folder of /load and /prefetch', () => {
  it.each(['/load', '/prefetch'])('%s: an invalid ?folder= is 422 even when the body names a folder', async (route) => {
    const w = await contractWorld()
    w.seed('m.bin')
    expect((await w.login()).status).toBe(200)
    const r = await w.req(`${route}/m.bin?folder=A`, { folder: 'models' })
    expect(r.status).toBe(422)
    const problem = await r.json()
    expect(problem.type).toMatch(/invalid-folder$/)
    expect(problem.detail).toMatch(/bucket name/)
  })

  it.each(['/load', '/prefetch'])('%s: a ?folder= that disagrees with the body\'s is 422, and nothing is fetched', async (route) => {
    const w = await contractWorld()
    w.seed('m.bin', undefined, 'models')
    w.seed('m.bin', undefined, 'other-models')
    expect((await w.login()).status).toBe(200)
    const before = w.api.state.calls.length
    const r = await w.req(`${route}/m.bin?folder=other-models`, { folder: 'models' })
    expect(r.status).toBe(422)
    expect((await r.json()).detail).toMatch(/disagree/)
    expect(w.api.state.calls.length).toBe(before)
    // Both may be given when they agree; either alone names the folder.
    const ok = route === '/load' ? 200 : 202
    for (const [path, body] of [[`${route}/m.bin?folder=models`, { folder: 'models' }], [`${route}/m.bin?folder=other-models`, {}], [`${route}/m.bin`, { folder: 'other-models' }]] as const) {
      const a = await w.req(path, body)
      expect(a.status).toBe(ok)
      await a.arrayBuffer()
    }
  })
})
