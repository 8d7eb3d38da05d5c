import { describe, expect, it } from 'vitest';
import { isRuntimeError } from '../../src/errors.js';
import { parseNumber, TarGuard } from '../../src/shared/files-tar-guard.js';
import { ArchiveInspector } from '../../src/shared/files-tar-inspect.js';
import { buildArchive, ESCAPES, type FixtureKind, LONG_NAME } from './tar-fixtures.js';

/** Feed `bytes` to a fresh guard in pieces of `step` bytes; returns the guard or the thrown error. */
function check(bytes: Buffer, step: number): TarGuard {
  const guard = new TarGuard();
  for (let offset = 0; offset < bytes.length; offset += step) {
    guard.write(bytes.subarray(offset, offset + step));
  }
  guard.end();
  return guard;
}

function rejection(fn: () => unknown): { reason: unknown; entry: unknown } {
  try {
    fn();
  } catch (err) {
    if (isRuntimeError(err, 'INVALID_ARGUMENT'))
      return { reason: err.details.reason, entry: err.details.entry };
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('TarGuard', () => {
  const good: FixtureKind[] = ['plain', 'gnu-long-names', 'pax-long-names', 'ustar-prefix', 'inner-symlink'];

  for (const kind of good) {
    it(`accepts ${kind}, however the bytes are split`, () => {
      const bytes = buildArchive(kind);
      for (const step of [1, 7, 512, 4096, bytes.length]) {
        const guard = check(bytes, step);
        expect(guard.members.length).toBeGreaterThan(0);
      }
    });
  }

  it('reads the full member name of GNU long names, pax paths and ustar prefixes', () => {
    for (const kind of ['gnu-long-names', 'pax-long-names', 'ustar-prefix'] as const) {
      expect(check(buildArchive(kind), 512).members).toContain(LONG_NAME);
    }
  });

  it('resolves an inner symlink and accepts a member written through it', () => {
    const guard = check(buildArchive('inner-symlink'), 512);
    expect(guard.members).toContain('alias/through-link.txt');
  });

  it("collects the directories members go through, after the archive's own symlinks", () => {
    expect([...check(buildArchive('nested-file'), 512).prefixes]).toEqual(['d']);
    const inner = check(buildArchive('inner-symlink'), 512);
    expect(inner.prefixes.has('alias')).toBe(true);
    expect(inner.prefixes.has('sub')).toBe(true);
  });

  for (const [kind, reason] of ESCAPES) {
    it(`refuses ${kind} with reason ${reason} and names the entry`, () => {
      const bytes = buildArchive(kind);
      const result = rejection(() => check(bytes, 100));
      expect(result.reason).toBe(reason);
      expect(typeof result.entry).toBe('string');
      expect(result.entry).not.toBe('');
    });
  }

  it('refuses data that is not a tar archive', () => {
    const bytes = Buffer.alloc(2048, 0x41);
    expect(rejection(() => check(bytes, 512)).reason).toBe('malformed');
  });

  it('refuses a truncated archive', () => {
    const bytes = buildArchive('plain');
    // Cut inside the first member's data: a header announced more than arrived.
    const headerAndSome = bytes.subarray(0, 512 * 3 + 100);
    expect(rejection(() => check(headerAndSome, 512)).reason).toBe('malformed');
  });

  it('refuses an empty upload', () => {
    expect(rejection(() => check(Buffer.alloc(0), 1)).reason).toBe('malformed');
  });

  it('ignores what follows the end-of-archive blocks', () => {
    const bytes = Buffer.concat([buildArchive('plain'), Buffer.from('trailing garbage')]);
    expect(() => check(bytes, 512)).not.toThrow();
  });
});

describe('ArchiveInspector', () => {
  async function inspect(bytes: Buffer, step: number): Promise<ArchiveInspector> {
    const inspector = new ArchiveInspector();
    for (let offset = 0; offset < bytes.length; offset += step) {
      await inspector.write(bytes.subarray(offset, offset + step));
    }
    await inspector.end();
    return inspector;
  }

  it('detects gzip and checks the decompressed headers', async () => {
    const inspector = await inspect(buildArchive('pax-long-names', { gzip: true }), 333);
    expect(inspector.gzip).toBe(true);
    expect(inspector.guard.members).toContain(LONG_NAME);
  });

  it('passes a plain archive straight to the guard', async () => {
    const inspector = await inspect(buildArchive('plain'), 1000);
    expect(inspector.gzip).toBe(false);
  });

  it('refuses a gzip tar-slip archive', async () => {
    const bytes = buildArchive('symlink-absolute-escape', { gzip: true });
    await expect(inspect(bytes, 50)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { reason: 'symlink-escape', entry: 'link/corral-escaped.txt' },
    });
  });

  it('refuses corrupt gzip data', async () => {
    const bytes = buildArchive('plain', { gzip: true });
    bytes.fill(0x00, 20, 60);
    await expect(inspect(bytes, 4096)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('parseNumber', () => {
  it('reads octal and GNU base-256 fields', () => {
    expect(parseNumber(Buffer.from('00000001750\0'))).toBe(0o1750);
    expect(parseNumber(Buffer.from('     12 \0'))).toBe(0o12);
    const big = Buffer.alloc(12);
    big[0] = 0x80;
    big.writeUIntBE(10 * 1024 ** 3, 6, 6);
    expect(parseNumber(big)).toBe(10 * 1024 ** 3);
    expect(parseNumber(Buffer.from('12x\0'))).toBeNull();
  });
});
