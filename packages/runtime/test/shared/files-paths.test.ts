import { describe, expect, it } from 'vitest';
import { normalizeSandboxPath } from '../../src/shared/files-paths.js';
import { failureError, scriptRequest } from '../../src/shared/files-run.js';
import { decodeAddress, parsePorts } from '../../src/shared/ports-over-exec.js';

describe('normalizeSandboxPath', () => {
  it.each([
    ['/etc/passwd', '/etc/passwd'],
    ['notes.txt', '/home/user/notes.txt'],
    ['./a/../b/', '/home/user/b'],
    ['/', '/'],
    ['//a//b/', '/a/b'],
    ['/../../etc', '/etc'],
    ['../../../../root', '/root'],
    ['ünï cødé/🐄', '/home/user/ünï cødé/🐄'],
    ['line\nbreak', '/home/user/line\nbreak'],
  ])('%j → %j', (input, expected) => {
    expect(normalizeSandboxPath(input)).toBe(expected);
  });

  it.each([
    ['empty', ''],
    ['NUL', 'a\0b'],
    ['too long', `/${'a'.repeat(4096)}`],
    ['not a string', 42],
  ])('refuses %s with INVALID_ARGUMENT', (_label, input) => {
    expect(() => normalizeSandboxPath(input)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('counts the limit in bytes, not characters', () => {
    expect(() => normalizeSandboxPath(`/${'é'.repeat(2047)}`)).not.toThrow();
    expect(() => normalizeSandboxPath(`/${'é'.repeat(2048)}`)).toThrow();
  });
});

describe('scriptRequest', () => {
  it('passes paths as argv to a constant script in a clean environment', () => {
    const request = scriptRequest('exec cat -- "$1"', ['/tmp/$(reboot); x'], 'root', 5000);
    expect(request.command).toBe('/usr/bin/env');
    expect(request.args?.slice(0, 5)).toEqual([
      '-i',
      'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
      'LC_ALL=C',
      '/bin/bash',
      '-c',
    ]);
    expect(request.args?.at(-1)).toBe('/tmp/$(reboot); x');
    expect(request.args?.[5]).not.toContain('reboot');
    expect(request).toMatchObject({ user: 'root', timeoutMs: 5000, cwd: '/' });
    expect(request.env).toBeUndefined();
  });
});

describe('failureError', () => {
  const exited = (exitCode: number) => ({ exitCode, signal: null, timedOut: false });

  it('uses the script tag when present', () => {
    const err = failureError(exited(97), 'corral-error:IS_A_DIRECTORY\n/x: Is a directory\n', { path: '/x' });
    expect(err.code).toBe('IS_A_DIRECTORY');
    expect(err.details.path).toBe('/x');
  });

  it.each([
    ["mv: cannot move '/a' to '/b/c': No such file or directory", 'FILE_NOT_FOUND'],
    ["find: '/root': Permission denied", 'PERMISSION_DENIED'],
    ["mkdir: cannot create directory '/f/x': Not a directory", 'NOT_A_DIRECTORY'],
    ["mkdir: cannot create directory '/f': File exists", 'FILE_EXISTS'],
    ["mv: cannot overwrite directory '/d' with non-directory", 'IS_A_DIRECTORY'],
    ["mv: '/a' and '/a' are the same file", 'INVALID_ARGUMENT'],
    ["mv: cannot move '/a' to a subdirectory of itself, '/a/b'", 'INVALID_ARGUMENT'],
    ['something odd', 'INTERNAL'],
  ])('maps %j to %s', (stderr, code) => {
    expect(failureError(exited(1), stderr, {}).code).toBe(code);
  });

  it('ignores a forged tag when the exit code is not the fail code', () => {
    expect(failureError(exited(1), 'corral-error:FILE_EXISTS\n', {}).code).toBe('INTERNAL');
  });
});

describe('ports parsing', () => {
  it('decodes /proc/net/tcp addresses', () => {
    expect(decodeAddress('0100007F')).toBe('127.0.0.1');
    expect(decodeAddress('00000000')).toBe('0.0.0.0');
    expect(decodeAddress('00000000000000000000000000000000')).toBe('::');
    expect(decodeAddress('00000000000000000000000001000000')).toBe('::1');
    expect(decodeAddress('0000000000000000FFFF00000100007F')).toBe('::ffff:127.0.0.1');
    expect(decodeAddress('B80D0120000000000000000001000000')).toBe('2001:db8::1');
  });

  it('keeps LISTEN sockets, maps inodes to processes, dedupes and sorts', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000:1FBB 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0',
      '   1: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 222 1 0',
      '   2: 0100007F:0050 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 333 1 0',
      '   3: 00000000:1FBB 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0',
      '   0: 00000000000000000000000000000000:1FBB 00000000000000000000000000000000:0000 0A 0 0 0 1000 0 444 1',
      '@fds',
      '/proc/42/fd socket:[111]',
      '/proc/43/fd socket:[444]',
      '@comm',
      '42 perl',
      '43 node server',
    ].join('\n');
    expect(parsePorts(text)).toEqual([
      { port: 80, address: '127.0.0.1', protocol: 'tcp', process: null, pid: null },
      { port: 8123, address: '0.0.0.0', protocol: 'tcp', process: 'perl', pid: 42 },
      { port: 8123, address: '::', protocol: 'tcp', process: 'node server', pid: 43 },
    ]);
  });

  it('merges scans made as different users (a second @tcp section)', () => {
    const listen =
      '   0: 00000000:1FBB 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 0 111 1 0';
    const asRoot = [listen, '@fds', '@comm', '1 init'].join('\n');
    const asUser = [listen, '@fds', '/proc/2/fd socket:[111]', '@comm', '2 perl'].join('\n');
    expect(parsePorts(`${asRoot}\n@tcp\n${asUser}`)).toEqual([
      { port: 8123, address: '0.0.0.0', protocol: 'tcp', process: 'perl', pid: 2 },
    ]);
  });
});
