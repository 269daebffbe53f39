// Polling for a condition the code under test reaches in its own time (a background commit, a cleanup).

/** Polls `check` every 50 ms until it holds (true), or gives up after `ms` (false). */
export async function eventually(check: () => boolean | Promise<boolean>, ms = 20_000): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (await check()) return true
    if (Date.now() > end) return false
    await new Promise((ok) => setTimeout(ok, 50))
  }
}
