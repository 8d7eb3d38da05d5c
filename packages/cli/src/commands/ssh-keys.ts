import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { type JsonOption, standard } from '../command.js';
import { client } from '../config.js';
import { CliError } from '../errors.js';
import { printFields, printJson, printTable } from '../output.js';

/** Key types the SSH gateway accepts (as the server's `SSH_KEY_ALGORITHMS`). */
const ALGORITHMS = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
];

/** What `add` reads when no file is given, in this order. */
export function defaultPublicKeyFiles(home = homedir()): string[] {
  return [join(home, '.ssh', 'id_ed25519.pub'), join(home, '.ssh', 'id_rsa.pub')];
}

/**
 * Checks `text` is one OpenSSH public key line (`type base64 [comment]`) of a type the gateway
 * takes, whose blob names that same type; returns the trimmed line or throws a CliError saying
 * what is wrong (a private key, another format, an unknown type, garbage).
 */
export function validatePublicKey(text: string, source: string): string {
  const line = text.trim();
  const refuse = (
    why: string,
    hint = 'give the .pub file ssh-keygen wrote (one line: "ssh-ed25519 AAAA… comment")',
  ) => new CliError(`${source}: ${why}.`, hint);
  if (/PRIVATE KEY/.test(line))
    throw refuse(
      'this is a private key',
      `give the public half: ${source.endsWith('.pub') ? source : `${source}.pub`}`,
    );
  const match = /^(\S+) ([A-Za-z0-9+/]+={0,3})(?: [^\r\n]*)?$/.exec(line);
  if (!match) throw refuse('not an OpenSSH public key');
  const [, type, data] = match as unknown as [string, string, string];
  if (!ALGORITHMS.includes(type))
    throw refuse(
      `unsupported key type ${type}`,
      `use one of ${ALGORITHMS.join(', ')} (ssh-keygen -t ed25519)`,
    );
  const blob = Buffer.from(data, 'base64');
  const nameLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (nameLength < 0 || 4 + nameLength > blob.length || blob.toString('latin1', 4, 4 + nameLength) !== type)
    throw refuse('the key data does not match its type (a damaged or edited line?)');
  return line;
}

/** Reads the key to add: `file`, else the first default `.pub` that exists (said on stderr). */
async function readPublicKey(file: string | undefined): Promise<{ line: string; source: string }> {
  const candidates = file ? [file] : defaultPublicKeyFiles();
  for (const path of candidates) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!file && code === 'ENOENT') continue;
      throw new CliError(
        `Cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}.`,
        'give the path of a .pub file',
      );
    }
    if (!file) process.stderr.write(`Using ${path}\n`);
    return { line: validatePublicKey(text, path), source: path };
  }
  throw new CliError(
    `No public key found (looked for ${candidates.join(' and ')}).`,
    'make one with `ssh-keygen -t ed25519`, or give a file: corral ssh-key add <file.pub>',
  );
}

/** `corral ssh-key ls|add|rm`: the SSH public keys that log you in to the SSH gateway. */
export function sshKeyCommands(program: Command): void {
  const keys = program
    .command('ssh-key')
    .alias('ssh-keys')
    .description(
      'your SSH public keys: with one registered, `ssh -p <gateway port> <sandbox-id>@<host>` logs in with no token',
    );
  standard(keys, ['corral ssh-key add', 'corral ssh-key ls', 'corral ssh-key rm sshk_…'], false);

  standard(keys.command('ls').alias('list').description('list your SSH keys'), [
    'corral ssh-key ls',
    'corral ssh-key ls --json',
  ]).action(async (opts: JsonOption) => {
    const all = await (await client()).sshKeys.list();
    if (opts.json) printJson(all);
    else
      printTable(
        ['ID', 'NAME', 'TYPE', 'FINGERPRINT', 'ADDED', 'LAST USED'],
        all.map((k) => [k.id, k.name, k.algorithm, k.fingerprint, k.created_at, k.last_used_at]),
        'No SSH keys yet: corral ssh-key add',
      );
  });

  standard(
    keys
      .command('add')
      .argument('[file]', 'a .pub file (default ~/.ssh/id_ed25519.pub, then ~/.ssh/id_rsa.pub)')
      .option('-n, --name <name>', "a name (default: the key's comment, e.g. you@laptop)")
      .description('register an SSH public key (checked here before it is sent)'),
    ['corral ssh-key add', 'corral ssh-key add ~/.ssh/work.pub --name work-laptop'],
  ).action(async (file: string | undefined, opts: JsonOption & { name?: string }) => {
    const { line } = await readPublicKey(file);
    const added = await (await client()).sshKeys.add({ name: opts.name, public_key: line });
    if (opts.json) printJson(added);
    else
      printFields([
        ['id', added.id],
        ['name', added.name],
        ['type', added.algorithm],
        ['fingerprint', added.fingerprint],
      ]);
  });

  standard(keys.command('rm').alias('remove').argument('<key-id>').description('remove an SSH key'), [
    'corral ssh-key rm sshk_…',
  ]).action(async (id: string, opts: JsonOption) => {
    await (await client()).sshKeys.remove(id);
    if (opts.json) printJson({ removed: id });
    else process.stderr.write(`Removed ${id}: it no longer logs in.\n`);
  });
}
