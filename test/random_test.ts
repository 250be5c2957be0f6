import assert from "node:assert/strict";
import { Random } from "../src/random.ts";

Deno.test("xoshiro128** core matches the reference output for state {1, 2, 3, 4}", () => {
  const rng = Random.fromState({ s: [1, 2, 3, 4], spare: null });
  const got = Array.from({ length: 10 }, () => rng.nextUint32());
  // First outputs of the authors' reference C code seeded with s = {1, 2, 3, 4}.
  assert.deepEqual(got, [
    11520,
    0,
    5927040,
    70819200,
    2031721883,
    1637235492,
    1287239034,
    3734860849,
    3729100597,
    4258142804,
  ]);
});

Deno.test("equal seeds give equal streams, different seeds differ, large seeds work", () => {
  const draw = (seed: number) => {
    const r = new Random(seed);
    return Array.from({ length: 8 }, () => r.nextUint32());
  };
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(42), draw(43));
  assert.notDeepEqual(draw(0), draw(2 ** 32)); // the high half of the seed matters
  assert.deepEqual(draw(Number.MAX_SAFE_INTEGER), draw(Number.MAX_SAFE_INTEGER));
  assert.throws(() => new Random(-1), /seed must be a non-negative safe integer, got -1/);
  assert.throws(() => new Random(1.5), /seed/);
});

Deno.test("state snapshots resume the exact stream, including a pending normal deviate", () => {
  const rng = new Random(7);
  rng.normal(); // leaves the second Box–Muller value pending
  const saved = JSON.parse(JSON.stringify(rng.getState()));
  const expected = [rng.normal(), rng.uniform(), rng.integer(0, 1000), rng.normal()];
  const resumed = Random.fromState(saved);
  assert.deepEqual([
    resumed.normal(),
    resumed.uniform(),
    resumed.integer(0, 1000),
    resumed.normal(),
  ], expected);
  const a = new Random(3), b = a.clone();
  assert.equal(a.uniform(), b.uniform());
  assert.throws(() => Random.fromState({ s: [0, 0, 0, 0], spare: null }), /must not be all zero/);
  assert.throws(
    () => Random.fromState({ s: [1, 2, 3, 2 ** 32], spare: null }),
    /unsigned 32-bit integers, got 4294967296/,
  );
  assert.throws(
    () =>
      Random.fromState({
        s: [1, 2, 3] as unknown as [number, number, number, number],
        spare: null,
      }),
    /array of 4 words/,
  );
});

Deno.test("uniform: range, mean and variance of [0, 1) and scaled bounds", () => {
  const rng = new Random(1);
  const n = 200000;
  let sum = 0, sq = 0;
  for (let i = 0; i < n; i++) {
    const u = rng.uniform();
    assert.ok(u >= 0 && u < 1);
    sum += u;
    sq += u * u;
  }
  const mean = sum / n, variance = sq / n - mean * mean;
  assert.ok(Math.abs(mean - 0.5) < 5 * Math.sqrt(1 / 12 / n), `mean ${mean}`);
  assert.ok(Math.abs(variance - 1 / 12) < 0.002, `variance ${variance}`);
  for (let i = 0; i < 1000; i++) {
    const x = rng.uniform(-3, 5);
    assert.ok(x >= -3 && x < 5);
  }
  assert.equal(rng.uniform(2, 2), 2);
  assert.throws(() => rng.uniform(1, 0), /uniform bounds must be finite with low ≤ high/);
});

Deno.test("integer: unbiased over small and huge ranges, bounds respected", () => {
  const rng = new Random(2);
  const k = 7, n = 70000;
  const hist = new Int32Array(k);
  for (let i = 0; i < n; i++) {
    const v = rng.integer(-3, 4);
    assert.ok(Number.isInteger(v) && v >= -3 && v < 4);
    hist[v + 3]++;
  }
  // Chi-square with 6 degrees of freedom: 22.46 is the 0.999 quantile.
  const e = n / k;
  const chi2 = hist.reduce((acc, o) => acc + (o - e) ** 2 / e, 0);
  assert.ok(chi2 < 22.46, `chi-square ${chi2}`);
  const big = 2 ** 40 + 3;
  let above = 0;
  for (let i = 0; i < 10000; i++) {
    const v = rng.integer(0, big);
    assert.ok(Number.isInteger(v) && v >= 0 && v < big);
    if (v >= big / 2) above++;
  }
  assert.ok(Math.abs(above - 5000) < 5 * 50, `upper half ${above}`);
  assert.equal(rng.integer(5, 6), 5);
  assert.throws(() => rng.integer(3, 3), /integer range high − low must be in \[1, 2\^53\]/);
  assert.throws(() => rng.integer(0, 1.5), /integer bounds must be safe integers/);
});

