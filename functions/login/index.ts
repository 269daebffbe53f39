// Placeholder replaced by its flow issue.
import type { LoaderFunction } from '../../shared/function'
import { HttpError } from '../../shared/http-error'

export default {
  name: 'login',
  routes: [],
  async fetch() {
    throw new HttpError(501, 'not implemented yet')
  },
} satisfies LoaderFunction
