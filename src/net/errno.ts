import { constants } from 'node:os';

/** Negative errno values as the backends return them, for this platform. */
const errno = constants.errno;
export const EAGAIN = -errno.EAGAIN;
export const EINTR = -errno.EINTR;
export const EMFILE = -errno.EMFILE;
export const ENFILE = -errno.ENFILE;
export const ENOBUFS = -errno.ENOBUFS;
export const ENOMEM = -errno.ENOMEM;
export const ECONNABORTED = -errno.ECONNABORTED;
export const EPROTO = -errno.EPROTO;
