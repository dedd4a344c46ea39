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

ssize_t ReadInto(int fd, uint8_t* data, size_t length) { return ReadSocket(fd, data, length); }
ssize_t WriteFrom(int fd, uint8_t* data, size_t length) { return WriteSocket(fd, data, length); }

// The checked read/write (Uint8Array) and readBuffer/writeBuffer (ArrayBuffer: see
// FastArrayBufferRange): one system call on a range of bytes that `Range` checks.
template <ByteRange (*Range)(const Napi::CallbackInfo&, size_t), ssize_t (*Io)(int, uint8_t*, size_t), bool kWrite>
Napi::Value ByteRangeCall(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  ByteRange range = Range(info, 1);
  return HotPathResult(info.Env(), static_cast<double>(Io(fd, range.data, range.length)), kWrite ? "write" : "read");
}

constexpr auto Read = ByteRangeCall<ArgByteRange, ReadInto, false>;
constexpr auto Write = ByteRangeCall<ArgByteRange, WriteFrom, true>;
constexpr auto ReadBuffer = ByteRangeCall<ArgArrayBufferRange, ReadInto, false>;
constexpr auto WriteBuffer = ByteRangeCall<ArgArrayBufferRange, WriteFrom, true>;

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


// ---------------------------------------------------------------------------------------------
// The per-message calls (read, write, writev, accept) as raw Node-API callbacks.
//
// node-addon-api's checks cost about a dozen Node-API calls per crossing (napi_typeof before each
// number, napi_is_typedarray and then napi_get_typedarray_info twice for a buffer, a CallbackInfo
// object). The fast path below asks only what it needs: one napi_get_value_double per number (it
// fails by itself on a non-number) and one napi_get_typedarray_info per buffer (it fails by itself
// on a non-typed array). Anything that does not pass goes to the checked node-addon-api
// implementation above, which throws the same TypeError/RangeError as before: the fast path only
// decides that the arguments are valid, never what error they deserve.

constexpr size_t kMaxFastArgs = 4;

// `fn` with node-addon-api's conversion of a thrown Napi::Error into a JS exception.
napi_value Checked(napi_env env, napi_callback_info info, Napi::Value (*fn)(const Napi::CallbackInfo&)) {
  try {
    Napi::CallbackInfo checked(env, info);
    return fn(checked);
  } catch (const Napi::Error& error) {
    error.ThrowAsJavaScriptException();
    return nullptr;
  }
}

// An integral double within [min, max]; NaN fails every comparison, so it is rejected too.
inline bool FastInteger(napi_env env, napi_value value, double min, double max, double* out) {
  return napi_get_value_double(env, value, out) == napi_ok && *out >= min && *out <= max &&
         std::trunc(*out) == *out;
}

inline bool FastFd(napi_env env, napi_value value, int* fd) {
  double d;
  if (!FastInteger(env, value, 0, INT32_MAX, &d)) return false;
  *fd = static_cast<int>(d);
  return true;
}

// range[0], range[1]: an offset and a length inside `size` bytes at `data` (null for a detached
// buffer: only an empty range passes, and it points at a byte of its own).
inline bool FastRangeIn(napi_env env, const napi_value* range, void* data, size_t size, ByteRange* out) {
  double offset, length;
  if (!FastInteger(env, range[0], 0, static_cast<double>(size), &offset)) return false;
  if (!FastInteger(env, range[1], 0, static_cast<double>(size) - offset, &length)) return false;
  static uint8_t empty;
  uint8_t* bytes = data == nullptr ? &empty : static_cast<uint8_t*>(data);
  *out = ByteRange{bytes + static_cast<size_t>(offset), static_cast<size_t>(length)};
  return true;
}

