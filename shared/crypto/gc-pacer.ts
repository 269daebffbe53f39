// Paces V8's young-generation GC by bytes processed, so streamed buffers' memory stays flat.
// Each chunk through a cipher allocates a fresh output Buffer outside the JS heap; V8 only
// notices that external memory after tens of MiB, which on a small board is too much.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

type Gc = (opts?: { type: 'minor' | 'major' }) => void

let gcFn: Gc | null | undefined

function getGc(): Gc | null {
  if (gcFn !== undefined) return gcFn
  try {
    const existing = (globalThis as { gc?: Gc }).gc
    if (existing) return (gcFn = existing)
    setFlagsFromString('--expose-gc')
    gcFn = runInNewContext('gc') as Gc
  } catch {
    gcFn = null
  }
  return gcFn
}

/** Returns `count(bytes)`: after every `everyBytes` counted, one minor GC runs. */
export function createGcPacer(everyBytes = 4 << 20): (bytes: number) => void {
  let since = 0
  return (bytes) => {
    since += bytes
    if (since < everyBytes) return
    since = 0
    getGc()?.({ type: 'minor' })
  }
}
