// Checks run on a downloaded partial file before it is committed: the last-block padding check of
// crypto.md §5 step 3 and the whole-part hash.
import type { Hash } from 'node:crypto'
import type { PartialFile } from '../../shared/contract/cache'
import type { Env } from '../../shared/contract/function'
import { isBlobError } from '../../shared/crypto/errors'
import { resourceAesKey } from '../../shared/crypto/keys'
import { plainLengthFromTail } from '../../shared/crypto/last-block'
import type { SmallPart } from './big-part'

/** The last-block check of small || big (crypto.md §5 step 3) on the downloaded part; true without the small part's tail. */
export async function decrypts(env: Env, partial: PartialFile, small: SmallPart, bigBytes: number): Promise<boolean> {
  if (!small.tail) return true
  const chunks: Buffer[] = []
  const want = Math.min(32, bigBytes)
  if (want > 0) for await (const c of partial.readRange(bigBytes - want, bigBytes - 1)) chunks.push(c as Buffer)
  const tail = Buffer.concat([small.tail, ...chunks]).subarray(-32)
  try {
    plainLengthFromTail(resourceAesKey(env), tail.length === 32 ? tail : Buffer.alloc(32), small.bytes + bigBytes)
    return true
  } catch (e) {
    if (isBlobError(e)) return false
    throw e
  }
}

/** Feeds the whole partial file to `hash`. */
export async function hashPartial(partial: PartialFile, hash: Hash): Promise<void> {
  for await (const c of partial.read()) hash.update(c as Buffer)
}

