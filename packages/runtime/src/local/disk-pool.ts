import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './proc.js';

/** Pre-formatted images kept ready per size, so mkfs (~6–25 ms) is off the create path. Used by the gvisor driver; the local driver uses DiskStore (disks.ts), which also keeps them mounted. */
const POOL_DEPTH = 2;

/**
 * Sparse ext4 images for size-capped upper dirs. `take` moves a ready image of the size into
 * place (or formats one on the spot when the pool is empty) and refills the pool in the
 * background.
 */
export class DiskPool {
  private readonly refilling = new Map<number, Promise<void>>();

  constructor(private readonly dir: string) {}

  async take(diskMb: number, dest: string): Promise<void> {
    const ready = (await readdir(this.dir).catch(() => [] as string[])).filter((f) =>
      f.startsWith(`${diskMb}-`),
    );
    for (const name of ready) {
      try {
        await rename(join(this.dir, name), dest);
        this.refill(diskMb);
        return;
      } catch {
        // taken by a concurrent create
      }
    }
    await formatImage(dest, diskMb);
    this.refill(diskMb);
  }

  /** Wait for background formatting (tests, shutdown). */
  async settle(): Promise<void> {
    await Promise.all(this.refilling.values());
  }

  private refill(diskMb: number): void {
    if (this.refilling.has(diskMb)) return;
    const work = (async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      for (;;) {
        const count = (await readdir(this.dir)).filter(
          (f) => f.startsWith(`${diskMb}-`) && f.endsWith('.img'),
        ).length;
        if (count >= POOL_DEPTH) return;
        const tmp = join(this.dir, `tmp-${randomBytes(6).toString('hex')}`);
        await formatImage(tmp, diskMb);
        await rename(tmp, join(this.dir, `${diskMb}-${randomBytes(6).toString('hex')}.img`));
      }
    })()
      .catch(() => undefined)
      .finally(() => this.refilling.delete(diskMb));
    this.refilling.set(diskMb, work);
  }
}

/** A sparse file of exactly `diskMb` MiB holding an empty ext4 (journal kept for crash safety). */
async function formatImage(path: string, diskMb: number): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  try {
    await handle.truncate(diskMb * 1024 * 1024);
  } finally {
    await handle.close();
  }
  try {
    await run('mkfs.ext4', [
      '-q',
      '-F',
      '-m',
      '0',
      '-O',
      '^resize_inode',
      '-E',
      'lazy_itable_init=1,lazy_journal_init=1,nodiscard',
      path,
    ]);
  } catch (err) {
    await rm(path, { force: true });
    throw err;
  }
}
