// Bound reads and writes: the per-message socket calls at a fraction of a Node-API call's price.
//
// A plain `write(fd, buf, offset, length)` pays, beside the call itself, for four argument
// conversions (napi_get_cb_info, three napi_get_value_double), napi_get_typedarray_info on the
// buffer and napi_create_double for the result: callgrind counted ~900 user-space instructions per
// call, ~2/3 of them in that handling. Here a descriptor's buffer is bound once (per direction),
// the three numbers travel through an Int32Array the addon and JS share (`ioArgs`), and so does
// the result. `readBound()` / `writeBound()` take no arguments and return nothing: what is left is
// V8's call into the addon, one lookup of the bound ArrayBuffer, and the system call.
//
//   ioArgs[0] fd, [1] offset in the bound view, [2] length, [3] result (bytes, or -errno)
//
// Everything read from ioArgs is checked as strictly as the plain calls check their arguments:
// the fd must have a buffer bound for that direction, the range must lie inside the bound view,
// and the view inside its ArrayBuffer as it is now (a detached buffer has length 0). A failed
// check throws (RangeError, or ERR_INVALID_STATE with no buffer bound); EBADF and ENOTSOCK are
// thrown as Node-style errors, as by the plain calls; other errnos come back in ioArgs[3].
//
// A binding holds its ArrayBuffer strongly until it is replaced, the fd is closed through
// `close()`, or the environment is torn down.
#include <fcntl.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "js_args.h"
#include "js_exports.h"
#include "socket.h"

namespace coloop {

namespace {

constexpr int kReadSide = 0;
constexpr int kWriteSide = 1;
// Bindings are indexed by fd; an fd this large is refused rather than given a table that size.
constexpr int32_t kMaxBoundFd = (1 << 24) - 1;
enum ArgSlot { kFd = 0, kOffset = 1, kLength = 2, kResult = 3, kArgSlots = 4 };

// One ArrayBuffer held for bindings, shared by every binding of that buffer: the transports of a
// createServer() echo all bind one shared buffer, and at 10,000 connections a reference of their
// own each cost a cache miss or two per call (Protocol's server CPU per message at C10k was 7%
// higher than with plain calls before bindings shared their holder).
struct Holder {
  napi_ref buffer = nullptr;
  size_t users = 0;
};

struct Binding {
  Holder* holder = nullptr;  // the view's ArrayBuffer
  size_t byte_offset = 0;    // the view's place in it
  size_t byte_length = 0;
};

// Per environment (main thread, each worker): made by ExportBoundIo, freed by its cleanup hook.
struct BoundIo {
  napi_env env = nullptr;
  napi_ref args_buffer = nullptr;
  int32_t* args = nullptr;
  std::vector<Binding> bindings;  // [2 * fd + side]
  Holder* last = nullptr;         // the holder made or shared most recently

  ~BoundIo() {
    for (size_t slot = 0; slot < bindings.size(); slot++) Release(slot);
    if (args_buffer != nullptr) napi_delete_reference(env, args_buffer);
  }

  // A holder of `buffer`: the last one, if it holds the same buffer, or a new one. Null on failure.
  Holder* Acquire(napi_value buffer) {
    napi_value held;
    bool same = false;
    if (last != nullptr && napi_get_reference_value(env, last->buffer, &held) == napi_ok &&
        napi_strict_equals(env, held, buffer, &same) == napi_ok && same) {
      last->users++;
      return last;
    }
    napi_ref ref = nullptr;
    if (napi_create_reference(env, buffer, 1, &ref) != napi_ok) return nullptr;
    last = new Holder{ref, 1};
    return last;
  }

  void Release(size_t slot) {
    if (slot >= bindings.size() || bindings[slot].holder == nullptr) return;
    Holder* holder = bindings[slot].holder;
    bindings[slot] = Binding{};
    if (--holder->users > 0) return;
    napi_delete_reference(env, holder->buffer);
    if (last == holder) last = nullptr;
    delete holder;
  }
};

BoundIo* StateOf(const Napi::CallbackInfo& info) { return static_cast<BoundIo*>(info.Data()); }

// bindBuffer(fd, side, buffer): side 0 binds the buffer reads go into, 1 the one writes come from.
Napi::Value BindBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BoundIo* io = StateOf(info);
  int32_t fd = ArgInt32(info, 0, "fd", 0, kMaxBoundFd);
  int32_t side = ArgInt32(info, 1, "side", kReadSide, kWriteSide);
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowArgType(env, "buffer", "Uint8Array");
  }
  // Only a descriptor that is open gets a table slot: a stray large number is EBADF, not memory.
  if (fcntl(fd, F_GETFD) < 0) throw ErrnoError(env, -errno, "bindBuffer");
  napi_value buffer = nullptr;
  size_t byte_offset = 0;
  size_t byte_length = 0;
  bool is_arraybuffer = false;
  if (napi_get_typedarray_info(env, info[2], nullptr, &byte_length, nullptr, &buffer, &byte_offset) != napi_ok ||
      napi_is_arraybuffer(env, buffer, &is_arraybuffer) != napi_ok) {
    ThrowArgType(env, "buffer", "Uint8Array");
  }
  // Over a SharedArrayBuffer another thread could change the bytes during the system call; the
  // plain calls serve those.
  if (!is_arraybuffer) ThrowArgType(env, "buffer", "Uint8Array over an ArrayBuffer (not shared)");
  size_t slot = 2 * static_cast<size_t>(fd) + static_cast<size_t>(side);
  if (slot >= io->bindings.size()) io->bindings.resize(slot + 2);
  Holder* holder = io->Acquire(buffer);
  if (holder == nullptr) throw CodeError(env, "ERR_INVALID_STATE", "Cannot hold the bound buffer");
  io->Release(slot);
  io->bindings[slot] = Binding{holder, byte_offset, byte_length};
  return env.Undefined();
}

