// What each js_*.cc layer contributes to the addon's exports (assembled in addon.cc).
#pragma once

#include <napi.h>

namespace coloop {

Napi::Function DefinePoller(Napi::Env env);     // js_poller.cc
Napi::Function DefineTimerHeap(Napi::Env env);  // js_timer_heap.cc
void ExportSocketFunctions(Napi::Env env, Napi::Object exports);  // js_socket.cc
// js_bound_io.cc: exports ioArgs, bindBuffer, readBound and writeBound; returns their state, which
// close() passes to ReleaseBound so that a closed fd's bound buffers are let go.
void* ExportBoundIo(Napi::Env env, Napi::Object exports);
void ReleaseBound(void* state, int fd);

}  // namespace coloop
