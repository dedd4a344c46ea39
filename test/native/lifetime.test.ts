/**
 * How pollers live with Node's event loop: what keeps a process alive, what happens when they are
 * collected, closed from their own callback, or torn down with a worker thread. Scenarios that could
 * hang or abort a process run in a child process and are judged by its exit code.
 */
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { addons, releaseDir } from './addons.js';

const addonFiles: Array<[string, string]> = addons.map(([name], i) => [
  name,
  `${releaseDir}${i === 0 ? 'coloop' : 'coloop_kqueue_test'}.node`,
]);

/** Runs CommonJS `body` in a fresh node with `n` bound to the addon; returns status and output. */
function runChild(addonFile: string, body: string, flags: string[] = []) {
  const script = `const n = require(${JSON.stringify(addonFile)});\n${body}`;
  const result = spawnSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8', timeout: 15_000 });
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

describe.each(addonFiles)('Poller lifetime (%s)', (_name, addonFile) => {
  it('an idle poller does not keep the process alive', () => {
    const child = runChild(
      addonFile,
      `
      const p = new n.Poller(() => p.wait(0));
      const fd = n.listen('127.0.0.1', 0, 1, false);
      p.add(fd, 1);
      p.remove(fd);
      n.close(fd);
      p.cancelTimer(p.addTimer(60_000));
      globalThis.keep = p;
      `,
    );
    expect(child).toMatchObject({ status: 0, signal: null, stderr: '' });
  });

  it('a pending timer keeps the process alive until it fires', () => {
    const child = runChild(
      addonFile,
      `
      const p = new n.Poller(() => {
        p.wait(0);
        if (p.timers[0] > 0) process.stdout.write('fired ' + p.timers[1]);
      });
      p.addTimer(50);
      `,
    );
    expect(child).toMatchObject({ status: 0, signal: null, stdout: 'fired 0' });
  });

  it('a registered fd keeps the process alive until it is removed', () => {
    const child = runChild(
      addonFile,
      `
      const p = new n.Poller(() => p.wait(0));
      const fd = n.listen('127.0.0.1', 0, 1, false);
      p.add(fd, 1);
      // Unref'd: only the poller can keep the process alive long enough for this to run.
      setTimeout(() => {
        process.stdout.write('still alive');
        p.remove(fd);
        n.close(fd);
      }, 100).unref();
      `,
    );
    expect(child).toMatchObject({ status: 0, signal: null, stdout: 'still alive' });
  });

  it('releases the fds and handles of pollers collected without close()', () => {
    const child = runChild(
      addonFile,
      `
      const fs = require('node:fs');
      const fds = () => fs.readdirSync('/proc/self/fd').length;
      const before = fds();
      for (let i = 0; i < 500; i++) new n.Poller(() => {});
      (async () => {
        for (let i = 0; i < 10 && fds() > before + 10; i++) {
          globalThis.gc();
          await new Promise((resolve) => setImmediate(resolve));
        }
        process.stdout.write(String(fds() - before));
      })();
      `,
      ['--expose-gc'],
    );
    expect(child.status).toBe(0);
    expect(Number(child.stdout)).toBeLessThanOrEqual(10);
  });

  it("a poller's wait function kept after the poller is collected throws ERR_POLLER_CLOSED", () => {
    // wait is a function bound to its poller (no napi_unwrap per call): it must never reach a
    // poller that is gone. Collection is checked through a WeakRef, so the test cannot pass vacuously.
    const child = runChild(
      addonFile,
      `
      let p = new n.Poller(() => {});
      const wait = p.wait;
      const gone = new WeakRef(p);
      if (wait(0) !== 0 || wait.call(undefined, 0) !== 0) throw new Error('wait did not work on its own');
      p = null;
      (async () => {
        // A deref() keeps its target alive to the end of the job: never in the same job as gc().
        const tick = () => new Promise((resolve) => setImmediate(resolve));
        for (let i = 0; i < 20; i++) {
          await tick();
          globalThis.gc();
          await tick();
          if (gone.deref() === undefined) break;
        }
        let code = 'no error';
        try { wait(0); } catch (error) { code = error.code; }
        process.stdout.write((gone.deref() === undefined ? 'collected ' : 'alive ') + code);
      })();
      `,
      ['--expose-gc'],
    );
    expect(child).toMatchObject({ status: 0, signal: null, stdout: 'collected ERR_POLLER_CLOSED' });
  });

  it('over V8-owned arrays (a runtime that refuses external buffers), refuses to write into a transferred one', () => {
    // Those can be detached, their memory freed or moved: wait() and enableReadAhead() check first.
    const child = spawnSync(
      process.execPath,
      [
        '-e',
        `
        const n = require(${JSON.stringify(addonFile)});
        const out = [];
        for (const pick of [(p) => p.events, (p) => p.timers, (p) => p.enableReadAhead(4).wants, (p) => p.enableReadAhead(4).results]) {
          const p = new n.Poller(() => {});
          const array = pick(p);
          structuredClone(array.buffer, { transfer: [array.buffer] });
          const detached = array.buffer.byteLength === 0;
          try { p.wait(0); out.push(detached + ' no error'); } catch (error) { out.push(detached + ' ' + error.code); }
          p.close();
        }
        process.stdout.write(out.join(','));
        `,
      ],
      { encoding: 'utf8', timeout: 15_000, env: { ...process.env, COLOOP_POLLER_V8_ARRAYS: '1' } },
    );
    expect(child.stderr).toBe('');
    expect(child.stdout).toBe(Array(4).fill('true ERR_INVALID_STATE').join(','));
  });

  it('reports an exception thrown by onWake as an uncaught exception', () => {
    const child = runChild(
      addonFile,
      `
      const p = new n.Poller(() => { p.wait(0); throw new Error('boom from onWake'); });
      process.on('uncaughtException', (error) => {
        process.stdout.write('caught ' + error.message);
        p.close();
      });
      p.addTimer(1);
      `,
    );
    expect(child).toMatchObject({ status: 0, signal: null, stdout: 'caught boom from onWake' });
  });

  it('survives close() from inside onWake with events and timers still pending', () => {
    const child = runChild(
      addonFile,
      `
      const listener = n.listen('127.0.0.1', 0, 4, false);
      const client = n.connect('127.0.0.1', n.localAddress(listener).port);
      let wakes = 0;
      const p = new n.Poller(() => {
        wakes++;
        p.close();
        setTimeout(() => {
          n.close(client);
          n.close(listener);
          process.stdout.write('wakes ' + wakes);
        }, 20);
      });
      p.add(client, 1);
      p.add(listener, 2);
      for (let i = 0; i < 10; i++) p.addTimer(0);
      `,
    );
    expect(child).toMatchObject({ status: 0, signal: null, stdout: 'wakes 1' });
  });

  it('two worker threads each run a timer and a socket echo, then exit cleanly', async () => {
    // Tokens: 1 the listener, 2 the client, 3 the accepted side (which echoes what it reads).
    const workerCode = `
      const { workerData, parentPort } = require('node:worker_threads');
      const n = require(workerData.addonFile);
      const listener = n.listen('127.0.0.1', 0, 4, false);
      const client = n.connect('127.0.0.1', n.localAddress(listener).port);
      const message = Buffer.from('echo from worker ' + workerData.index);
      const buf = Buffer.alloc(64);
      let server = -1;
      let sent = false;
      let echoed = '';
      let timerFired = false;
      const p = new n.Poller(() => {
        const count = p.wait(0);
        if (p.timers[0] > 0) timerFired = true;
        for (let i = 0; i < count; i++) {
          const token = p.events[2 * i];
          if (token === 1 && server < 0) {
            server = n.accept(listener);
            if (server >= 0) p.add(server, 3);
          } else if (token === 2) {
            if (!sent) sent = n.write(client, message, 0, message.length) === message.length;
            const got = n.read(client, buf, 0, buf.length);
            if (got > 0) echoed += buf.toString('utf8', 0, got);
          } else if (token === 3) {
            const got = n.read(server, buf, 0, buf.length);
            if (got > 0) n.write(server, buf, 0, got);
          }
        }
        if (timerFired && echoed === message.toString()) {
          for (const fd of [client, server, listener]) {
            p.remove(fd);
            n.close(fd);
          }
          p.close();
          parentPort.postMessage({ echoed, timerFired });
        }
      });
      p.add(listener, 1);
      p.add(client, 2);
      p.addTimer(10);
    `;
    const runs = [0, 1].map(
      (index) =>
        new Promise<{ code: number; message: unknown }>((resolve, reject) => {
          const worker = new Worker(workerCode, { eval: true, workerData: { addonFile, index } });
          let message: unknown;
          worker.on('message', (m) => (message = m));
          worker.on('error', reject);
          worker.on('exit', (code) => resolve({ code, message }));
        }),
    );
    const results = await Promise.all(runs);
    expect(results).toEqual([
      { code: 0, message: { echoed: 'echo from worker 0', timerFired: true } },
      { code: 0, message: { echoed: 'echo from worker 1', timerFired: true } },
    ]);
  });

  it('a worker terminated with a busy poller tears down without aborting the process', () => {
    const child = runChild(
      addonFile,
      `
      const { Worker } = require('node:worker_threads');
      const worker = new Worker(\`
        const n = require(\${JSON.stringify(${JSON.stringify(addonFile)})});
        const p = new n.Poller(() => p.wait(0));
        p.add(n.listen('127.0.0.1', 0, 1, false), 1);
        p.addTimer(60_000);
        require('node:worker_threads').parentPort.postMessage('ready');
      \`, { eval: true });
      worker.on('message', () => worker.terminate());
      worker.on('exit', (code) => process.stdout.write('worker exit ' + code));
      `,
    );
    expect(child).toMatchObject({ status: 0, signal: null, stdout: 'worker exit 1' });
  });
});
