// The Poller JS class: a Poller and a TimerHeap, watched from Node's own libuv loop.
//
// libuv polls the poller's fd (uv_poll) and holds a uv_timer for the earliest deadline. When either
// fires, onWake() is called; JS then calls wait(0), which collects ready fds and expired timers into
// two Int32Arrays allocated once. onWake is the only call from C++ into JS.
//
// Keep-alive follows libuv's handle rules: the uv_poll is ref'd only while fds are registered and
// the uv_timer only while timers are pending, so an idle poller never holds the process open. While
// either is ref'd the JS object is held strongly too, so a poller that keeps the process alive
// cannot be collected from under its own handles.
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cmath>
#include <vector>

#include "js_args.h"
#include "js_exports.h"
#include "poller.h"
#include "socket.h"
#include "timer_heap.h"

namespace coloop {

namespace {

constexpr int32_t kDefaultCapacity = 1024;
constexpr int32_t kMaxCapacity = 1 << 20;
// timers[0] holds the count; more expired timers than fit stay in the heap for the next wait.
constexpr size_t kTimerSlots = 4096 + 1;
// The uv_timer is armed at most this far ahead (about 31,700 years); beyond it deadlines stay put.
constexpr double kMaxTimerDelayMs = 1e15;

// Read-ahead (see ReadAhead): the result of an event nothing was read for.
constexpr int32_t kNotRead = INT32_MIN;
// Read-ahead: an ask whose offset is this reads "packed": at the next free place of its target
// in this wait() (see ReadAhead).
constexpr int32_t kPacked = -1;
constexpr int32_t kMaxTokens = 1 << 24;
// Bytes one wait() reads ahead at most; the events after that are reported unread, and their
// readers read for themselves when they run. The bytes read ahead wait in their readers' buffers
// until the batch has run, and past a fraction of a core's L2 cache they are evicted before they
// are written back out: every byte is then fetched from memory twice. Measured at 100 connections
// x 16 KiB (bench/echo, `coloop serve`): 8.1 us of server CPU per message reading every event
// ahead, 6.0-6.6 with this bound; 64 B to 4 KiB messages did not move.
constexpr size_t kReadAheadBudget = 128 * 1024;
// The largest budget enableReadAhead accepts.
constexpr int32_t kMaxReadAheadBudget = 64 * 1024 * 1024;

// uv_hrtime is CLOCK_MONOTONIC on Linux, and on every platform the clock libuv's loop time is read
// from (on Linux through CLOCK_MONOTONIC_COARSE, so loop time may trail it by a tick).
double NowMs() { return static_cast<double>(uv_hrtime()) / 1e6; }

// Int32 slots the addon writes through a cached pointer and JS reads through an Int32Array (the
// poller's events, timers and read-ahead arrays). The memory is the addon's, under an external
// ArrayBuffer, and lives until both the poller has let go of it and the ArrayBuffer's finalizer
// has run: nothing JS does to the ArrayBuffer can take the memory from under the pointer (Node
// marks external buffers untransferable, so structuredClone and postMessage copy them; a detach by
// other means leaves the memory ours), and wait() need not check before every write. Over V8's own
// memory that check was four reference lookups and four detach tests a call, ~450 user-space
// instructions of the ~6,300 a wake costs (bench/breakdown.js --rate). Where the runtime refuses
// external buffers, the slots are V8's memory as before, and the poller checks them (see
// CheckArraysAttached).
class OwnedSlots {
 public:
  OwnedSlots() = default;
  OwnedSlots(const OwnedSlots&) = delete;
  OwnedSlots& operator=(const OwnedSlots&) = delete;
  ~OwnedSlots() { Release(); }

  // `count` zeroed slots, and the ArrayBuffer over them in *buffer. Lets go of earlier slots.
  int32_t* Make(Napi::Env env, size_t count, Napi::ArrayBuffer* buffer) {
    Release();
    size_t bytes = count * sizeof(int32_t);
    // COLOOP_POLLER_V8_ARRAYS=1 takes the path of a runtime that refuses external buffers (tests).
    static const bool v8_memory_only = [] {
      const char* value = std::getenv("COLOOP_POLLER_V8_ARRAYS");
      return value != nullptr && value[0] == '1';
    }();
    auto* block = v8_memory_only ? nullptr : static_cast<Block*>(std::calloc(1, sizeof(Block) + bytes));
    if (block != nullptr) {
      block->holders = 1;
      void* data = block + 1;
      napi_value created = nullptr;
      if (napi_create_external_arraybuffer(env, data, bytes, Finalize, block, &created) == napi_ok) {
        block->holders = 2;
        block_ = block;
        *buffer = Napi::ArrayBuffer(env, created);
        return static_cast<int32_t*>(data);
      }
      std::free(block);
      // A refusal leaves no exception pending, but clear one to be sure.
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    *buffer = Napi::ArrayBuffer::New(env, bytes);
    auto* data = static_cast<int32_t*>(buffer->Data());
    std::fill(data, data + count, 0);
    return data;
  }

  // Whether the slots are the addon's memory (else V8's, which a detach can take away).
  bool owned() const { return block_ != nullptr; }

  // Takes over `other`'s slots (other is left with none); lets go of this one's.
  void TakeFrom(OwnedSlots& other) {
    Release();
    block_ = other.block_;
    other.block_ = nullptr;
  }

  void Release() {
    if (block_ != nullptr) Drop(block_);
    block_ = nullptr;
  }

 private:
  struct alignas(16) Block {
    int holders;  // the poller and the ArrayBuffer; the slots follow
  };
  static void Drop(Block* block) {
    if (--block->holders == 0) std::free(block);
  }
  // Runs on the JS thread (Node-API), as does everything else here: no atomics needed.
  static void Finalize(napi_env, void*, void* hint) { Drop(static_cast<Block*>(hint)); }

  Block* block_ = nullptr;
};

class JsPoller : public Napi::ObjectWrap<JsPoller> {
 public:
  explicit JsPoller(const Napi::CallbackInfo& info);
  ~JsPoller() override;

