#!/usr/bin/env node
// Summaries, the Markdown table and the SVG chart for bench/echo/suite.js results. No dependencies.
//   node bench/echo/report.js bench/results/<date>.json [--out DIR]   re-renders latest.md/svg
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A cell is called client-bound when the load client used at least this much of its core. */
export const CLIENT_BOUND_PCT = 90;
/** A cell is called noisy when other processes used at least this much of the server's core. */
export const NOISY_PCT = 25;

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
const finite = (xs) => xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
const min = (xs) => (finite(xs).length ? Math.min(...finite(xs)) : null);
const max = (xs) => (finite(xs).length ? Math.max(...finite(xs)) : null);
const ratio = (a, b) => (a != null && b != null && b > 0 ? a / b : null);

/** Per scenario and server: medians with min–max over the rounds, and ratios within this run. */
export function summarize(results) {
  const out = {};
  for (const sc of results.scenarios) {
    const cells = {};
    for (const sv of results.servers) {
      const runs = results.runs.filter((r) => r.scenario === sc.id && r.server === sv.id);
      const ok = runs.filter((r) => !r.error && r.result && r.result.messages > 0);
      const rate = ok.map((r) => r.result.msgsPerSec);
      const clientPct = ok.map((r) => (100 * r.result.clientCpuSec) / r.result.duration);
      cells[sv.id] = {
        rounds: runs.length,
        ok: ok.length,
        failures: runs.filter((r) => r.error).map((r) => `round ${r.round + 1}: ${r.error}`),
        msgsPerSec: { median: median(rate), min: min(rate), max: max(rate) },
        mbPerSec: median(ok.map((r) => r.result.mbPerSec)),
        latencyUs: {
          p50: median(ok.map((r) => r.result.latencyUs?.p50)),
          p99: median(ok.map((r) => r.result.latencyUs?.p99)),
          p999: median(ok.map((r) => r.result.latencyUs?.p999)),
        },
        serverCpuSecPerMMsgs: median(ok.map((r) => (r.serverCpuSec != null ? (r.serverCpuSec / r.result.messages) * 1e6 : null))),
        serverCpuPct: median(ok.map((r) => (r.serverCpuSec != null ? (100 * r.serverCpuSec) / r.result.duration : null))),
        // The same split into user space and kernel (results from before the split have no user).
        serverUserSecPerMMsgs: median(ok.map((r) => (r.serverUserCpuSec != null ? (r.serverUserCpuSec / r.result.messages) * 1e6 : null))),
        serverKernelSecPerMMsgs: median(ok.map((r) => (r.serverUserCpuSec != null && r.serverCpuSec != null ? ((r.serverCpuSec - r.serverUserCpuSec) / r.result.messages) * 1e6 : null))),
        rssPeakMiB: max(ok.map((r) => (r.serverRssPeakKiB != null ? r.serverRssPeakKiB / 1024 : null))),
        rssIdleMiB: median(ok.map((r) => (r.serverRssIdleKiB != null ? r.serverRssIdleKiB / 1024 : null))),
        anonPeakMiB: max(ok.map((r) => (r.serverAnonPeakKiB != null ? r.serverAnonPeakKiB / 1024 : null))),
        clientCpuPct: { median: median(clientPct), max: max(clientPct) },
        errors: ok.reduce((a, r) => a + (r.result.errors || 0), 0),
        connectFailures: ok.reduce((a, r) => a + (r.result.connectFailures || 0), 0),
        serverExits: runs.map((r) => r.serverExit),
        serverCoreOtherPct: median(ok.map((r) => (r.serverCoreOther != null ? 100 * r.serverCoreOther : null))),
      };
    }
    const med = (id) => cells[id]?.msgsPerSec.median ?? null;
    const cpu = (id) => cells[id]?.serverCpuSecPerMMsgs ?? null;
    for (const [id, c] of Object.entries(cells)) {
      c.fracC = ratio(c.msgsPerSec.median, med('c'));
      c.xNode = ratio(c.msgsPerSec.median, med('node-pipe'));
      c.xJs = ratio(c.msgsPerSec.median, med('js'));
      // Efficiency: the other server's CPU per message over this one's (above 1: this one needs less).
      c.cpuFracC = ratio(cpu('c'), c.serverCpuSecPerMMsgs);
      c.cpuXNode = ratio(cpu('node-pipe'), c.serverCpuSecPerMMsgs);
      c.cpuXJs = ratio(cpu('js'), c.serverCpuSecPerMMsgs);
      // A paced scenario (sc.rate): whether the server answered what it was sent.
      c.behind = sc.rate != null && c.msgsPerSec.median != null && c.msgsPerSec.median < BEHIND_FRACTION * sc.rate;
      c.p99xC = ratio(c.latencyUs.p99, cells.c?.latencyUs.p99);
      c.clientBound = c.clientCpuPct.max != null && c.clientCpuPct.max >= CLIENT_BOUND_PCT;
      c.noisy = c.serverCoreOtherPct != null && c.serverCoreOtherPct >= NOISY_PCT;
      void id;
    }
    out[sc.id] = cells;
  }
  out.goals = goals(results, out);
  return out;
}