Deno.test("normal: moments of N(mean, std) and argument checks", () => {
  const rng = new Random(3);
  const n = 100000;
  let sum = 0, sq = 0, cube = 0;
  for (let i = 0; i < n; i++) {
    const z = rng.normal(2, 3);
    sum += z;
    sq += (z - 2) ** 2;
    cube += ((z - 2) / 3) ** 3;
  }
  const mean = sum / n, variance = sq / n;
  assert.ok(Math.abs(mean - 2) < 5 * 3 / Math.sqrt(n), `mean ${mean}`);
  assert.ok(Math.abs(variance - 9) < 5 * 9 * Math.sqrt(2 / n), `variance ${variance}`);
  assert.ok(Math.abs(cube / n) < 5 * Math.sqrt(15 / n), `skew ${cube / n}`);
  assert.equal(rng.normal(1, 0), 1);
  assert.throws(() => rng.normal(0, -1), /std must be a finite number ≥ 0, got -1/);
  assert.throws(() => rng.normal(NaN), /mean must be finite/);
});

Deno.test("fillNormal: the values and the state of as many normal() calls", () => {
  // Odd and even lengths, with and without a pending deviate on entry, both array types.
  for (const length of [0, 1, 2, 7, 1000]) {
    for (const pending of [false, true]) {
      for (const Type of [Float32Array, Float64Array]) {
        const a = new Random(11), b = new Random(11);
        if (pending) {
          a.normal();
          b.normal();
        }
        const out = a.fillNormal(new Type(length), -1.5, 0.25);
        const want = new Type(length);
        for (let i = 0; i < length; i++) want[i] = b.normal(-1.5, 0.25);
        assert.deepEqual(out, want, `length ${length}, pending ${pending}, ${Type.name}`);
        // The state matches too, including the kept second deviate.
        assert.deepEqual(a.getState(), b.getState());
        assert.equal(a.normal(), b.normal());
      }
    }
  }
  const rng = new Random(1);
  assert.throws(() => rng.fillNormal(new Float32Array(2), 0, -1), /std must be a finite number/);
  assert.throws(() => rng.fillNormal(new Float32Array(2), Infinity), /mean must be finite/);
});

Deno.test("bernoulli, shuffle and permutation", () => {
  const rng = new Random(4);
  let hits = 0;
  for (let i = 0; i < 20000; i++) if (rng.bernoulli(0.3)) hits++;
  assert.ok(Math.abs(hits / 20000 - 0.3) < 5 * Math.sqrt(0.21 / 20000));
  assert.equal(rng.bernoulli(0), false);
  assert.equal(rng.bernoulli(1), true);
  assert.throws(() => rng.bernoulli(1.5), /p must be in \[0, 1\], got 1.5/);

  const perm = rng.permutation(100);
  assert.deepEqual([...perm].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
  assert.notDeepEqual([...perm], Array.from({ length: 100 }, (_, i) => i));
  assert.equal(rng.permutation(0).length, 0);
  assert.throws(() => rng.permutation(-2), /n must be a non-negative 32-bit integer, got -2/);

  // Every one of the 6 orders of 3 items appears about equally often.
  const seen = new Map<string, number>();
  for (let i = 0; i < 60000; i++) {
    const key = rng.shuffle(["a", "b", "c"]).join("");
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  assert.equal(seen.size, 6);
  for (const [key, count] of seen) assert.ok(Math.abs(count - 10000) < 500, `${key}: ${count}`);
  const typed = rng.shuffle(new Float32Array([1, 2, 3, 4]));
  assert.deepEqual([...typed].sort(), [1, 2, 3, 4]);
});
