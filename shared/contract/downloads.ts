// The downloads registry's interface: big-part downloads in progress, shared by the load
// function (which runs them) and /status (which lists them). Implementation: runtime/bindings/downloads.ts.

/** What /status shows of one download in progress. */
export interface DownloadProgress {
  readonly folder: string
  readonly filename: string
  /** Bytes of the big part on disk so far. */
  readonly bytesDone: number
  /** Bytes of the whole big part (0 while unknown). */
  readonly bytesTotal: number
}

/**
 * Downloads in progress, keyed by the caller. The registry keeps whatever object is added
 * (a download job is itself a `DownloadProgress`), so a second caller can find and join it.
 */
export interface Downloads {
  /** Registers `job` under `key` and returns it. */
  add<T extends DownloadProgress>(key: string, job: T): T
  /** The job registered under `key`, as it was added (the key's owner knows its type). */
  get<T extends DownloadProgress>(key: string): T | undefined
  /** Removes `key`, only while it still maps to `job`. */
  delete(key: string, job: DownloadProgress): void
  /** A snapshot of every download in progress. */
  list(): { folder: string; filename: string; bytesDone: number; bytesTotal: number }[]
}
