import * as net from 'node:net';
import { createServer, run, serve, sharedBuffer, spawn, wait, type BufferedProtocol, type Connection, type Operation, type Server, type Transport } from '../index.js';
import { choiceOption, intOption, parseOptions, stringOption, UsageError, type OptionSpec } from './args.js';

export const SERVE_USAGE = `usage: coloop serve --port P [--host H] [--backend native|js|node] [--protocol]
                    [--node-mode pipe|data] [--backlog N]

An echo server. Prints "listening on HOST:PORT (backend X)" once listening (port 0: a free port),
runs until SIGINT or SIGTERM, then closes and exits 0.

  --port P        port to listen on (0 picks a free one)            required
  --host H        address to bind                                   default 127.0.0.1
  --backend B     native | js (coloop) | node (node:net)            default native
  --protocol      coloop: a BufferedProtocol echo via createServer() (no task per connection)
  --node-mode M   node backend: pipe (socket.pipe(socket)) | data (on('data') write)  default pipe
  --backlog N     listen backlog                                    default 511`;

const OPTIONS: OptionSpec = {
  port: { type: 'string' },
  host: { type: 'string' },
  backend: { type: 'string' },
  protocol: { type: 'boolean' },
  'node-mode': { type: 'string' },
  backlog: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export interface ServeConfig {
  host: string;
  port: number;
  backend: 'native' | 'js' | 'node';
  protocol: boolean;
  nodeMode: 'pipe' | 'data';
  backlog: number;
}

/** Parses `coloop serve` arguments; null when --help was asked for (usage printed). */
export function parseServe(argv: string[]): ServeConfig | null {
  const v = parseOptions('serve', argv, OPTIONS);
  if (v.help === true) {
    console.log(SERVE_USAGE);
    return null;
  }
  const backend = choiceOption('serve', v, 'backend', ['native', 'js', 'node'] as const, 'native');
  const protocol = v.protocol === true;
  if (protocol && backend === 'node') throw new UsageError('serve: --protocol is for the native and js backends, not node');
  if (v['node-mode'] !== undefined && backend !== 'node') throw new UsageError('serve: --node-mode is for --backend node only');
  return {
    host: stringOption('serve', v, 'host', '127.0.0.1'),
    port: intOption('serve', v, 'port', 0, 65535),
    backend,
    protocol,
    nodeMode: choiceOption('serve', v, 'node-mode', ['pipe', 'data'] as const, 'pipe'),
    backlog: intOption('serve', v, 'backlog', 1, 1 << 20, 511),
  };
}

/** Resolves on the first SIGINT or SIGTERM. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/** Connection errors (a client reset, say) are expected under load: the first few are logged. */
const MAX_LOGGED_ERRORS = 5;
let connectionErrors = 0;
function connectionError(err: unknown): void {
  connectionErrors++;
  if (connectionErrors > MAX_LOGGED_ERRORS) return;
  const what = err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err);
  console.error(`coloop serve: connection error: ${what}${connectionErrors === MAX_LOGGED_ERRORS ? ' (further connection errors are counted, not logged)' : ''}`);
}

function reportErrorsAtExit(): void {
  if (connectionErrors > MAX_LOGGED_ERRORS) console.error(`coloop serve: ${connectionErrors} connection errors in all`);
}

const ECHO_BUFFER_SIZE = 64 * 1024;
const FIRST_BUFFER_SIZE = 256;
/** A connection whose reads fill a buffer this large is a bulk stream: it moves to sharedBuffer. */
const OWN_BUFFER_LIMIT = 2 * 1024;

/**
 * The serve() handler. A connection starts with a buffer of its own, 256 B, doubled whenever a
 * read fills it: small messages are read ahead straight into it, with nothing to copy. A stream
 * that fills 2 KiB is bulk, and moves to the one `sharedBuffer` (a write that must wait copies
 * what it has not sent): one cache-hot 64 KiB instead of up to 64 KiB per connection, for one
 * copy of what a poll read ahead. Measured side by side (`bench/echo/suite.js --baseline`, median
 * of the per-round ratios of server CPU per message), every connection on sharedBuffer against
 * every one on its own buffer: 100 x 16 KiB 0.93, 10,000 x 64 B 0.96, but 100 x 64 B 1.01 and
 * with 8 in flight 1.01-1.04 (the copy and its bookkeeping: ~390 more user-space instructions a
 * read). Sharing only past 2 KiB: 100 x 16 KiB 0.88-0.92, the small cases unchanged. (Also
 * sharing once own buffers passed 1 MiB in all, as at C10k, did not move 10,000 x 64 B: 1.00.)
 */
