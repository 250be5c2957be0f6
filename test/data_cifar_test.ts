import assert from "node:assert/strict";
import { decodeCifarRecords, findCifar, loadCifar } from "../src/data/cifar.ts";
import { DatasetError } from "../src/data/errors.ts";
import {
  cifarRecords,
  gzip,
  makeTar,
  pixelOf,
  tinyCifar10,
  tinyCifar100,
  writeFolder,
  writeTarball,
} from "./data_fixtures.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function assertImage(images: Uint8Array, n: number, source: number): void {
  for (const p of [0, 1, 1023, 1024, 2047, 2048, 3071]) {
    assert.equal(images[n * 3072 + p], pixelOf(source, p), `image ${n} byte ${p}`);
  }
}

Deno.test("cifar10: folder and tarball give the same splits", async () => {
  await withTempDir(async (dir) => {
    const files = tinyCifar10(3);
    await writeFolder(`${dir}/a`, "cifar-10-batches-bin", files);
    await writeTarball(dir, "cifar-10-binary.tar.gz", "cifar-10-batches-bin", files);
    const folder = await findCifar("cifar10", `${dir}/a`);
    assert.deepEqual(folder, {
      dataset: "cifar10",
      kind: "folder",
      path: `${dir}/a/cifar-10-batches-bin`,
    });
    const tarball = await findCifar("cifar10", dir);
    assert.deepEqual(tarball, {
      dataset: "cifar10",
      kind: "tarball",
      path: `${dir}/cifar-10-binary.tar.gz`,
    });

    const fromFolder = await loadCifar("cifar10", { dataPath: `${dir}/a` });
    const fromTar = await loadCifar("cifar10", { dataPath: dir });
    assert.equal(fromTar.source.kind, "tarball");
    for (const splits of [fromFolder, fromTar]) {
      const { train, test } = splits;
      assert.equal(train.numClasses, 10);
      assert.deepEqual(train.classNames.slice(0, 3), ["airplane", "automobile", "bird"]);
      assert.equal(train.classNames.length, 10);
      // Batches 1..5 in order, 3 records each; labels (index % 10).
      assert.deepEqual(Array.from(train.labels), Array.from({ length: 15 }, (_, i) => i % 10));
      assert.deepEqual(Array.from(test.labels), [15 % 10, 16 % 10, 17 % 10]);
      assert.equal(train.images.length, 15 * 3072);
      for (let i = 0; i < 15; i++) assertImage(train.images, i, i);
      for (let i = 0; i < 3; i++) assertImage(test.images, i, 15 + i);
    }
    assert.deepEqual(fromFolder.train.images, fromTar.train.images);
  });
});

Deno.test("cifar100: fine and coarse labels, folder and tarball, dataPath naming the folder", async () => {
  await withTempDir(async (dir) => {
    const files = tinyCifar100(5, 2);
    const folder = await writeFolder(dir, "cifar-100-binary", files);
    const tar = await writeTarball(dir, "cifar-100-binary.tar.gz", "cifar-100-binary", files, {
      prefix: "./",
    });
    assert.deepEqual(await findCifar("cifar100", folder), {
      dataset: "cifar100",
      kind: "folder",
      path: folder,
    });
    assert.deepEqual(await findCifar("cifar100", tar), {
      dataset: "cifar100",
      kind: "tarball",
      path: tar,
    });
    for (
      const source of [{ dataset: "cifar100" as const, kind: "folder" as const, path: folder }, {
        dataset: "cifar100" as const,
        kind: "tarball" as const,
        path: tar,
      }]
    ) {
      const fine = await loadCifar("cifar100", { source });
      assert.equal(fine.train.numClasses, 100);
      assert.equal(fine.train.classNames[42], "fine_42");
      assert.deepEqual(Array.from(fine.train.labels), [0, 1, 2, 3, 4]);
      assert.deepEqual(Array.from(fine.test.labels), [5, 6]);
      for (let i = 0; i < 5; i++) assertImage(fine.train.images, i, i);
      for (let i = 0; i < 2; i++) assertImage(fine.test.images, i, 5 + i);
      const coarse = await loadCifar("cifar100", { source, labels: "coarse" });
      assert.equal(coarse.train.numClasses, 20);
      assert.equal(coarse.train.classNames.length, 20);
      assert.equal(coarse.train.classNames[19], "coarse_19");
    }
    // Coarse labels differ from fine ones once the record index passes 20.
    const many = decodeCifarRecords(
      [{ path: "m", bytes: cifarRecords([[3, 57], [19, 99]]) }],
      "cifar100",
      "coarse",
    );
    assert.deepEqual(Array.from(many.labels), [3, 19]);
  });
});

