import { lookup } from 'node:dns/promises';
import { performance } from 'node:perf_hooks';
import {
  CancelledError,
  connect,
  run,
  sleep,
  spawn,
  TimeoutError,
  withTimeout,
  type Connection,
  type Operation,
  type Task,
} from '../index.js';
import { choiceOption, intOption, nonNegativeOption, numberOption, parseOptions, stringOption, UsageError, type OptionSpec } from './args.js';
import { Histogram } from './histogram.js';
import { Progress } from './progress.js';

export const LOAD_USAGE = `usage: coloop load --port P [--host H] [--conns N] [--size B] [--duration S] [--pipeline D]
                   [--ramp R] [--rate M] [--json] [--backend native|js]

Echo load generator. Opens N connections (R per second), idle until all are open; then each
sends D messages of B bytes at a time, waits for their echo and checks every byte. After W
seconds of warm-up it counts for S seconds, then stops sending, drains what is in flight and
reports messages/s, MB/s, round-trip latency percentiles, errors and its own CPU time.

  --port P       server port                                        required
  --host H       server address                                     default 127.0.0.1
  --conns N      connections                                        default 100
  --size B       bytes per message                                  default 64
  --duration S   seconds measured (after the ramp)                  default 5
  --pipeline D   messages written back to back before reading       default 1
  --ramp R       connections opened per second                      default 4000
  --warmup W     seconds of traffic before counting starts (0: none) default 1
  --rate M       messages a second in all, on a schedule: message k is due k/M s after the
                 connections are open, and goes out on the first connection free for it
                 (default: each connection sends again as soon as its echo is back)
  --json         one JSON object on stdout instead of the table
  --backend B    native | js: the coloop backend the client runs on  default native

Exit status: 0 when every byte came back right and every connection opened; 1 on errors, connect
failures or the hard deadline (ramp + warmup + duration + 10 s); 2 on bad usage; 130 if interrupted.`;