  static Napi::Function Define(Napi::Env env);

 private:
  // The libuv handles. They outlive the JsPoller when it is closed or collected, until libuv's
  // close callbacks run, so they live in their own allocation.
  struct LoopHandles {
    uv_poll_t poll;
    uv_timer_t timer;
    JsPoller* owner;  // null once the poller is closed
    int open_handles;
    napi_async_cleanup_hook_handle cleanup_hook;
  };

  static int32_t CheckedCapacity(const Napi::CallbackInfo& info);

  Napi::Value Add(const Napi::CallbackInfo& info);
  Napi::Value Modify(const Napi::CallbackInfo& info);
  Napi::Value Remove(const Napi::CallbackInfo& info);
  Napi::Value Wait(const Napi::CallbackInfo& info);
  Napi::Value AddTimer(const Napi::CallbackInfo& info);
  Napi::Value CancelTimer(const Napi::CallbackInfo& info);
  Napi::Value Now(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value TimerCount(const Napi::CallbackInfo& info);
  Napi::Value EnableReadAhead(const Napi::CallbackInfo& info);
  Napi::Value SetReadTarget(const Napi::CallbackInfo& info);

  void StartLoopHandles(Napi::Env env);
  void CheckOpen(Napi::Env env) const;
  void CheckArraysAttached(Napi::Env env);
  void Control(Napi::Env env, int err);
  void MarkRegistered(int fd, int32_t token);
  bool UnmarkRegistered(int fd);
  void ReadAhead(int count);
  void ForgetReadTarget(size_t token);
  napi_ref HoldTargetBuffer(napi_env env, napi_value buffer);
  void ReleaseTargetBuffer(napi_ref buffer);
  void ArmTimer();
  void UpdateKeepAlive();
  // Releases everything; `release_ref` is false from the destructor, whose reference is going.
  void Shutdown(bool release_ref);

  // wait() as a plain function bound to this poller, installed on each instance (see
  // InstallBoundWait): the class's methods find their C++ object through napi_unwrap, a property
  // lookup in V8 that cost ~790 user-space instructions a call (callgrind, bench/breakdown.js
  // --rate), a tenth of what a wake costs in all; a bound function is handed its pointer as its
  // data. The binding outlives whichever of the two, poller or function, goes first.
  struct WaitBinding {
    JsPoller* owner;
    int holders;  // the poller and the function
  };
  static napi_value BoundWait(napi_env env, napi_callback_info info);
  static void ReleaseWaitBinding(WaitBinding* binding);
  void InstallBoundWait(Napi::Env env, Napi::Object self);

  static void OnPollable(uv_poll_t* handle, int status, int events);
  static void OnTimer(uv_timer_t* handle);
  static void Wake(LoopHandles* handles);
  static void OnHandleClosed(uv_handle_t* handle);
  static void OnEnvCleanup(napi_async_cleanup_hook_handle hook, void* data);

  Poller poller_;
  TimerHeap timers_;
  Napi::FunctionReference on_wake_;
  Napi::AsyncContext async_context_;
  Napi::Reference<Napi::ArrayBuffer> events_buffer_;
  Napi::Reference<Napi::ArrayBuffer> timers_buffer_;
  OwnedSlots events_slots_;
  OwnedSlots timer_slots_;
  int32_t* events_ = nullptr;
  int32_t* timer_ids_ = nullptr;
  LoopHandles* handles_ = nullptr;  // null once closed
  WaitBinding* wait_binding_ = nullptr;
  // The token of each registered fd (-1: not registered), indexed by fd (fds are small, bounded by
  // RLIMIT_NOFILE). The count decides whether the uv_poll keeps the process alive.
  std::vector<int32_t> token_of_fd_;
  size_t registered_count_ = 0;
  // The fd of each event of the last wait().
  std::vector<int32_t> event_fds_;
  // Read-ahead, once enabled: wants_[2 * token] > 0 asks the next wait() to read up to that many
  // bytes of the token's fd into its read target at offset wants_[2 * token + 1]; results_ has two
  // slots per event (bytes or -errno, bytes asked for). A target is held as its ArrayBuffer and the
  // view's offset in it: fetching an ArrayBuffer's data and length costs a fraction of what a
  // typed array's does (napi_get_typedarray_info checks the type ten ways and materializes the
  // buffer handle), and the buffer's current length is what bounds a write into it.
  //
  // Targets that view the same ArrayBuffer share one reference, counted (napi_reference_ref):
  // readers' buffers are mostly views of a few slabs, or of sharedBuffer's one ArrayBuffer. A
  // wait() then looks each buffer up once (BufferMemo), not once per event: fetching a
  // reference's value and its buffer's data reads three objects scattered over the heap (a
  // cpu-clock profile of serve put napi_get_reference_value alone at 0.66% of the server's time,
  // fourth of its user-space functions). No JS runs inside a wait(), so what one lookup found
  // holds for the rest of it.
  struct ReadTarget {
    napi_ref buffer = nullptr;
    // The view's place in its buffer: reads ahead stay inside the view, never in the rest of
    // the buffer (a small Buffer shares Node's 8 KiB pool with other Buffers).
    size_t byte_offset = 0;
    size_t byte_length = 0;
  };
  Napi::Reference<Napi::ArrayBuffer> wants_buffer_;
  Napi::Reference<Napi::ArrayBuffer> results_buffer_;
  OwnedSlots wants_slots_;
  OwnedSlots results_slots_;
  int32_t* wants_ = nullptr;
  size_t want_tokens_ = 0;
  int32_t* results_ = nullptr;
  std::vector<ReadTarget> targets_;
  // The reference of the last target set, to share when the next one views the same buffer.
  napi_ref last_target_buffer_ = nullptr;
  bool timer_armed_ = false;
  double armed_deadline_ = 0;
  bool held_ = false;  // whether this object holds a strong reference to its JS object
  size_t read_ahead_budget_ = kReadAheadBudget;  // bytes one wait() reads ahead at most
};

int32_t JsPoller::CheckedCapacity(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) ThrowArgType(info.Env(), "onWake", "function");
  if (info[1].IsUndefined()) return kDefaultCapacity;
  return ArgInt32(info, 1, "capacity", 1, kMaxCapacity);
}

JsPoller::JsPoller(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<JsPoller>(info),
      poller_(CheckedCapacity(info)),
      async_context_(info.Env(), "coloop.Poller") {
  Napi::Env env = info.Env();
  on_wake_ = Napi::Persistent(info[0].As<Napi::Function>());

  // Typed arrays created once; wait() writes through cached pointers (see OwnedSlots).
  size_t event_slots = static_cast<size_t>(poller_.capacity()) * 2;
  Napi::ArrayBuffer events_buffer;
  Napi::ArrayBuffer timers_buffer;
  events_ = events_slots_.Make(env, event_slots, &events_buffer);
  timer_ids_ = timer_slots_.Make(env, kTimerSlots, &timers_buffer);
  events_buffer_ = Napi::Persistent(events_buffer);
  timers_buffer_ = Napi::Persistent(timers_buffer);
  info.This().As<Napi::Object>().DefineProperties({
      Napi::PropertyDescriptor::Value(
          "events", Napi::Int32Array::New(env, event_slots, events_buffer, 0), napi_enumerable),
      Napi::PropertyDescriptor::Value(
          "timers", Napi::Int32Array::New(env, kTimerSlots, timers_buffer, 0), napi_enumerable),
  });

  InstallBoundWait(env, info.This().As<Napi::Object>());
  try {
    event_fds_.resize(static_cast<size_t>(poller_.capacity()));
    int err = poller_.open();
    if (err != 0) throw ErrnoError(env, err, Poller::OpenSyscall());
    StartLoopHandles(env);
  } catch (...) {
    // A constructor that throws gets no destructor: the function must not reach this object.
    wait_binding_->owner = nullptr;
    ReleaseWaitBinding(wait_binding_);
    wait_binding_ = nullptr;
    throw;
  }
}

JsPoller::~JsPoller() {
  Shutdown(false);
  if (wait_binding_ != nullptr) {
    wait_binding_->owner = nullptr;
    ReleaseWaitBinding(wait_binding_);
  }
}

void JsPoller::InstallBoundWait(Napi::Env env, Napi::Object self) {
  auto* binding = new WaitBinding{this, 1};
  napi_value fn = nullptr;
  if (napi_create_function(env, "wait", NAPI_AUTO_LENGTH, BoundWait, binding, &fn) != napi_ok) {
    delete binding;
    throw CodeError(env, "ERR_INVALID_STATE", "Cannot create the poller's wait function");
  }
  if (napi_add_finalizer(
          env, fn, binding, [](napi_env, void* data, void*) { ReleaseWaitBinding(static_cast<WaitBinding*>(data)); },
          nullptr, nullptr) != napi_ok) {
    // The function is unreachable (installed nowhere) and will never be called.
    delete binding;
    throw CodeError(env, "ERR_INVALID_STATE", "Cannot create the poller's wait function");
  }
  binding->holders = 2;
  wait_binding_ = binding;
  // An own property shadows the prototype's wait (which still works, through napi_unwrap).
  self.DefineProperty(Napi::PropertyDescriptor::Value("wait", Napi::Value(env, fn), napi_default));
}

void JsPoller::ReleaseWaitBinding(WaitBinding* binding) {
  if (--binding->holders == 0) delete binding;
}

napi_value JsPoller::BoundWait(napi_env env, napi_callback_info info) {
  try {
    Napi::CallbackInfo args(env, info);
    JsPoller* self = static_cast<WaitBinding*>(args.Data())->owner;
    // The poller was collected while its wait function lived on: nothing to wait on.
    if (self == nullptr) throw CodeError(env, "ERR_POLLER_CLOSED", "The poller is closed");
    return self->Wait(args);
  } catch (const Napi::Error& error) {
    error.ThrowAsJavaScriptException();
    return nullptr;
  }
}

// On failure the constructor throws, and ~Poller closes the kernel object.
void JsPoller::StartLoopHandles(Napi::Env env) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    throw CodeError(env, "ERR_INVALID_STATE", "No libuv loop for this environment");
  }
  auto* handles = new LoopHandles{};
  int err = uv_poll_init(loop, &handles->poll, poller_.fd());
  if (err != 0) {
    // A failed uv_poll_init leaves the handle unknown to the loop: plain delete is enough.
    delete handles;
    throw ErrnoError(env, err, "uv_poll_init");
  }
  uv_timer_init(loop, &handles->timer);
  handles->poll.data = handles;
  handles->timer.data = handles;
  handles->owner = this;
  handles->open_handles = 2;
  handles_ = handles;
  err = uv_poll_start(&handles->poll, UV_READABLE, OnPollable);
  if (err != 0) {
    Shutdown(true);
    throw ErrnoError(env, err, "uv_poll_start");
  }
  uv_unref(reinterpret_cast<uv_handle_t*>(&handles->poll));
  // Worker threads tear down their loop with the environment: the handles must be closed first,
  // and closing is asynchronous, hence an async cleanup hook (node_api.h, N-API 8). It is
  // removed in OnHandleClosed.
  if (napi_add_async_cleanup_hook(env, OnEnvCleanup, handles, &handles->cleanup_hook) != napi_ok) {
    handles->cleanup_hook = nullptr;
    Shutdown(true);
    throw CodeError(env, "ERR_INVALID_STATE", "Cannot register an environment cleanup hook");
  }
}

Napi::Function JsPoller::Define(Napi::Env env) {
  return DefineClass(env, "Poller",
                     {
                         InstanceMethod<&JsPoller::Add>("add"),
                         InstanceMethod<&JsPoller::Modify>("modify"),
                         InstanceMethod<&JsPoller::Remove>("remove"),
                         InstanceMethod<&JsPoller::Wait>("wait"),
                         InstanceMethod<&JsPoller::AddTimer>("addTimer"),
                         InstanceMethod<&JsPoller::CancelTimer>("cancelTimer"),
                         InstanceMethod<&JsPoller::Now>("now"),
                         InstanceMethod<&JsPoller::Close>("close"),
                         InstanceMethod<&JsPoller::EnableReadAhead>("enableReadAhead"),
                         InstanceMethod<&JsPoller::SetReadTarget>("setReadTarget"),
                         InstanceAccessor<&JsPoller::TimerCount>("timerCount"),
                     });
}

void JsPoller::CheckOpen(Napi::Env env) const {
  if (handles_ == nullptr) throw CodeError(env, "ERR_POLLER_CLOSED", "The poller is closed");
}

// Transferring an ArrayBuffer over V8's own memory (structuredClone, postMessage) detaches it and
// frees or moves its memory; writing through the cached pointer afterwards would corrupt the heap.
// Slots that are the addon's own memory (OwnedSlots) cannot be taken, and are not checked.
void JsPoller::CheckArraysAttached(Napi::Env env) {
  if ((!events_slots_.owned() && events_buffer_.Value().IsDetached()) ||
      (!timer_slots_.owned() && timers_buffer_.Value().IsDetached())) {
    throw CodeError(env, "ERR_INVALID_STATE", "The poller's events or timers array was detached");
  }
  if (wants_ != nullptr && ((!wants_slots_.owned() && wants_buffer_.Value().IsDetached()) ||
                            (!results_slots_.owned() && results_buffer_.Value().IsDetached()))) {
    throw CodeError(env, "ERR_INVALID_STATE", "The poller's read-ahead arrays were detached");
  }
}

void JsPoller::Control(Napi::Env env, int err) {
  if (err != 0) throw ErrnoError(env, err, Poller::ControlSyscall());
}

// Also for modify(): the fd keeps counting once, under its new token.
void JsPoller::MarkRegistered(int fd, int32_t token) {
  size_t index = static_cast<size_t>(fd);
  if (index >= token_of_fd_.size()) token_of_fd_.resize(index + 1, -1);
  // Already marked: the fd was closed without remove() and its number reused (the kernel dropped
  // the old registration, epoll(7) Q6; kqueue(2)), or modify() gave it a new token. The count is
  // unchanged.
  int32_t old = token_of_fd_[index];
  if (old < 0) {
    ++registered_count_;
  } else if (old != token) {
    ForgetReadTarget(static_cast<size_t>(old));
  }
  token_of_fd_[index] = token;
}

bool JsPoller::UnmarkRegistered(int fd) {
  size_t index = static_cast<size_t>(fd);
  if (index >= token_of_fd_.size() || token_of_fd_[index] < 0) return false;
  size_t token = static_cast<size_t>(token_of_fd_[index]);
  token_of_fd_[index] = -1;
  // A read asked for the old registration must not reach whatever the token is given next.
  ForgetReadTarget(token);
  --registered_count_;
  return true;
}

Napi::Value JsPoller::Add(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  int32_t token = ArgInt32(info, 1, "token", 0, INT32_MAX);
  CheckOpen(info.Env());
  Control(info.Env(), poller_.add(fd, token));
  MarkRegistered(fd, token);
  UpdateKeepAlive();
  return info.Env().Undefined();
}

Napi::Value JsPoller::Modify(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  int32_t token = ArgInt32(info, 1, "token", 0, INT32_MAX);
  CheckOpen(info.Env());
  Control(info.Env(), poller_.modify(fd, token));
  MarkRegistered(fd, token);
  return info.Env().Undefined();
}

Napi::Value JsPoller::Remove(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  CheckOpen(info.Env());
  // Whatever the kernel answers, the fd no longer counts: if it was already closed, closing it
  // removed the registration (epoll(7) Q6).
  UnmarkRegistered(fd);
  int err = poller_.remove(fd);
  UpdateKeepAlive();
  Control(info.Env(), err);
  return info.Env().Undefined();
}

Napi::Value JsPoller::Wait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double timeout = ArgNumber(info, 0, "timeoutMs");
  if (timeout < 0 && timeout != -1) ThrowArgRange(env, "timeoutMs", "-1 or >= 0", timeout);
  if (std::isinf(timeout)) timeout = -1;
  CheckOpen(env);
  CheckArraysAttached(env);