const GOAL_SERVERS = ['native', 'native-protocol'];

function goals(results, s) {
  const caveats = (sc) => {
    const out = [];
    if (s[sc]?.c?.clientBound) out.push('C ref client-bound');
    const noisy = ['c', ...GOAL_SERVERS].filter((id) => s[sc]?.[id]?.noisy);
    if (noisy.length) out.push(`noisy: ${noisy.join(', ')} (other load ≥ ${NOISY_PCT}% on the server core)`);
    return out.join('; ');
  };
  const has = (sc, sv) => s[sc]?.[sv]?.msgsPerSec.median != null;
  // Two decimals, or three where two would round onto the target (a ❌ beside "0.95×" for a
  // target of 0.95 reads as a contradiction; it is 0.949).
  const near = (v, target) => v.toFixed(Number(v.toFixed(2)) === target ? 3 : 2);
  // The server's throughput over the C reference's in each round where both ran: paired within a
  // round, so a slow spell of the machine moves both. Their spread says how firm a verdict is.
  const roundRatios = (sc, sv) => {
    const rates = (id) =>
      new Map(results.runs.filter((r) => r.scenario === sc && r.server === id && !r.error && r.result?.messages > 0).map((r) => [r.round, r.result.msgsPerSec]));
    const c = rates('c');
    return [...rates(sv)].filter(([round]) => c.get(round) > 0).map(([round, v]) => v / c.get(round));
  };
  const list = [];
  const frac = (sc, target, label) => ({
    goal: `≥ ${target.toFixed(2)} of the C reference, ${label}`,
    target,
    scenario: sc,
    measure: (sv) => {
      if (!has(sc, sv) || !has(sc, 'c')) return null;
      const rounds = roundRatios(sc, sv);
      return {
        v: s[sc][sv].fracC,
        cpu: ratio(s[sc].c.serverCpuSecPerMMsgs, s[sc][sv].serverCpuSecPerMMsgs),
        rounds: rounds.length >= 2 ? [Math.min(...rounds), Math.max(...rounds)] : null,
      };
    },
    // Beside the throughput fraction, the CPU one (C's server CPU per message over this server's):
    // it does not depend on the load client keeping up. Then the lowest and highest round.
    fmt: (m) => {
      const notes = [];
      if (m.cpu != null) notes.push(`CPU ${m.cpu.toFixed(2)}×`);
      if (m.rounds != null) notes.push(`rounds ${m.rounds[0].toFixed(2)}–${m.rounds[1].toFixed(2)}`);
      return `${near(m.v, target)}×${notes.length ? ` (${notes.join('; ')})` : ''}`;
    },
    pass: (m) => m.v >= target,
    caveat: () => caveats(sc),
  });
  list.push(frac('c100-64', 0.95, '100 × 64 B'));
  list.push(frac('c100-1k', 0.95, '100 × 1 KiB'));
  list.push(frac('c100-16k', 0.9, '100 × 16 KiB'));
  list.push(frac('c10k-64', 0.9, '10,000 × 64 B'));
  list.push(frac('c100-64-p8', 0.9, '100 × 64 B, 8 in flight'));
  list.push({
    goal: '≥ 1.4× the pure-JS selector (lowest over scenarios)',
    target: 1.4,
    measure: (sv) => {
      // Throughput: a paced scenario gives every server the same, so it has no say here.
      const xs = results.scenarios
        .map((sc) => (sc.rate == null && has(sc.id, sv) && has(sc.id, 'js') ? { v: s[sc.id][sv].xJs, sc: sc.id } : null))
        .filter(Boolean);
      if (!xs.length) return null;
      return xs.reduce((a, b) => (b.v < a.v ? b : a));
    },
    fmt: (m) => `${near(m.v, 1.4)}× (${m.sc})`,
    pass: (m) => m.v >= 1.4,
    caveat: () => '',
  });
  list.push({
    goal: 'server peak RSS at 10,000 conns ≤ 30 MiB',
    target: 30,
    scenario: 'c10k-64',
    measure: (sv) => {
      const c = s['c10k-64']?.[sv];
      return c?.rssPeakMiB != null ? { v: c.rssPeakMiB, idle: c.rssIdleMiB, anon: c.anonPeakMiB } : null;
    },
    fmt: (m) =>
      (m.idle == null ? `${m.v.toFixed(1)} MiB` : `${m.v.toFixed(1)} MiB (${m.idle.toFixed(1)} idle + ${(m.v - m.idle).toFixed(1)})`) +
      (m.anon != null ? `; private ${m.anon.toFixed(1)}` : ''),
    pass: (m) => m.v <= 30,
    caveat: () => '',
  });
  list.push({
    goal: 'p99 latency at 100 × 64 B ≤ 1.1× the C reference’s',
    target: 1.1,
    scenario: 'c100-64',
    measure: (sv) => (has('c100-64', sv) && has('c100-64', 'c') && s['c100-64'][sv].p99xC != null ? { v: s['c100-64'][sv].p99xC, sv } : null),
    fmt: (m) => `${near(m.v, 1.1)}× (${fmtUs(s['c100-64'][m.sv].latencyUs.p99)} vs ${fmtUs(s['c100-64'].c.latencyUs.p99)} µs)`,
    pass: (m) => m.v <= 1.1,
    caveat: () => caveats('c100-64'),
  });
  return list.map((g) => {
    const per = {};
    for (const sv of GOAL_SERVERS) {
      if (!results.servers.some((x) => x.id === sv)) continue;
      const m = g.measure(sv);
      per[sv] = m == null ? null : { value: typeof m === 'object' ? m.v : m, text: g.fmt(m), pass: g.pass(m) };
    }
    return { goal: g.goal, target: g.target, scenario: g.scenario ?? null, measured: per, caveat: g.caveat() };
  });
}

