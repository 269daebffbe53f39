// Validation of resource file names and folders (http.md §1): 422 for anything else.
import * as v from 'valibot'
import { HttpError } from '../contract/http-error'

const FILENAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/
const FOLDER = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/
const RESERVED = /\.(small|big|manifest)$/

/** The filename path parameter, for `/openapi.json` (checkFilename checks the same rules). */
export const FilenameParam = v.pipe(v.string(), v.regex(FILENAME), v.maxLength(200),
  v.description('a resource file name; no "..", not ending in .small, .big or .manifest'))

/** The folder (body field or query parameter), for `/openapi.json` (checkFolder checks the same rules). */
export const FolderParam = v.pipe(v.string(), v.regex(FOLDER), v.description('an S3 bucket name, no ".."; default models'))

/** The folder used when none is given. */
export const DEFAULT_FOLDER = 'models'

/** Checks a resource file name; returns it or throws 422. */
export function checkFilename(name: string | undefined): string {
  if (!name || !FILENAME.test(name) || name.includes('..')) {
    throw new HttpError(422, 'filename must be 1–200 characters of letters, digits, ".", "_" or "-", start with a letter or digit and contain no ".."', { type: 'invalid-filename' })
  }
  if (RESERVED.test(name)) throw new HttpError(422, 'names ending in .small, .big or .manifest are reserved', { type: 'invalid-filename' })
  return name
}

/** Checks a folder (an S3 bucket name); returns it or throws 422. */
export function checkFolder(folder: string | undefined | null): string {
  const f = folder ?? DEFAULT_FOLDER
  if (!FOLDER.test(f) || f.includes('..')) {
    throw new HttpError(422, 'folder must be a bucket name: 3–63 characters of a-z, 0-9, "." or "-", starting and ending with a letter or digit, no ".."', { type: 'invalid-folder' })
  }
  return f
}

/**
 * The folder a request names in its body (`named`: a JSON or multipart field) or in ?folder=
 * (`query`): each given one is checked, and both given must agree (422 naming `where`, e.g. "body's").
 */
export function requestFolder(named: string | undefined, query: string | null, where: string): string {
  if (query !== null) checkFolder(query)
  if (named !== undefined && query !== null && named !== query) {
    throw new HttpError(422, `the ${where} "folder" (${JSON.stringify(named)}) and ?folder= (${JSON.stringify(query)}) disagree`, { type: 'invalid-folder' })
  }
  return checkFolder(named ?? query)
}