function* echo(conn: Connection): Operation<void> {
  let buf = ownBuffer(FIRST_BUFFER_SIZE);
  for (;;) {
    const n = yield* conn.readInto(buf);
    if (n === 0) return;
    yield* conn.write(buf, 0, n);
    if (n === buf.length && buf !== sharedBuffer) buf = buf.length < OWN_BUFFER_LIMIT ? ownBuffer(buf.length * 2) : sharedBuffer;
  }
}

/**
 * Own buffers are views carved from 64 KiB slabs, one after another. `new Uint8Array(256)` would
 * bring an ArrayBuffer and a native backing store of its own with it: at 10,000 connections that
 * was ~250 B more per connection than the view alone. A slab is freed only once every view into
 * it is: one long-lived connection keeps its whole slab, so a server with heavy churn among
 * long-lived idle connections could hold up to 64 KiB per such connection. Fine for this echo
 * (a load run's connections live and die together); a long-running server with churn would want
 * sharedBuffer or buffers of its own.
 */
const SLAB_SIZE = 64 * 1024;
let slab = new ArrayBuffer(SLAB_SIZE);
let slabUsed = 0;
function ownBuffer(size: number): Uint8Array {
  if (slabUsed + size > SLAB_SIZE) {
    slab = new ArrayBuffer(SLAB_SIZE);
    slabUsed = 0;
  }
  const buf = new Uint8Array(slab, slabUsed, size);
  slabUsed += size;
  return buf;
}

/**
 * The createServer() echo. One read buffer shared by every connection: the transport reads into
 * it and calls bufferUpdated at once, and write() copies whatever the kernel does not take, so
 * the buffer is free again when bufferUpdated returns.
 */
const sharedReadBuffer = new Uint8Array(ECHO_BUFFER_SIZE);
class EchoProtocol implements BufferedProtocol {
  private transport: Transport | null = null;
  connectionMade(transport: Transport): void {
    this.transport = transport;
  }
  getBuffer(): Uint8Array {
    return sharedReadBuffer;
  }
  bufferUpdated(n: number): void {
    this.transport!.write(sharedReadBuffer, 0, n);
  }
}

function listening(config: ServeConfig, host: string, port: number): void {
  const label = config.backend + (config.protocol ? ', protocol' : config.backend === 'node' ? `, ${config.nodeMode}` : '');
  const shown = host.includes(':') ? `[${host}]` : host;
  process.stdout.write(`listening on ${shown}:${port} (backend ${label})\n`);
}

export async function runServe(config: ServeConfig): Promise<number> {
  const signalled = untilSignal();
  if (config.backend === 'node') return serveNode(config, signalled);
  await run(
    function* main(): Operation<void> {
      let server: Server | null = null;
      // The server and every connection task live in `scope`: cancelling it ends them all.
      const scope = yield* spawn(function* (): Operation<void> {
        const options = { host: config.host, port: config.port, backlog: config.backlog, onError: connectionError };
        server = config.protocol ? yield* createServer(() => new EchoProtocol(), options) : yield* serve(options, echo);
        listening(config, server.address, server.port);
      });
      yield* wait(signalled);
      (server as Server | null)?.close();
      scope.cancel('shutting down');
      // Cancelled, the scope's own outcome is a CancelledError: the join only waits for cleanup.
      yield* wait(scope.then(undefined, () => undefined));
    },
    { backend: config.backend, onError: (err) => console.error(`coloop serve: ${err instanceof Error ? err.stack : String(err)}`) },
  );
  reportErrorsAtExit();
  return 0;
}

async function serveNode(config: ServeConfig, signalled: Promise<NodeJS.Signals>): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', connectionError);
    socket.on('close', () => sockets.delete(socket));
    if (config.nodeMode === 'pipe') socket.pipe(socket);
    else socket.on('data', (data) => socket.write(data));
  });
  // Accept errors (EMFILE, ...) are reported on the server: logged, never fatal (libuv keeps listening).
  let listeningYet = false;
  const failedToListen = new Promise<Error>((resolve) => {
    server.on('error', (err) => {
      if (!listeningYet) resolve(err);
      else connectionError(err);
    });
  });
  const ready = new Promise<void>((resolve) => server.listen({ host: config.host, port: config.port, backlog: config.backlog }, resolve));
  const first = await Promise.race([ready.then(() => null), failedToListen]);
  if (first !== null) throw first;
  listeningYet = true;
  const address = server.address() as net.AddressInfo;
  listening(config, address.address, address.port);
  await signalled;
  server.close();
  for (const socket of sockets) socket.destroy();
  reportErrorsAtExit();
  return 0;
}
