// The in-memory `downloads` binding: big-part downloads in progress (shared/contract/downloads.ts).
import type { DownloadProgress, Downloads } from '../../shared/contract/downloads'

/** Creates the registry of downloads in progress. */
export function createDownloads(): Downloads {
  const jobs = new Map<string, DownloadProgress>()
  return {
    add(key, job) {
      jobs.set(key, job)
      return job
    },
    get: <T extends DownloadProgress>(key: string) => jobs.get(key) as T | undefined,
    delete(key, job) {
      if (jobs.get(key) === job) jobs.delete(key)
    },
    list: () => [...jobs.values()].map((j) => ({ folder: j.folder, filename: j.filename, bytesDone: j.bytesDone, bytesTotal: j.bytesTotal })),
  }
}
