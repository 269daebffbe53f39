// Memory settings of the runtime process, measured on a 2-core x86-64 VM with the bench.
//
// The glibc allocator settings the runtime is started with (package.json `start`, Dockerfile, tests).
// Every streamed chunk is a fresh ~1 MiB buffer outside the JS heap. With glibc's defaults the
// freed chunks are trimmed off the heap top and mapped again a moment later, so each MiB costs
// hundreds of page faults: measured here, streaming decrypt ran at a third of its speed with
// defaults, and memory spikes rose with more allocator arenas. These keep up to 32 MiB of freed
// memory for reuse, allocate chunks below 4 MiB from the heap, and use two arenas.

import { setFlagsFromString } from 'node:v8'

/** The value of GLIBC_TUNABLES the loader is meant to run with. */
export const MALLOC_TUNABLES = 'glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=33554432'

/**
 * A warning when a glibc Linux process was started without the allocator settings, else null.
 * (They only take effect at process start, so the runtime can only report their absence.)
 * `isGlibc` is asked only when the settings are missing.
 */
export function mallocWarning(tunables: string | undefined, isGlibc: () => boolean): string | null {
  if ((tunables ?? '').includes('glibc.malloc.trim_threshold') || !isGlibc()) return null
  return `started without the allocator settings: streaming runs slower and uses more memory; start with GLIBC_TUNABLES=${MALLOC_TUNABLES} (as npm start and the container do)`
}

/**
 * V8 flags set at start, before any WebAssembly is compiled. Node's fetch (the Resource API
 * client under ofetch) parses HTTP with llhttp compiled to WebAssembly; V8 re-compiles hot wasm
 * with TurboFan in the background, and that compiler's memory stayed resident: about 28 MiB after
 * a few dozen logins. The baseline compiler (Liftoff) is plenty for small API answers; large
 * bodies (CDN, engine) go through node:http, whose parser is native.
 */
export function applyV8Flags(): void {
  setFlagsFromString('--liftoff-only')
}
