// safetensors reading and writing: exact bytes of a small file, a hand-written file, model round
// trips with PyTorch names, every error with the file's path, and the atomic write.

import assert from "node:assert/strict";
import {
  CheckpointError,
  decodeSafetensors,
  encodeSafetensors,
  loadCheckpoint,
  readSafetensors,
  type SafetensorsTensor,
  saveCheckpoint,
  stateDict,
  writeSafetensors,
} from "../src/checkpoint.ts";
import { resnet } from "../src/nn/resnet.ts";
import { countersOf } from "../src/nn/named.ts";
import type { Layer } from "../src/nn/layer.ts";
import { tensor } from "../src/tensor.ts";
import { SGD } from "../src/optim/sgd.ts";
import { gaussian } from "./gradcheck.ts";

const ascii = (s: string): number[] => Array.from(new TextEncoder().encode(s));

/** A safetensors file assembled by hand: u64 LE header length, header, data. */
function handmade(header: string, data: number[]): Uint8Array {
  const h = ascii(header);
  const len = [h.length & 0xff, (h.length >> 8) & 0xff, 0, 0, 0, 0, 0, 0];
  return new Uint8Array([...len, ...h, ...data]);
}

function snapshot(m: Layer): Float32Array[] {
  return [...m.parameters(), ...m.stateTensors()].map((t) => t.value.toArray() as Float32Array);
}

Deno.test("encodeSafetensors writes the exact bytes (padded header, 8-byte types first)", () => {
  const bytes = encodeSafetensors(
    new Map<string, SafetensorsTensor>([
      ["a", { dtype: "F32", shape: [2], data: new Float32Array([1.5, -2]) }],
      ["n", { dtype: "I64", shape: [], data: new BigInt64Array([7n]) }],
    ]),
    { k: "v" },
  );
  const header = '{"__metadata__":{"k":"v"},' +
    '"n":{"dtype":"I64","shape":[],"data_offsets":[0,8]},' +
    '"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}';
  const padded = header + " ".repeat((8 - header.length % 8) % 8);
  const expected = handmade(padded, [
    ...[7, 0, 0, 0, 0, 0, 0, 0], // 7 as little-endian int64
    ...[0x00, 0x00, 0xc0, 0x3f], // 1.5f = 0x3fc00000
    ...[0x00, 0x00, 0x00, 0xc0], // -2f = 0xc0000000
  ]);
  assert.equal(padded.length % 8, 0);
  assert.deepEqual(bytes, expected);
});

Deno.test("decodeSafetensors reads a hand-written file (unpadded, any order, I32 too)", () => {
  const file = handmade(
    '{"w":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},' +
      '"c":{"dtype":"I64","shape":[],"data_offsets":[8,16]},' +
      '"i":{"dtype":"I32","shape":[1],"data_offsets":[16,20]}}',
    [
      0,
      0,
      0x80,
      0x3f,
      0,
      0,
      0,
      0x40,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0x7f,
      0xfe,
      0xff,
      0xff,
      0xff,
    ],
  );
  const { tensors, metadata } = decodeSafetensors(file, "hand.safetensors");
  assert.deepEqual(metadata, {});
  assert.deepEqual([...tensors.keys()], ["w", "c", "i"]);
  assert.deepEqual(tensors.get("w"), {
    dtype: "F32",
    shape: [1, 2],
    data: new Float32Array([1, 2]),
  });
  assert.deepEqual(tensors.get("c"), {
    dtype: "I64",
    shape: [],
    data: new BigInt64Array([2n ** 63n - 1n]),
  });
  assert.deepEqual(tensors.get("i"), { dtype: "I32", shape: [1], data: new Int32Array([-2]) });
});

