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

/** A resumable partial download: its path and what was recorded when it began. */
export interface PartialDownload {
  path: string
  etag?: string
  bytes: number
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
  /** Opens a cached big part for reading; it is not evicted until the stream closes. */
  open(folder: string, filename: string, start?: number): Promise<{ stream: Readable; bytes: number } | null>
  /** Reads `length` bytes at `position` of a cached part. */
  readAt(folder: string, filename: string, position: number, length: number): Promise<Buffer>
  /** The partial download of a big part (created empty when none), with its recorded ETag. */
  partial(folder: string, filename: string): Promise<PartialDownload>
  /** Records the ETag a partial download began with. */
  setPartialEtag(folder: string, filename: string, etag: string | undefined): Promise<void>
  /** Truncates a partial download to zero (a changed object restarts). */
  resetPartial(folder: string, filename: string): Promise<void>
  /** Renames the partial (or `fromPath`) into place with its record, atomically. */
  commit(folder: string, filename: string, record: CacheRecord, fromPath?: string, offset?: number): Promise<void>
  /** Appends to the partial download of a big part. */
  appendPartial(folder: string, filename: string): Writable
  /** Reads the partial download of a big part (to re-hash it before resuming), or bytes `start`…`end` (inclusive) of it. */
  readPartial(folder: string, filename: string, start?: number, end?: number): Readable
  /** SHA-256 (hex) of the partial download, computed off the event loop. */
  hashPartial(folder: string, filename: string): Promise<string>
  /** What the cache holds: bytes and entries of the committed big parts, and its bound (for /status). */
  usage(): Promise<CacheUsage>
  /** A fresh temporary file under CACHE_DIR/tmp, for ciphertext only. */
  temp(label: string): TempFile
}
