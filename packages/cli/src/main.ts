#!/usr/bin/env node
/** The `corral` command — `corral serve` starts the server; the rest lands with the CLI issue. */
const [command] = process.argv.slice(2);
if (command === 'serve') {
  await import('@corral/server/main');
} else {
  process.stdout.write('usage: corral serve\n');
  process.exitCode = command ? 2 : 0;
}
