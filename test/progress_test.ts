import assert from "node:assert/strict";
import { formatCount, formatDuration, Progress } from "../src/progress.ts";

/** A fake clock and an output recorder. */
function harness(): { out: string[]; clock: { t: number }; now: () => number } {
  const clock = { t: 1000 };
  return { out: [], clock, now: () => clock.t };
}

Deno.test("formatting of durations and counts", () => {
  assert.equal(formatDuration(0), "0:00");
  assert.equal(formatDuration(65), "1:05");
  assert.equal(formatDuration(3725), "1:02:05");
  assert.equal(formatDuration(Infinity), "?");
  assert.equal(formatDuration(-1), "?");
  assert.equal(formatCount(512, "B"), "512 B");
  assert.equal(formatCount(1536, "B"), "1.5 KiB");
  assert.equal(formatCount(170052171, "B"), "162.2 MiB");
  assert.equal(formatCount(12.345, "it"), "12.35 it");
  assert.equal(formatCount(7, "img"), "7 img");
});

Deno.test("terminal mode redraws one line with \\r, throttled, with rate and ETA", () => {
  const h = harness();
  const p = new Progress({
    label: "epoch 1/2",
    total: 100,
    unit: "batch",
    width: 10,
    tty: true,
    redrawMs: 100,
    write: (t) => h.out.push(t),
    now: h.now,
  });
  h.clock.t += 2000; // 2 s for 20 batches: 10 batch/s, 80 left → 8 s
  p.update(20, "loss=1.5");
  assert.equal(h.out.length, 1);
  assert.equal(h.out[0], "\repoch 1/2 [##........]  20.0% 20/100 10 batch/s ETA 0:08 loss=1.5");
  h.clock.t += 50; // within the redraw interval: nothing drawn
  p.tick();
  assert.equal(h.out.length, 1);
  assert.equal(p.current, 21);
  h.clock.t += 950; // 3 s, 30 done
  p.update(30);
  assert.equal(h.out.length, 2);
  assert.ok(h.out[1].startsWith("\repoch 1/2 [###.......]  30.0% 30/100 10 batch/s ETA 0:07"));
  // The shorter line is padded over the longer previous one.
  assert.ok(h.out[1].length >= h.out[0].length);
  h.clock.t += 7000;
  p.update(100);
  p.finish("acc=50%");
  const last = h.out.at(-1)!;
  assert.equal(last.at(-1), "\n");
  assert.ok(last.includes("[##########] 100.0% 100/100 10 batch/s in 0:10 acc=50%"), last);
  const count = h.out.length;
  p.finish();
  p.update(100);
  assert.equal(h.out.length, count); // nothing after finish
});

Deno.test("log mode prints plain lines at most once per interval, plus the final line", () => {
  const h = harness();
  const p = new Progress({
    label: "train",
    total: 1000,
    tty: false,
    intervalMs: 10_000,
    write: (t) => h.out.push(t),
    now: h.now,
  });
  for (let i = 1; i <= 1000; i++) {
    h.clock.t += 50; // 50 s in all
    p.update(i);
  }
  p.finish();
  // Lines at 10, 20, 30, 40, 50 s, then the final one; no carriage returns.
  assert.equal(h.out.length, 6);
  for (const line of h.out) {
    assert.ok(!line.includes("\r"));
    assert.equal(line.at(-1), "\n");
  }
  assert.ok(h.out[0].startsWith("train [####"), h.out[0]);
  assert.ok(h.out[0].includes("200/1000 20 it/s ETA 0:40"), h.out[0]);
  assert.ok(h.out[5].includes("1000/1000 20 it/s in 0:50"), h.out[5]);
});

Deno.test("a short epoch in log mode gives exactly one line", () => {
  const h = harness();
  const p = new Progress({
    label: "epoch 7",
    total: 5,
    tty: false,
    write: (t) => h.out.push(t),
    now: h.now,
  });
  for (let i = 0; i < 5; i++) {
    h.clock.t += 100;
    p.tick(1, "loss=0.5");
  }
  p.finish("loss=0.5");
  assert.equal(h.out.length, 1);
  assert.ok(h.out[0].startsWith("epoch 7 [") && h.out[0].includes("5/5 10 it/s in 0:01 loss=0.5"));
});

Deno.test("bytes, unknown totals and resumed starts", () => {
  const h = harness();
  const p = new Progress({
    label: "cifar.tar.gz",
    unit: "B",
    start: 1024 * 1024,
    tty: true,
    write: (t) => h.out.push(t),
    now: h.now,
  });
  h.clock.t += 1000;
  p.update(3 * 1024 * 1024); // 2 MiB this session in 1 s; total unknown: no bar, no ETA
  assert.equal(h.out[0], "\rcifar.tar.gz 3.0 MiB 2.0 MiB/s");
  p.total = 4 * 1024 * 1024;
  assert.equal(p.total, 4 * 1024 * 1024);
  assert.ok(p.line().includes("75.0% 3.0 MiB/4.0 MiB 2.0 MiB/s ETA 0:01"), p.line());
  assert.equal(p.rate, 2 * 1024 * 1024);
  assert.equal(p.elapsed, 1);
});

Deno.test("bad options are rejected", () => {
  assert.throws(
    () => new Progress({ total: -1, write: () => {} }),
    /total must be a finite number ≥ 0, got -1/,
  );
  assert.throws(
    () => new Progress({ width: 0, write: () => {} }),
    /width must be a positive integer/,
  );
  assert.throws(
    () => new Progress({ stream: "stdlog" as "stdout", write: () => {} }),
    /stream must be "stdout" or "stderr"/,
  );
  const p = new Progress({ write: () => {} });
  assert.throws(() => p.update(NaN), /current must be a finite number/);
  assert.throws(() => (p.total = -5), /total must be/);
});
