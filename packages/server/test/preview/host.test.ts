import { describe, expect, it } from 'vitest';
import { parsePreviewHost, pathWithoutToken } from '../../src/services/preview/host.js';

const ID = 'sbx_0123456789abcdefghijkl';

describe('preview hosts', () => {
  it('reads {port}-{id}, oc- and claw- under the preview domain, any case, with or without :port', () => {
    expect(parsePreviewHost(`3000-${ID}.localhost:8080`, 'localhost')).toEqual({ sandboxId: ID, port: 3000 });
    expect(parsePreviewHost(`3000-${ID.toUpperCase()}.LOCALHOST`, 'localhost')).toEqual({
      sandboxId: ID,
      port: 3000,
    });
    expect(parsePreviewHost(`oc-${ID}.preview.example.com`, 'preview.example.com')).toEqual({
      sandboxId: ID,
      port: 4096,
    });
    expect(parsePreviewHost(`claw-${ID}.localhost.`, 'localhost')).toEqual({ sandboxId: ID, port: 18789 });
    expect(parsePreviewHost(`1-${ID}.localhost`, 'localhost')).toEqual({ sandboxId: ID, port: 1 });
    expect(parsePreviewHost(`65535-${ID}.localhost`, 'localhost')).toEqual({ sandboxId: ID, port: 65535 });
  });

  it('leaves everything else to the API', () => {
    for (const host of [
      undefined,
      '',
      'localhost:8080',
      '127.0.0.1:8080',
      `3000-${ID}.example.com`,
      `3000-${ID}.evil-localhost`,
      `0-${ID}.localhost`,
      `65536-${ID}.localhost`,
      `03000-${ID}.localhost`,
      `vnc-${ID}.localhost`,
      `3000-${ID}.sub.localhost`,
      `a.3000-${ID}.localhost`,
      `3000-ws_abc.localhost`,
      `3000-${ID}`,
    ]) {
      expect(parsePreviewHost(host, 'localhost'), String(host)).toBeNull();
    }
  });

  it('drops corral_token from the target and keeps everything else byte for byte', () => {
    expect(pathWithoutToken('/')).toBe('/');
    expect(pathWithoutToken('/a/./b/../%7e?x=a+b%20c&corral_token=crl_tk_x&y')).toBe(
      '/a/./b/../%7e?x=a+b%20c&y',
    );
    expect(pathWithoutToken('/p?corral_token=crl_tk_x')).toBe('/p');
    expect(pathWithoutToken('/p?corral%5Ftoken=crl_tk_x&corral_token=2&k=v')).toBe('/p?k=v');
    expect(pathWithoutToken('/p?')).toBe('/p?');
    expect(pathWithoutToken('http://x.test/abs?corral_token=1&q=1')).toBe('/abs?q=1');
    expect(pathWithoutToken(undefined)).toBe('/');
  });
});
