// The admin socket's bind: mode 0600 from the first moment it can be reached, without touching the
// process-wide umask.
import { chmod, mkdtemp, rename, rm } from 'node:fs/promises'
import type { Server } from 'node:net'
import { dirname, join } from 'node:path'

const listen = (server: Server, path: string) => new Promise<void>((ok, fail) => {
  server.once('error', fail)
  server.listen(path, () => { server.off('error', fail); ok() })
})

/**
 * Binds the unix socket where nobody else can reach it yet: in a new folder of mode 0700 beside
 * `socket`, made 0600 there, then renamed into place. (A process-wide umask would also mask the
 * files and folders other requests create meanwhile.) A path too long for a unix socket that way
 * is bound in place and made 0600 at once; the folder that holds it guards it meanwhile.
 */
export async function listenPrivately(server: Server, socket: string): Promise<void> {
  const dir = await mkdtemp(join(dirname(socket), '.a'))
  try {
    const staged = join(dir, 's')
    if (Buffer.byteLength(staged) > 100) {
      await listen(server, socket)
    } else {
      await listen(server, staged)
      await chmod(staged, 0o600)
      await rename(staged, socket)
    }
    await chmod(socket, 0o600)
  } catch (e) {
    server.close()
    throw e
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

