// A node:fs/promises whose file handles record each flush (datasync, sync) and whose renames are
// recorded too, in order: for tests that a file reaches the disk before its new name does.
type Fs = typeof import('node:fs/promises')

/** `fs` with `open` and `rename` recording into `calls` ("flush <path>", "rename <a> -> <b>"). */
export function recordFlushes(fs: Fs, calls: string[]): Fs {
  return {
    ...fs,
    open: (async (path: string, ...rest: never[]) => {
      const fh = await fs.open(path, ...rest)
      return new Proxy(fh, {
        get(target, key) {
          const value = Reflect.get(target, key)
          if (key === 'datasync' || key === 'sync') return () => { calls.push(`flush ${path}`); return value.call(target) }
          return typeof value === 'function' ? value.bind(target) : value
        },
      })
    }) as Fs['open'],
    rename: async (a, b) => { calls.push(`rename ${a} -> ${b}`); return fs.rename(a, b) },
  }
}
