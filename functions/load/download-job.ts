// One verified download in progress (crypto.md §5c) and what its followers need: the verified
// prefix grows chunk by chunk; each change wakes every loader streaming from it (a broadcaster).
import type { CacheRecord } from '../../shared/contract/cache'
import type { DownloadProgress } from '../../shared/contract/downloads'
import type { Manifest } from '../../shared/crypto/manifest'
import type { VerifiedChunk } from './chunk-verifier'

/** A shared download: published in `env.downloads`, joined by every cold load of the same part. */
export class DownloadJob implements DownloadProgress {
  readonly bytesTotal: number
  /** Bytes of the big part received (on disk or queued for it). */
  bytesDone = 0
  /** Bytes at the start of the big part that are verified and on disk. */
  verified = 0
  /** Set once the download failed; the partial file is gone or resumable, never committed. */
  failure: Error | null = null
  /** The cache record, once the whole part is verified and committed. */
  record: CacheRecord | null = null
  /** Settles with the commit (or the failure); never rejects. */
  readonly settled: Promise<void>
  #settle!: () => void
  #waiters: (() => void)[] = []

  constructor(readonly folder: string, readonly filename: string, readonly manifest: Manifest) {
    this.bytesTotal = manifest.blobBytes - manifest.smallBytes
    this.settled = new Promise((r) => { this.#settle = r })
  }

  /** Resolves at the next change: more verified bytes, the commit or a failure. */
  changed(): Promise<void> {
    return new Promise((r) => this.#waiters.push(r))
  }

  /** Resolves once there is something to send (a verified chunk) or nothing ever will be. */
  async ready(): Promise<void> {
    while (this.verified === 0 && !this.record && !this.failure) await this.changed()
  }

  /** Marks a chunk verified and on disk. */
  publish(c: VerifiedChunk): void {
    this.verified = c.start + c.bytes
    this.#notify()
  }

  commit(record: CacheRecord): void {
    this.record = record
    this.#notify()
    this.#settle()
  }

  fail(e: Error): void {
    this.failure = e
    this.#notify()
    this.#settle()
  }

  #notify(): void {
    const w = this.#waiters
    this.#waiters = []
    for (const wake of w) wake()
  }
}
