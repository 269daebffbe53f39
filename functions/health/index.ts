// F6 liveness: answers while the process serves; no token, no upstream.
import * as v from 'valibot'
import { defineFunction } from '../../shared/contract/function'
import { json } from '../../shared/http/json'

const HealthAnswer = v.object({ status: v.literal('healthy') })

export default defineFunction({
  name: 'health',
  routes: [{ method: 'GET', path: '/health', body: 'none', public: true, doc: {
    summary: 'Liveness: answers while the process serves (no caller token, no upstream)',
    answers: { 200: { description: 'the process serves', content: { 'application/json': HealthAnswer } } },
    problems: {},
  } }],
  async fetch() {
    return json({ status: 'healthy' } satisfies v.InferOutput<typeof HealthAnswer>)
  },
})