Deno.test("model round trip: parameters, running statistics, counters and outputs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = resnet({ depth: 8, numClasses: 3, seed: 1 });
    const x = tensor(gaussian(4 * 3 * 8 * 8, 2), [4, 3, 8, 8]);
    const opt = new SGD(a.parameters(), { lr: 0.1 });
    for (let i = 0; i < 2; i++) {
      a.forward(x, true);
      a.backward(tensor(gaussian(12, 3 + i), [4, 3]));
      opt.step();
    }
    const path = `${dir}/model.safetensors`;
    await saveCheckpoint(path, a, { epoch: "2", note: "ü" });
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), [
      "model.safetensors",
    ]);
    const b = resnet({ depth: 8, numClasses: 3, seed: 99 });
    assert.notDeepEqual(snapshot(b)[0], snapshot(a)[0]);
    const metadata = await loadCheckpoint(path, b);
    assert.deepEqual(metadata, { epoch: "2", note: "ü" });
    assert.deepEqual(snapshot(b), snapshot(a));
    assert.ok(countersOf(a).every((c) => c.get() === 2));
    assert.deepEqual(countersOf(b).map((c) => c.get()), countersOf(a).map((c) => c.get()));
    assert.deepEqual(b.logits(x).toArray(), a.logits(x).toArray());
    // The file holds exactly the PyTorch state_dict entries, counters as I64 scalars.
    const { tensors } = await readSafetensors(path);
    const names = [...tensors.keys()].sort();
    const expected = [
      ...a.parameters().map((p) => p.name),
      ...a.stateTensors().map((s) => s.name),
      ...countersOf(a).map((c) => c.name),
    ].sort();
    assert.deepEqual(names, expected);
    assert.deepEqual(tensors.get("layer2.0.bn1.num_batches_tracked"), {
      dtype: "I64",
      shape: [],
      data: new BigInt64Array([2n]),
    });
    assert.deepEqual(tensors.get("layer3.0.conv1.weight")?.shape, [64, 32, 3, 3]);
    assert.deepEqual(tensors.get("linear.bias")?.dtype, "F32");
    opt.dispose();
    a.dispose();
    b.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loading reports missing, unexpected, mismatched tensors by name and changes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const model = resnet({ depth: 8, numClasses: 3, seed: 1 });
    const before = snapshot(model);
    const good = stateDict(resnet({ depth: 8, numClasses: 3, seed: 2 }));
    const attempt = async (
      name: string,
      edit: (m: Map<string, SafetensorsTensor>) => void,
      message: string | RegExp,
    ): Promise<void> => {
      const m = new Map(good);
      edit(m);
      const path = `${dir}/${name}.safetensors`;
      await writeSafetensors(path, m);
      await assert.rejects(() => loadCheckpoint(path, model), (e: unknown) => {
        assert.ok(e instanceof CheckpointError, String(e));
        assert.equal(e.path, path);
        if (typeof message === "string") assert.equal(e.message, `${path}: ${message}`);
        else assert.match(e.message, message);
        return true;
      });
      assert.deepEqual(snapshot(model), before, `${name}: the model must be left unchanged`);
    };
    await attempt(
      "missing",
      (m) => m.delete("layer1.0.bn2.running_var"),
      "missing tensor(s): layer1.0.bn2.running_var",
    );
    await attempt(
      "unexpected",
      (m) => m.set("fc.weight", { dtype: "F32", shape: [1], data: new Float32Array(1) }),
      "unexpected tensor(s): fc.weight",
    );
    await attempt("both", (m) => {
      m.delete("bn1.num_batches_tracked");
      m.set("extra", { dtype: "F32", shape: [], data: new Float32Array(1) });
    }, "missing tensor(s): bn1.num_batches_tracked; unexpected tensor(s): extra");
    await attempt(
      "shape",
      (m) => m.set("linear.weight", { dtype: "F32", shape: [4, 64], data: new Float32Array(256) }),
      'shape mismatch for "linear.weight": the model has [3, 64], the file has [4, 64]',
    );
    await attempt(
      "dtype",
      (m) => m.set("bn1.running_mean", { dtype: "I32", shape: [16], data: new Int32Array(16) }),
      'dtype mismatch for "bn1.running_mean": expected F32, the file has I32',
    );
    await attempt(
      "counter",
      (m) =>
        m.set("bn1.num_batches_tracked", {
          dtype: "I64",
          shape: [],
          data: new BigInt64Array([-1n]),
        }),
      '"bn1.num_batches_tracked" holds -1, expected a non-negative safe integer',
    );
    // A model of another size is refused at the first shape that differs.
    await saveCheckpoint(`${dir}/ten.safetensors`, resnet({ depth: 8, numClasses: 10 }));
    await assert.rejects(
      () => loadCheckpoint(`${dir}/ten.safetensors`, model),
      /shape mismatch for "linear.weight"/,
    );
    model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("corrupt and truncated files are reported with the path and the problem", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: [string, Uint8Array, RegExp][] = [
      ["short", new Uint8Array(5), /truncated: 5 bytes, shorter than the 8-byte header length/],
      [
        "header-past-end",
        new Uint8Array([200, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d]),
        /truncated: header length 200 needs 208 bytes but the file has 10/,
      ],
      [
        "huge-header",
        new Uint8Array([0, 0, 0, 0, 0, 0, 0, 1, 0]),
        /corrupt header: header length \d+ exceeds/,
      ],
      ["not-json", handmade("{abc", []), /corrupt header: not a UTF-8 JSON object/],
      [
        "array",
        handmade("[1,2]", []),
        /corrupt header: not a UTF-8 JSON object \(it does not start with/,
      ],
      [
        "bad-utf8",
        handmade("{}", []).map((b, i) => (i === 8 ? 0xff : b)),
        /corrupt header: not a UTF-8 JSON object/,
      ],
      [
        "out-of-range",
        handmade('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', [0, 0, 0, 0]),
        /data offsets out of range: tensor "a" spans \[0, 8\) but the data section has 4 bytes/,
      ],
      [
        "size",
        handmade('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', new Array(8).fill(0)),
        /tensor "a" spans 8 bytes but F32 shape \[3\] needs 12/,
      ],
      [
        "gap",
        handmade('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', new Array(8).fill(0)),
        /do not tile the data section: tensor "a" starts at 4, expected 0/,
      ],
      [
        "overlap",
        handmade(
          '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
          new Array(8).fill(0),
        ),
        /do not tile the data section: tensor "b" starts at 4, expected 8/,
      ],
      [
        "trailing",
        handmade('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', new Array(8).fill(0)),
        /data section has 8 bytes but the tensors cover 4/,
      ],
      [
        "dtype",
        handmade('{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}', [0, 0]),
        /tensor "a" has dtype F16; supported: F32, I32, I64/,
      ],
      [
        "offsets",
        handmade('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', [0, 0, 0, 0]),
        /corrupt header: tensor "a" has data_offsets \[0\], expected \[begin, end\]/,
      ],
      [
        "metadata",
        handmade('{"__metadata__":{"a":1}}', []),
        /corrupt header: __metadata__\["a"\] is not a string/,
      ],
    ];
    for (const [name, bytes, pattern] of cases) {
      const path = `${dir}/${name}.safetensors`;
      await Deno.writeFile(path, bytes);
      await assert.rejects(() => readSafetensors(path), (e: unknown) => {
        assert.ok(e instanceof CheckpointError, `${name}: ${e}`);
        assert.ok(e.message.startsWith(`${path}: `), e.message);
        assert.match(e.message, pattern, name);
        return true;
      });
    }
    await assert.rejects(
      () => readSafetensors(`${dir}/absent.safetensors`),
      /absent.safetensors: cannot read the file/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writes are atomic: a failed write leaves no temporary file and keeps the old one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = new Map<string, SafetensorsTensor>([["x", {
      dtype: "F32",
      shape: [1],
      data: new Float32Array([1]),
    }]]);
    const path = `${dir}/x.safetensors`;
    await writeSafetensors(path, m);
    await writeSafetensors(
      path,
      new Map([["x", { dtype: "F32", shape: [1], data: new Float32Array([2]) }]]),
    );
    assert.deepEqual((await readSafetensors(path)).tensors.get("x")?.data, new Float32Array([2]));
    // The rename cannot replace a directory: the error names the path and the temporary is gone.
    await Deno.mkdir(`${dir}/taken.safetensors`);
    await assert.rejects(() => writeSafetensors(`${dir}/taken.safetensors`, m), (e: unknown) => {
      assert.ok(e instanceof CheckpointError);
      assert.match(e.message, /taken.safetensors: cannot write the file/);
      return true;
    });
    await assert.rejects(
      () => writeSafetensors(`${dir}/no/such/dir/x.safetensors`, m),
      CheckpointError,
    );
    const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
    assert.deepEqual(names, ["taken.safetensors", "x.safetensors"]);
    assert.deepEqual((await readSafetensors(path)).tensors.get("x")?.data, new Float32Array([2]));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("encodeSafetensors validates its input", () => {
  const bad = (t: unknown): Map<string, SafetensorsTensor> =>
    new Map([["t", t as SafetensorsTensor]]);
  assert.throws(
    () => encodeSafetensors(bad({ dtype: "F16", shape: [1], data: new Float32Array(1) })),
    /dtype must be F32, I32 or I64, got F16/,
  );
  assert.throws(
    () => encodeSafetensors(bad({ dtype: "F32", shape: [2], data: new Float32Array(1) })),
    /shape \[2\] needs 2 elements, got 1/,
  );
  assert.throws(
    () => encodeSafetensors(bad({ dtype: "I64", shape: [1], data: new Int32Array(1) })),
    /I64 data must be a BigInt64Array/,
  );
  assert.throws(
    () => encodeSafetensors(bad({ dtype: "F32", shape: [-1], data: new Float32Array(1) })),
    /shape must be non-negative integers/,
  );
  assert.throws(
    () =>
      encodeSafetensors(
        new Map([["__metadata__", { dtype: "F32", shape: [], data: new Float32Array(1) }]]),
      ),
    /tensor name must be/,
  );
  assert.throws(
    () => encodeSafetensors(new Map(), { a: 1 as unknown as string }),
    /metadata\["a"\] must be a string/,
  );
});

Deno.test("a write sweeps temporary files that killed writers of the same path left behind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A writer killed with SIGKILL: its pid is no longer running.
    const victim = new Deno.Command("sleep", { args: ["30"] }).spawn();
    victim.kill("SIGKILL");
    await victim.status;
    const dead = `.x.safetensors.${victim.pid}.0badc0de.tmp`;
    // A live writer (this test's parent process), fresh: another write may be in progress.
    const live = `.x.safetensors.${Deno.ppid}.12345678.tmp`;
    // A live pid but two hours old: debris whatever the pid says.
    const old = `.x.safetensors.${Deno.ppid}.87654321.tmp`;
    // Another file's temporary and a name of another shape: not ours to touch.
    const other = `.y.safetensors.${victim.pid}.0badc0de.tmp`;
    const odd = `.x.safetensors.notapid.tmp`;
    for (const name of [dead, live, old, other, odd]) {
      await Deno.writeTextFile(`${dir}/${name}`, "");
    }
    const twoHoursAgo = new Date(Date.now() - 2 * 3600 * 1000);
    await Deno.utime(`${dir}/${old}`, twoHoursAgo, twoHoursAgo);
    await writeSafetensors(
      `${dir}/x.safetensors`,
      new Map([["x", { dtype: "F32", shape: [1], data: new Float32Array([5]) }]]),
    );
    const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
    assert.deepEqual(names, [live, odd, other, "x.safetensors"].sort());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
