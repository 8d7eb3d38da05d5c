import { expect, it } from 'vitest';
import { describeStores } from '../support/app.js';

describeStores('ops routes', (ctx) => {
  it('GET /healthz answers ok as text', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('ok');
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.headers['x-request-id']).toMatch(/^req_[0-9A-Za-z]{22}$/);
  });

  it('GET /readyz reports the database', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', checks: { database: 'ok' } });
  });
});
