// Workspaces and API keys for the sandboxes scenario, made through the API as the first-start
// administrator. The admin key is bound to the admin's own workspace, and a key can only mint
// keys for its own workspace, so the extra workspaces and their keys are made from a session
// (POST /v1/auth/login with the admin's email and password, then cookie + X-CSRF-Token).
import { createClient } from '../lib/http-client.mjs';

/** Logs in as the admin and returns a client whose requests carry the session cookie and CSRF token. */
async function adminSession(url, credentials) {
  const client = createClient(url);
  const res = await client.call('POST', '/v1/auth/login', {
    json: { email: credentials.email, password: credentials.password },
  });
  if (res.status !== 200) throw new Error(`POST /v1/auth/login → ${res.status}: ${res.text().slice(0, 200)}`);
  const cookie = [res.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('corral_session='));
  if (!cookie) throw new Error('login set no corral_session cookie');
  const headers = { cookie: cookie.split(';')[0], 'x-csrf-token': res.json().csrf_token };
  return {
    must: (status, method, path, options = {}) =>
      client.must(status, method, path, { ...options, bearer: null, headers }),
    close: client.close,
  };
}

/**
 * `count` new workspaces (on the server's default plan, team) with `keysPerWorkspace` keys of
 * scope `*` each: `[{ id, keys: [secret…] }]`. The admin's own workspace is not among them.
 */
export async function createWorkspaces(url, credentials, { count, keysPerWorkspace, prefix = 'bench' }) {
  const session = await adminSession(url, credentials);
  try {
    const workspaces = [];
    for (let w = 0; w < count; w++) {
      const ws = await session.must(201, 'POST', '/v1/workspaces', { json: { name: `${prefix}-${w}` } });
      const keys = [];
      for (let k = 0; k < keysPerWorkspace; k++) {
        const key = await session.must(201, 'POST', '/v1/account/keys', {
          json: { name: `${prefix}-${w}-${k}`, workspace_id: ws.id },
        });
        keys.push(key.key);
      }
      workspaces.push({ id: ws.id, plan: ws.plan, keys });
    }
    return workspaces;
  } finally {
    session.close();
  }
}
