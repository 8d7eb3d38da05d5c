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

/** One hand-made ustar header block (for archives real tar will not write). */
function header(name: string, type: string, size: number, linkName = ''): Buffer {
  const block = Buffer.alloc(512);
  block.write(name, 0, 100, 'utf8');
  block.write('0000644\0', 100, 'latin1');
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  block.write(type, 156, 'latin1');
  block.write(linkName, 157, 100, 'utf8');
  block.write('ustar\0' + '00', 257, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

/** A member's data, padded to whole blocks. */
function body(text: string): Buffer {
  const data = Buffer.from(text);
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

function archive(...parts: Buffer[]): Buffer {
  return Buffer.concat([...parts, Buffer.alloc(1024)]);
}

function pax(records: Record<string, string>): string {
  return Object.entries(records)
    .map(([key, value]) => {
      const rest = ` ${key}=${value}\n`;
      let length = rest.length + 1;
      while (`${length}${rest}`.length !== length) length += 1;
      return `${length}${rest}`;
    })
    .join('');
}

describe('TarGuard on hand-made archives', () => {
  const refuse = (bytes: Buffer) => rejection(() => check(bytes, 512)).reason;

  it('accepts a hand-made archive (the builder is sound)', () => {
    expect(check(archive(header('ok.txt', '0', 3), body('hi\n')), 512).members).toEqual(['ok.txt']);
  });

  it('takes the pax path over the header name', () => {
    const x = pax({ path: '../evil' });
    expect(refuse(archive(header('PaxHeader', 'x', x.length), body(x), header('ok', '0', 0)))).toBe(
      'parent-traversal',
    );
  });

  it('refuses a pax path and a GNU long name on the same member', () => {
    const x = pax({ path: 'ok/x' });
    const long = 'link/passwd\0';
    const bytes = archive(
      header('PaxHeader', 'x', x.length),
      body(x),
      header('././@LongLink', 'L', long.length),
      body(long),
      header('short', '0', 0),
    );
    expect(refuse(bytes)).toBe('malformed');
  });

  it('refuses a global pax header that names members', () => {
    const g = pax({ path: 'anything' });
    expect(refuse(archive(header('GlobalHead', 'g', g.length), body(g), header('ok', '0', 0)))).toBe(
      'malformed',
    );
  });

  it('refuses data behind a symlink header, where tar implementations disagree', () => {
    expect(refuse(archive(header('l', '2', 512, 'target'), body('x'.repeat(512))))).toBe('malformed');
  });

  it('refuses device nodes and unknown member types', () => {
    expect(refuse(archive(header('dev', '3', 0)))).toBe('device');
    expect(refuse(archive(header('sparse', 'S', 0)))).toBe('unsupported-type');
  });

  it('refuses a header with a wrong checksum', () => {
    const bad = header('ok', '0', 0);
    bad[0] = 0x41;
    expect(refuse(archive(bad))).toBe('malformed');
  });

  it('refuses a hard link through an archive symlink that leads out', () => {
    const bytes = archive(header('up', '2', 0, '..'), header('h', '1', 0, 'up/etc/passwd'));
    expect(refuse(bytes)).toBe('symlink-escape');
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
