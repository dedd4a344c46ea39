#include "js_args.h"

#include <uv.h>

#include <cmath>
#include <cstdio>

namespace coloop {

namespace {

void SetCode(const Napi::Error& error, const char* code) { error.Value().Set("code", code); }

// Enough digits to round-trip a double, without the noise of std::to_string's fixed notation.
std::string Describe(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

}  // namespace

void ThrowArgType(Napi::Env env, const char* name, const char* expected) {
  Napi::TypeError error = Napi::TypeError::New(
      env, std::string("The \"") + name + "\" argument must be of type " + expected);
  SetCode(error, "ERR_INVALID_ARG_TYPE");
  throw error;
}

void ThrowArgRange(Napi::Env env, const char* name, const char* requirement, double received) {
  Napi::RangeError error =
      Napi::RangeError::New(env, std::string("The value of \"") + name +
                                     "\" is out of range. It must be " + requirement +
                                     ". Received " + Describe(received));
  SetCode(error, "ERR_OUT_OF_RANGE");
  throw error;
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string* host,
                       int port) {
  char code[64];
  uv_err_name_r(err, code, sizeof code);
  std::string message = std::string(syscall) + " " + code;
  if (host != nullptr) message += " " + *host + ":" + std::to_string(port);
  Napi::Error error = Napi::Error::New(env, message);
  Napi::Object object = error.Value();
  object.Set("errno", err);
  object.Set("code", code);
  object.Set("syscall", syscall);
  if (host != nullptr) {
    object.Set("address", *host);
    object.Set("port", port);
  }
  return error;
}

Napi::Error CodeError(Napi::Env env, const char* code, const char* message) {
  Napi::Error error = Napi::Error::New(env, message);
  SetCode(error, code);
  return error;
}

double ArgNumber(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) ThrowArgType(info.Env(), name, "number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (std::isnan(number)) ThrowArgRange(info.Env(), name, "a number", number);
  return number;
}

int32_t ArgInt32(const Napi::CallbackInfo& info, size_t index, const char* name, int32_t min,
                 int32_t max) {
  double number = ArgNumber(info, index, name);
  if (std::trunc(number) != number || number < min || number > max) {
    std::string requirement =
        "an integer >= " + std::to_string(min) + " and <= " + std::to_string(max);
    ThrowArgRange(info.Env(), name, requirement.c_str(), number);
  }
  return static_cast<int32_t>(number);
}

int ArgFd(const Napi::CallbackInfo& info, size_t index) {
  return ArgInt32(info, index, "fd", 0, INT32_MAX);
}

bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsBoolean()) ThrowArgType(info.Env(), name, "boolean");
  return value.As<Napi::Boolean>().Value();
}

std::string ArgString(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsString()) ThrowArgType(info.Env(), name, "string");
  return value.As<Napi::String>().Utf8Value();
}

ByteRange RangeIn(Napi::Env env, double offset, double length, uint8_t* data, size_t size) {
  if (std::trunc(offset) != offset || offset < 0 || offset > static_cast<double>(size)) {
    std::string requirement = "an integer >= 0 and <= " + std::to_string(size);
    ThrowArgRange(env, "offset", requirement.c_str(), offset);
  }
  double room = static_cast<double>(size) - offset;
  if (std::trunc(length) != length || length < 0 || length > room) {
    std::string requirement = "an integer >= 0 and <= " + Describe(room);
    ThrowArgRange(env, "length", requirement.c_str(), length);
  }
  static uint8_t empty;
  if (data == nullptr) data = &empty;
  return ByteRange{data + static_cast<size_t>(offset), static_cast<size_t>(length)};
}

namespace {

// [offset, offset + length) from info[first] and info[first + 1], checked to lie inside `size`
// bytes at `data`.
ByteRange ArgRangeIn(const Napi::CallbackInfo& info, size_t first, uint8_t* data, size_t size) {
  double offset = ArgNumber(info, first, "offset");
  double length = ArgNumber(info, first + 1, "length");
  return RangeIn(info.Env(), offset, length, data, size);
}

}  // namespace

ByteRange ArgByteRange(const Napi::CallbackInfo& info, size_t buffer_index) {
  Napi::Value value = info[buffer_index];
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowArgType(info.Env(), "buffer", "Uint8Array");
  }
  Napi::Uint8Array array = value.As<Napi::Uint8Array>();
  // A detached array reports length 0, so only an empty range passes below.
  return ArgRangeIn(info, buffer_index + 1, array.Data(), array.ByteLength());
}

ByteRange ArgArrayBufferRange(const Napi::CallbackInfo& info, size_t buffer_index) {
  Napi::Value value = info[buffer_index];
  if (!value.IsArrayBuffer()) ThrowArgType(info.Env(), "buffer", "ArrayBuffer");
  double offset = ArgNumber(info, buffer_index + 1, "offset");
  double length = ArgNumber(info, buffer_index + 2, "length");
  return ArrayBufferRange(info.Env(), value, offset, length);
}

ByteRange ArrayBufferRange(Napi::Env env, Napi::Value value, double offset, double length) {
  // Checked first, as when they come as arguments: the buffer before its range.
  if (!value.IsArrayBuffer()) ThrowArgType(env, "buffer", "ArrayBuffer");
  Napi::ArrayBuffer buffer = value.As<Napi::ArrayBuffer>();
  // Detached: length 0. Resizable: its length now.
  return RangeIn(env, offset, length, static_cast<uint8_t*>(buffer.Data()), buffer.ByteLength());
}

int CheckFd(Napi::Env env, double fd) {
  if (std::trunc(fd) != fd || fd < 0 || fd > INT32_MAX) {
    std::string requirement = "an integer >= 0 and <= " + std::to_string(INT32_MAX);
    ThrowArgRange(env, "fd", requirement.c_str(), fd);
  }
  return static_cast<int>(fd);
}

}  // namespace coloop
