import { describe, expect, it } from 'vitest';
import { isRuntimeError } from '../../src/errors.js';
import { allocateAddress, parseCidr } from '../../src/local/network/addresses.js';
import { parseUpstream } from '../../src/local/network/dns-forwarder.js';
import {
  buildErrorResponse,
  parseQuery,
  parseResponse,
  RCODE_NXDOMAIN,
} from '../../src/local/network/dns-wire.js';
import { compilePolicy, domainAllowed } from '../../src/local/network/policy.js';

function query(name: string, type = 1): Buffer {
  const labels = name
    .split('.')
    .map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)]));
  return Buffer.concat([
    Buffer.from([0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...labels,
    Buffer.from([0, 0, type, 0, 1]),
  ]);
}

describe('DNS wire format', () => {
  it('parses a query and builds an error response echoing id, RD and question', () => {
    const message = query('Allowed.Test');
    const parsed = parseQuery(message);
    expect(parsed).toMatchObject({ id: 0xabcd, name: 'allowed.test', type: 1, questionEnd: message.length });
    const response = buildErrorResponse(message, parsed!, RCODE_NXDOMAIN);
    expect(response.readUInt16BE(0)).toBe(0xabcd);
    expect(response.readUInt16BE(2)).toBe(0x8183); // QR, RD, RA, NXDOMAIN
    expect(response.readUInt16BE(4)).toBe(1);
    expect(response.subarray(12)).toEqual(message.subarray(12));
  });

  it('reads A records through a CNAME with compressed names', () => {
    const message = query('www.example.test');
    const cname = Buffer.from([0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6, 3, 99, 100, 110, 0xc0, 16]);
    // Its name points at the CNAME target (the CNAME rdata starts 12 bytes into that record).
    const a = Buffer.from([0xc0, message.length + 12, 0, 1, 0, 1, 0, 0, 1, 0, 0, 4, 203, 0, 113, 10]);
    const response = Buffer.concat([message, cname, a]);
    response.writeUInt16BE(0x8180, 2);
    response.writeUInt16BE(2, 6);
    expect(parseResponse(response)).toEqual({
      id: 0xabcd,
      rcode: 0,
      addresses: [{ address: '203.0.113.10', ttlSeconds: 256 }],
    });
  });

  it('rejects truncated and looping messages without throwing', () => {
    expect(parseQuery(Buffer.from([1, 2, 3]))).toBeNull();
    const loop = Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
    expect(parseQuery(loop)).toBeNull();
    const response = query('a.test');
    response.writeUInt16BE(0x8180, 2);
    response.writeUInt16BE(1, 6); // claims an answer it does not carry
    expect(parseResponse(response)).toBeNull();
  });
});

describe('policies', () => {
  it('normalises CIDRs and domains and refuses anything else', () => {
    expect(
      compilePolicy({ mode: 'allowlist', allow: ['Example.COM.', '10.1.2.3/8', '203.0.113.11', '*.x.test'] }),
    ).toEqual({
      mode: 'allowlist',
      cidrs: ['10.0.0.0/8', '203.0.113.11'],
      domains: ['example.com', '*.x.test'],
    });
    for (const bad of ['', 'a b', '*', '*.', '1.2.3.4/33', '300.1.1.1', '::1', 'a..b', 'x.*.test']) {
      let error: unknown;
      try {
        compilePolicy({ mode: 'allowlist', allow: [bad] });
      } catch (err) {
        error = err;
      }
      expect(isRuntimeError(error, 'INVALID_ARGUMENT'), bad).toBe(true);
    }
  });

  it('matches exact names and wildcard subdomains only', () => {
    expect(domainAllowed('example.com.', ['example.com'])).toBe(true);
    expect(domainAllowed('www.example.com', ['example.com'])).toBe(false);
    expect(domainAllowed('a.b.example.com', ['*.example.com'])).toBe(true);
    expect(domainAllowed('example.com', ['*.example.com'])).toBe(false);
    expect(domainAllowed('badexample.com', ['*.example.com'])).toBe(false);
  });
});

describe('addresses', () => {
  it('allocates the lowest free host address after the bridge', () => {
    const subnet = parseCidr('100.100.0.0/16')!;
    expect(allocateAddress(subnet, [])).toBe('100.100.0.2');
    expect(allocateAddress(subnet, ['100.100.0.2', '100.100.0.4'])).toBe('100.100.0.3');
    const tiny = parseCidr('100.100.0.0/30')!;
    expect(allocateAddress(tiny, [])).toBe('100.100.0.2');
    expect(() => allocateAddress(tiny, ['100.100.0.2'])).toThrow();
  });

  it('parses upstream resolvers with and without ports', () => {
    expect(parseUpstream('127.0.0.53')).toEqual({ host: '127.0.0.53', port: 53 });
    expect(parseUpstream('127.0.0.1:5353')).toEqual({ host: '127.0.0.1', port: 5353 });
    expect(parseUpstream('::1')).toEqual({ host: '::1', port: 53 });
    expect(parseUpstream('[::1]:5353')).toEqual({ host: '::1', port: 5353 });
  });
});
