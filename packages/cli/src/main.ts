#!/usr/bin/env node
/**
 * The `corral` command: the server (`corral serve`) and a client of its API built on
 * `@corral/sdk` — sandboxes, exec, shell, cp, snapshots, env, keys, templates.
 */
import { Command, CommanderError } from 'commander';
import { report } from './command.js';
import { apiKeyCommands } from './commands/account.js';
import { authCommands } from './commands/auth.js';
import { completionCommand } from './commands/completion.js';
import { cpCommand } from './commands/cp.js';
import { envCommands } from './commands/env.js';
import { execCommand } from './commands/exec.js';
import { portForwardCommand } from './commands/port-forward.js';
import { portCommands } from './commands/ports.js';
import { sandboxCommands } from './commands/sandbox.js';
import { shellCommand } from './commands/shell.js';
import { snapshotCommands } from './commands/snapshots.js';
import { sshKeyCommands } from './commands/ssh-keys.js';
import { templateCommands } from './commands/templates.js';
import { tokenCommands } from './commands/tokens.js';

/** The whole command tree. */
export function buildProgram(): Command {
  const program = new Command('corral')
    .description('Corral: isolated Linux sandboxes for AI agents')
    .version('0.1.0')
    .showSuggestionAfterError()
    .exitOverride();
  program.addHelpText(
    'after',
    `
Examples:
  $ corral serve                              # start the server (npm start does too)
  $ corral login --url http://127.0.0.1:8080 --key crl_sk_…
  $ corral sandbox create --template python
  $ corral exec sbx_… -- python3 -c 'print(1)'
  $ corral shell sbx_…

Credentials: CORRAL_URL and CORRAL_API_KEY win over the file \`corral login\` writes.
Exit codes: 0 ok, 1 API or usage error, 2 not supported; exec exits with the command's code.
`,
  );
  program
    .command('serve')
    .description('start the Corral server (configured by its environment; see the README)')
    .addHelpText('after', '\nExamples:\n  $ CORRAL_PORT=8080 corral serve\n')
    .action(async () => {
      await import('@corral/server/main');
    });
  authCommands(program);
  sandboxCommands(program);
  execCommand(program);
  shellCommand(program);
  cpCommand(program);
  snapshotCommands(program);
  envCommands(program);
  apiKeyCommands(program);
  templateCommands(program);
  portCommands(program);
  portForwardCommand(program);
  sshKeyCommands(program);
  tokenCommands(program);
  completionCommand(program);
  // Every subcommand exits through our handler (so usage errors are exit code 1, not process.exit).
  const override = (cmd: Command) => {
    cmd.exitOverride();
    for (const sub of cmd.commands) override(sub);
  };
  override(program);
  return program;
}

// `corral … | head`: a closed pipe ends us quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version are exit 0; commander already printed the usage error itself.
    process.exitCode = err.exitCode === 0 ? 0 : 1;
  } else {
    process.exitCode = report(err);
  }
}
