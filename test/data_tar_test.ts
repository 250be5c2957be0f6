import assert from "node:assert/strict";
import { readTar, readTarGz, readTarStream, TarParser } from "../src/data/_tar.ts";
import { DatasetError } from "../src/data/errors.ts";
import { gzip, makeTar } from "./data_fixtures.ts";

const enc = new TextEncoder();
const bytes = (n: number, seed = 1): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 37 + seed * 11) & 0xff);

Deno.test("tar: regular files, directories and symlinks in ustar and GNU form", () => {
  const a = bytes(0);
  const b = bytes(511, 2);
  const c = bytes(512, 3);
  const d = bytes(1300, 4);
  const tar = makeTar([
    { name: "dir/", type: "5" },
    { name: "dir/a", data: a },
    { name: "dir/b", data: b, longName: "prefix" }, // short: written as plain ustar
    { name: "dir/c", data: c },
    { name: "dir/link", type: "2" },
    { name: "dir/d", data: d },
  ]);
  const entries = readTar(tar);
  assert.deepEqual(
    entries.map((e) => [e.name, e.type, e.size]),
    [
      ["dir/", "directory", 0],
      ["dir/a", "file", 0],
      ["dir/b", "file", 511],
      ["dir/c", "file", 512],
      ["dir/link", "symlink", 0],
      ["dir/d", "file", 1300],
    ],
  );
  assert.deepEqual(entries[2].data, b);
  assert.deepEqual(entries[3].data, c);
  assert.deepEqual(entries[5].data, d);
});

Deno.test("tar: long names via GNU 'L', pax 'x' and ustar prefix", () => {
  const long = "cifar-10-batches-bin/" + "x".repeat(120) + "/data_batch_1.bin";
  const long2 = "p".repeat(130) + "/pax_member.bin";
  const long3 = "q".repeat(90) + "/r".repeat(20) + "/prefixed.bin";
  const tar = makeTar([
    { name: long, data: bytes(700, 5), longName: "gnu" },
    { name: long2, data: bytes(1024, 6), longName: "pax" },
    { name: long3, data: bytes(3, 7), longName: "prefix" },
    { name: "short", data: bytes(10, 8) },
  ]);
  const entries = readTar(tar);
  assert.deepEqual(entries.map((e) => e.name), [long, long2, long3, "short"]);
  assert.deepEqual(entries[0].data, bytes(700, 5));
  assert.deepEqual(entries[1].data, bytes(1024, 6));
  assert.deepEqual(entries[2].data, bytes(3, 7));
  // The long-name state must not leak into the member after it.
  assert.deepEqual(entries[3].data, bytes(10, 8));
});

Deno.test("tar: GNU base-256 size field", () => {
  const entries = readTar(makeTar([{ name: "big", data: bytes(777), base256Size: true }]));
  assert.equal(entries[0].size, 777);
  assert.deepEqual(entries[0].data, bytes(777));
});

Deno.test("tar: chunk boundaries anywhere give the same result", () => {
  const tar = makeTar([
    { name: "a", data: bytes(100) },
    { name: "z".repeat(150), data: bytes(600, 2) },
    { name: "c", data: bytes(1025, 3) },
  ]);
  const whole = readTar(tar);
  for (const size of [1, 7, 511, 512, 513, 4096]) {
    const parser = new TarParser();
    const got = [];
    for (let i = 0; i < tar.length; i += size) got.push(...parser.push(tar.subarray(i, i + size)));
    got.push(...parser.finish());
    assert.deepEqual(got, whole, `chunk size ${size}`);
  }
});

Deno.test("tar: want() skips the data of unwanted files", () => {
  const tar = makeTar([{ name: "keep", data: bytes(10) }, { name: "skip", data: bytes(2000) }]);
  const entries = readTar(tar, { want: (name) => name === "keep" });
  assert.equal(entries[0].data.length, 10);
  assert.equal(entries[1].name, "skip");
  assert.equal(entries[1].size, 2000);
  assert.equal(entries[1].data.length, 0);
});

Deno.test("tar: end of input at a header boundary without end blocks is accepted", () => {
  const entries = readTar(makeTar([{ name: "a", data: bytes(5) }], 0));
  assert.equal(entries.length, 1);
});

Deno.test("tar: truncated archives and bad headers are reported with the source name", () => {
  const tar = makeTar([{ name: "inner/file.bin", data: bytes(2000) }], 0);
  assert.throws(
    () => readTar(tar.subarray(0, 512 + 1000), { source: "x.tar" }),
    (e: unknown) =>
      e instanceof DatasetError && e.path === "x.tar" &&
      /truncated archive: member "inner\/file\.bin" declares 2000 bytes but the input ends after 1000/
        .test(e.message),
  );
  assert.throws(
    () => readTar(tar.subarray(0, 300), { source: "x.tar" }),
    /x\.tar: truncated archive: input ends 300 bytes into a 512-byte header/,
  );
  assert.throws(
    () => readTar(tar.subarray(0, 512 + 2000), { source: "x.tar" }),
    /truncated archive: input ends inside the block padding/,
  );
  const bad = tar.slice();
  bad[0] ^= 1;
  assert.throws(
    () => readTar(bad, { source: "x.tar" }),
    /x\.tar: corrupt archive: header checksum/,
  );
  assert.throws(
    () => readTar(enc.encode("this is not a tar file".repeat(40)), { source: "y" }),
    /y: corrupt archive: header checksum mismatch at byte 0/,
  );
});

Deno.test("tar.gz: streamed from disk; missing and corrupt files are reported", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tar = makeTar([{ name: "f/one", data: bytes(3000) }, { name: "f/two", data: bytes(9) }]);
    const path = `${dir}/a.tar.gz`;
    await Deno.writeFile(path, await gzip(tar));
    const entries = await readTarGz(path);
    assert.deepEqual(entries.map((e) => e.name), ["f/one", "f/two"]);
    assert.deepEqual(entries[0].data, bytes(3000));

    const streamed = await readTarStream(
      ReadableStream.from([tar.subarray(0, 700), tar.subarray(700)]),
    );
    assert.deepEqual(streamed, entries);

    await assert.rejects(
      readTarGz(`${dir}/missing.tar.gz`),
      (e: unknown) =>
        e instanceof DatasetError && /missing\.tar\.gz: file is missing/.test(e.message),
    );
    const gz = await Deno.readFile(path);
    await Deno.writeFile(`${dir}/cut.tar.gz`, gz.subarray(0, Math.floor(gz.length / 2)));
    await assert.rejects(
      readTarGz(`${dir}/cut.tar.gz`),
      (e: unknown) => e instanceof DatasetError && /cut\.tar\.gz: /.test(e.message),
    );
    await Deno.writeFile(`${dir}/plain.tar.gz`, tar);
    await assert.rejects(
      readTarGz(`${dir}/plain.tar.gz`),
      /plain\.tar\.gz: not a valid gzip stream/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