// ---------------------------------------------------------------------------------------------
// Markdown

function fmtRate(v) {
  if (v == null) return '–';
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(0);
}
function fmtUs(v) {
  if (v == null) return '–';
  return v >= 10000 ? `${(v / 1000).toFixed(1)}k` : `${Math.round(v)}`;
}
const fx = (v, d = 2) => (v == null ? '–' : `${v.toFixed(d)}×`);
const fn = (v, d = 1) => (v == null ? '–' : v.toFixed(d));

/**
 * Server CPU per message split into user space and kernel, for the C reference and coloop's goal
 * servers, with the difference to C: which of the two a missed goal has to come out of.
 */
function splitTable(results, s, gs, names) {
  const us = (v) => (v == null ? '–' : v.toFixed(2));
  const diff = (v, c) => (v == null || c == null ? '' : ` (${v - c >= 0 ? '+' : '−'}${Math.abs(v - c).toFixed(2)})`);
  const rows = [];
  for (const sc of results.scenarios) {
    const c = s[sc.id]?.c;
    if (c?.serverUserSecPerMMsgs == null) continue;
    const cells = gs.map((sv) => {
      const x = s[sc.id][sv];
      if (x?.serverUserSecPerMMsgs == null) return '–';
      return `${us(x.serverUserSecPerMMsgs)}${diff(x.serverUserSecPerMMsgs, c.serverUserSecPerMMsgs)} + ${us(x.serverKernelSecPerMMsgs)}${diff(x.serverKernelSecPerMMsgs, c.serverKernelSecPerMMsgs)}`;
    });
    rows.push(`| ${sc.label} | ${us(c.serverUserSecPerMMsgs)} + ${us(c.serverKernelSecPerMMsgs)} | ${cells.join(' | ')} |`);
  }
  if (rows.length === 0) return [];
  return [
    '### Where the difference is: server CPU µs per message, user space + kernel',
    '',
    'Medians of the rounds (/proc/<pid>/stat utime and stime over the measured window); in brackets the difference to the C reference. ' +
      'coloop\'s native servers make the system calls the C reference makes, one read and one write a message at depth 1 (`strace -c -f -p PID`), so the kernel\'s part is about the same for the three; what a server adds is mostly user space.',
    '',
    `| scenario | C epoll (reference) | ${gs.map((g) => names[g]).join(' | ')} |`,
    `|---|---:|${gs.map(() => '---:').join('|')}|`,
    ...rows,
  ];
}

