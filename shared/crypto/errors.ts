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
 * The last block's PKCS#7 padding is invalid. Without a MAC a wrong key and a corrupted
 * last block are indistinguishable; `WrongKeyError` is raised instead where the caller
 * has proof the ciphertext is intact (a matching hash), so only the key can be wrong.
 */
export class BadPaddingError extends BlobError {
  constructor(message = 'bad PKCS#7 padding: wrong key or corrupted data') { super(message, 'bad_padding') }
}

/** Bad padding on ciphertext known to be intact: the key is wrong. */
export class WrongKeyError extends BlobError {
  constructor() { super('wrong key: the padding does not verify on ciphertext whose hash matches', 'wrong_key') }
}

/** Tells whether `e` is any blob-format failure (works across bundles). */
export const isBlobError = (e: unknown): e is BlobError =>
  e instanceof BlobError || (e instanceof Error && e.name === 'BlobError')
