#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { UsageError } from './cli/args.js';
import { LOAD_USAGE, parseLoad, runLoad } from './cli/load.js';
import { parseServe, runServe, SERVE_USAGE } from './cli/serve.js';

const USAGE = `usage: coloop <command> [options]

commands:
  serve   an echo server (coloop native or js backend, or node:net)
  load    an echo load generator: throughput, latency percentiles, byte-exact checks
  bench   the echo benchmark matrix (bench/echo/suite.js: --headline, --smoke, --help for more)

\`coloop <command> --help\` describes a command's options.`;

const USAGES: Record<string, string> = { serve: SERVE_USAGE, load: LOAD_USAGE };

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError('a command is required');
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (command === 'serve') {
    const config = parseServe(rest);
    return config === null ? 0 : runServe(config);
  }
  if (command === 'load') {
    const config = parseLoad(rest);
    return config === null ? 0 : runLoad(config);
  }
  if (command === 'bench') return runBench(rest);
  throw new UsageError(`unknown command '${command}'`);
}

/** `coloop bench [args]`: the echo suite, in a process of its own, with this terminal. */
function runBench(args: string[]): Promise<number> {
  const suite = fileURLToPath(new URL('../bench/echo/suite.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [suite, ...args], { stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128 + (osConstants.signals[signal] ?? 0))));
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Exit once stdout is flushed: a lingering handle (a socket still closing) must not keep a
    // finished command alive.
    process.stdout.write('', () => process.exit(code));
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      const command = /^(\w+):/.exec(err.message)?.[1];
      const usage = command !== undefined ? USAGES[command] : undefined;
      console.error(`coloop: ${err.message}`);
      console.error((usage ?? USAGE).split('\n\n')[0]);
      console.error(`(coloop ${command ?? ''}${command ? ' ' : ''}--help for more)`);
      process.exit(2);
    }
    const e = err as { code?: string; message?: string };
    console.error(`coloop: ${e?.code !== undefined && !String(e.message).includes(e.code) ? `${e.code}: ` : ''}${e?.message ?? String(err)}`);
    process.exit(1);
  },
);
