// Streaming exec: output as it is produced (async iterator, or callbacks), stdin, and kill.
import { Corral } from '@corral/sdk';

const corral = new Corral();
const box = await corral.sandboxes.create({ template: 'base' });
try {
  // Iterate the events as the command writes them (a chunk may hold several lines).
  const counting = await box.execStream('sh', ['-c', 'for i in 1 2 3; do echo "tick $i"; sleep 0.2; done']);
  for await (const event of counting) {
    for (const line of event.data.split('\n').filter(Boolean)) console.log(`[${event.type}] ${line}`);
  }
  console.log(`counting exited ${(await counting.wait()).exitCode}`);

  // Or give callbacks and wait; stdin is written and then closed.
  const upper = await box.execStream('tr', ['a-z', 'A-Z'], {
    stdin: 'shout this\n',
    onStdout: (data) => console.log(`tr says: ${data.trim()}`),
  });
  await upper.wait();

  // Standard error has its own callback (and events of type 'stderr').
  const failing = await box.execStream('sh', ['-c', 'echo "something went wrong" >&2; exit 3'], {
    onStderr: (data) => console.log(`stderr: ${data.trim()}`),
  });
  console.log(`failing exited ${(await failing.wait()).exitCode}`);

  // A command that would run forever: kill it (SIGKILL by default) and read its exit code.
  const forever = await box.execStream('sleep', ['infinity'], { timeoutSeconds: 0 });
  await forever.kill();
  console.log(`sleep was killed: exit ${(await forever.wait()).exitCode}`);
} finally {
  await box.destroy();
}
