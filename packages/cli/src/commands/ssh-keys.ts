import type { Command } from 'commander';

/** `corral ssh-key ls|add|rm`: the SSH public keys that log you in to the SSH gateway. */
export function sshKeyCommands(program: Command): void {
  program.command('ssh-key').description('your SSH public keys (log in with `ssh <sandbox-id>@host`)');
}