  // A zero timeout (the loop's every poll) cannot be shortened: no clock read for it.
  if (timeout != 0 && !timers_.empty()) {
    double until = std::max(0.0, timers_.earliest() - NowMs());
    if (timeout < 0 || until < timeout) timeout = until;
  }
  int n = 0;
  // With nothing registered a zero-timeout wait cannot report anything: skip the syscall.
  if (timeout != 0 || registered_count_ > 0) {
    n = poller_.wait(RoundUpTimeoutMs(timeout), events_, event_fds_.data());
    if (n == -EINTR) n = 0;
    if (n > 0 && wants_ != nullptr) ReadAhead(n);
  }
  // Collected after the kernel wait, so a wait that ended at a deadline reports that timer. With
  // none pending, no clock read.
  timer_ids_[0] = timers_.empty() ? 0 : static_cast<int32_t>(timers_.expire(NowMs(), timer_ids_ + 1, kTimerSlots - 1));
  ArmTimer();
  UpdateKeepAlive();
  return Napi::Number::New(env, n);
}

Napi::Value JsPoller::AddTimer(const Napi::CallbackInfo& info) {
  double delay = ArgNumber(info, 0, "delayMs");
  if (!(delay >= 0) || std::isinf(delay)) ThrowArgRange(info.Env(), "delayMs", "finite and >= 0", delay);
  CheckOpen(info.Env());
  int32_t id = timers_.schedule(NowMs() + delay);
  ArmTimer();
  UpdateKeepAlive();
  return Napi::Number::New(info.Env(), id);
}

Napi::Value JsPoller::CancelTimer(const Napi::CallbackInfo& info) {
  int32_t id = ArgInt32(info, 0, "id", 0, INT32_MAX);
  CheckOpen(info.Env());
  bool cancelled = timers_.cancel(id);
  if (cancelled) {
    ArmTimer();
    UpdateKeepAlive();
  }
  return Napi::Boolean::New(info.Env(), cancelled);
}

Napi::Value JsPoller::Now(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), NowMs());
}