Deno.test("cifar: findCifar returns null when nothing is there", async () => {
  await withTempDir(async (dir) => {
    assert.equal(await findCifar("cifar10", dir), null);
    assert.equal(await findCifar("cifar100", `${dir}/does-not-exist`), null);
    await assert.rejects(
      loadCifar("cifar10", { dataPath: dir }),
      (e: unknown) =>
        e instanceof DatasetError && e.path === dir &&
        /cifar10 not found: expected the folder cifar-10-batches-bin\/ or the file cifar-10-binary\.tar\.gz/
          .test(e.message),
    );
  });
});

Deno.test("cifar: missing, truncated and mis-sized files and bad labels name the path", async () => {
  await withTempDir(async (dir) => {
    const files = tinyCifar10(2);
    files.delete("test_batch.bin");
    const f1 = await writeFolder(`${dir}/missing`, "cifar-10-batches-bin", files);
    await assert.rejects(
      loadCifar("cifar10", { dataPath: `${dir}/missing` }),
      (e: unknown) =>
        e instanceof DatasetError && e.path === `${f1}/test_batch.bin` &&
        /file is missing/.test(e.message),
    );

    const cut = tinyCifar10(2);
    cut.set("data_batch_3.bin", cut.get("data_batch_3.bin")!.subarray(0, 3073 + 100));
    const f2 = await writeFolder(`${dir}/cut`, "cifar-10-batches-bin", cut);
    await assert.rejects(
      loadCifar("cifar10", { dataPath: `${dir}/cut` }),
      (e: unknown) =>
        e instanceof DatasetError && e.path === `${f2}/data_batch_3.bin` &&
        /size 3173 bytes is not a multiple of the 3073-byte cifar10 record \(1 whole records \+ 100 bytes\)/
          .test(e.message),
    );

    const badLabel = tinyCifar10(2);
    const batch = badLabel.get("data_batch_2.bin")!.slice();
    batch[3073] = 10;
    badLabel.set("data_batch_2.bin", batch);
    await writeFolder(`${dir}/label`, "cifar-10-batches-bin", badLabel);
    await assert.rejects(
      loadCifar("cifar10", { dataPath: `${dir}/label` }),
      /data_batch_2\.bin: record 1 \(byte 3073\) has label 10, expected 0\.\.9/,
    );

    const badNames = tinyCifar10(1);
    badNames.set("batches.meta.txt", new TextEncoder().encode("a\nb\n"));
    await writeFolder(`${dir}/names`, "cifar-10-batches-bin", badNames);
    await assert.rejects(
      loadCifar("cifar10", { dataPath: `${dir}/names` }),
      /batches\.meta\.txt: expected 10 class names \(one per line\), found 2/,
    );

    const empty = tinyCifar10(1);
    empty.set("test_batch.bin", new Uint8Array(0));
    await writeFolder(`${dir}/empty`, "cifar-10-batches-bin", empty);
    await assert.rejects(
      loadCifar("cifar10", { dataPath: `${dir}/empty` }),
      /test_batch\.bin: file is empty/,
    );

    const badFine = tinyCifar100(2, 1);
    const train = badFine.get("train.bin")!.slice();
    train[3074 + 1] = 100;
    badFine.set("train.bin", train);
    await writeFolder(`${dir}/fine`, "cifar-100-binary", badFine);
    await assert.rejects(
      loadCifar("cifar100", { dataPath: `${dir}/fine` }),
      /train\.bin: record 1 \(byte 3075\) has fine label 100, expected 0\.\.99/,
    );
    const badCoarse = tinyCifar100(2, 1);
    const train2 = badCoarse.get("train.bin")!.slice();
    train2[0] = 20;
    badCoarse.set("train.bin", train2);
    await writeFolder(`${dir}/coarse`, "cifar-100-binary", badCoarse);
    await assert.rejects(
      loadCifar("cifar100", { dataPath: `${dir}/coarse` }),
      /train\.bin: record 0 \(byte 0\) has coarse label 20, expected 0\.\.19/,
    );
  });
});

