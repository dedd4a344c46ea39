/** The addons under test and small socket helpers shared by the native tests. */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNative, nativeLoadError, type NativeBinding, type NativePoller } from '../../src/native.js';

const require = createRequire(import.meta.url);

/**
 * Where the addons were built: build/Release, or the directory of COLOOP_ADDON_PATH (the
 * sanitizer run points it at build/sanitize/Release, so the kqueue test addon is instrumented too).
 */
export const releaseDir = process.env.COLOOP_ADDON_PATH
  ? `${dirname(process.env.COLOOP_ADDON_PATH)}/`
  : fileURLToPath(new URL('../../build/Release/', import.meta.url));

function loadShippedAddon(): NativeBinding {
  const binding = loadNative();
  if (binding === null) throw new Error(`native addon did not load: ${nativeLoadError()?.message}`);
  return binding;
}

/** The shipped addon and, on Linux, the kqueue backend built over the epoll shim. */
export const addons: Array<[string, NativeBinding]> = [['shipped', loadShippedAddon()]];
if (process.platform === 'linux') {
  addons.push(['kqueue over shim', require(`${releaseDir}coloop_kqueue_test.node`) as NativeBinding]);
}

export const native: NativeBinding = addons[0]![1];

export interface SocketPair {
  listener: number;
  client: number;
  server: number;
  close(): void;
}

/** A loopback TCP connection: the listener, the connecting side and the accepted side. */
export async function socketPair(n: NativeBinding = native): Promise<SocketPair> {
  const listener = n.listen('127.0.0.1', 0, 16, false);
  const client = n.connect('127.0.0.1', n.localAddress(listener).port);
  let server = n.accept(listener);
  for (let tries = 0; server < 0 && tries < 200; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    server = n.accept(listener);
  }
  if (server < 0) throw new Error(`accept failed: ${server}`);
  return {
    listener,
    client,
    server,
    close() {
      for (const fd of [server, client, listener]) n.close(fd);
    },
  };
}

/** The (token, bits) pairs of the last wait, with bits ORed per token. */
export function readyTokens(poller: NativePoller, count: number): Map<number, number> {
  const ready = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    const token = poller.events[2 * i]!;
    ready.set(token, (ready.get(token) ?? 0) | poller.events[2 * i + 1]!);
  }
  return ready;
}

/** The expired timer ids of the last wait. */
export function expiredTimers(poller: NativePoller): number[] {
  return Array.from(poller.timers.subarray(1, 1 + poller.timers[0]!));
}

export function noop(): void {}
