import * as net from 'node:net';
import { createServer, run, serve, spawn, wait, type BufferedProtocol, type Connection, type Operation, type Server, type Transport } from '../index.js';
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

/**
 * The serve() handler: one buffer per connection, reused for every message. It starts at 256 B and
 * doubles (up to 64 KiB) only when a read fills it, so 10,000 connections of small messages hold
 * 2.5 MiB of buffers (at 2 KiB they held 20 MiB, a fifth of the server's RSS at C10k), and a bulk
 * stream still reads in large gulps after a few doublings.
 */
function* echo(conn: Connection): Operation<void> {
  let buf = new Uint8Array(FIRST_BUFFER_SIZE);
  for (;;) {
    const n = yield* conn.readInto(buf);
    if (n === 0) return;
    yield* conn.write(buf, 0, n);
    if (n === buf.length && buf.length < ECHO_BUFFER_SIZE) buf = new Uint8Array(buf.length * 2);
  }
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
