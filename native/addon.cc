// Module initialisation only. Node-API addons are context-aware: Node calls this once per
// environment (main thread and each worker), and all state hangs off the objects created here and
// off the per-environment Addon instance, never off globals.
#include <napi.h>

#include "js_exports.h"

namespace coloop {

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceValue("Poller", DefinePoller(env), napi_enumerable),
                             InstanceValue("TimerHeap", DefineTimerHeap(env), napi_enumerable),
                         });
    ExportSocketFunctions(env, exports);
  }
};

}  // namespace coloop

// The macro pastes the name into an identifier, so it must be unqualified.
using ColoopAddon = coloop::Addon;
NODE_API_ADDON(ColoopAddon)
