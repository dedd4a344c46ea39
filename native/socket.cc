#include "socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/syscall.h>
#endif

#include <cerrno>
#include <cstring>

namespace coloop {

namespace {

// Linux and FreeBSD create sockets nonblocking and close-on-exec atomically, and suppress SIGPIPE
// per send (send(2), MSG_NOSIGNAL). macOS has neither: flags are set after the fact, and SIGPIPE
// is turned off per socket with SO_NOSIGPIPE. Whole functions differ, never function bodies.
#if defined(SOCK_NONBLOCK) && defined(MSG_NOSIGNAL)

constexpr int kSendFlags = MSG_NOSIGNAL;

int OpenStreamSocket(int family) {
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}

int AcceptNonblocking(int fd) {
  int client = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  return client < 0 ? -errno : client;
}

#else

constexpr int kSendFlags = 0;

// Makes a fresh fd nonblocking, close-on-exec and SIGPIPE-free, or closes it.
int PrepareFd(int fd) {
  int one = 1;
  if (fd < 0) return -errno;
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 || fcntl(fd, F_SETFL, O_NONBLOCK) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0) {
    int err = -errno;
    ::close(fd);
    return err;
  }
  return fd;
}

int OpenStreamSocket(int family) { return PrepareFd(socket(family, SOCK_STREAM, 0)); }

// A fork+exec in another thread between accept and fcntl can inherit the fd; macOS offers no
// atomic alternative.
int AcceptNonblocking(int fd) { return PrepareFd(accept(fd, nullptr, nullptr)); }

#endif

int SetOption(int fd, int level, int name) {
  int one = 1;
  return setsockopt(fd, level, name, &one, sizeof one) == 0 ? 0 : -errno;
}

// Closes `fd` after a failed setup step, keeping that step's error.
int Abandon(int fd, int err) {
  ::close(fd);
  return err;
}

}  // namespace

bool ParseAddress(const char* host, int port, SocketAddress* out) {
  std::memset(out, 0, sizeof *out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out->storage);
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    out->length = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    out->length = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

bool FormatAddress(const SocketAddress& address, char* host, size_t host_size, int* family,
                   int* port) {
  const sockaddr* base = address.get();
  if (base->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(base);
    *family = AF_INET;
    *port = ntohs(v4->sin_port);
    return inet_ntop(AF_INET, &v4->sin_addr, host, static_cast<socklen_t>(host_size)) != nullptr;
  }
  if (base->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(base);
    *family = AF_INET6;
    *port = ntohs(v6->sin6_port);
    return inet_ntop(AF_INET6, &v6->sin6_addr, host, static_cast<socklen_t>(host_size)) != nullptr;
  }
  return false;
}

int ListenTcp(const SocketAddress& address, int backlog, bool reuse_port,
              const char** failed_syscall) {
  *failed_syscall = "socket";
  int fd = OpenStreamSocket(address.get()->sa_family);
  if (fd < 0) return fd;
  *failed_syscall = "setsockopt";
  // SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT (socket(7)).
  int err = SetOption(fd, SOL_SOCKET, SO_REUSEADDR);
  if (err == 0 && reuse_port) err = SetOption(fd, SOL_SOCKET, SO_REUSEPORT);
  if (err != 0) return Abandon(fd, err);
  *failed_syscall = "bind";
  if (bind(fd, address.get(), address.length) != 0) return Abandon(fd, -errno);
  *failed_syscall = "listen";
  if (listen(fd, backlog) != 0) return Abandon(fd, -errno);
  return fd;
}

int ConnectTcp(const SocketAddress& address, const char** failed_syscall) {
  *failed_syscall = "socket";
  int fd = OpenStreamSocket(address.get()->sa_family);
  if (fd < 0) return fd;
  // Echo-style request/response traffic must not wait for Nagle's algorithm (tcp(7)).
  *failed_syscall = "setsockopt";
  int err = SetOption(fd, IPPROTO_TCP, TCP_NODELAY);
  if (err != 0) return Abandon(fd, err);
  *failed_syscall = "connect";
  if (connect(fd, address.get(), address.length) != 0 && errno != EINPROGRESS) {
    return Abandon(fd, -errno);
  }
  return fd;
}

int AcceptTcp(int fd) {
  int client;
  do {
    client = AcceptNonblocking(fd);
  } while (client == -EINTR);
  if (client < 0) return client;
  // Accepted sockets do not inherit TCP_NODELAY on every platform, so set it on each one. A
  // failure here only costs latency; the connection is still good.
  SetOption(client, IPPROTO_TCP, TCP_NODELAY);
  return client;
}

#if defined(__linux__)

// The system calls themselves, without libc's wrappers around read(2) and send(2): those are
// pthread cancellation points, and in a process with threads (Node's) each call enables and
// disables asynchronous cancellation around the system call, ~60 instructions a call of the ~90
// a wrapper costs (callgrind, bench/breakdown.js). coloop never cancels a thread.
ssize_t SystemRead(int fd, void* data, size_t length) { return syscall(SYS_read, fd, data, length); }
ssize_t SystemSend(int fd, const void* data, size_t length, int flags) {
  return syscall(SYS_sendto, fd, data, length, flags, nullptr, 0);
}

#else

ssize_t SystemRead(int fd, void* data, size_t length) { return ::read(fd, data, length); }
ssize_t SystemSend(int fd, const void* data, size_t length, int flags) { return ::send(fd, data, length, flags); }

#endif

ssize_t ReadSocket(int fd, void* data, size_t length) {
  ssize_t n;
  do {
    n = SystemRead(fd, data, length);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

ssize_t WriteSocket(int fd, const void* data, size_t length) {
  ssize_t n;
  do {
    n = SystemSend(fd, data, length, kSendFlags);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

ssize_t WriteVectorSocket(int fd, const iovec* buffers, int count) {
  msghdr message{};
  message.msg_iov = const_cast<iovec*>(buffers);
  message.msg_iovlen = static_cast<decltype(message.msg_iovlen)>(count);
  ssize_t n;
  do {
    n = ::sendmsg(fd, &message, kSendFlags);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

int ShutdownSocket(int fd, int how) { return ::shutdown(fd, how) == 0 ? 0 : -errno; }

int CloseSocket(int fd) {
  // close(2): after EINTR the fd is already released on Linux (and its state is unspecified
  // elsewhere); retrying could close an fd another thread just opened. Report success.
  if (::close(fd) == 0 || errno == EINTR) return 0;
  return -errno;
}

int SocketError(int fd) {
  int error = 0;
  socklen_t length = sizeof error;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return -errno;
  return -error;
}

int LocalAddress(int fd, SocketAddress* out) {
  out->length = sizeof out->storage;
  return getsockname(fd, reinterpret_cast<sockaddr*>(&out->storage), &out->length) == 0 ? 0 : -errno;
}

int RemoteAddress(int fd, SocketAddress* out) {
  out->length = sizeof out->storage;
  return getpeername(fd, reinterpret_cast<sockaddr*>(&out->storage), &out->length) == 0 ? 0 : -errno;
}

}  // namespace coloop