/**
 * With --baseline: this build's native servers against the same servers from the other build, as
 * the median of per-round ratios (each round's pair ran back to back), server CPU per message and
 * its user-space part: the A/B of a driver change, from the run itself.
 */
export function baselineRatios(results) {
  const out = [];
  const perMsg = (r, k) => (r?.result?.messages > 0 && r[k] != null ? r[k] / r.result.messages : null);
  for (const sc of results.scenarios) {
    for (const sv of results.servers) {
      const base = `${sv.id}-base`;
      if (!results.servers.some((x) => x.id === base)) continue;
      const cpu = [];
      const user = [];
      for (const r of results.runs) {
        if (r.scenario !== sc.id || r.server !== sv.id || r.error) continue;
        const b = results.runs.find((x) => x.scenario === sc.id && x.server === base && x.round === r.round && !x.error);
        const [a1, b1] = [perMsg(r, 'serverCpuSec'), perMsg(b, 'serverCpuSec')];
        if (a1 != null && b1) cpu.push(a1 / b1);
        const [a2, b2] = [perMsg(r, 'serverUserCpuSec'), perMsg(b, 'serverUserCpuSec')];
        if (a2 != null && b2) user.push(a2 / b2);
      }
      if (cpu.length) out.push({ scenario: sc, server: sv, cpu: { median: median(cpu), min: min(cpu), max: max(cpu), n: cpu.length }, user: user.length ? { median: median(user), min: min(user), max: max(user) } : null });
    }
  }
  return out;
}

function baselineTable(results) {
  const rows = baselineRatios(results);
  if (rows.length === 0) return [];
  const f = (x) => (x == null ? '–' : `${x.median.toFixed(3)} (${x.min.toFixed(3)}–${x.max.toFixed(3)})`);
  return [
    '## This build against the baseline',
    '',
    'Median (min–max) over the rounds of this build\'s server CPU per message over the baseline build\'s in the same round; below 1 is less CPU. User space: the same for utime alone.',
    '',
    '| scenario | server | CPU per message | user space per message | rounds |',
    '|---|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.scenario.label} | ${r.server.label} | ${f(r.cpu)} | ${f(r.user)} | ${r.cpu.n} |`),
  ];
}

/** A paced cell whose server answered less than this share of the rate fell behind. */
const BEHIND_FRACTION = 0.97;

