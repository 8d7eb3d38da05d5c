import type { FastifyInstance } from 'fastify';
import { apiError } from '../errors.js';

/** Deepest nesting walked; deeper input is rejected rather than walked. */
const MAX_DEPTH = 64;

/**
 * The JSON pointer of the first string (or key) holding a NUL character, or null.
 * PostgreSQL cannot store U+0000 in text, so such input must be a 400, not a driver error.
 */
export function findNul(value: unknown, path = '', depth = 0): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path || '/' : null;
  if (value === null || typeof value !== 'object') return null;
  if (depth > MAX_DEPTH) return path || '/';
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNul(value[i], `${path}/${i}`, depth + 1);
      if (found) return found;
    }
    return null;
  }
  for (const [key, item] of Object.entries(value)) {
    const at = `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    if (key.includes('\u0000')) return at.replace(/\u0000/g, '\\u0000');
    const found = findNul(item, at, depth + 1);
    if (found) return found;
  }
  return null;
}

/**
 * Rejects NUL characters anywhere in path parameters, the query string or a JSON body with
 * 400 VALIDATION_ERROR naming the field, before any route validates or stores them — the same
 * answer on SQLite and PostgreSQL.
 */
export function registerInputGuard(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    for (const [part, value] of [
      ['params', request.params],
      ['querystring', request.query],
      ['body', request.body],
    ] as const) {
      const path = findNul(value);
      if (path) {
        throw apiError('VALIDATION_ERROR', {
          in: part,
          fields: [{ path, message: 'must not contain NUL characters or nest this deep' }],
        });
      }
    }
  });
}
