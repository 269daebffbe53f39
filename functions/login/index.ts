// F1: POST /login — logs the device in to the Resource API for this user; POST /logout forgets it.
import * as v from 'valibot'
import { defineFunction } from '../../shared/contract/function'
import { json, JSON_BODY_PROBLEMS, readJson } from '../../shared/http/json'
import { performLogin } from '../../shared/upstream/login'
import { LoginBody } from '../../shared/http/login-body'
import { getAuth, logout } from '../../shared/upstream/session'
import { UPSTREAM_PROBLEMS } from '../../shared/upstream/errors'

const LoginAnswer = v.object({ status: v.literal('ok'), email: v.string(), role: v.string() })
const LogoutAnswer = v.object({ status: v.literal('ok'), authenticated: v.literal(false), wasAuthenticated: v.boolean() })

export default defineFunction({
  name: 'login',
  routes: [
    { method: 'POST', path: '/login', rateLimited: true, doc: {
      summary: 'Logs in to the Resource API, verifies the JWT and fetches cdn.yaml; the session lives in memory only',
      body: { 'application/json': LoginBody },
      bodyRequired: true,
      answers: { 200: { description: 'logged in', content: { 'application/json': LoginAnswer } } },
      problems: { ...JSON_BODY_PROBLEMS, ...UPSTREAM_PROBLEMS,
        401: 'the Resource API refused these credentials', 403: 'the Resource API refuses this device',
        409: 'a logout was asked while this login ran: the session stays logged out' },
    } },
    { method: 'POST', path: '/logout', body: 'none', doc: {
      summary: 'Forgets the session (credentials, token, CDN keys): later flows answer 401 until the next login',
      answers: { 200: { description: 'the session is forgotten (also when there was none)', content: { 'application/json': LogoutAnswer } } },
      problems: {},
    } },
  ],
  async fetch(request, env, ctx) {
    if (new URL(request.url).pathname === '/logout') {
      const had = await getAuth(env.session)
      await logout(env.session)
      if (had) ctx.log.info({ email: had.user.email }, 'logged out')
      return json({ status: 'ok', authenticated: false, wasAuthenticated: !!had } satisfies v.InferOutput<typeof LogoutAnswer>)
    }
    const { email, password } = await readJson(request, LoginBody)
    const auth = await performLogin(env, email, password)
    return json({ status: 'ok', email: auth.user.email, role: auth.user.role } satisfies v.InferOutput<typeof LoginAnswer>)
  },
})