const OPTIONS: OptionSpec = {
  port: { type: 'string' },
  host: { type: 'string' },
  conns: { type: 'string' },
  size: { type: 'string' },
  duration: { type: 'string' },
  pipeline: { type: 'string' },
  ramp: { type: 'string' },
  warmup: { type: 'string' },
  rate: { type: 'string' },
  json: { type: 'boolean' },
  backend: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export interface LoadConfig {
  host: string;
  port: number;
  conns: number;
  size: number;
  /** Seconds measured. */
  duration: number;
  pipeline: number;
  /** Connections opened per second. */
  ramp: number;
  /** Seconds of traffic, once every connection is open, before counting starts. */
  warmup: number;
  /** Messages a second in all, paced (see connection()); null: as fast as echoes come back. */
  rate: number | null;
  json: boolean;
  backend: 'native' | 'js';
}

/** What one round may hold (size × pipeline): the two buffers of each connection. */
const MAX_ROUND_BYTES = 64 * 1024 * 1024;
/** A connect that has not completed by then counts as failed. */
const CONNECT_TIMEOUT_MS = 5000;
/** After the measured time and the ramp, how long draining may take before the run is aborted. */
const DEADLINE_GRACE_S = 10;
const RAMP_TICK_MS = 5;

export function parseLoad(argv: string[]): LoadConfig | null {
  const v = parseOptions('load', argv, OPTIONS);
  if (v.help === true) {
    console.log(LOAD_USAGE);
    return null;
  }
  const config: LoadConfig = {
    host: stringOption('load', v, 'host', '127.0.0.1'),
    port: intOption('load', v, 'port', 1, 65535),
    conns: intOption('load', v, 'conns', 1, 1_000_000, 100),
    size: intOption('load', v, 'size', 1, 16 * 1024 * 1024, 64),
    duration: numberOption('load', v, 'duration', 86_400, 5),
    pipeline: intOption('load', v, 'pipeline', 1, 65_536, 1),
    ramp: numberOption('load', v, 'ramp', 10_000_000, 4000),
    warmup: nonNegativeOption('load', v, 'warmup', 3600, 1),
    rate: v.rate === undefined ? null : numberOption('load', v, 'rate', 1e8),
    json: v.json === true,
    backend: choiceOption('load', v, 'backend', ['native', 'js'] as const, 'native'),
  };
  if (config.size * config.pipeline > MAX_ROUND_BYTES) {
    throw new UsageError(`load: --size × --pipeline must be at most ${MAX_ROUND_BYTES} bytes, not ${config.size * config.pipeline}`);
  }
  return config;
}

export interface LoadReport {
  host: string;
  port: number;
  backend: 'native' | 'js';
  conns: number;
  size: number;
  pipeline: number;
  /** Seconds actually measured. */
  duration: number;
  messages: number;
  bytes: number;
  msgsPerSec: number;
  mbPerSec: number;
  latencyUs: { p50: number; p99: number; p999: number; max: number };
  errors: number;
  connsOpened: number;
  connectFailures: number;
  /** Connections open during the measured window that had no message counted in it (starved). */
  starvedConns: number;
  /** CPU (user + system) the client spent during the measured window. */
  clientCpuSec: number;
  /** Why the run ended early, if it did. */
  aborted: 'deadline' | 'interrupted' | null;
  firstError: string | null;
  /** --rate, when given (as the C client's JSON has it). */
  rate?: number;
}

/**
 * Shared by every connection task. Counters are plain numbers on one object; send times live in
 * a typed array (a double kept in a generator's frame across a yield would be boxed each round).
 */
class LoadState {
  readonly hist = new Histogram();
  readonly sentAt: Float64Array;
  /** Per connection: 1 once open, and the messages it had counted (to find starved ones). */
  readonly wasOpen: Uint8Array;
  readonly counted: Float64Array;
  /** Connections opened, failed, and connects settled either way. */
  opened = 0;
  connectFailures = 0;
  settled = 0;
  launched = 0;
  open = 0;
  /** Messages counted (sent after measureStart, echoed by measureEnd). */
  messages = 0;
  /** Every message echoed, warm-up and drain included (for progress only). */
  echoed = 0;
  errors = 0;
  firstError: string | null = null;
  startedAt = performance.now();
  measureStart = Infinity;
  measureEnd = Infinity;
  stopping = false;
  /** --rate: when the schedule began (the gate opened), and how many messages it has handed out. */
  schedStart = 0;
  schedSent = 0;
  /**
   * Settles once every connect has: the connections join it, then start sending. (A task, not a
   * promise: when it settles, all its joiners are queued for one batch.)
   */
  gate: Task<void> | null = null;
  gateOpen = false;

  constructor(readonly config: LoadConfig) {
    this.sentAt = new Float64Array(config.conns);
    this.wasOpen = new Uint8Array(config.conns);
    this.counted = new Float64Array(config.conns);
  }

  error(what: string): void {
    this.errors++;
    this.firstError ??= what;
  }

  connectFailed(err: unknown): void {
    this.connectFailures++;
    this.firstError ??= `connect: ${describeError(err)}`;
  }
}

function describeError(err: unknown): string {
  if (err instanceof TimeoutError) return `timed out after ${CONNECT_TIMEOUT_MS} ms`;
  if (err instanceof Error) {
    const code = (err as { code?: string }).code;
    return code !== undefined && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/**
 * One connection: connect, then rounds of "write `pipeline` messages, read their echo" until told
 * to stop. Buffers are allocated once; a round allocates nothing.
 */
function* connection(s: LoadState, id: number, address: string): Operation<void> {
  const { port, size, pipeline } = s.config;
  let conn: Connection;
  try {
    conn = yield* withTimeout(CONNECT_TIMEOUT_MS, connect({ host: address, port }));
  } catch (err) {
    if (err instanceof CancelledError) throw err;
    s.connectFailed(err);
    return;
  } finally {
    s.settled++;
  }
  s.opened++;
  s.open++;
  s.wasOpen[id] = 1;
  const total = size * pipeline;
  const out = Buffer.alloc(total);
  const back = Buffer.alloc(total);
  // A pattern of this connection's own (a crossed stream shows), stamped per message with a
  // counter in its first 8 bytes (so a stale or repeated echo shows too).
  for (let j = 0; j < total; j++) out[j] = (id * 131 + (j % size) * 7 + 1) & 0xff;
  // Idle until every connection is open: the ramp tests the server's accept path alone, and no
  // echo traffic slows the server down while its listen queue is filling.
  yield* s.gate!;
  const stampBytes = Math.min(8, size);
  const hist = s.hist;
  const sentAt = s.sentAt;
  const rate = s.config.rate;
  let seq = 0;
  try {
    while (!s.stopping) {
      if (rate !== null) {
        // Paced: this round's messages take the next places in the schedule (the connection
        // that has been free longest asked first), and go out when the first of them is due;
        // one already due goes out at once, so a server that falls behind is not waited for.
        const wait = s.schedStart + (s.schedSent * 1000) / rate - performance.now();
        s.schedSent += pipeline;
        if (wait > 0) yield* sleep(wait);
        if (s.stopping) break;
      }
      for (let k = 0, off = 0; k < pipeline; k++, off += size) {
        let x = seq++;
        for (let b = 0; b < stampBytes; b++) {
          out[off + b] = x & 0xff;
          x = Math.floor(x / 256);
        }
      }
      sentAt[id] = performance.now();
      yield* conn.write(out, 0, total);
      let got = 0;
      let done = 0;
      while (got < total) {
        const n = yield* conn.readInto(back, got, total - got);
        if (n === 0) {
          s.error(`connection ${id}: the server closed the connection with ${total - got} bytes of echo outstanding`);
          return;
        }
        got += n;
        const complete = (got / size) | 0;
        if (complete === done) continue;
        const now = performance.now();
        const sent = sentAt[id]!;
        const counted = sent >= s.measureStart && now <= s.measureEnd;
        for (; done < complete; done++) {
          const off = done * size;
          if (out.compare(back, off, off + size, off, off + size) !== 0) {
            s.error(`connection ${id}: message ${seq - pipeline + done} came back different (${firstDifference(out, back, off, size)})`);
          } else if (counted) {
            s.messages++;
            s.counted[id]++;
            hist.record((now - sent) * 1000);
          }
        }
      }
      s.echoed += pipeline;
    }
  } catch (err) {
    if (err instanceof CancelledError) throw err;
    s.error(`connection ${id}: ${describeError(err)}`);
  } finally {
    s.open--;
    conn.close();
  }
}

function firstDifference(out: Buffer, back: Buffer, off: number, size: number): string {
  for (let i = 0; i < size; i++) {
    if (out[off + i] !== back[off + i]) return `byte ${i}: sent ${out[off + i]}, got ${back[off + i]}`;
  }
  return 'no difference found';
}

/** Opens connections at `ramp` per second; its children are the connection tasks. */
function* launcher(s: LoadState, address: string): Operation<void> {
  const { conns, ramp } = s.config;
  const t0 = performance.now();
  while (s.launched < conns) {
    const due = Math.min(conns, Math.floor(((performance.now() - t0) * ramp) / 1000) + 1);
    while (s.launched < due) {
      yield* spawn(connection(s, s.launched, address));
      s.launched++;
    }
    if (s.launched < conns) yield* sleep(RAMP_TICK_MS);
  }
}

function* measure(s: LoadState, address: string, cpu: { start: NodeJS.CpuUsage | null; used: number }): Operation<void> {
  const { conns, duration, warmup } = s.config;
  s.gate = yield* spawn(function* (): Operation<void> {
    while (s.settled < conns) yield* sleep(RAMP_TICK_MS);
  });
  const connections = yield* spawn(launcher(s, address));
  yield* s.gate;
  s.gateOpen = true;
  s.schedStart = performance.now();
  if (s.opened > 0) {
    if (warmup > 0) yield* sleep(warmup * 1000);
    s.measureStart = performance.now();
    cpu.start = process.cpuUsage();
    yield* sleep(duration * 1000);
    s.measureEnd = performance.now();
    cpu.used = cpuSeconds(process.cpuUsage(cpu.start));
  }
  // Stop sending; each connection finishes its round (drains its echoes) and closes.
  s.stopping = true;
  yield* connections;
}

function cpuSeconds(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1e6;
}

export async function runLoad(config: LoadConfig): Promise<number> {
  let address: string;
  try {
    address = (await lookup(config.host)).address;
  } catch (err) {
    console.error(`coloop load: cannot resolve ${config.host}: ${describeError(err)}`);
    return 1;
  }
  const s = new LoadState(config);
  const rampSeconds = config.conns / config.ramp;
  const deadlineMs = Math.ceil((rampSeconds + config.warmup + config.duration + DEADLINE_GRACE_S) * 1000);
  const cpu = { start: null as NodeJS.CpuUsage | null, used: 0 };
  let aborted: LoadReport['aborted'] = null;
  let lastEchoed = 0;
  let lastAt = performance.now();
  const progress = new Progress(() => {
    const now = performance.now();
    const rate = ((s.echoed - lastEchoed) * 1000) / Math.max(1, now - lastAt);
    lastEchoed = s.echoed;
    lastAt = now;
    const errors = s.errors > 0 ? `, ${s.errors} errors` : '';
    const failed = s.connectFailures > 0 ? `, ${s.connectFailures} failed` : '';
    if (s.measureStart === Infinity && s.gateOpen) {
      return { fraction: 0, text: `warming up  ${s.open} conns${failed}  ${formatInt(rate)} msg/s${errors}` };
    }
    if (s.measureStart === Infinity) {
      return { fraction: 0, text: `connecting: ${s.opened}/${config.conns} open${failed}${errors}` };
    }
    const elapsed = Math.min(now, s.measureEnd) - s.measureStart;
    const phase = s.stopping ? 'draining' : `${(elapsed / 1000).toFixed(1)}/${config.duration} s`;
    return {
      fraction: elapsed / (config.duration * 1000),
      text: `${phase}  ${s.open} conns${failed}  ${formatInt(rate)} msg/s${errors}`,
    };
  }, config.json);

  let body: Task<void> | null = null;
  const onSignal = () => {
    aborted ??= 'interrupted';
    body?.cancel('interrupted');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // If cancellation itself were to hang, the deadline still holds.
  const failsafe = setTimeout(() => {
    progress.stop();
    aborted ??= 'deadline';
    finishReport(s, cpu, 'deadline');
    process.exit(1);
  }, deadlineMs + 5000);
  failsafe.unref();
  progress.start();
  try {
    await run(
      function* main(): Operation<void> {
        body = yield* spawn(withTimeout(deadlineMs, measure(s, address, cpu)));
        try {
          yield* body;
        } catch (err) {
          if (err instanceof TimeoutError) aborted ??= 'deadline';
          else if (!(err instanceof CancelledError && aborted !== null)) throw err;
        }
      },
      { backend: config.backend },
    );
  } finally {
    clearTimeout(failsafe);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress.stop();
  }
  const report = finishReport(s, cpu, aborted);
  if (report.aborted === 'interrupted') return 130;
  return report.aborted !== null || report.errors > 0 || report.connectFailures > 0 ? 1 : 0;
}

function finishReport(s: LoadState, cpu: { start: NodeJS.CpuUsage | null; used: number }, aborted: LoadReport['aborted']): LoadReport {
  const { config } = s;
  const now = performance.now();
  if (s.measureStart !== Infinity && s.measureEnd === Infinity) {
    // Ended early, mid-measurement: count up to now.
    s.measureEnd = now;
    if (cpu.start !== null) cpu.used = cpuSeconds(process.cpuUsage(cpu.start));
  }
  const seconds = s.measureStart === Infinity ? 0 : (s.measureEnd - s.measureStart) / 1000;
  const bytes = s.messages * config.size;
  const report: LoadReport = {
    host: config.host,
    port: config.port,
    backend: config.backend,
    conns: config.conns,
    size: config.size,
    pipeline: config.pipeline,
    duration: round(seconds, 3),
    messages: s.messages,
    bytes,
    msgsPerSec: seconds > 0 ? round(s.messages / seconds, 1) : 0,
    mbPerSec: seconds > 0 ? round(bytes / 1e6 / seconds, 3) : 0,
    latencyUs: {
      p50: s.hist.quantile(0.5),
      p99: s.hist.quantile(0.99),
      p999: s.hist.quantile(0.999),
      max: s.hist.max,
    },
    errors: s.errors,
    connsOpened: s.opened,
    connectFailures: s.connectFailures + (config.conns - s.settled),
    starvedConns: seconds > 0 ? starved(s) : 0,
    clientCpuSec: round(cpu.used, 3),
    aborted,
    firstError: s.firstError,
    ...(config.rate === null ? {} : { rate: config.rate }),
  };
  if (config.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(formatReport(report));
  return report;
}

function starved(s: LoadState): number {
  let n = 0;
  for (let i = 0; i < s.config.conns; i++) if (s.wasOpen[i] === 1 && s.counted[i] === 0) n++;
  return n;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function formatInt(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

export function formatReport(r: LoadReport): string {
  const lines = [
    `coloop load: ${r.host}:${r.port}, ${r.conns} conns × ${r.size} B, pipeline ${r.pipeline}${r.rate === undefined ? '' : `, paced at ${formatInt(r.rate)} msg/s`}, ${r.duration.toFixed(2)} s measured (client backend ${r.backend})`,
    `  messages      ${formatInt(r.messages).padStart(12)}   ${formatInt(r.msgsPerSec)} msg/s`,
    `  throughput    ${r.mbPerSec.toFixed(2).padStart(12)}   MB/s of echoed payload`,
    `  latency (µs)  p50 ${formatInt(r.latencyUs.p50)}   p99 ${formatInt(r.latencyUs.p99)}   p99.9 ${formatInt(r.latencyUs.p999)}   max ${formatInt(r.latencyUs.max)}`,
    `  errors        ${formatInt(r.errors).padStart(12)}`,
    `  connections   ${formatInt(r.connsOpened).padStart(12)}   opened, ${formatInt(r.connectFailures)} failed${r.starvedConns > 0 ? `, ${formatInt(r.starvedConns)} starved (no echo counted)` : ''}`,
    `  client CPU    ${r.clientCpuSec.toFixed(2).padStart(12)}   s${r.duration > 0 ? ` (${Math.round((r.clientCpuSec / r.duration) * 100)}% of one core)` : ''}`,
  ];
  if (r.firstError !== null) lines.push(`  first error   ${r.firstError}`);
  if (r.aborted === 'deadline') lines.push('  ABORTED: the hard deadline (ramp + warmup + duration + 10 s) passed before the run finished');
  if (r.aborted === 'interrupted') lines.push('  INTERRUPTED: ended early by a signal');
  return `${lines.join('\n')}\n`;
}