// argv[index] is a Uint8Array and argv[index + 1], argv[index + 2] an offset and a length inside it.
inline bool FastByteRange(napi_env env, const napi_value* argv, size_t index, ByteRange* out) {
  napi_typedarray_type type;
  size_t size;
  void* data;
  if (napi_get_typedarray_info(env, argv[index], &type, &size, &data, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    return false;
  }
  return FastRangeIn(env, argv + index + 1, data, size, out);
}

// argv[index] is an ArrayBuffer and argv[index + 1], argv[index + 2] an offset and a length inside
// it. Measured with callgrind (bench/instructions.js): napi_get_typedarray_info costs ~250
// instructions (it tests the array's type one kind at a time and materializes its buffer handle),
// napi_get_arraybuffer_info ~70. JS keeps the ArrayBuffer of the view it last read into, and
// uses these for reads into it and writes from it (src/net/byte-io.ts): it pays for `.buffer`
// once per buffer, not per call.
inline bool FastArrayBufferRange(napi_env env, const napi_value* argv, size_t index, ByteRange* out) {
  size_t size;
  void* data;
  // A detached buffer has no data and length 0: only an empty range passes.
  if (napi_get_arraybuffer_info(env, argv[index], &data, &size) != napi_ok) return false;
  return FastRangeIn(env, argv + index + 1, data, size, out);
}

// A hot-path result: the number, or null for EBADF/ENOTSOCK (a caller's bug), which the caller
// then throws with ThrowResult.
inline napi_value FastResult(napi_env env, double result) {
  if (result == -EBADF || result == -ENOTSOCK) return nullptr;
  napi_value value;
  if (napi_create_double(env, result, &value) != napi_ok) return nullptr;
  return value;
}

// Throws the errno error for a result FastResult refused (the call already happened: it must not
// be repeated, so this does not go through the checked path).
napi_value ThrowResult(napi_env env, double result, const char* syscall) {
  try {
    HotPathResult(Napi::Env(env), result, syscall);
  } catch (const Napi::Error& error) {
    error.ThrowAsJavaScriptException();
  }
  return nullptr;
}

// read(fd, buffer, offset, length) and write(...): the same arguments, one system call apart;
// readBuffer/writeBuffer the same with an ArrayBuffer for the buffer (`Range` tells them apart).
// Templated so that the calls inline (no function pointer on the hot path).
template <bool (*Range)(napi_env, const napi_value*, size_t, ByteRange*), ssize_t (*Io)(int, uint8_t*, size_t),
          Napi::Value (*CheckedFn)(const Napi::CallbackInfo&)>
napi_value FastByteRangeCall(napi_env env, napi_callback_info info, const char* syscall) {
  size_t argc = kMaxFastArgs;
  napi_value argv[kMaxFastArgs];
  int fd;
  ByteRange range;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 4 ||
      !FastFd(env, argv[0], &fd) || !Range(env, argv, 1, &range)) {
    return Checked(env, info, CheckedFn);
  }
  double result = static_cast<double>(Io(fd, range.data, range.length));
  napi_value value = FastResult(env, result);
  return value != nullptr ? value : ThrowResult(env, result, syscall);
}

napi_value FastRead(napi_env env, napi_callback_info info) {
  return FastByteRangeCall<FastByteRange, ReadInto, Read>(env, info, "read");
}

napi_value FastWrite(napi_env env, napi_callback_info info) {
  return FastByteRangeCall<FastByteRange, WriteFrom, Write>(env, info, "write");
}

napi_value FastReadBuffer(napi_env env, napi_callback_info info) {
  return FastByteRangeCall<FastArrayBufferRange, ReadInto, ReadBuffer>(env, info, "read");
}

napi_value FastWriteBuffer(napi_env env, napi_callback_info info) {
  return FastByteRangeCall<FastArrayBufferRange, WriteFrom, WriteBuffer>(env, info, "write");
}

