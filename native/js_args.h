// Shared by the js_*.cc layers: argument checks and Node-style errors.
//
// Every value that arrives from JS passes through one of these checks before it reaches the plain
// C++ below, so that bad input is a TypeError or RangeError and never undefined behaviour. Errors
// are thrown as C++ exceptions (NAPI_CPP_EXCEPTIONS); node-addon-api rethrows them into JS.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace coloop {

// TypeError / RangeError with Node's codes (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE) and messages
// shaped like Node's own.
[[noreturn]] void ThrowArgType(Napi::Env env, const char* name, const char* expected);
[[noreturn]] void ThrowArgRange(Napi::Env env, const char* name, const char* requirement,
                                double received);
// An Error with `code`, `errno` and `syscall` (and `address`/`port` when `host` is given), worded
// like Node's ("connect ECONNREFUSED 127.0.0.1:1"). `err` is a negative errno.
Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string* host = nullptr,
                       int port = 0);
// An Error with only a `code`, for states rather than syscalls (ERR_POLLER_CLOSED).
Napi::Error CodeError(Napi::Env env, const char* code, const char* message);

// A number argument (TypeError otherwise); NaN is a RangeError.
double ArgNumber(const Napi::CallbackInfo& info, size_t index, const char* name);
// An integral number within [min, max] (RangeError otherwise).
int32_t ArgInt32(const Napi::CallbackInfo& info, size_t index, const char* name, int32_t min,
                 int32_t max);
// A file descriptor: an integer in [0, INT32_MAX].
int ArgFd(const Napi::CallbackInfo& info, size_t index);
bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* name);
std::string ArgString(const Napi::CallbackInfo& info, size_t index, const char* name);

// A byte range [offset, offset + length) of a Uint8Array, checked to lie inside it. The pointer is
// never null, even for an empty or detached array, so it is safe to hand to read(2)/send(2).
struct ByteRange {
  uint8_t* data;
  size_t length;
};
ByteRange ArgByteRange(const Napi::CallbackInfo& info, size_t buffer_index);
// The same for an ArrayBuffer (not a SharedArrayBuffer) and a range of its bytes.
ByteRange ArgArrayBufferRange(const Napi::CallbackInfo& info, size_t buffer_index);
// The same checks on values that did not come as arguments (the argument block of js_socket.cc):
// an ArrayBuffer and a range of it, a range of `size` bytes at `data`, a file descriptor.
ByteRange ArrayBufferRange(Napi::Env env, Napi::Value buffer, double offset, double length);
ByteRange RangeIn(Napi::Env env, double offset, double length, uint8_t* data, size_t size);
int CheckFd(Napi::Env env, double fd);

}  // namespace coloop
