export type { Operation, OperationSource } from './operation.js';
export { Task, type TaskState } from './task.js';
export { Loop, Handle, run, type LoopOptions, type BackendName } from './loop.js';
export { sleep, yieldNow, spawn, wait, call } from './primitives.js';
export { all, race, withTimeout } from './combinators.js';
export { CancelledError, TimeoutError, type SystemError } from './errors.js';
export { listen, connect, serve, Server, type ListenOptions, type ConnectOptions, type ServeOptions } from './net/server.js';
export { Connection, sharedBuffer } from './net/connection.js';
export { createServer, Transport, type Protocol, type BufferedProtocol, type CreateServerOptions } from './net/protocol.js';
