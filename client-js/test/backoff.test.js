import assert from 'node:assert/strict';
import { test } from 'node:test';

import { backoffDelay, DEFAULT_BACKOFF } from '../backoff.js';

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('every delay is an integer within [0, min(cap, base * 2^attempt)]', () => {
  const random = seeded(42);
  const shapes = [
    { baseMs: 500, capMs: 30_000 },
    { baseMs: 1, capMs: 10 },
    { baseMs: 250, capMs: 250 },
    { baseMs: 1000, capMs: 100 },
    { baseMs: 0, capMs: 5000 },
    { baseMs: 3.7, capMs: 99.5 },
  ];
  for (const options of shapes) {
    for (let attempt = 0; attempt < 80; attempt += 1) {
      for (let i = 0; i < 50; i += 1) {
        const delay = backoffDelay(attempt, options, random);
        const ceiling = Math.floor(Math.min(options.capMs, options.baseMs * 2 ** attempt));
        assert.ok(Number.isInteger(delay), `${delay} is not an integer`);
        assert.ok(
          delay >= 0 && delay <= ceiling,
          `${delay} outside [0, ${ceiling}] (attempt ${attempt})`,
        );
      }
    }
  }
});

test('the extremes of the random source reach both ends of the interval', () => {
  const options = { baseMs: 100, capMs: 1000 };
  assert.equal(
    backoffDelay(0, options, () => 0),
    0,
  );
  assert.equal(
    backoffDelay(0, options, () => 0.9999999),
    100,
  );
  assert.equal(
    backoffDelay(3, options, () => 0.9999999),
    800,
  );
  assert.equal(
    backoffDelay(4, options, () => 0.9999999),
    1000,
    'capped',
  );
  assert.equal(
    backoffDelay(2000, options, () => 0.9999999),
    1000,
    'no overflow for huge attempts',
  );
});

test('the ceiling grows exponentially until the cap', () => {
  const top = () => 0.9999999;
  const ceilings = [0, 1, 2, 3, 4, 5, 6].map((n) =>
    backoffDelay(n, { baseMs: 10, capMs: 300 }, top),
  );
  assert.deepEqual(ceilings, [10, 20, 40, 80, 160, 300, 300]);
});

test('a misbehaving random source or attempt cannot escape the interval', () => {
  const options = { baseMs: 100, capMs: 1000 };
  for (const value of [-1, 1, 2, Number.NaN, Infinity, -Infinity]) {
    const delay = backoffDelay(1, options, () => value);
    assert.ok(delay >= 0 && delay <= 200, `random ${value} gave ${delay}`);
  }
  for (const attempt of [-5, Number.NaN, -Infinity]) {
    const delay = backoffDelay(attempt, options, () => 0.9999999);
    assert.equal(delay, 100, `attempt ${attempt} counts as the first`);
  }
});

test('defaults apply when options are omitted', () => {
  assert.equal(
    backoffDelay(0, {}, () => 0.9999999),
    DEFAULT_BACKOFF.baseMs,
  );
  assert.equal(
    backoffDelay(100, undefined, () => 0.9999999),
    DEFAULT_BACKOFF.capMs,
  );
  const delay = backoffDelay(3);
  assert.ok(delay >= 0 && delay <= 4000);
});

test('the delays are spread over the interval, not bunched', () => {
  const random = seeded(7);
  const buckets = new Array(10).fill(0);
  for (let i = 0; i < 10_000; i += 1) {
    const delay = backoffDelay(10, { baseMs: 1, capMs: 999 }, random);
    buckets[Math.min(9, Math.floor(delay / 100))] += 1;
  }
  for (const count of buckets) assert.ok(count > 700 && count < 1300, `uneven buckets ${buckets}`);
});
