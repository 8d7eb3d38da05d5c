// Files as streams, a byte range, a directory listing, then a snapshot restored into a new sandbox.
import { Corral, FileNotFoundError } from '@corral/sdk';

const corral = new Corral();
const box = await corral.sandboxes.create({ template: 'base' });
let copy: Awaited<ReturnType<typeof corral.sandboxes.get>> | null = null;
try {
  // Any web ReadableStream (or Node Readable, Blob, bytes, text) uploads without buffering.
  const lines = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 1; i <= 100; i++) controller.enqueue(new TextEncoder().encode(`line ${i}\n`));
      controller.close();
    },
  });
  const written = await box.files.write('data/lines.txt', lines);
  console.log(`wrote ${written.size} bytes to ${written.path}`);
  console.log(`last line: ${(await box.files.readText('data/lines.txt', { range: { suffix: 9 } })).trim()}`);
  for (const entry of await box.files.list('data')) console.log(`${entry.type} ${entry.name} ${entry.size}`);

  const snapshot = await box.snapshots.create({ name: 'with-data' });
  console.log(`snapshot ${snapshot.name} is ${snapshot.status}`);
  await box.files.remove('data', { recursive: true });
  try {
    await box.files.read('data/lines.txt');
  } catch (err) {
    if (err instanceof FileNotFoundError) console.log('the original no longer has the file');
    else throw err;
  }

  copy = await corral.snapshots.restore(snapshot.id);
  const lineCount = (await copy.files.readText('data/lines.txt')).split('\n').length - 1;
  console.log(`the restored sandbox has ${lineCount} lines`);
  await corral.snapshots.remove(snapshot.id);
} finally {
  await copy?.destroy();
  await box.destroy();
}
