#!/usr/bin/env bash
# npm run test:sanitize — the native, networking and driver tests against an addon built with
# AddressSanitizer + UndefinedBehaviorSanitizer. Fails on a test failure or on any sanitizer report.
#
# 1. Builds the instrumented addon into build/sanitize (CMake option COLOOP_SANITIZE): the shipped
#    build/Release/coloop.node is never touched.
# 2. Runs vitest with COLOOP_ADDON_PATH pointing at it (src/native.ts reads it) and the gcc sanitizer
#    runtimes preloaded: node is not instrumented, so libasan must be the first library loaded, or
#    ASan refuses to start ("ASan runtime does not come first").
# 3. Every process (vitest's forked workers and the children tests spawn) writes its reports to
#    build/sanitize/reports/<asan|ubsan>.<pid>, so a report from a child whose stderr a test
#    swallows is still seen; the combined output is also grepped.
#
# ASAN_OPTIONS=detect_leaks=0: LeakSanitizer is off because V8 and Node deliberately never free a
# great deal at exit (isolate heaps, code space, per-context data), which LSan would report as
# thousands of leaks unrelated to coloop. fd and handle leaks are what matter for the addon and are
# tested directly (lifetime, c10k and backpressure tests count fds); heap overflows, use-after-free
# and double frees are still caught by ASan.
#
# Extra arguments go to vitest (e.g. a file filter): scripts/test-sanitize.sh test/native
set -uo pipefail
cd "$(dirname "$0")/.."

out=build/sanitize
reports="$PWD/$out/reports"

echo "== test:sanitize: building the instrumented addon into $out"
npx cmake-js compile --out "$out" --CDCOLOOP_SANITIZE=ON --log-level warn || exit 1
addon="$PWD/$out/Release/coloop.node"
[ -f "$addon" ] || { echo "test:sanitize: $addon was not built"; exit 1; }
npm run build >/dev/null || exit 1

asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
for lib in "$asan" "$ubsan"; do
  # -print-file-name echoes the bare name back when it does not know the file.
  [ -f "$lib" ] || { echo "test:sanitize: sanitizer runtime $lib not found (install libasan/libubsan for gcc)"; exit 1; }
done

rm -rf "$reports" && mkdir -p "$reports"
log="$out/test-output.log"

# Native (addon calls, garbage arguments, lifetime), networking (both backends), driver, fuzz.
# Left out: fallback (runs without the addon), bench-suite (C reference binaries, no addon).
files=(test/native test/backend test/net.test.ts test/errors-net.test.ts test/protocol.test.ts
  test/backpressure.test.ts test/c10k.test.ts test/emfile.test.ts test/interop.test.ts
  test/task.test.ts test/loop.test.ts test/timers.test.ts test/combinators.test.ts
  test/call.test.ts test/fuzz)
[ "$#" -gt 0 ] && files=("$@")

echo "== test:sanitize: vitest ${files[*]}"
COLOOP_ADDON_PATH="$addon" \
LD_PRELOAD="$asan $ubsan${LD_PRELOAD:+ $LD_PRELOAD}" \
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$reports/asan" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan" \
  timeout --kill-after=30s 20m node node_modules/vitest/vitest.mjs run "${files[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

found=0
if compgen -G "$reports/*" >/dev/null; then
  found=1
  for f in "$reports"/*; do echo "---- $f"; cat "$f"; done
fi
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer' "$log"; then
  found=1
fi

if [ "$found" -ne 0 ]; then
  echo "test:sanitize: FAILED — sanitizer report(s) above (also in $reports)"
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "test:sanitize: FAILED — tests failed under the sanitizers (exit $status)"
  exit "$status"
fi
echo "test:sanitize: passed, no sanitizer reports"
