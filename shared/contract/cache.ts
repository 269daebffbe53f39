// The big-part cache binding's interface; the node:fs implementation is runtime/bindings/cache.ts.
import type { Readable, Writable } from 'node:stream'

/** What is recorded beside a cached big part. Hashes only: never a key or plaintext. */
export interface CacheRecord {
  /** SHA-256 (hex) of the decrypted small part the big part belongs to. */
  smallSha256: string
  /** Bytes of the big part. */
  bytes: number
  /** SHA-256 (hex) of the big part. */
  sha256: string
  etag?: string
  /** The manifest of crypto.md §5b, when the resource has one. */
  manifest?: import('../crypto/manifest').Manifest
  storedAt: string
}

/**
 * A cached big part held for a reader: an open descriptor and its record. Eviction never removes
 * a held part; the descriptor is closed (and the part may be evicted) when the last hold is released.
 */
export interface HeldPart {
  readonly record: CacheRecord
  /** Bytes of the held file (equal to `record.bytes`). */
  readonly bytes: number
  /** A read stream of the held file from `start` (positional reads; it already has an error listener). */
  stream(start?: number): Readable
  /** Reads `length` bytes at `position` of the held file. */
  readAt(position: number, length: number): Promise<Buffer>
  /** Another hold on the same part, released on its own (callers sharing one download). */
  retain(): HeldPart
  /** Ends this hold; idempotent. */
  release(): void
  /**
   * The part did not decrypt with the small part it was cached for: when its bytes no longer hash
   * to `record.sha256` (the disk changed them), removes it and its record from the cache unless a
   * commit replaced them meanwhile; an intact part stays (the key is at fault). Holds keep reading it.
   * One check per part at a time, shared by every caller; a part found intact is trusted a while.
   * The file is identified when this is called: the hold may be released as soon as it returns.
   */
  discard(): Promise<void>
}

/**
 * The resumable partial download of one version of a big part, keyed by folder, filename and
 * SHA-256 of the small part (the same key as the download's single flight). It counts against
 * CACHE_MAX_BYTES; while open it is never removed by eviction.
 */
export interface PartialFile {
  readonly path: string
  /** Bytes on disk and the ETag recorded when it began (the file is created empty when missing). */
  state(): Promise<{ bytes: number; etag?: string }>
  /** Records the ETag the download began with. */
  setEtag(etag: string | undefined): Promise<void>
  /** Truncates to zero and forgets the ETag (a changed object restarts). */
  reset(): Promise<void>
  /** Evicts least recently used parts so that `bytes` more fit under CACHE_MAX_BYTES (best effort). */
  reserve(bytes: number): Promise<void>
  append(): Writable
  /** Reads the bytes on disk (to re-hash them before resuming). */
  read(): Readable
  /**
   * Reads bytes `start`…`end` (inclusive) of the file as it is now, by path (a verified-streaming
   * follower, crypto.md §5c). After the commit renamed it, the stream fails with ENOENT.
   */
  readRange(start: number, end: number): Readable
  /** SHA-256 (hex) of the bytes on disk, computed on a worker thread (off the event loop). */
  hash(): Promise<string>
  /** Renames the file into place with its record, atomically, and returns it held for the caller. */
  commit(record: CacheRecord): Promise<HeldPart>
  /** Deletes the file and its ETag (a local write failure). */
  remove(): Promise<void>
  /** Ends the download's claim: from now on the file is stale and may be evicted. Idempotent. */
  close(): void
}

/** The cache's use, as /status shows it. */
export interface CacheUsage {
  bytes: number
  maxBytes: number
  entries: number
}

/** A temporary file: written once, read back, then committed into the cache or removed. */
export interface TempFile {
  readonly path: string
  write(): Writable
  read(start?: number): Readable
  remove(): Promise<void>
}

/** The big-part cache under CACHE_DIR: atomic commits, resumable partials, LRU bound. */
export interface BigPartCache {
  readonly root: string
  /** Final path of a cached big part (it may not exist). */
  pathOf(folder: string, filename: string): string
  record(folder: string, filename: string): Promise<CacheRecord | null>
  /** Finds a cached big part and holds it (null when there is none); see HeldPart. */
  acquire(folder: string, filename: string): Promise<HeldPart | null>
  /** The partial download of the big part that belongs to the small part `smallSha256`. */
  partial(folder: string, filename: string, smallSha256: string): PartialFile
  /** Renames `fromPath` (from byte `offset`: copied) into place with its record, atomically. */
  commit(folder: string, filename: string, record: CacheRecord, fromPath: string, offset?: number): Promise<void>
  /**
   * What the cache uses, for /status: bytes on disk that count against CACHE_MAX_BYTES (cached
   * parts and partial downloads), the number of cached parts, and the bound.
   */
  usage(): Promise<CacheUsage>
  /** A fresh temporary file under CACHE_DIR/tmp, for ciphertext only. */
  temp(label: string): TempFile
}
