import type { IncomingMessage } from 'node:http';

/** The largest password form body read (a password is ≤ 1 KiB; the rest is the return path). */
const MAX_FORM_BYTES = 16 * 1024;

/** The fields of the password form. */
export interface PasswordForm {
  password: string | null;
  next: string | null;
}

/**
 * Reads the password form (`application/x-www-form-urlencoded`, at most 16 KiB); null when
 * the body is too large or not a form.
 */
export async function readPasswordForm(req: IncomingMessage): Promise<PasswordForm | null> {
  const type = String(req.headers['content-type'] ?? '').toLowerCase();
  if (!type.startsWith('application/x-www-form-urlencoded')) {
    req.resume();
    return null;
  }
  const body = await new Promise<Buffer | null>((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Too large: keep draining (so an answer can still be sent) but keep nothing.
      if (size <= MAX_FORM_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_FORM_BYTES ? null : Buffer.concat(chunks)));
    req.on('error', () => resolve(null));
  });
  if (body === null) return null;
  const params = new URLSearchParams(body.toString('utf8'));
  return { password: params.get('password'), next: params.get('next') };
}
