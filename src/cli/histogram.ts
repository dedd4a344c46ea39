/**
 * A latency histogram with fixed log-linear buckets (HDR-style) in one typed array: recording is
 * an index computation and an increment, never an allocation, whatever the number of samples.
 *
 * Values are non-negative integers (microseconds here). Values below 2 * SUB are exact; above, each
 * power of two is split into SUB buckets, so a bucket is at most 1/SUB (~1.6%) of its value wide.
 * Values beyond MAX are clamped into the last bucket.
 */
const SUB_BITS = 6;
const SUB = 1 << SUB_BITS; // 64 buckets per power of two
const LINEAR = SUB << 1; // 0..127 exact
const MAX_SHIFT = 24; // up to 2^(24+7) - 1 µs: about 35 minutes
const MAX = LINEAR * 2 ** MAX_SHIFT - 1;
const BUCKETS = LINEAR + MAX_SHIFT * SUB;

export class Histogram {
  readonly counts = new Float64Array(BUCKETS);
  count = 0;
  max = 0;

  record(value: number): void {
    let v = value > 0 ? Math.floor(value) : 0;
    if (v > MAX) v = MAX;
    if (v > this.max) this.max = v;
    this.counts[indexOf(v)]!++;
    this.count++;
  }

  /** The value at quantile q (0..1): the middle of the bucket holding that rank, capped at max. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.max, midpoint(i));
    }
    return this.max;
  }
}

export function indexOf(v: number): number {
  if (v < LINEAR) return v;
  const shift = 31 - Math.clz32(v) - SUB_BITS; // >= 1: v >>> shift is in [SUB, 2 * SUB)
  return LINEAR + (shift - 1) * SUB + ((v >>> shift) - SUB);
}

/** The smallest and largest value of bucket i. */
export function bucketRange(i: number): [number, number] {
  if (i < LINEAR) return [i, i];
  const shift = ((i - LINEAR) >> SUB_BITS) + 1;
  const sub = ((i - LINEAR) & (SUB - 1)) + SUB;
  return [sub * 2 ** shift, (sub + 1) * 2 ** shift - 1];
}

function midpoint(i: number): number {
  const [lo, hi] = bucketRange(i);
  return Math.round((lo + hi) / 2);
}
