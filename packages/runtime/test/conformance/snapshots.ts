import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { shellOk } from '../shared/sandbox-shell.js';
import type { ConformanceContext } from './context.js';

/** Snapshots: the filesystem (including deletions) comes back in another sandbox. */
export function describeSnapshots(ctx: ConformanceContext): void {
  describe('snapshots', () => {
    it('snapshots, destroys, restores into a new sandbox: files and deletions are back', async () => {
      const rt = ctx.runtime();
      const a = ctx.spec('snap-a');
      await rt.create(a);
      await shellOk(
        rt,
        a.id,
        'mkdir -p ~/proj && echo "hello snapshot" > ~/proj/a.txt && ln -s a.txt ~/proj/link',
      );
      await shellOk(rt, a.id, 'rm /etc/issue && echo root-file > /opt/r.txt && chmod 600 /opt/r.txt', {
        user: 'root',
      });
      const dest = join(ctx.stateDir(), `snap-${a.id}.tar`);
      const snap = await rt.snapshot(a.id, dest);
      expect(snap).toMatchObject({ path: dest, includesMemory: false, template: 'base' });
      expect(snap.sha256).toBe(createHash('sha256').update(readFileSync(dest)).digest('hex'));
      expect(snap.sizeBytes).toBe(readFileSync(dest).length);
      expect((await shellOk(rt, a.id, 'cat ~/proj/a.txt')).trim()).toBe('hello snapshot');
      await rt.destroy(a.id);

      const b = ctx.spec('snap-b');
      await rt.create(b);
      await shellOk(rt, b.id, 'echo to-be-replaced > ~/old.txt');
      expect((await rt.restore(b.id, dest)).state).toBe('running');
      expect(
        await shellOk(
          rt,
          b.id,
          'cat ~/proj/a.txt; readlink ~/proj/link; test -e /etc/issue || echo issue-gone; test -e ~/old.txt || echo old-gone',
        ),
      ).toBe('hello snapshot\na.txt\nissue-gone\nold-gone\n');
      expect(await shellOk(rt, b.id, 'stat -c "%a %u" /opt/r.txt; cat /opt/r.txt', { user: 'root' })).toBe(
        '600 0\nroot-file\n',
      );
    });

    it('rejects a file that is not a snapshot', async () => {
      const rt = ctx.runtime();
      const bogus = join(ctx.stateDir(), 'bogus.tar');
      (await import('node:fs')).writeFileSync(bogus, 'not an archive');
      await expect(rt.restore(ctx.sharedSandbox(), bogus)).rejects.toMatchObject({
        code: 'SNAPSHOT_INVALID',
      });
      expect((await rt.get(ctx.sharedSandbox()))?.state).toBe('running');
    });
  });
}