Napi::Value JsPoller::Close(const Napi::CallbackInfo& info) {
  Shutdown(true);
  return info.Env().Undefined();
}

namespace {

// What one wait() found for each target buffer it looked up: a few slots, indexed by the
// reference's address (targets mostly share a handful of buffers; see ReadTarget).
class BufferMemo {
 public:
  // The buffer's data and length now, or false if it has none (detached) or is not an ArrayBuffer.
  bool Lookup(napi_env env, napi_ref ref, uint8_t** data, size_t* length) {
    Slot& slot = slots_[(reinterpret_cast<uintptr_t>(ref) >> 4) % kSlots];
    if (slot.ref != ref) {
      napi_value buffer = nullptr;
      void* bytes = nullptr;
      size_t size = 0;
      if (napi_get_reference_value(env, ref, &buffer) != napi_ok || buffer == nullptr ||
          napi_get_arraybuffer_info(env, buffer, &bytes, &size) != napi_ok) {
        bytes = nullptr;
        size = 0;
      }
      slot = Slot{ref, static_cast<uint8_t*>(bytes), size};
    }
    *data = slot.data;
    *length = slot.length;
    return slot.data != nullptr;
  }

 private:
  static constexpr size_t kSlots = 8;
  struct Slot {
    napi_ref ref = nullptr;
    uint8_t* data = nullptr;
    size_t length = 0;
  };
  Slot slots_[kSlots];
};

}  // namespace

