// Micro benchmarks of the driver: coloop (native and pure-JS backends) against plain async/await,
// `co` and Effection 4, side by side in one run. Usage: node bench/micro.js [--quick]
// Speed is measured here, never asserted in tests.
import co from 'co';
import * as effection from 'effection';
import { call, run, sleep, spawn, wait, yieldNow } from '../dist/index.js';
import { loadNative } from '../dist/native.js';
import { TimerHeap } from '../dist/timers.js';
import { formatRate, machine, measure, save } from './harness.js';

const quick = process.argv.includes('--quick');
const scale = quick ? 0.1 : 1;
const backends = loadNative() ? ['native', 'js'] : ['js'];
const coloop = (name, ops, main) => backends.map((backend) => ({ name: `coloop ${backend}`, ops, fn: () => run(main, { backend }) }));

const cases = [];

// 1. Task switch: 10 tasks each give up the CPU N/10 times, round robin.
{
  const N = Math.round(200_000 * scale);
  const per = N / 10;
  cases.push({
    name: 'task switch (10 tasks round robin)',
    unit: 'switches',
    variants: [
      ...coloop('coloop', N, function* () {
        const tasks = [];
        for (let t = 0; t < 10; t++) tasks.push(yield* spawn(function* () { for (let i = 0; i < per; i++) yield* yieldNow(); }));
        for (const t of tasks) yield* t;
      }),
      { name: 'async/await', ops: N, fn: () => Promise.all(Array.from({ length: 10 }, async () => { for (let i = 0; i < per; i++) await null; })) },
      { name: 'co', ops: N, fn: () => Promise.all(Array.from({ length: 10 }, () => co(function* () { for (let i = 0; i < per; i++) yield Promise.resolve(); }))) },
      {
        name: 'effection',
        ops: N,
        fn: () => effection.run(function* () {
          const tasks = [];
          for (let t = 0; t < 10; t++) tasks.push(yield* effection.spawn(function* () { for (let i = 0; i < per; i++) yield* effection.call(() => Promise.resolve()); }));
          for (const t of tasks) yield* t;
        }),
      },
    ],
  });
}

// 2. Spawn + join a trivial child, sequentially.
{
  const N = Math.round(100_000 * scale);
  const child = function* () { return 1; };
  cases.push({
    name: 'spawn + join',
    unit: 'tasks',
    variants: [
      ...coloop('coloop', N, function* () { for (let i = 0; i < N; i++) yield* yield* spawn(child); }),
      { name: 'async/await', ops: N, fn: async () => { const f = async () => 1; for (let i = 0; i < N; i++) await f(); } },
      { name: 'co', ops: N, fn: () => co(function* () { for (let i = 0; i < N; i++) yield co(child); }) },
      { name: 'effection', ops: N, fn: () => effection.run(function* () { for (let i = 0; i < N; i++) yield* yield* effection.spawn(child); }) },
    ],
  });
}

// 3. sleep(0) round trip: a timer that is already due, sequentially. async/await's nearest
//    equivalent is a setImmediate promise (Node's setTimeout(0) waits at least 1 ms).
{
  const N = Math.round(50_000 * scale);
  cases.push({
    name: 'sleep(0) round trip',
    unit: 'sleeps',
    variants: [
      ...coloop('coloop', N, function* () { for (let i = 0; i < N; i++) yield* sleep(0); }),
      { name: 'async/await (setImmediate)', ops: N, fn: async () => { for (let i = 0; i < N; i++) await new Promise((r) => setImmediate(r)); } },
      { name: 'effection', ops: N / 50, fn: () => effection.run(function* () { for (let i = 0; i < N / 50; i++) yield* effection.sleep(0); }) },
    ],
  });
}

