import { constants } from 'node:os';

/** Negative errno values as the backends return them, for this platform. */
const errno = constants.errno;
export const EAGAIN = -errno.EAGAIN;
export const EINTR = -errno.EINTR;
export const EMFILE = -errno.EMFILE;
export const ENFILE = -errno.ENFILE;
export const ENOBUFS = -errno.ENOBUFS;
export const ENOMEM = -errno.ENOMEM;

/**
 * accept(2) errors that concern only the connection being accepted: a reset before it was taken, a
 * signal, or the pending network errors Linux passes on (ENETDOWN, EPROTO, ENOPROTOOPT, EHOSTDOWN,
 * ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH; EPERM from a firewall rule). Retry at once.
 */
export const RETRY_ACCEPT: ReadonlySet<number> = new Set(
  ['ECONNABORTED', 'EINTR', 'EPROTO', 'ENETDOWN', 'ENOPROTOOPT', 'EHOSTDOWN', 'ENONET', 'EHOSTUNREACH', 'EOPNOTSUPP', 'ENETUNREACH', 'EPERM']
    .map((name) => (errno as Record<string, number | undefined>)[name])
    .filter((value): value is number => value !== undefined)
    .map((value) => -value),
);
