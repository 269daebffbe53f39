// One verified download in progress (crypto.md §5c) and what its followers need: the verified
// prefix grows chunk by chunk; each change wakes every loader streaming from it (a broadcaster).
// The job also holds the committed part for the followers still reading when the download ends.
import type { CacheRecord, HeldPart, PartialFile } from '../../shared/contract/cache'
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
  /** The committed part, held while followers attached before the end still read it. */
  held: HeldPart | null = null
  /** Settles with the commit (or the failure); never rejects. */
  readonly settled: Promise<void>
  #settle!: () => void
  #waiters: (() => void)[] = []
  #followers = 0
  #done = false

  /** `partial` is the download's partial file: followers read the verified prefix from it. */
  constructor(readonly folder: string, readonly filename: string, readonly manifest: Manifest, readonly partial: PartialFile) {
    this.bytesTotal = manifest.blobBytes - manifest.smallBytes
    this.settled = new Promise((r) => { this.#settle = r })
  }

  /**
   * A follower begins reading: until it detaches, the committed part stays held for it. False
   * once the job ended with nobody attached (the caller then goes through the cache).
   */
  attach(): boolean {
    if (this.#done && this.#followers === 0) return false
    this.#followers++
    return true
  }

  /** A follower's response ended; the last one releases the committed part. Call once per attach. */
  detach(): void {
    if (--this.#followers === 0 && this.#done) this.held?.release()
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

  /** The download committed the part: `held` is kept for the attached followers, else released. */
  commit(held: HeldPart): void {
    this.held = held
    this.record = held.record
    this.#end()
  }

  fail(e: Error): void {
    this.failure = e
    this.#end()
  }

  #end(): void {
    this.#done = true
    if (this.#followers === 0) this.held?.release()
    this.#notify()
    this.#settle()
  }

  #notify(): void {
    const w = this.#waiters
    this.#waiters = []
    for (const wake of w) wake()
  }
}