// Throws `error` as a JS exception and returns nullptr (the raw callbacks below do not unwind
// through node-addon-api).
napi_value Raise(const Napi::Error& error) {
  error.ThrowAsJavaScriptException();
  return nullptr;
}

// The bound range for ioArgs, or nullptr after throwing.
template <int kSide>
uint8_t* BoundRange(napi_env env, BoundIo* io, int fd, size_t* length) {
  int32_t offset = io->args[kOffset];
  int32_t count = io->args[kLength];
  size_t slot = 2 * static_cast<size_t>(fd) + kSide;
  if (fd < 0 || slot >= io->bindings.size() || io->bindings[slot].holder == nullptr) {
    napi_throw_error(env, "ERR_INVALID_STATE", kSide == kReadSide ? "readBound(): no buffer is bound for reading on this fd"
                                                                  : "writeBound(): no buffer is bound for writing on this fd");
    return nullptr;
  }
  const Binding& binding = io->bindings[slot];
  if (offset < 0 || count < 0 || static_cast<size_t>(offset) + static_cast<size_t>(count) > binding.byte_length) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "ioArgs: offset and length must lie inside the bound buffer");
    return nullptr;
  }
  napi_value buffer;
  void* data = nullptr;
  size_t buffer_length = 0;
  if (napi_get_reference_value(env, binding.holder->buffer, &buffer) != napi_ok ||
      napi_get_arraybuffer_info(env, buffer, &data, &buffer_length) != napi_ok) {
    napi_throw_error(env, "ERR_INVALID_STATE", "the bound buffer cannot be reached");
    return nullptr;
  }
  // Detached (transferred) since it was bound: its memory is gone.
  if (binding.byte_offset + binding.byte_length > buffer_length || data == nullptr) {
    if (count == 0 && binding.byte_length == 0) {
      static uint8_t empty;
      *length = 0;
      return &empty;
    }
    napi_throw_error(env, "ERR_INVALID_STATE", "the bound buffer was detached");
    return nullptr;
  }
  *length = static_cast<size_t>(count);
  return static_cast<uint8_t*>(data) + binding.byte_offset + offset;
}

template <int kSide>
napi_value BoundCall(napi_env env, napi_callback_info info) {
  void* data = nullptr;
  if (napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &data) != napi_ok) return nullptr;
  BoundIo* io = static_cast<BoundIo*>(data);
  int fd = io->args[kFd];
  size_t length = 0;
  uint8_t* bytes = BoundRange<kSide>(env, io, fd, &length);
  if (bytes == nullptr) return nullptr;
  ssize_t n = kSide == kReadSide ? ReadSocket(fd, bytes, length) : WriteSocket(fd, bytes, length);
  if (n == -EBADF || n == -ENOTSOCK) {
    return Raise(ErrnoError(Napi::Env(env), static_cast<int>(n), kSide == kReadSide ? "read" : "write"));
  }
  io->args[kResult] = static_cast<int32_t>(n);
  return nullptr;
}

void CleanUp(void* arg) { delete static_cast<BoundIo*>(arg); }

}  // namespace

void* ExportBoundIo(Napi::Env env, Napi::Object exports) {
  auto* io = new BoundIo();
  io->env = env;
  if (napi_add_env_cleanup_hook(env, CleanUp, io) != napi_ok) {
    delete io;
    throw CodeError(env, "ERR_INVALID_STATE", "Cannot register the bound-io cleanup");
  }
  Napi::ArrayBuffer args = Napi::ArrayBuffer::New(env, kArgSlots * sizeof(int32_t));
  if (napi_create_reference(env, args, 1, &io->args_buffer) != napi_ok) {
    throw CodeError(env, "ERR_INVALID_STATE", "Cannot hold ioArgs");
  }
  io->args = static_cast<int32_t*>(args.Data());
  exports.Set("ioArgs", Napi::Int32Array::New(env, kArgSlots, args, 0));
  exports.Set("bindBuffer", Napi::Function::New(env, BindBuffer, "bindBuffer", io));
  napi_value fn;
  NAPI_THROW_IF_FAILED(env, napi_create_function(env, "readBound", NAPI_AUTO_LENGTH, BoundCall<kReadSide>, io, &fn), nullptr);
  exports.Set("readBound", Napi::Value(env, fn));
  NAPI_THROW_IF_FAILED(env, napi_create_function(env, "writeBound", NAPI_AUTO_LENGTH, BoundCall<kWriteSide>, io, &fn), nullptr);
  exports.Set("writeBound", Napi::Value(env, fn));
  return io;
}

void ReleaseBound(void* state, int fd) {
  auto* io = static_cast<BoundIo*>(state);
  if (fd < 0) return;
  io->Release(2 * static_cast<size_t>(fd) + kReadSide);
  io->Release(2 * static_cast<size_t>(fd) + kWriteSide);
}

}  // namespace coloop