// Reads, inside this same call, for every readable event whose token asked for it, straight into
// the reader's own buffer: a reader parked on a socket then costs no call into the addon of its
// own, and no copy. An ask is used up by the read; JS renews it each time a reader parks. The
// target is checked at every read (it may have been detached or shrunk since it was set): when it
// no longer holds the bytes asked for, the event is reported unread and the reader reads for
// itself, as without read-ahead. Once one call has read its budget (enableReadAhead; 128 KiB unless
// set), the rest of its events are reported unread too.
//
// A packed ask (offset kPacked) reads into its target just after the bytes the previous packed
// ask of this call read, from the start of the target for the first, and no further than the
// target's end (the ask is cut to fit; with no room left the event is reported unread). Where
// the bytes landed is written back in place of the offset. Readers that share one buffer for
// bytes they use at once (coloop's sharedBuffer) ask this way: their reads ahead go one after
// another into one small region, which stays in the cache from poll to poll.
void JsPoller::ReadAhead(int count) {
  napi_env env = Env();
  size_t budget = read_ahead_budget_;
  size_t packed_at = 0;
  BufferMemo memo;
  for (int i = 0; i < count; ++i) {
    int32_t* result = results_ + 2 * i;
    result[0] = kNotRead;
    if (budget == 0) continue;
    if ((events_[2 * i + 1] & (kReadable | kHangup | kError)) == 0) continue;
    int32_t token = events_[2 * i];
    if (token < 0 || static_cast<size_t>(token) >= want_tokens_) continue;
    int32_t want = wants_[2 * token];
    int32_t offset = wants_[2 * token + 1];
    bool packed = offset == kPacked;
    if (want <= 0 || (offset < 0 && !packed) || static_cast<size_t>(token) >= targets_.size()) continue;
    // The event's fd must be registered under this token now. An fd closed without remove()
    // while a dup of it lives on keeps reporting under its old number and token, and both may
    // belong to someone else by now: such an event is only a spurious wake, never a read.
    size_t fd = static_cast<size_t>(event_fds_[i]);
    if (fd >= token_of_fd_.size() || token_of_fd_[fd] != token) continue;
    const ReadTarget& target = targets_[token];
    uint8_t* data = nullptr;
    size_t length = 0;
    // Detached: no data, length 0. Resizable and shrunk since: the current, smaller length.
    if (target.buffer == nullptr || !memo.Lookup(env, target.buffer, &data, &length)) continue;
    // Inside the view as it was set, and inside the buffer as it is now (a resizable buffer may
    // have shrunk since).
    size_t in_view = packed ? packed_at : static_cast<size_t>(offset);
    // Where a packed read landed is written back as an int32: past that, no more packing.
    if (packed && in_view > static_cast<size_t>(INT32_MAX)) continue;
    if (packed && in_view < target.byte_length) {
      want = static_cast<int32_t>(std::min(static_cast<size_t>(want), target.byte_length - in_view));
    }
    if (in_view >= target.byte_length || static_cast<size_t>(want) > target.byte_length - in_view) continue;
    size_t start = target.byte_offset + in_view;
    if (start > length || static_cast<size_t>(want) > length - start) continue;
    wants_[2 * token] = 0;
    ssize_t got = ReadSocket(event_fds_[i], data + start, static_cast<size_t>(want));
    result[0] = static_cast<int32_t>(got);
    result[1] = want;
    if (packed) {
      wants_[2 * token + 1] = static_cast<int32_t>(in_view);
      if (got > 0) packed_at = in_view + static_cast<size_t>(got);
    }
    if (got > 0) budget -= std::min(budget, static_cast<size_t>(got));
  }
}

