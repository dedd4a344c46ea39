// Nonblocking TCP calls, plain C++. Every fd is created O_NONBLOCK|O_CLOEXEC; every call returns
// a result >= 0 or -errno and never throws. Writes never raise SIGPIPE (EPIPE comes back instead).
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>

namespace coloop {

struct SocketAddress {
  sockaddr_storage storage;
  socklen_t length;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// Fills `out` from a numeric IPv4 or IPv6 host (inet_pton(3), no name lookup). False when `host`
// is neither.
bool ParseAddress(const char* host, int port, SocketAddress* out);
// The numeric host (at least INET6_ADDRSTRLEN bytes in `host`), family and port of `address`.
// False for families other than AF_INET and AF_INET6.
bool FormatAddress(const SocketAddress& address, char* host, size_t host_size, int* family,
                   int* port);

// socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen. On failure `*failed_syscall` names the
// step that failed.
int ListenTcp(const SocketAddress& address, int backlog, bool reuse_port,
              const char** failed_syscall);
// socket + TCP_NODELAY + connect. EINPROGRESS is success: the result arrives as writability and
// SocketError().
int ConnectTcp(const SocketAddress& address, const char** failed_syscall);
// accept4 with O_NONBLOCK|O_CLOEXEC; sets TCP_NODELAY on the new fd.
int AcceptTcp(int fd);
ssize_t ReadSocket(int fd, void* data, size_t length);
ssize_t WriteSocket(int fd, const void* data, size_t length);
// Gathers `count` buffers into one send (sendmsg(2), so MSG_NOSIGNAL applies as for WriteSocket).
ssize_t WriteVectorSocket(int fd, const iovec* buffers, int count);
int ShutdownSocket(int fd, int how);
int CloseSocket(int fd);
// SO_ERROR, negated: the outcome of a nonblocking connect.
int SocketError(int fd);
int LocalAddress(int fd, SocketAddress* out);
int RemoteAddress(int fd, SocketAddress* out);

}  // namespace coloop
