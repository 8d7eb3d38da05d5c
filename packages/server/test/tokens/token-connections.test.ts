import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { TokenState } from '../../src/services/sandbox-tokens.js';
import type { KeyLogin } from '../../src/services/ssh/keys.js';
import { TokenConnections } from '../../src/services/token-connections.js';

/** A TokenConnections over fake batch checks the test controls. */
function fixture() {
  const states = new Map<string, TokenState>();
  const liveKeys = new Set<string>();
  const queries: { tokens: string[][]; keys: KeyLogin[][] } = { tokens: [], keys: [] };
  let gate: Promise<void> | null = null;
  const connections = new TokenConnections({
    tokens: {
      states: async (ids) => {
        queries.tokens.push([...ids]);
        await gate;
        return new Map(ids.map((id) => [id, states.get(id) ?? 'live']));
      },
    },
    liveKeys: async (logins) => {
      queries.keys.push([...logins]);
      return new Set(logins.map((l) => `${l.keyId} ${l.sandboxId}`).filter((name) => liveKeys.has(name)));
    },
    log: pino({ level: 'silent' }),
    checkIntervalMs: 3_600_000,
  });
  /** A fake connection: records why it was closed. */
  const conn = () => {
    const closed: string[] = [];
    return { closed, close: (reason: string) => closed.push(reason) };
  };
  return {
    connections,
    states,
    liveKeys,
    queries,
    conn,
    hold(): () => void {
      let release = () => {};
      gate = new Promise((resolve) => {
        release = resolve;
      });
      return () => {
        gate = null;
        release();
      };
    },
  };
}

const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

describe('TokenConnections', () => {
  const made: TokenConnections[] = [];
  afterEach(() => {
    for (const c of made.splice(0)) c.stop();
  });
  const make = () => {
    const f = fixture();
    made.push(f.connections);
    return f;
  };

  it('revoked() closes every connection of that token, and only those', () => {
    const f = make();
    const [a, b, c] = [f.conn(), f.conn(), f.conn()];
    f.connections.track({ id: 'tun_a', expiresAt: inAnHour() }, a.close);
    f.connections.track({ id: 'tun_a', expiresAt: inAnHour() }, b.close);
    f.connections.track({ id: 'tun_b', expiresAt: inAnHour() }, c.close);
    expect(f.connections.size).toBe(3);
    expect(f.connections.revoked('tun_a')).toBe(2);
    expect([a.closed, b.closed, c.closed]).toEqual([['token revoked'], ['token revoked'], []]);
    expect(f.connections.revoked('tun_a')).toBe(0);
    expect(f.connections.size).toBe(1);
  });

  it('an untracked connection is never closed', () => {
    const f = make();
    const a = f.conn();
    const untrack = f.connections.track({ id: 'tun_a', expiresAt: inAnHour() }, a.close);
    untrack();
    untrack();
    expect(f.connections.revoked('tun_a')).toBe(0);
    expect(a.closed).toEqual([]);
    expect(f.connections.size).toBe(0);
  });

  it('closes a connection when its token expires', async () => {
    const f = make();
    const a = f.conn();
    f.connections.track({ id: 'tun_a', expiresAt: new Date(Date.now() + 50).toISOString() }, a.close);
    const deadline = Date.now() + 10_000;
    while (a.closed.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(a.closed).toEqual(['token expired']);
    expect(f.connections.size).toBe(0);
  });

  it('one check asks about every tracked token and key in one batch each, and closes what ended', async () => {
    const f = make();
    const conns = Array.from({ length: 5 }, () => f.conn());
    f.connections.track({ id: 'tun_live', expiresAt: inAnHour() }, conns[0]!.close);
    f.connections.track({ id: 'tun_revoked', expiresAt: inAnHour() }, conns[1]!.close);
    f.connections.track({ id: 'tun_refused', expiresAt: inAnHour() }, conns[2]!.close);
    f.connections.trackKey({ id: 'sshk_live', sandboxId: 'sbx_1' }, conns[3]!.close);
    f.connections.trackKey({ id: 'sshk_gone', sandboxId: 'sbx_1' }, conns[4]!.close);
    f.states.set('tun_revoked', 'revoked');
    f.states.set('tun_refused', 'refused');
    f.liveKeys.add('sshk_live sbx_1');

    expect(await f.connections.check()).toBe(3);
    expect(f.queries.tokens).toEqual([['tun_live', 'tun_revoked', 'tun_refused']]);
    expect(f.queries.keys).toEqual([
      [
        { keyId: 'sshk_live', sandboxId: 'sbx_1' },
        { keyId: 'sshk_gone', sandboxId: 'sbx_1' },
      ],
    ]);
    expect(conns.map((c) => c.closed)).toEqual([
      [],
      ['token revoked'],
      ['token no longer valid'],
      [],
      ['ssh key removed or access revoked'],
    ]);
    // Nothing left to ask about the closed ones.
    await f.connections.check();
    expect(f.queries.tokens.at(-1)).toEqual(['tun_live']);
  });

  it('keyDeleted() closes the connections of that key, in every sandbox', () => {
    const f = make();
    const [a, b, c] = [f.conn(), f.conn(), f.conn()];
    f.connections.trackKey({ id: 'sshk_a', sandboxId: 'sbx_1' }, a.close);
    f.connections.trackKey({ id: 'sshk_a', sandboxId: 'sbx_2' }, b.close);
    f.connections.trackKey({ id: 'sshk_b', sandboxId: 'sbx_1' }, c.close);
    expect(f.connections.keyDeleted('sshk_a')).toBe(2);
    expect([a.closed, b.closed, c.closed]).toEqual([['ssh key removed'], ['ssh key removed'], []]);
  });

  it('a connection tracked while a check is running is left to the next check', async () => {
    const f = make();
    const [early, late] = [f.conn(), f.conn()];
    f.connections.track({ id: 'tun_a', expiresAt: inAnHour() }, early.close);
    f.states.set('tun_a', 'refused');
    const release = f.hold();
    const running = f.connections.check();
    // A login that checked the token after the batch query read it must not be cut by that answer.
    f.connections.track({ id: 'tun_a', expiresAt: inAnHour() }, late.close);
    release();
    expect(await running).toBe(1);
    expect(early.closed).toEqual(['token no longer valid']);
    expect(late.closed).toEqual([]);
    expect(await f.connections.check()).toBe(1);
    expect(late.closed).toEqual(['token no longer valid']);
  });

  it('checks periodically while something is tracked', async () => {
    const f = make();
    const a = f.conn();
    f.connections.checkEvery(20);
    f.connections.track({ id: 'tun_a', expiresAt: inAnHour() }, a.close);
    f.states.set('tun_a', 'revoked');
    const deadline = Date.now() + 10_000;
    while (a.closed.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(a.closed).toEqual(['token revoked']);
    // Nothing tracked: no more queries.
    const asked = f.queries.tokens.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(f.queries.tokens.length).toBe(asked);
  });

  it('a failed check closes nothing and is logged', async () => {
    const connections = new TokenConnections({
      tokens: { states: async () => Promise.reject(new Error('store down')) },
      liveKeys: async () => new Set(),
      log: pino({ level: 'silent' }),
    });
    made.push(connections);
    const closed: string[] = [];
    connections.track({ id: 'tun_a', expiresAt: inAnHour() }, (reason) => closed.push(reason));
    expect(await connections.check()).toBe(0);
    expect(closed).toEqual([]);
  });
});