export function renderMarkdown(results) {
  const s = results.summary ?? summarize(results);
  const L = [];
  const m = results.machine;
  L.push(`# coloop echo benchmarks (${results.mode})`);
  L.push('');
  L.push(`${results.date} · ${m.cpus} × ${m.model} · Linux ${m.kernel} · Node ${m.node} · load avg at end ${m.loadavg.map((x) => x.toFixed(2)).join(' ')}`);
  L.push('');
  L.push(`Client: ${results.client.label}, pinned to core ${m.clientCore}; servers pinned to core ${m.serverCore}${m.taskset ? ' (taskset)' : ' — NOT pinned (no taskset)'}. ` +
    `${results.config.rounds} round(s), server order rotated each round; ${results.config.warmup} s warm-up on connections of its own, then ${results.config.warmup} s on the measured connections, + ${results.config.duration} s measured per round. Wall time ${Math.round(results.wallSec)} s.`);
  L.push('');
  const gs = Object.keys(s.goals[0]?.measured ?? {});
  if (gs.length) {
    L.push('## Goals');
    L.push('');
    const names = { native: 'coloop native (serve)', 'native-protocol': 'coloop native (Protocol)' };
    L.push(`| goal | ${gs.map((g) => names[g]).join(' | ')} | note |`);
    L.push(`|---|${gs.map(() => '---').join('|')}|---|`);
    for (const g of s.goals) {
      const cells = gs.map((sv) => {
        const v = g.measured[sv];
        return v == null ? 'not measured' : `${v.pass ? '✅' : '❌'} ${v.text}`;
      });
      L.push(`| ${g.goal} | ${cells.join(' | ')} | ${g.caveat} |`);
    }
    L.push('');
    L.push('Ratios are between medians of this run. "C ref client-bound": the load client used ≥ ' +
      `${CLIENT_BOUND_PCT}% of its core in the C reference's cell, so the C number is the client's limit and the fraction overstates the server. ` +
      '"CPU": the C server\'s CPU seconds per message over this server\'s, the efficiency fraction, which holds whether or not the client kept up. ' +
      '"rounds": the lowest and highest of the per-round fractions (each round\'s msgs/s over the C reference\'s in the same round): how firm the verdict is; ' +
      'a goal whose rounds straddle its target is within this run\'s noise. The fraction itself is of the medians, so it can fall just outside its rounds\' range.');
    L.push('');
    const split = splitTable(results, s, gs, names);
    if (split.length) L.push(...split, '');
  }
  L.push('## Results');
  L.push('');
  L.push('msgs/s: median (min–max) of the rounds. × C / × node / × js: median over the C reference, node:net pipe, and coloop\'s pure-JS selector. ' +
    'Latency: medians of each round\'s percentiles, µs, per message (send to full echo). Server CPU: utime+stime of the server process per million messages (/proc/<pid>/stat), in brackets its user-space part; ' +
    'RSS: peak (VmHWM), and in brackets the server\'s RSS once listening, before any connection (Node alone is ~40 MiB, ~34 of it pages of the node executable, shared by every node process); "private" in the RSS goal is the peak of RssAnon, the memory the server has to itself. Client CPU: share of the client\'s core; ⚠ marks ≥ ' + CLIENT_BOUND_PCT + '% (the client, not the server, may be the limit). Other load: how busy the server\'s core was beyond the server process (other tenants; ⚠ at ≥ ' + NOISY_PCT + '%: a noisy cell, to be re-run before drawing conclusions).');
  L.push('');
  for (const sc of results.scenarios) {
    const cells = s[sc.id];
    const paced = sc.rate != null;
    L.push(`### ${sc.label}`);
    L.push('');
    if (paced) {
      L.push(`Equal load: the client sent every server ${fmtRate(sc.rate)} messages a second (load_epoll --rate), below what any of them saturates at, so the servers compare ` +
        'by what the same work costs them: × C / × node / × js here are the other server\'s CPU per message over this one\'s (above 1: this one needs less), and latency is at the same throughput. ' +
        `"behind": the server answered less than ${BEHIND_FRACTION * 100}% of the rate, and its figures are not at equal load.`);
      L.push('');
    }
    L.push(`| server | msgs/s (min–max) | MB/s | × C${paced ? ' (CPU)' : ''} | × node${paced ? ' (CPU)' : ''} | × js${paced ? ' (CPU)' : ''} | p50 / p99 / p99.9 µs | server CPU s/M msgs (user) | server CPU % | peak RSS MiB (idle) | client CPU % | other load on server core % |`);
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const sv of results.servers) {
      const c = cells[sv.id];
      if (!c) continue;
      if (c.ok === 0) {
        L.push(`| ${sv.label} | failed: ${(c.failures[0] ?? 'no result').replace(/\|/g, '/').split('\n')[0].slice(0, 120)} | | | | | | | | | | |`);
        continue;
      }
      const r = c.msgsPerSec;
      const err = c.errors || c.connectFailures ? ` (${c.errors} err, ${c.connectFailures} conn fail)` : '';
      const partial = c.ok < c.rounds ? ` [${c.ok}/${c.rounds} rounds]` : '';
      const [xc, xn, xj] = paced ? [c.cpuFracC, c.cpuXNode, c.cpuXJs] : [c.fracC, c.xNode, c.xJs];
      L.push(`| ${sv.label}${partial} | ${fmtRate(r.median)} (${fmtRate(r.min)}–${fmtRate(r.max)})${err}${c.behind ? ' ⚠ behind' : ''} | ${fn(c.mbPerSec, 1)} | ${fx(xc)} | ${fx(xn)} | ${fx(xj)} | ` +
        `${fmtUs(c.latencyUs.p50)} / ${fmtUs(c.latencyUs.p99)} / ${fmtUs(c.latencyUs.p999)} | ${fn(c.serverCpuSecPerMMsgs, 2)}${c.serverUserSecPerMMsgs != null ? ` (${fn(c.serverUserSecPerMMsgs, 2)})` : ''} | ${fn(c.serverCpuPct, 0)} | ${fn(c.rssPeakMiB, 1)}${c.rssIdleMiB != null ? ` (${fn(c.rssIdleMiB, 1)})` : ''} | ` +
        `${fn(c.clientCpuPct.median, 0)}${c.clientBound ? ' ⚠' : ''} | ${fn(c.serverCoreOtherPct, 0)}${c.noisy ? ' ⚠' : ''} |`);
    }
    L.push('');
  }
  const pairs = baselineTable(results);
  if (pairs.length) L.push(...pairs, '');
  const fails = [];
  for (const sc of results.scenarios) for (const sv of results.servers) for (const f of s[sc.id][sv.id]?.failures ?? []) fails.push(`${sv.id} / ${sc.id} ${f.split('\n')[0]}`);
  if (results.notes.length || fails.length) {
    L.push('## Notes');
    L.push('');
    for (const n of results.notes) L.push(`- ${n}`);
    for (const f of fails) L.push(`- failed: ${f}`);
    L.push('');
  }
  return L.join('\n');
}

