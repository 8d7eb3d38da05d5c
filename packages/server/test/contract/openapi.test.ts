import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';

type Json = Record<string, unknown>;

/** The served OpenAPI document carries the interactive routes of API.md with their statuses and fields. */
describe('contract: the OpenAPI document of interactive access', () => {
  let testApp: TestApp;
  beforeAll(async () => {
    testApp = await createTestApp();
  });
  afterAll(async () => {
    await testApp?.close();
  });

  it('the OpenAPI document has these routes with the documented statuses and fields', async () => {
    const doc = (await testApp.app.inject({ method: 'GET', url: '/v1/openapi.json' })).json();
    const op = (path: string, method: string) => {
      const found = doc.paths[`/v1/sandboxes/{id}${path}`]?.[method];
      expect(found, `${method.toUpperCase()} ${path}`).toBeDefined();
      return found;
    };
    const props = (schema: { properties?: Json }) => Object.keys(schema.properties ?? {});
    const json = (
      o: { responses: Record<string, { content?: Record<string, { schema: Json }> }> },
      s: string,
    ) => o.responses[s]?.content?.['application/json']?.schema as { properties?: Json; required?: string[] };
    op('/terminal', 'get');
    op('/ws', 'get');
    expect(op('/terminal/sessions', 'get').responses['200']).toBeDefined();
    expect(op('/terminal/sessions/{sid}', 'delete').responses['204']).toBeDefined();
    const ports = json(op('/ports', 'get'), '200') as { properties: { data: { items: Json } } };
    expect(props(ports.properties.data.items)).toEqual(
      expect.arrayContaining(['port', 'protocol', 'process', 'preview_url', 'protected']),
    );
    op('/services', 'get');
    expect(json(op('/ports/{port}/protect', 'post'), '200')).toBeDefined();
    expect(op('/ports/{port}/protect', 'delete').responses['204']).toBeDefined();
    expect(props(json(op('/tunnel', 'post'), '201'))).toEqual(
      expect.arrayContaining(['token', 'expires_at', 'command', 'url']),
    );
    expect(json(op('/observe', 'post'), '201').required).toEqual(
      expect.arrayContaining(['token', 'expires_at']),
    );
    expect(json(op('/port-forward', 'post'), '201').required).toEqual(
      expect.arrayContaining(['url', 'token', 'expires_at']),
    );
  });
});
