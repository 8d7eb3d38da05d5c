import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Auth } from '../../src/services/access.js';
import { type CallerLogin, type CallerState, callerName } from '../../src/services/caller-checks.js';
import { TokenConnections } from '../../src/services/token-connections.js';

/** A TokenConnections whose caller batch check the test controls (gated, or failing). */
function fixture() {
  const states = new Map<string, CallerState>();
  const queries: CallerLogin[][] = [];
  let gate: Promise<void> | null = null;
  let failing = false;
  const connections = new TokenConnections({
    tokens: { states: async () => new Map() },
    liveKeys: async () => new Set(),
    callers: async (logins) => {
      queries.push([...logins]);
      const seen = new Map(logins.map((l) => [callerName(l), states.get(callerName(l)) ?? 'live']));
      await gate;
      if (failing) throw new Error('store down');
      return seen;
    },
    log: pino({ level: 'silent' }),
    checkIntervalMs: 3_600_000,
  });
  const conn = () => {
    const closed: string[] = [];
    return { closed, close: (reason: string) => closed.push(reason) };
  };
  return {
    connections,
    states,
    queries,
    conn,
    fail: (on: boolean) => {
      failing = on;
    },
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

const keyAuth = (keyId: string, kind: 'key' | 'jwt' = 'key'): Auth => ({
  kind,
  userId: 'usr_1',
  workspaceId: 'wsp_1',
  keyId,
  sessionId: null,
  scopes: ['*'],
  plan: 'free',
});
const sessionAuth = (sessionId: string): Auth => ({
  kind: 'session',
  userId: 'usr_2',
  workspaceId: null,
  keyId: null,
  sessionId,
  scopes: ['*'],
  plan: 'free',
});
const name = (credential: string, sandboxId = 'sbx_1') => `${credential} ${sandboxId} developer`;

describe('TokenConnections.trackCaller', () => {
  const made: TokenConnections[] = [];
  afterEach(() => {
    for (const c of made.splice(0)) c.stop();
  });
  const make = () => {
    const f = fixture();
    made.push(f.connections);
    return f;
  };

  it('tracks a key and a JWT of the same key as one credential, a session by its id; one batch query for all', async () => {
    const f = make();
    const viaKey = f.conn();
    const viaJwt = f.conn();
    const viaSession = f.conn();
    const caller = (auth: Auth) => ({ auth, sandboxId: 'sbx_1', minRole: 'developer' as const });
    f.connections.trackCaller(caller(keyAuth('key_1')), viaKey.close);
    f.connections.trackCaller(caller(keyAuth('key_1', 'jwt')), viaJwt.close);
    f.connections.trackCaller(caller(sessionAuth('ses_1')), viaSession.close);
    expect(f.connections.size).toBe(3);
    expect(await f.connections.check()).toBe(0);
    expect(f.queries).toHaveLength(1);
    expect(f.queries[0]!.map(callerName).sort()).toEqual([name('key:key_1'), name('session:ses_1')]);

    f.states.set(name('key:key_1'), 'revoked');
    f.states.set(name('session:ses_1'), 'expired');
    expect(await f.connections.check()).toBe(3);
    expect(viaKey.closed).toEqual(['credential revoked']);
    expect(viaJwt.closed).toEqual(['credential revoked']);
    expect(viaSession.closed).toEqual(['credential expired']);
    expect(f.connections.size).toBe(0);
  });

  it('a user who lost the role: "no longer allowed"; untracked connections are neither checked nor closed', async () => {
    const f = make();
    const kept = f.conn();
    const gone = f.conn();
    const untracked = f.conn();
    f.connections.trackCaller(
      { auth: keyAuth('key_2'), sandboxId: 'sbx_2', minRole: 'developer' },
      kept.close,
    );
    f.connections.trackCaller(
      { auth: keyAuth('key_1'), sandboxId: 'sbx_1', minRole: 'developer' },
      gone.close,
    );
    const untrack = f.connections.trackCaller(
      { auth: keyAuth('key_3'), sandboxId: 'sbx_1', minRole: 'developer' },
      untracked.close,
    );
    untrack();
    f.states.set(name('key:key_1'), 'denied');
    f.states.set(name('key:key_3'), 'revoked');
    expect(await f.connections.check()).toBe(1);
    expect(gone.closed).toEqual(['no longer allowed']);
    expect(kept.closed).toEqual([]);
    expect(untracked.closed).toEqual([]);
    expect(f.queries.at(-1)!.map(callerName).sort()).toEqual([name('key:key_1'), name('key:key_2', 'sbx_2')]);
  });

  it('recheck() during a running check waits for it and checks again: a change the running one missed still closes', async () => {
    const f = make();
    const c = f.conn();
    f.connections.trackCaller({ auth: keyAuth('key_1'), sandboxId: 'sbx_1', minRole: 'developer' }, c.close);
    const release = f.hold();
    const running = f.connections.check();
    await new Promise((r) => setTimeout(r, 10));
    // The running check already read the key as live; then the key is revoked here.
    f.states.set(name('key:key_1'), 'revoked');
    const again = f.connections.recheck();
    const alsoAgain = f.connections.recheck();
    release();
    expect(await running).toBe(0);
    expect(await again).toBe(1);
    expect(await alsoAgain).toBe(1);
    expect(c.closed).toEqual(['credential revoked']);
    expect(f.queries).toHaveLength(2);
  });

  it('a failed batch query closes nothing; the next check does', async () => {
    const f = make();
    const c = f.conn();
    f.connections.trackCaller(
      { auth: sessionAuth('ses_1'), sandboxId: 'sbx_1', minRole: 'developer' },
      c.close,
    );
    f.states.set(name('session:ses_1'), 'revoked');
    f.fail(true);
    expect(await f.connections.check()).toBe(0);
    expect(c.closed).toEqual([]);
    f.fail(false);
    expect(await f.connections.recheck()).toBe(1);
    expect(c.closed).toEqual(['credential revoked']);
  });
});