void JsPoller::ForgetReadTarget(size_t token) {
  if (token < want_tokens_) wants_[2 * token] = 0;
  if (token < targets_.size() && targets_[token].buffer != nullptr) {
    ReleaseTargetBuffer(targets_[token].buffer);
    targets_[token].buffer = nullptr;
  }
}

// A counted reference to `buffer` (an ArrayBuffer): the last target's, if it is the same buffer.
napi_ref JsPoller::HoldTargetBuffer(napi_env env, napi_value buffer) {
  napi_value last = nullptr;
  bool same = false;
  if (last_target_buffer_ != nullptr && napi_get_reference_value(env, last_target_buffer_, &last) == napi_ok &&
      last != nullptr && napi_strict_equals(env, last, buffer, &same) == napi_ok && same &&
      napi_reference_ref(env, last_target_buffer_, nullptr) == napi_ok) {
    return last_target_buffer_;
  }
  napi_ref ref = nullptr;
  if (napi_create_reference(env, buffer, 1, &ref) != napi_ok) {
    throw CodeError(Napi::Env(env), "ERR_INVALID_STATE", "Cannot hold the read target");
  }
  last_target_buffer_ = ref;
  return ref;
}

void JsPoller::ReleaseTargetBuffer(napi_ref buffer) {
  uint32_t count = 0;
  if (napi_reference_unref(Env(), buffer, &count) != napi_ok || count > 0) return;
  napi_delete_reference(Env(), buffer);
  if (buffer == last_target_buffer_) last_target_buffer_ = nullptr;
}