// ---------------------------------------------------------------------------------------------
// readBlock/writeBlock(buffer): read/write and readBuffer/writeBuffer with the fd, offset and
// length passed in the argument block `ioBlock`, a Float64Array [fd, offset, length, result], and
// the result (bytes or a negative errno) written to its slot 3 instead of returned. `buffer` is
// an ArrayBuffer (the cheaper to check: ~70 instructions against ~250), or a Uint8Array, which
// the offset is then relative to. One argument instead of four: per call that saves three
// napi_get_value_double (~47 instructions each) and the result's napi_create_double and number
// object (~90), for three stores and a load in JS.
//
// The block's memory belongs to the addon, not to V8 (an external ArrayBuffer, freed when the
// environment is torn down): whatever JS does to the ArrayBuffer (detach it, drop it), the
// pointer the functions hold stays valid. Where the runtime refuses external buffers, the addon
// exports no block and JS uses readBuffer/writeBuffer.
constexpr size_t kBlockSlots = 4;

// The checked path: the same TypeError/RangeError/EBADF as the calls with arguments, or the call
// made when everything is in order after all.
template <ssize_t (*Io)(int, uint8_t*, size_t)>
napi_value CheckedBlockCall(napi_env env, napi_value buffer, double* block, const char* syscall) {
  try {
    Napi::Env checked(env);
    Napi::Value value(env, buffer);
    bool bytes = value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
    if (!value.IsArrayBuffer() && !bytes) ThrowArgType(checked, "buffer", "ArrayBuffer or Uint8Array");
    int fd = CheckFd(checked, block[0]);
    ByteRange range;
    if (bytes) {
      Napi::Uint8Array array = value.As<Napi::Uint8Array>();
      range = RangeIn(checked, block[1], block[2], array.Data(), array.ByteLength());
    } else {
      range = ArrayBufferRange(checked, value, block[1], block[2]);
    }
    double result = static_cast<double>(Io(fd, range.data, range.length));
    block[3] = result;
    HotPathResult(checked, result, syscall);
  } catch (const Napi::Error& error) {
    error.ThrowAsJavaScriptException();
  }
  return nullptr;
}

inline bool BlockInteger(double value, double max) {
  return value >= 0 && value <= max && std::trunc(value) == value;
}

template <ssize_t (*Io)(int, uint8_t*, size_t)>
napi_value BlockCall(napi_env env, napi_callback_info info, const char* syscall) {
  size_t argc = 1;
  napi_value buffer;
  void* data;
  if (napi_get_cb_info(env, info, &argc, &buffer, nullptr, &data) != napi_ok) return nullptr;
  auto* block = static_cast<double*>(data);
  void* bytes;
  size_t size;
  napi_typedarray_type type;
  double fd = block[0], offset = block[1], length = block[2];
  if (argc < 1 ||
      (napi_get_arraybuffer_info(env, buffer, &bytes, &size) != napi_ok &&
       (napi_get_typedarray_info(env, buffer, &type, &size, &bytes, nullptr, nullptr) != napi_ok ||
        type != napi_uint8_array)) ||
      !BlockInteger(fd, INT32_MAX) || !BlockInteger(offset, static_cast<double>(size)) ||
      !BlockInteger(length, static_cast<double>(size) - offset)) {
    return CheckedBlockCall<Io>(env, buffer, block, syscall);
  }
  static uint8_t empty;
  uint8_t* start = bytes == nullptr ? &empty : static_cast<uint8_t*>(bytes) + static_cast<size_t>(offset);
  double result = static_cast<double>(Io(static_cast<int>(fd), start, static_cast<size_t>(length)));
  block[3] = result;
  return result == -EBADF || result == -ENOTSOCK ? ThrowResult(env, result, syscall) : nullptr;
}

napi_value BlockRead(napi_env env, napi_callback_info info) { return BlockCall<ReadInto>(env, info, "read"); }
napi_value BlockWrite(napi_env env, napi_callback_info info) { return BlockCall<WriteFrom>(env, info, "write"); }

