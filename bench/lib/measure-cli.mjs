// The command line shared by the scripts that measure `coloop serve` under a tool
// (bench/instructions.js, bench/breakdown.js, bench/profile.js): options, modes, the tools they
// need, and pinning server and client to cores of their own.
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);

/** The value after `name` on the command line, or `dflt`. */
export function option(name, dflt) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
}

/** Whether `name` is on the command line. */
export function flag(name) {
  return args.includes(name);
}

/** --modes: serve (coroutine `serve`) and/or proto (`serve --protocol`). */
export function modesOption(dflt) {
  const modes = option('--modes', dflt).split(',');
  for (const m of modes) if (m !== 'serve' && m !== 'proto') throw new RangeError(`--modes takes serve and/or proto, not ${m}`);
  return modes;
}

/** Exits with a message naming the package when a tool `script` needs is missing. */
export function requireTools(script, tools, install) {
  for (const tool of tools) {
    if (spawnSync(tool, ['--version']).status !== 0) {
      console.error(`bench/${script} needs ${tool} (apt-get install ${install})`);
      process.exit(1);
    }
  }
}

const canPin = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

/** [command, argv] that runs `cmd` on `core` (taskset execs it: the pid is the command's own). */
export function pinned(core, cmd) {
  return canPin ? ['taskset', ['-c', String(core), ...cmd]] : [cmd[0], cmd.slice(1)];
}
