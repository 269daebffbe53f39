// Reads a whole (small) web stream into memory, refusing more than a limit.

/** Reads `body` into one buffer; past `limit` bytes it cancels the stream and throws `tooLarge()`. */
export async function readLimited(body: ReadableStream<Uint8Array> | null | undefined, limit: number, tooLarge: () => Error): Promise<Buffer> {
  if (!body) return Buffer.alloc(0)
  const chunks: Uint8Array[] = []
  let n = 0
  const reader = body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    n += value.byteLength
    if (n > limit) {
      await reader.cancel().catch(() => {})
      throw tooLarge()
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks)
}