// Turns read-ahead on (results are made once) and makes sure the wants array has slots for every
// token below `tokens`; returns { wants, results }. A larger wants array replaces the old one, with
// its asks copied: the caller must use the new one from then on.
Napi::Value JsPoller::EnableReadAhead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t tokens = ArgInt32(info, 0, "tokens", 1, kMaxTokens);
  int32_t budget = info[1].IsUndefined() ? static_cast<int32_t>(read_ahead_budget_)
                                         : ArgInt32(info, 1, "budget", 1, kMaxReadAheadBudget);
  CheckOpen(env);
  CheckArraysAttached(env);
  if (results_ == nullptr) {
    size_t result_slots = static_cast<size_t>(poller_.capacity()) * 2;
    Napi::ArrayBuffer results;
    results_ = results_slots_.Make(env, result_slots, &results);
    results_buffer_ = Napi::Persistent(results);
  }
  if (wants_ == nullptr || want_tokens_ < static_cast<size_t>(tokens)) {
    size_t count = std::max<size_t>(static_cast<size_t>(tokens), want_tokens_ * 2);
    count = std::min<size_t>(std::max<size_t>(count, 1024), kMaxTokens);
    Napi::ArrayBuffer grown;
    OwnedSlots grown_slots;
    int32_t* slots = grown_slots.Make(env, count * 2, &grown);
    if (wants_ != nullptr) std::copy(wants_, wants_ + want_tokens_ * 2, slots);
    // The old array stays with whoever still holds it in JS; the poller writes only the new one.
    wants_slots_.TakeFrom(grown_slots);
    wants_buffer_ = Napi::Persistent(grown);
    wants_ = slots;
    want_tokens_ = count;
  }
  read_ahead_budget_ = static_cast<size_t>(budget);
  Napi::Object out = Napi::Object::New(env);
  Napi::ArrayBuffer results = results_buffer_.Value();
  out.Set("wants", Napi::Int32Array::New(env, want_tokens_ * 2, wants_buffer_.Value(), 0));
  out.Set("results", Napi::Int32Array::New(env, results.ByteLength() / sizeof(int32_t), results, 0));
  out.Set("notRead", Napi::Number::New(env, kNotRead));
  out.Set("budget", Napi::Number::New(env, static_cast<double>(read_ahead_budget_)));
  return out;
}

// The buffer the token's reads ahead go into (a Uint8Array), until another is set or the fd is
// removed. Held strongly meanwhile.
Napi::Value JsPoller::SetReadTarget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (wants_ == nullptr) throw CodeError(env, "ERR_INVALID_STATE", "Read-ahead is not enabled");
  int32_t token = ArgInt32(info, 0, "token", 0, static_cast<int32_t>(want_tokens_ - 1));
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowArgType(env, "buffer", "Uint8Array");
  }
  napi_value buffer = nullptr;
  size_t byte_offset = 0;
  size_t byte_length = 0;
  if (napi_get_typedarray_info(env, info[1], nullptr, &byte_length, nullptr, &buffer, &byte_offset) != napi_ok) {
    ThrowArgType(env, "buffer", "Uint8Array");
  }
  size_t slot = static_cast<size_t>(token);
  if (slot >= targets_.size()) targets_.resize(std::min(want_tokens_, std::max(slot + 1, targets_.size() * 2)));
  bool is_arraybuffer = false;
  napi_ref ref = nullptr;
  // A view of a SharedArrayBuffer gets no target (other threads may write its memory at any
  // time): the token's asks then go unread, and its reader reads for itself.
  if (napi_is_arraybuffer(env, buffer, &is_arraybuffer) == napi_ok && is_arraybuffer) {
    ref = HoldTargetBuffer(env, buffer);
  }
  if (targets_[slot].buffer != nullptr) ReleaseTargetBuffer(targets_[slot].buffer);
  targets_[slot] = ReadTarget{ref, byte_offset, byte_length};
  return env.Undefined();
}

Napi::Value JsPoller::TimerCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(timers_.size()));
}

