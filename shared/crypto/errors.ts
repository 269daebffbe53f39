// Typed failures of the blob format, so flows can map each to the right answer.

/** Base class of every blob-format failure. */
export class BlobError extends Error {
  constructor(message: string, readonly code: string) {
    super(message)
    this.name = 'BlobError'
  }
}

/** Fewer than 16 bytes: not even a whole IV. */
export class BlobTooShortError extends BlobError {
  constructor(length: number) { super(`blob of ${length} bytes is shorter than one 16-byte block`, 'too_short') }
}

/** No cipher block after the IV, or a length that is not a whole number of blocks. */
export class BlobTruncatedError extends BlobError {
  constructor(length: number) { super(`blob of ${length} bytes is truncated: not IV plus whole 16-byte blocks`, 'truncated') }
}

/**
 * The last block's PKCS#7 padding is invalid: a wrong key or corrupted data. Without a MAC the
 * two are indistinguishable; where a hash proves the ciphertext intact (x-amz-meta-sha256, the
 * manifest), the flows say the key is wrong.
 */
export class BadPaddingError extends BlobError {
  constructor(message = 'bad PKCS#7 padding: wrong key or corrupted data') { super(message, 'bad_padding') }
}

/** Tells whether `e` is any blob-format failure (works across bundles). */
export const isBlobError = (e: unknown): e is BlobError =>
  e instanceof BlobError || (e instanceof Error && e.name === 'BlobError')
