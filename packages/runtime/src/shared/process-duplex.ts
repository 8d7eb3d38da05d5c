import { Duplex, type Readable, type Writable } from 'node:stream';

/** A helper process that relays one TCP connection through its stdin and stdout. */
export interface RelayProcess {
  stdin: Writable;
  stdout: Readable;
  /** Ends the relay (and so the connection). */
  kill(): void;
  /** Settles once the relay has exited and its stdio is closed. */
  exited: Promise<unknown>;
}

/**
 * The connection a relay process carries, as one Duplex. Built by hand, not with
 * `Duplex.from({readable, writable})`: that one is destroyed ("Premature close") as soon as the
 * relay's stdin closes, which happens when the app inside answers and closes at once — and the
 * answer, still unread in stdout, was lost (about 1 in 11 short exchanges under load).
 *
 * Here every byte the relay wrote is delivered and then `end`; writes after the relay is gone
 * are dropped like bytes sent to a closed TCP peer (the read side's end already says so), never
 * an error that would discard unread data; once the relay has exited and the reader has seen
 * `end`, the stream closes. `destroy()` kills the relay. `first` is output read before.
 */
export function relayDuplex(relay: RelayProcess, first?: Buffer): Duplex {
  const { stdin, stdout } = relay;
  let exited = false;
  const duplex = new Duplex({
    read() {
      stdout.resume();
    },
    write(chunk, encoding, callback) {
      if (exited || !stdin.writable) return callback();
      stdin.write(chunk, encoding, () => callback());
    },
    final(callback) {
      if (exited || !stdin.writable) return callback();
      stdin.end(() => callback());
    },
    destroy(err, callback) {
      if (!exited) relay.kill();
      callback(err);
    },
  });
  stdin.on('error', () => undefined);
  if (first && first.length > 0) duplex.push(first);
  stdout.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) stdout.pause();
  });
  stdout.on('end', () => duplex.push(null));
  void relay.exited.then(() => {
    exited = true;
    if (duplex.readableEnded) duplex.destroy();
    else duplex.once('end', () => duplex.destroy());
  });
  return duplex;
}