// Exports ioBlock, readBlock and writeBlock, or nothing where external buffers are refused.
void ExportBlockFunctions(Napi::Env env, Napi::Object exports) {
  auto* block = new double[kBlockSlots]();
  napi_value memory;
  // The finalizer frees nothing: the functions below still hold the pointer. The environment's
  // cleanup hook does, once nothing can call them any more.
  if (napi_create_external_arraybuffer(env, block, kBlockSlots * sizeof(double), [](napi_env, void*, void*) {},
                                       nullptr, &memory) != napi_ok) {
    delete[] block;
    // A refusal leaves no exception pending, but clear one to be sure the module still loads.
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
    return;
  }
  NAPI_THROW_IF_FAILED_VOID(env, napi_add_env_cleanup_hook(env, [](void* p) { delete[] static_cast<double*>(p); }, block));
  napi_value view;
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_typedarray(env, napi_float64_array, kBlockSlots, memory, 0, &view));
  exports.Set("ioBlock", Napi::Value(env, view));
  napi_value read, write;
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, "readBlock", NAPI_AUTO_LENGTH, BlockRead, block, &read));
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, "writeBlock", NAPI_AUTO_LENGTH, BlockWrite, block, &write));
  exports.Set("readBlock", Napi::Value(env, read));
  exports.Set("writeBlock", Napi::Value(env, write));
}

napi_value FastAccept(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int fd;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 1 ||
      !FastFd(env, argv[0], &fd)) {
    return Checked(env, info, Accept);
  }
  double result = AcceptTcp(fd);
  napi_value value = FastResult(env, result);
  return value != nullptr ? value : ThrowResult(env, result, "accept");
}

napi_value FastWriteVector(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int fd;
  uint32_t count;
  double offset;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 3 ||
      !FastFd(env, argv[0], &fd) || napi_get_array_length(env, argv[1], &count) != napi_ok ||
      count == 0 || count > kMaxBuffers || napi_get_value_double(env, argv[2], &offset) != napi_ok) {
    return Checked(env, info, WriteVector);
  }
  iovec buffers[kMaxBuffers];
  static uint8_t empty;
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    napi_typedarray_type type;
    size_t size;
    void* data;
    if (napi_get_element(env, argv[1], i, &item) != napi_ok ||
        napi_get_typedarray_info(env, item, &type, &size, &data, nullptr, nullptr) != napi_ok ||
        type != napi_uint8_array) {
      return Checked(env, info, WriteVector);
    }
    size_t skip = 0;
    if (i == 0) {
      if (!(offset >= 0 && offset <= static_cast<double>(size)) || std::trunc(offset) != offset) {
        return Checked(env, info, WriteVector);
      }
      skip = static_cast<size_t>(offset);
    }
    buffers[i].iov_base = data == nullptr ? &empty : static_cast<uint8_t*>(data) + skip;
    buffers[i].iov_len = size - skip;
  }
  double result = static_cast<double>(WriteVectorSocket(fd, buffers, static_cast<int>(count)));
  napi_value value = FastResult(env, result);
  return value != nullptr ? value : ThrowResult(env, result, "writev");
}

void SetFunction(Napi::Env env, Napi::Object exports, const char* name, napi_callback callback) {
  napi_value fn;
  NAPI_THROW_IF_FAILED_VOID(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, nullptr, &fn));
  exports.Set(name, Napi::Value(env, fn));
}

}  // namespace

void ExportSocketFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("listen", Napi::Function::New<Listen>(env, "listen"));
  exports.Set("connect", Napi::Function::New<Connect>(env, "connect"));
  SetFunction(env, exports, "accept", FastAccept);
  SetFunction(env, exports, "read", FastRead);
  SetFunction(env, exports, "write", FastWrite);
  SetFunction(env, exports, "writev", FastWriteVector);
  SetFunction(env, exports, "readBuffer", FastReadBuffer);
  SetFunction(env, exports, "writeBuffer", FastWriteBuffer);
  ExportBlockFunctions(env, exports);
  exports.Set("shutdown", Napi::Function::New<Shutdown>(env, "shutdown"));
  exports.Set("close", Napi::Function::New<Close>(env, "close"));
  exports.Set("socketError", Napi::Function::New<GetSocketError>(env, "socketError"));
  exports.Set("localAddress", Napi::Function::New<GetLocalAddress>(env, "localAddress"));
  exports.Set("remoteAddress", Napi::Function::New<GetRemoteAddress>(env, "remoteAddress"));
}

}  // namespace coloop