// Restarts the uv_timer only when the earliest deadline changed: uv_timer_start is cheap, but
// wait() runs every tick.
void JsPoller::ArmTimer() {
  if (timers_.empty()) {
    if (timer_armed_) uv_timer_stop(&handles_->timer);
    timer_armed_ = false;
    return;
  }
  double earliest = timers_.earliest();
  if (timer_armed_ && earliest == armed_deadline_) return;
  // Rounded up, since a wake before the deadline finds nothing expired. libuv counts the delay from
  // its cached loop time, which trails NowMs(), so an early wake remains possible; it costs one
  // onWake, after which wait() re-arms for the remainder (OnTimer cleared timer_armed_).
  double delay = std::min(std::ceil(earliest - NowMs()), kMaxTimerDelayMs);
  uv_timer_start(&handles_->timer, OnTimer, delay > 0 ? static_cast<uint64_t>(delay) : 0, 0);
  timer_armed_ = true;
  armed_deadline_ = earliest;
}

void JsPoller::UpdateKeepAlive() {
  auto* poll = reinterpret_cast<uv_handle_t*>(&handles_->poll);
  if (registered_count_ > 0) {
    uv_ref(poll);
  } else {
    uv_unref(poll);
  }
  bool hold = registered_count_ > 0 || !timers_.empty();
  if (hold == held_) return;
  held_ = hold;
  if (hold) {
    Ref();
  } else {
    Unref();
  }
}

void JsPoller::Shutdown(bool release_ref) {
  LoopHandles* handles = handles_;
  if (handles == nullptr) return;
  handles_ = nullptr;
  handles->owner = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&handles->poll), OnHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&handles->timer), OnHandleClosed);
  // Only now: closing the uv_poll removed the fd from libuv's own epoll set, which needs it open
  // (libuv src/unix/linux.c, uv__platform_invalidate_fd).
  poller_.close();
  timers_.clear();
  token_of_fd_.clear();
  registered_count_ = 0;
  for (const ReadTarget& target : targets_) {
    if (target.buffer != nullptr) ReleaseTargetBuffer(target.buffer);
  }
  targets_.clear();
  last_target_buffer_ = nullptr;
  wants_ = nullptr;
  want_tokens_ = 0;
  results_ = nullptr;
  timer_armed_ = false;
  if (held_ && release_ref) Unref();
  held_ = false;
}

void JsPoller::OnPollable(uv_poll_t* handle, int, int) {
  Wake(static_cast<LoopHandles*>(handle->data));
}

void JsPoller::OnTimer(uv_timer_t* handle) {
  auto* handles = static_cast<LoopHandles*>(handle->data);
  if (handles->owner != nullptr) handles->owner->timer_armed_ = false;
  Wake(handles);
}

void JsPoller::Wake(LoopHandles* handles) {
  JsPoller* self = handles->owner;
  if (self == nullptr) return;
  napi_env env = self->Env();
  Napi::HandleScope scope(env);
  Napi::Object receiver = self->Value();
  // Collected but not yet finalized: nobody is left to wake.
  if (receiver.IsEmpty()) return;
  // MakeCallback, not Call: Node runs the microtask queue and nextTick callbacks after it, as for
  // any callback coming from the event loop. Made through Node-API directly: node-addon-api's
  // FunctionReference::MakeCallback opens an escapable handle scope of its own for the result
  // (a heap allocation and V8's scope, ~250 user-space instructions a wake; callgrind).
  napi_value result = nullptr;
  if (napi_make_callback(env, self->async_context_, receiver, self->on_wake_.Value(), 0, nullptr, &result) != napi_ok) {
    // An exception in onWake is reported like one thrown from a setTimeout callback. (A failure
    // without one, as while the environment shuts down and can no longer run JS, has nothing to
    // report.)
    bool pending = false;
    napi_value error = nullptr;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
        napi_get_and_clear_last_exception(env, &error) == napi_ok) {
      napi_fatal_exception(env, error);
    }
  }
  // onWake may have closed the poller; then `self` must not be touched (it may even be collected
  // later), but `handles` lives until its close callbacks, which cannot run before we return.
  if (handles->owner != self) return;
  // onWake is expected to call wait(), which re-arms the timer. If it did not, an expired timer
  // must still wake it again rather than be forgotten.
  self->ArmTimer();
}

void JsPoller::OnHandleClosed(uv_handle_t* handle) {
  auto* handles = static_cast<LoopHandles*>(handle->data);
  if (--handles->open_handles > 0) return;
  if (handles->cleanup_hook != nullptr) napi_remove_async_cleanup_hook(handles->cleanup_hook);
  delete handles;
}

void JsPoller::OnEnvCleanup(napi_async_cleanup_hook_handle, void* data) {
  // The hook is removed by OnHandleClosed once libuv has closed both handles.
  auto* handles = static_cast<LoopHandles*>(data);
  if (handles->owner != nullptr) handles->owner->Shutdown(true);
}

}  // namespace

Napi::Function DefinePoller(Napi::Env env) { return JsPoller::Define(env); }

}  // namespace coloop
