// F1: POST /login — logs the device in to the Resource API for this user.
import * as v from 'valibot'
import type { LoaderFunction } from '../../shared/function'
import { json, readJson } from '../../shared/json'
import { performLogin } from '../../shared/login-flow'

/** Body of POST /login. */
export const LoginBody = v.object({
  email: v.pipe(v.string('must be a string'), v.trim(), v.minLength(3, 'must be an email address'), v.maxLength(320, 'is too long'), v.email('must be an email address')),
  password: v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'), v.maxLength(1024, 'is too long')),
})

export default {
  name: 'login',
  routes: [{ method: 'POST', path: '/login', rateLimited: true }],
  async fetch(request, env) {
    const { email, password } = await readJson(request, LoginBody)
    const auth = await performLogin(env, email, password)
    return json({ status: 'ok', email: auth.user.email, role: auth.user.role })
  },
} satisfies LoaderFunction
