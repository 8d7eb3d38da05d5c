import { randomBytes } from 'node:crypto';
import { chown, mkdir, open, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SANDBOX_ID_BASE } from '../shared/ids.js';
import { mountPoints, run } from './proc.js';

/** Ready images kept per size. */
const POOL_DEPTH = 2;

/**
 * Size-capped disks for upper dirs (the local driver): sparse ext4 images in `<dir>/<name>.img`, mounted at
 * `<dir>/<name>/` with `upper/` and `work/` made. Formatting and mounting (~15 ms quiet, 40+ ms
 * on a busy host) happen in the background ahead of demand; a create only claims one, by
 * unlinking its `<name>.ready` marker (atomic, so a half-made or orphaned image is never handed
 * out: those have no marker and are deleted by `sweep`).
 */
export class DiskStore {
  private readonly refilling = new Map<number, Promise<void>>();

  constructor(
    private readonly dir: string,
    private readonly helper: () => string,
  ) {}

  /** Claim a ready disk of `diskMb` (making one on the spot when none is ready); returns its name. */
  async take(diskMb: number): Promise<string> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const ready = (await readdir(this.dir)).filter((f) => f.startsWith(`${diskMb}-`) && f.endsWith('.ready'));
    for (const marker of ready) {
      try {
        await unlink(join(this.dir, marker));
      } catch {
        continue; // claimed concurrently
      }
      this.refill(diskMb);
      return marker.slice(0, -'.ready'.length);
    }
    const name = await this.make(diskMb);
    this.refill(diskMb);
    return name;
  }

  /** Start making ready disks of these sizes in the background. */
  prewarm(sizesMb: Iterable<number>): void {
    for (const size of sizesMb) if (size > 0) this.refill(size);
  }

  /** Mount a claimed disk again (after stop or a host reboot). */
  async mount(name: string): Promise<void> {
    const mountDir = join(this.dir, name);
    if ((await mountPoints()).has(mountDir)) return;
    await mkdir(mountDir, { recursive: true, mode: 0o700 });
    await run(this.helper(), ['mountimg', join(this.dir, `${name}.img`), mountDir]);
  }

  /** Delete a claimed disk (its mount must be gone or lazily detached). */
  async remove(name: string): Promise<void> {
    await rm(join(this.dir, name), { recursive: true, force: true });
    await rm(join(this.dir, `${name}.img`), { force: true });
  }

  /** At start-up: delete images that are neither ready nor owned by a sandbox; unmount their mounts. */
  async sweep(owned: Set<string>): Promise<void> {
    const entries = await readdir(this.dir).catch(() => [] as string[]);
    const ready = new Set(
      entries.filter((f) => f.endsWith('.ready')).map((f) => f.slice(0, -'.ready'.length)),
    );
    const mounts = await mountPoints();
    for (const entry of entries) {
      const name = entry.replace(/\.(img|ready)$/, '');
      if (owned.has(name) || ready.has(name) || entry.endsWith('.ready')) continue;
      if (mounts.has(join(this.dir, name)))
        await run(this.helper(), ['umount', join(this.dir, name), '--lazy']);
      await rm(join(this.dir, entry), { recursive: true, force: true });
    }
  }

  /** Wait for background work, then unmount the ready (unclaimed) disks; `mount` brings them back. */
  async release(): Promise<void> {
    await Promise.all(this.refilling.values());
    const entries = await readdir(this.dir).catch(() => [] as string[]);
    const mounts = await mountPoints();
    for (const marker of entries.filter((f) => f.endsWith('.ready'))) {
      const mountDir = join(this.dir, marker.slice(0, -'.ready'.length));
      if (mounts.has(mountDir)) await run(this.helper(), ['umount', mountDir]);
    }
  }

  private refill(diskMb: number): void {
    if (this.refilling.has(diskMb)) return;
    const work = (async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      for (;;) {
        const count = (await readdir(this.dir)).filter(
          (f) => f.startsWith(`${diskMb}-`) && f.endsWith('.ready'),
        ).length;
        if (count >= POOL_DEPTH) return;
        await writeFile(join(this.dir, `${await this.make(diskMb)}.ready`), '');
      }
    })()
      .catch(() => undefined)
      .finally(() => this.refilling.delete(diskMb));
    this.refilling.set(diskMb, work);
  }

  /** Format and mount a new image with upper/ and work/ owned by the sandbox's root. */
  private async make(diskMb: number): Promise<string> {
    const name = `${diskMb}-${randomBytes(8).toString('hex')}`;
    const image = join(this.dir, `${name}.img`);
    try {
      const handle = await open(image, 'wx', 0o600);
      try {
        await handle.truncate(diskMb * 1024 * 1024);
      } finally {
        await handle.close();
      }
      await run('mkfs.ext4', [
        '-q',
        '-F',
        '-m',
        '0',
        '-O',
        '^resize_inode',
        '-E',
        'lazy_itable_init=1,lazy_journal_init=1,nodiscard',
        image,
      ]);
      await this.mount(name);
      for (const sub of ['upper', 'work']) await mkdir(join(this.dir, name, sub), { mode: 0o755 });
      // The overlay's root takes the upper dir's owner: root inside the sandbox.
      await chown(join(this.dir, name, 'upper'), SANDBOX_ID_BASE, SANDBOX_ID_BASE);
      return name;
    } catch (err) {
      await run(this.helper(), ['umount', join(this.dir, name), '--lazy']).catch(() => undefined);
      await this.remove(name);
      throw err;
    }
  }
}
