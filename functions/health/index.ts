// F6 liveness: answers while the process serves; no token, no upstream.
import { defineFunction } from '../../shared/contract/function'
import { json } from '../../shared/http/json'

export default defineFunction({
  name: 'health',
  routes: [{ method: 'GET', path: '/health', body: 'none', public: true }],
  async fetch() {
    return json({ status: 'healthy' })
  },
})
