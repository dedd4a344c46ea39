// The TimerHeap JS class: the native timer heap on a caller-supplied clock, for tests and benchmarks
// (the Poller embeds its own heap on the monotonic clock).
#include <cmath>

#include "js_args.h"
#include "js_exports.h"
#include "timer_heap.h"

namespace coloop {

namespace {

class JsTimerHeap : public Napi::ObjectWrap<JsTimerHeap> {
 public:
  explicit JsTimerHeap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsTimerHeap>(info) {}

  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TimerHeap",
                       {
                           InstanceMethod<&JsTimerHeap::Schedule>("schedule"),
                           InstanceMethod<&JsTimerHeap::Cancel>("cancel"),
                           InstanceMethod<&JsTimerHeap::Expire>("expire"),
                           InstanceMethod<&JsTimerHeap::Peek>("peek"),
                           InstanceAccessor<&JsTimerHeap::Size>("size"),
                       });
  }

 private:
  // Deadlines are >= 0 so that peek() can use -1 for "empty".
  Napi::Value Schedule(const Napi::CallbackInfo& info) {
    double deadline = ArgNumber(info, 0, "deadline");
    if (!(deadline >= 0) || std::isinf(deadline)) {
      ThrowArgRange(info.Env(), "deadline", "finite and >= 0", deadline);
    }
    return Napi::Number::New(info.Env(), heap_.schedule(deadline));
  }

  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    int32_t id = ArgInt32(info, 0, "id", 0, INT32_MAX);
    return Napi::Boolean::New(info.Env(), heap_.cancel(id));
  }

  Napi::Value Expire(const Napi::CallbackInfo& info) {
    double now = ArgNumber(info, 0, "now");
    Napi::Value out = info[1];
    if (!out.IsTypedArray() || out.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      ThrowArgType(info.Env(), "out", "Int32Array");
    }
    Napi::Int32Array ids = out.As<Napi::Int32Array>();
    // A detached array has length 0 and takes nothing.
    size_t n = ids.ElementLength() == 0 ? 0 : heap_.expire(now, ids.Data(), ids.ElementLength());
    return Napi::Number::New(info.Env(), static_cast<double>(n));
  }

  Napi::Value Peek(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), heap_.empty() ? -1 : heap_.earliest());
  }

  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(heap_.size()));
  }

  TimerHeap heap_;
};

}  // namespace

Napi::Function DefineTimerHeap(Napi::Env env) { return JsTimerHeap::Define(env); }

}  // namespace coloop
