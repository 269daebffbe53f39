// Reads a response body to its end or its cut: what a caller of a streamed answer finally has.

/** Reads a response body until it ends or is cut; returns the bytes and whether it was cut. */
export async function drain(r: Response): Promise<{ got: Buffer; cut: boolean }> {
  const parts: Buffer[] = []
  const reader = r.body!.getReader()
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return { got: Buffer.concat(parts), cut: false }
      parts.push(Buffer.from(value))
    }
  } catch {
    return { got: Buffer.concat(parts), cut: true }
  }
}
