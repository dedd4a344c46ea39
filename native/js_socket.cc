// The socket functions exported to JS: argument checks around socket.cc.
//
// Hot-path calls (accept, read, write, shutdown, close, socketError) return a negative errno for
// the failures a correct program meets (EAGAIN, ECONNRESET, EPIPE, ...). EBADF and ENOTSOCK can
// only come from a bug in the caller, so they are thrown, as are all failures of listen/connect
// and of the address lookups, which are not on the hot path.
#include <netinet/in.h>

#include <cerrno>
#include <cmath>
#include <string>

#include "js_args.h"
#include "js_exports.h"
#include "socket.h"

namespace coloop {

namespace {

// Returns `result` to JS, or throws it when it is an errno that signals a programming error.
Napi::Value HotPathResult(Napi::Env env, double result, const char* syscall) {
  if (result == -EBADF || result == -ENOTSOCK) throw ErrnoError(env, static_cast<int>(result), syscall);
  return Napi::Number::New(env, result);
}

SocketAddress ArgAddress(const Napi::CallbackInfo& info, std::string* host, int* port) {
  *host = ArgString(info, 0, "host");
  *port = ArgInt32(info, 1, "port", 0, 65535);
  SocketAddress address;
  // An embedded NUL would let inet_pton accept a prefix of the string.
  if (host->find('\0') != std::string::npos || !ParseAddress(host->c_str(), *port, &address)) {
    Napi::TypeError error = Napi::TypeError::New(info.Env(), "Invalid IP address: " + *host);
    error.Value().Set("code", "ERR_INVALID_IP_ADDRESS");
    throw error;
  }
  return address;
}

Napi::Value Listen(const Napi::CallbackInfo& info) {
  std::string host;
  int port;
  SocketAddress address = ArgAddress(info, &host, &port);
  int backlog = ArgInt32(info, 2, "backlog", 0, INT32_MAX);
  bool reuse_port = ArgBool(info, 3, "reusePort");
  const char* syscall;
  int fd = ListenTcp(address, backlog, reuse_port, &syscall);
  if (fd < 0) throw ErrnoError(info.Env(), fd, syscall, &host, port);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value Connect(const Napi::CallbackInfo& info) {
  std::string host;
  int port;
  SocketAddress address = ArgAddress(info, &host, &port);
  const char* syscall;
  int fd = ConnectTcp(address, &syscall);
  if (fd < 0) throw ErrnoError(info.Env(), fd, syscall, &host, port);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value Accept(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  return HotPathResult(info.Env(), AcceptTcp(fd), "accept");
}

Napi::Value Read(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  ByteRange range = ArgByteRange(info, 1);
  return HotPathResult(info.Env(), static_cast<double>(ReadSocket(fd, range.data, range.length)),
                       "read");
}

Napi::Value Write(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  ByteRange range = ArgByteRange(info, 1);
  return HotPathResult(info.Env(), static_cast<double>(WriteSocket(fd, range.data, range.length)),
                       "write");
}

// writev(fd, buffers, offset): buffers[0] from `offset`, then every other buffer whole, in one
// system call. At most kMaxBuffers: a transport's flush gathers that many per call; the iovec
// array lives on the stack, so nothing is allocated.
constexpr uint32_t kMaxBuffers = 64;

Napi::Value WriteVector(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  if (!info[1].IsArray()) ThrowArgType(env, "buffers", "an Array of Uint8Array");
  Napi::Array list = info[1].As<Napi::Array>();
  uint32_t count = list.Length();
  if (count == 0 || count > kMaxBuffers) ThrowArgRange(env, "buffers.length", "from 1 to 64", count);
  double offset = ArgNumber(info, 2, "offset");
  iovec buffers[kMaxBuffers];
  static uint8_t empty;
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value item = list.Get(i);
    if (!item.IsTypedArray() || item.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      ThrowArgType(env, "buffers[i]", "Uint8Array");
    }
    Napi::Uint8Array array = item.As<Napi::Uint8Array>();
    size_t size = array.ByteLength();
    size_t skip = 0;
    if (i == 0) {
      if (std::trunc(offset) != offset || offset < 0 || offset > static_cast<double>(size)) {
        ThrowArgRange(env, "offset", "an integer from 0 to the first buffer's length", offset);
      }
      skip = static_cast<size_t>(offset);
    }
    uint8_t* data = array.Data();
    buffers[i].iov_base = data == nullptr ? &empty : data + skip;
    buffers[i].iov_len = size - skip;
  }
  return HotPathResult(env, static_cast<double>(WriteVectorSocket(fd, buffers, static_cast<int>(count))),
                       "writev");
}

Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  int how = ArgInt32(info, 1, "how", SHUT_RD, SHUT_RDWR);
  return HotPathResult(info.Env(), ShutdownSocket(fd, how), "shutdown");
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  return HotPathResult(info.Env(), CloseSocket(fd), "close");
}

Napi::Value GetSocketError(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  return HotPathResult(info.Env(), SocketError(fd), "getsockopt");
}

Napi::Value AddressObject(const Napi::CallbackInfo& info, int (*lookup)(int, SocketAddress*),
                          const char* syscall) {
  int fd = ArgFd(info, 0);
  SocketAddress address;
  int err = lookup(fd, &address);
  char host[INET6_ADDRSTRLEN];
  int family;
  int port;
  if (err == 0 && !FormatAddress(address, host, sizeof host, &family, &port)) err = -EAFNOSUPPORT;
  if (err != 0) throw ErrnoError(info.Env(), err, syscall);
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("address", host);
  result.Set("family", family == AF_INET ? "IPv4" : "IPv6");
  result.Set("port", port);
  return result;
}

Napi::Value GetLocalAddress(const Napi::CallbackInfo& info) {
  return AddressObject(info, LocalAddress, "getsockname");
}

Napi::Value GetRemoteAddress(const Napi::CallbackInfo& info) {
  return AddressObject(info, RemoteAddress, "getpeername");
}

}  // namespace

void ExportSocketFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("listen", Napi::Function::New<Listen>(env, "listen"));
  exports.Set("connect", Napi::Function::New<Connect>(env, "connect"));
  exports.Set("accept", Napi::Function::New<Accept>(env, "accept"));
  exports.Set("read", Napi::Function::New<Read>(env, "read"));
  exports.Set("write", Napi::Function::New<Write>(env, "write"));
  exports.Set("writev", Napi::Function::New<WriteVector>(env, "writev"));
  exports.Set("shutdown", Napi::Function::New<Shutdown>(env, "shutdown"));
  exports.Set("close", Napi::Function::New<Close>(env, "close"));
  exports.Set("socketError", Napi::Function::New<GetSocketError>(env, "socketError"));
  exports.Set("localAddress", Napi::Function::New<GetLocalAddress>(env, "localAddress"));
  exports.Set("remoteAddress", Napi::Function::New<GetRemoteAddress>(env, "remoteAddress"));
}

}  // namespace coloop
