// Quick start: a Python sandbox, one command, one file, and clean-up.
// Run against a local server (`npm start`) with CORRAL_API_KEY set (and CORRAL_URL if not local).
import { Corral } from '@corral/sdk';

const corral = new Corral();
const box = await corral.sandboxes.create({ template: 'python' });
try {
  const { stdout, exitCode } = await box.exec('python3', ['-c', 'print(1)']);
  console.log(`python printed ${stdout.trim()} (exit ${exitCode})`);

  await box.files.write('hello.py', 'print("hello from a file")\n');
  console.log(`hello.py holds: ${(await box.files.readText('hello.py')).trim()}`);
  const run = await box.exec('python3', ['hello.py']);
  console.log(`running it: ${run.stdout.trim()}`);
} finally {
  await box.destroy();
}
