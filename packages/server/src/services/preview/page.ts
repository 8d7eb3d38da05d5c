/** The reserved path the password form posts to (never forwarded to the sandbox). */
export const AUTH_PATH = '/__corral/auth';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${escapeHtml(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:10vh auto;padding:0 1rem;color:#222}
input{font:inherit;padding:.4rem;width:100%;box-sizing:border-box;margin:.3rem 0}button{font:inherit;padding:.4rem 1rem}
.error{color:#b00020}code{background:#f3f3f3;padding:0 .2rem}</style></head>
<body>${body}</body></html>
`;
}

/** The password page of a protected port; `next` is the path to return to after signing in. */
export function passwordPage(port: number, next: string, error: string | null): string {
  return layout(
    'Password required',
    `<h1>Password required</h1>
<p>This preview (port ${port}) is protected by a password.</p>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${AUTH_PATH}">
<input type="hidden" name="next" value="${escapeHtml(next)}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" autofocus required>
<button type="submit">Continue</button>
</form>`,
  );
}

/** The page a browser gets on a private preview it has no access to. */
export function privatePage(port: number): string {
  return layout(
    'Private preview',
    `<h1>This preview is private</h1>
<p>Port ${port} of this sandbox is only open to members of its workspace.</p>
<p>To open it in a browser, ask for a link: <code>POST /v1/sandboxes/{id}/port-forward {"port": ${port}}</code>
(or <code>corral</code> CLI) returns a URL with a <code>corral_token</code> that signs this browser in.
API clients may send <code>Authorization: Bearer &lt;API key&gt;</code> or <code>X-Corral-Token</code>.
The sandbox's owner can also make the port public.</p>`,
  );
}

/** True when the client prefers an HTML page (a browser navigating) over JSON. */
export function wantsHtml(accept: string | undefined): boolean {
  return typeof accept === 'string' && accept.includes('text/html');
}

/** A safe place to return to after signing in: a same-origin path, else `/`. */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) {
    return '/';
  }
  return /[\r\n]/.test(next) ? '/' : next;
}
