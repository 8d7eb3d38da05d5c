import { hash, verify } from '@node-rs/argon2';

/**
 * Password hashing with argon2id (the @node-rs/argon2 default algorithm) and the OWASP
 * "minimum" profile: 19 MiB of memory, 2 passes, 1 lane — about 20–30 ms per hash on this
 * class of machine, slow enough to make offline guessing expensive, fast enough for login.
 * https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#argon2id
 */
const ARGON2_OPTIONS = { memoryCost: 19_456, timeCost: 2, parallelism: 1, outputLen: 32 } as const;

/** Bounds of an acceptable password, in characters (the upper bound keeps hashing cheap). */
export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 1024;

/** Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`). */
export async function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2_OPTIONS);
}

/** True when `password` matches `passwordHash`; false (never a throw) for a malformed hash. */
export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

let dummyHash: Promise<string> | null = null;

/** Computes the dummy hash ahead of the first login, so that login's timing is even from the start. */
export function prepareDummyHash(): Promise<string> {
  dummyHash ??= hashPassword('corral-dummy-password-never-matches');
  return dummyHash;
}

/**
 * Spends the same work as a real verification against a hash nobody's password matches, so
 * that "no such user" and "wrong password" take about as long (no user enumeration by timing).
 */
export async function verifyAgainstDummy(password: string): Promise<false> {
  await verifyPassword(await prepareDummyHash(), password);
  return false;
}