Deno.test("cifar: tarball problems name the archive and the member", async () => {
  await withTempDir(async (dir) => {
    const files = tinyCifar10(2);
    files.delete("data_batch_4.bin");
    const t1 = await writeTarball(
      `${dir}`,
      "cifar-10-binary.tar.gz",
      "cifar-10-batches-bin",
      files,
    );
    await assert.rejects(
      loadCifar("cifar10", { dataPath: dir }),
      (e: unknown) =>
        e instanceof DatasetError && e.path === t1 &&
        /archive has no member "cifar-10-batches-bin\/data_batch_4\.bin"/.test(e.message),
    );

    const odd = tinyCifar10(2);
    odd.set("test_batch.bin", odd.get("test_batch.bin")!.subarray(0, 5000));
    await Deno.mkdir(`${dir}/odd`);
    const t2 = await writeTarball(
      `${dir}/odd`,
      "cifar-10-binary.tar.gz",
      "cifar-10-batches-bin",
      odd,
    );
    await assert.rejects(
      loadCifar("cifar10", { dataPath: `${dir}/odd` }),
      (e: unknown) =>
        e instanceof DatasetError &&
        e.path === `${t2}!cifar-10-batches-bin/test_batch.bin` &&
        /size 5000 bytes is not a multiple/.test(e.message),
    );

    // A tarball cut short: the gzip stream or the tar member ends early.
    const whole = await Deno.readFile(t1);
    await Deno.mkdir(`${dir}/cut`);
    await Deno.writeFile(`${dir}/cut/cifar-10-binary.tar.gz`, whole.subarray(0, whole.length - 40));
    await assert.rejects(
      loadCifar("cifar10", { dataPath: `${dir}/cut` }),
      (e: unknown) => e instanceof DatasetError && e.path === `${dir}/cut/cifar-10-binary.tar.gz`,
    );

    // A valid gzip stream holding a tar cut inside a member's data.
    const members = [...tinyCifar10(2)].map(([name, data]) => ({
      name: `cifar-10-batches-bin/${name}`,
      data,
    }));
    const tar = makeTar(members);
    await Deno.mkdir(`${dir}/short`);
    const shortPath = `${dir}/short/cifar-10-binary.tar.gz`;
    await Deno.writeFile(shortPath, await gzip(tar.subarray(0, 512 * 3 + 2000)));
    await assert.rejects(
      loadCifar("cifar10", { dataPath: `${dir}/short` }),
      (e: unknown) =>
        e instanceof DatasetError && e.path === shortPath &&
        /truncated archive: member "cifar-10-batches-bin\/data_batch_1\.bin" declares 6146 bytes but the input ends after 2000/
          .test(e.message),
    );
  });
});

Deno.test("cifar: argument validation", async () => {
  await assert.rejects(
    loadCifar("cifar1000" as "cifar10"),
    /dataset must be "cifar10" or "cifar100", got "cifar1000"/,
  );
  await assert.rejects(
    loadCifar("cifar10", { labels: "coarse" }),
    /labels must be "fine" for cifar10/,
  );
  await assert.rejects(
    loadCifar("cifar100", { labels: "medium" as "fine" }),
    /labels must be "fine" or "coarse", got "medium"/,
  );
  await assert.rejects(
    loadCifar("cifar10", { source: { dataset: "cifar100", kind: "folder", path: "x" } }),
    /options\.source\.dataset must be "cifar10", got "cifar100"/,
  );
});