// ---------------------------------------------------------------------------------------------
// SVG: one group of horizontal bars per scenario; bar length = fraction of the C reference: of its
// msgs/s, or in a paced scenario (equal load) its CPU per message over the server's.

const COLORS = {
  c: '#555555',
  native: '#d9480f',
  'native-protocol': '#f08c00',
  js: '#1c7ed6',
  'node-pipe': '#2b8a3e',
  'node-data': '#69db7c',
  asyncio: '#7048e8',
  uvloop: '#b197fc',
};
const esc = (t) => String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderSvg(results) {
  const s = results.summary ?? summarize(results);
  const W = 1000, labelW = 230, barX = labelW + 10, barW = 440, rowH = 20, gap = 30, top = 70;
  const haveC = results.servers.some((x) => x.id === 'c');
  let maxFrac = 1.1;
  for (const sc of results.scenarios)
    for (const sv of results.servers) {
      const c = s[sc.id][sv.id];
      if (sc.rate != null) {
        if (c?.cpuFracC != null) maxFrac = Math.max(maxFrac, c.cpuFracC * 1.02);
        continue;
      }
      const ref = haveC ? s[sc.id].c?.msgsPerSec.median : null;
      if (ref && c?.msgsPerSec.max != null) maxFrac = Math.max(maxFrac, (c.msgsPerSec.max / ref) * 1.02);
    }
  maxFrac = Math.min(maxFrac, 3); // whiskers beyond 3× the reference are clipped
  const scale = (f) => Math.min(f / maxFrac, 1) * barW;
  const rows = results.servers.length;
  const H = top + results.scenarios.length * (rows * rowH + gap + 18) + 40;
  const o = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  o.push(`<text x="16" y="26" font-size="18" font-weight="bold">coloop echo throughput, as a fraction of a C epoll server${haveC ? '' : ' (C reference not run: fraction of the best)'}</text>`);
  o.push(`<text x="16" y="46" fill="#555">${esc(`${results.mode} · ${results.date.slice(0, 16).replace('T', ' ')} · median of ${results.config.rounds} round(s) × ${results.config.duration} s · whiskers: min–max · ⚠ client ≥ ${CLIENT_BOUND_PCT}% CPU · client: ${results.client.kind === 'c' ? 'C epoll' : 'coloop load'}`)}</text>`);
  let y = top;
  const gridTop = top - 6;
  for (const sc of results.scenarios) {
    const cells = s[sc.id];
    const best = Math.max(...results.servers.map((sv) => cells[sv.id]?.msgsPerSec.median ?? 0));
    const ref = haveC ? cells.c?.msgsPerSec.median : best;
    const paced = sc.rate != null;
    o.push(`<text x="16" y="${y + 12}" font-weight="bold" font-size="13">${esc(sc.label)}${paced ? ` <tspan font-weight="normal" fill="#555">${esc('(equal load; bar: C\'s CPU per message over the server\'s)')}</tspan>` : ''}</text>`);
    y += 18;
    const goal = sc.id === 'c100-64' || sc.id === 'c100-1k' ? 0.95 : 0.9;
    const groupH = rows * rowH;
    // reference lines: 1.0 (C) and the goal
    if (haveC) {
      o.push(`<line x1="${barX + scale(1)}" y1="${y - 2}" x2="${barX + scale(1)}" y2="${y + groupH}" stroke="#333" stroke-width="1"/>`);
      o.push(`<line x1="${barX + scale(goal)}" y1="${y - 2}" x2="${barX + scale(goal)}" y2="${y + groupH}" stroke="#d9480f" stroke-width="1" stroke-dasharray="3,3"/>`);
    }
    for (const sv of results.servers) {
      const c = cells[sv.id];
      const m = c?.msgsPerSec.median;
      o.push(`<text x="${labelW}" y="${y + 14}" text-anchor="end">${esc(sv.label)}</text>`);
      if (m == null || !ref || (paced && c.cpuFracC == null)) {
        o.push(`<text x="${barX + 4}" y="${y + 14}" fill="#c00">no result</text>`);
        y += rowH;
        continue;
      }
      if (paced) {
        const f = c.cpuFracC;
        const w = Math.max(1, scale(f));
        o.push(`<rect x="${barX}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${COLORS[sv.id] ?? '#888'}"><title>${esc(`${sv.label}: ${fn(c.serverCpuSecPerMMsgs, 2)} CPU s per million messages`)}</title></rect>`);
        const txt = `${f.toFixed(2)}× C (CPU) · ${fn(c.serverCpuSecPerMMsgs, 2)} µs/msg · p99 ${fmtUs(c.latencyUs.p99)} µs${c.behind ? ' ⚠ behind' : ''}`;
        o.push(`<text x="${barX + w + 6}" y="${y + 14}" fill="#222">${esc(txt)}</text>`);
        y += rowH;
        continue;
      }
      const f = m / ref;
      const w = Math.max(1, scale(f));
      o.push(`<rect x="${barX}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${COLORS[sv.id] ?? '#888'}"><title>${esc(`${sv.label}: ${Math.round(m)} msgs/s`)}</title></rect>`);
      const lo = scale(c.msgsPerSec.min / ref), hi = scale(c.msgsPerSec.max / ref);
      if (hi - lo > 1) {
        const cy = y + rowH / 2;
        o.push(`<path d="M${(barX + lo).toFixed(1)} ${cy}H${(barX + hi).toFixed(1)}M${(barX + lo).toFixed(1)} ${cy - 4}V${cy + 4}M${(barX + hi).toFixed(1)} ${cy - 4}V${cy + 4}" stroke="#000" stroke-opacity="0.6" fill="none"/>`);
      }
      const txt = `${f.toFixed(2)}${haveC ? '× C' : ''} · ${fmtRate(m)} msg/s · p99 ${fmtUs(c.latencyUs.p99)} µs${c.clientBound ? ' ⚠' : ''}`;
      o.push(`<text x="${barX + Math.max(w, hi) + 6}" y="${y + 14}" fill="#222">${esc(txt)}</text>`);
      y += rowH;
    }
    y += gap;
  }
  if (haveC) {
    o.push(`<text x="${barX + scale(1)}" y="${gridTop}" text-anchor="middle" fill="#333">C = 1.0</text>`);
    o.push(`<text x="${W - 16}" y="${H - 14}" text-anchor="end" fill="#d9480f">dashed: goal for coloop native (0.95 at 64 B and 1 KiB, 0.90 otherwise)</text>`);
  }
  o.push('</svg>');
  return o.join('\n') + '\n';
}

// Re-render from a saved JSON file.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/echo/report.js <results.json> [--out DIR]');
    process.exit(2);
  }
  const results = JSON.parse(readFileSync(file, 'utf8'));
  results.summary = summarize(results);
  const oi = process.argv.indexOf('--out');
  const dir = oi > 0 ? process.argv[oi + 1] : path.dirname(file);
  const md = renderMarkdown(results);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'latest.md'), md);
  writeFileSync(path.join(dir, 'latest.svg'), renderSvg(results));
  process.stdout.write(md + '\n');
}
