import { describe, expect, it } from 'vitest';
import { expiryFor, UrlSigner } from '../../src/services/signed-urls.js';

describe('signed URLs', () => {
  const signer = UrlSigner.fromSecret('test-secret-'.padEnd(48, 'x'));
  const now = Date.parse('2026-11-22T12:00:00.500Z');
  const target = { purpose: 'snapshot-download', id: 'snap_A', expires: expiryFor(60, now) };

  it('a signature fits its purpose, id and expiry only, until the expiry', () => {
    const sig = signer.sign(target);
    expect(sig).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(signer.verify(target, sig, now)).toBe(true);
    expect(signer.verify(target, sig, target.expires * 1000 - 1)).toBe(true);
    expect(signer.verify(target, sig, target.expires * 1000)).toBe(false);
    expect(signer.verify({ ...target, id: 'snap_B' }, sig, now)).toBe(false);
    expect(signer.verify({ ...target, purpose: 'other' }, sig, now)).toBe(false);
    expect(signer.verify({ ...target, expires: target.expires + 1 }, sig, now)).toBe(false);
    expect(signer.verify({ ...target, expires: Number.NaN }, sig, now)).toBe(false);
  });

  it('refuses every altered signature, including ones that decode to the same bytes', () => {
    const sig = signer.sign(target);
    for (let i = 0; i < sig.length; i++) {
      for (const c of ['A', 'B', 'g', 'h', '_', '-']) {
        const altered = `${sig.slice(0, i)}${c}${sig.slice(i + 1)}`;
        if (altered !== sig) expect(signer.verify(target, altered, now), altered).toBe(false);
      }
    }
    for (const altered of ['', `${sig}=`, `${sig}A`, sig.slice(0, -1), sig.toUpperCase()]) {
      expect(signer.verify(target, altered, now)).toBe(false);
    }
  });

  it('another secret signs differently; the same secret (another server, a restart) the same', () => {
    const other = UrlSigner.fromSecret('another-secret-'.padEnd(48, 'y'));
    expect(other.verify(target, signer.sign(target), now)).toBe(false);
    const again = UrlSigner.fromSecret('test-secret-'.padEnd(48, 'x'));
    expect(again.verify(target, signer.sign(target), now)).toBe(true);
  });

  it('expiries are whole seconds that never outlive the TTL', () => {
    expect(expiryFor(900, now)).toBe(Math.floor(now / 1000) + 900);
    expect(expiryFor(1, now) * 1000).toBeLessThanOrEqual(now + 1000);
  });
});