// 4. Recursion at depth 100, bottoming out in 100 suspensions: the shape of Effection's own
//    recursion benchmark. Two bottoms: awaiting a resolved promise (Effection's exact shape), and
//    each system's own cheapest suspension (coloop yieldNow(), async/await `await null`).
//    coloop runs it twice: recursing with call() (the driver keeps the stack, O(1) per resume)
//    and with plain yield* (V8 resumes every level, O(depth) per resume).
{
  const DEPTH = 100;
  const BREADTH = 100;
  const R = Math.round(200 * scale);
  const shapes = [
    { bottom: 'promise', coloopStep: () => wait(Promise.resolve()), asyncStep: () => Promise.resolve() },
    { bottom: 'yield', coloopStep: () => yieldNow(), asyncStep: () => null },
  ];
  for (const { bottom, coloopStep, asyncStep } of shapes) {
    function* viaCall(depth) {
      if (depth > 1) return yield* call(viaCall(depth - 1));
      for (let i = 0; i < BREADTH; i++) yield* coloopStep();
    }
    function* viaYieldStar(depth) {
      if (depth > 1) return yield* viaYieldStar(depth - 1);
      for (let i = 0; i < BREADTH; i++) yield* coloopStep();
    }
    async function viaAsync(depth) {
      if (depth > 1) return viaAsync(depth - 1);
      for (let i = 0; i < BREADTH; i++) await asyncStep();
    }
    function* viaCo(depth) {
      if (depth > 1) return yield* viaCo(depth - 1);
      for (let i = 0; i < BREADTH; i++) yield Promise.resolve();
    }
    function* viaEffection(depth) {
      if (depth > 1) return yield* viaEffection(depth - 1);
      for (let i = 0; i < BREADTH; i++) yield* effection.call(() => Promise.resolve());
    }
    const variants = [
      { name: 'async/await', ops: R, fn: async () => { for (let r = 0; r < R; r++) await viaAsync(DEPTH); } },
      ...backends.map((backend) => ({ name: `coloop ${backend} call()`, ops: R, fn: () => run(function* () { for (let r = 0; r < R; r++) yield* viaCall(DEPTH); }, { backend }) })),
      ...backends.map((backend) => ({ name: `coloop ${backend} yield*`, ops: R, fn: () => run(function* () { for (let r = 0; r < R; r++) yield* viaYieldStar(DEPTH); }, { backend }) })),
    ];
    if (bottom === 'promise') {
      variants.push(
        { name: 'co', ops: R, fn: () => co(function* () { for (let r = 0; r < R; r++) yield* viaCo(DEPTH); }) },
        { name: 'effection', ops: R, fn: () => effection.run(function* () { for (let r = 0; r < R; r++) yield* viaEffection(DEPTH); }) },
      );
    }
    cases.push({ name: `recursion (depth ${DEPTH}, ${BREADTH} ${bottom === 'promise' ? 'awaited promises' : 'plain yields'} at the bottom)`, unit: 'runs', variants });
  }
}

// 5. Timer heaps: 1e6 inserts with random deadlines, then expire all; and a cancel-heavy mix.
{
  const N = Math.round(1_000_000 * scale);
  const deadlines = Float64Array.from({ length: N }, (_, i) => ((i * 2654435761) % 1_000_000) / 10);
  const native = loadNative();
  const heaps = [['JS heap', () => new TimerHeap()], ...(native ? [['native heap', () => new native.TimerHeap()]] : [])];
  const out = new Int32Array(4096);
  const insertExpire = (make) => () => {
    const heap = make();
    for (let i = 0; i < N; i++) heap.schedule(deadlines[i]);
    while (heap.expire(1e9, out) > 0);
  };
  const cancelHeavy = (make) => () => {
    const heap = make();
    const ids = new Int32Array(N);
    for (let i = 0; i < N; i++) ids[i] = heap.schedule(deadlines[i]);
    for (let i = 0; i < N; i++) if (i % 10 !== 0) heap.cancel(ids[i]);
    while (heap.expire(1e9, out) > 0);
  };
  cases.push({ name: `timer heap: ${N} insert + expire`, unit: 'timers', variants: heaps.map(([name, make]) => ({ name, ops: N, fn: insertExpire(make) })) });
  cases.push({ name: `timer heap: ${N} insert, 90% cancel, expire`, unit: 'timers', variants: heaps.map(([name, make]) => ({ name, ops: N, fn: cancelHeavy(make) })) });
}

const results = [];
let md = `# Micro benchmarks\n\n\`node bench/micro.js\` on ${machine().cpu} (${machine().cpus} cores), Node ${process.version}, commit ${machine().commit}.\n`;
md += 'Median of 7 alternated rounds after 2 warm-up rounds (min–max in brackets); ratios are within this run.\n';
for (const c of cases) {
  process.stderr.write(`running: ${c.name}\n`);
  const rows = await measure(c.variants, { rounds: quick ? 3 : 7, warmup: quick ? 1 : 2 });
  const base = rows[0].median;
  results.push({ case: c.name, unit: c.unit, rows });
  md += `\n## ${c.name}\n\n| variant | ${c.unit}/s (median) | min–max | vs ${rows[0].name} |\n|---|---:|---:|---:|\n`;
  for (const r of rows) md += `| ${r.name} | ${formatRate(r.median)} | ${formatRate(r.min)} – ${formatRate(r.max)} | ${(r.median / base).toFixed(2)}× |\n`;
}
console.log(md);
if (!quick) {
  const saved = save('micro', { machine: machine(), results }, md);
  console.log(`saved ${saved.json} and ${saved.md}`);
}
