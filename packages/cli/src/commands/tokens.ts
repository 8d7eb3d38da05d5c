import type { Command } from 'commander';

/** `corral tokens ls|revoke` and `corral tunnel`: a sandbox's access tokens. */
export function tokenCommands(program: Command): void {
  program.command('tokens').description("a sandbox's access tokens (ssh, shell, port, observe)");
  program.command('tunnel').description('mint an access token for a sandbox');
}
