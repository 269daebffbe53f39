// F6 liveness: answers while the process serves; no token, no upstream.
import type { LoaderFunction } from '../../shared/function'
import { json } from '../../shared/json'

export default {
  name: 'health',
  routes: [{ method: 'GET', path: '/health', body: 'none', public: true }],
  async fetch() {
    return json({ status: 'healthy' })
  },
} satisfies LoaderFunction
