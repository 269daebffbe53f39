// The credentials body shared by POST /login and POST /unlock.
import * as v from 'valibot'

/** `{"email","password"}` with sane bounds. */
export const LoginBody = v.object({
  email: v.pipe(v.string('must be a string'), v.trim(), v.maxLength(320, 'is too long'), v.email('must be an email address')),
  password: v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'), v.maxLength(1024, 'is too long')),
})
