// What each js_*.cc layer contributes to the addon's exports (assembled in addon.cc).
#pragma once

#include <napi.h>

namespace coloop {

Napi::Function DefinePoller(Napi::Env env);     // js_poller.cc
Napi::Function DefineTimerHeap(Napi::Env env);  // js_timer_heap.cc
void ExportSocketFunctions(Napi::Env env, Napi::Object exports);  // js_socket.cc

}  // namespace coloop
