import { getSystemErrorName } from 'node:util';

/** Thrown into a task at its suspension point when it is cancelled. */
export class CancelledError extends Error {
  override name = 'CancelledError';
  constructor(reason?: string) {
    super(reason === undefined ? 'task cancelled' : `task cancelled: ${reason}`);
  }
}

/** Thrown by `withTimeout` when the inner operation did not finish in time. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
  constructor(ms: number) {
    super(`operation timed out after ${ms} ms`);
  }
}

/** A system call failure shaped like Node's own (`code`, `errno`, `syscall`). */
export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
  address?: string;
  port?: number;
}

/** Turns a negative errno from the addon into the Error Node itself would throw. */
export function errnoError(errno: number, syscall: string, address?: string, port?: number): SystemError {
  let code: string;
  try {
    code = getSystemErrorName(errno);
  } catch {
    code = `E${-errno}`;
  }
  const where = address === undefined ? '' : port === undefined ? ` ${address}` : ` ${address}:${port}`;
  const err = new Error(`${syscall} ${code}${where}`) as SystemError;
  err.code = code;
  err.errno = errno;
  err.syscall = syscall;
  if (address !== undefined) err.address = address;
  if (port !== undefined) err.port = port;
  return err;
}

/** A short, safe description of any value, for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (typeof value === 'object') {
    const ctor = (value as { constructor?: { name?: string } }).constructor?.name;
    if (typeof (value as PromiseLike<unknown>).then === 'function') return `a ${ctor ?? 'thenable'} (use wait(promise) to suspend on it)`;
    return ctor ? `a ${ctor} object` : 'an object';
  }
  if (typeof value === 'bigint') return `${value}n`;
  return String(value);
}

/** An Error with a Node-style `code`, for misuse of a socket (not a system call failure). */
export function socketStateError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}
