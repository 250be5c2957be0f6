import assert from "node:assert/strict";
import {
  ChecksumMismatchError,
  CIFAR_ARCHIVES,
  DownloadError,
  downloadFile,
} from "../src/data/download.ts";
import { createHash } from "node:crypto";
import { Random } from "../src/random.ts";

/** A small "archive": deterministic pseudo-random bytes. */
function makeArchive(size: number, seed: number): Uint8Array<ArrayBuffer> {
  const rng = new Random(seed);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = rng.integer(0, 256);
  return out;
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function webCryptoHex(data: Uint8Array<ArrayBuffer>): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
}

/** Splits `data` into pieces whose sizes cycle through `sizes`. */
function pieces(data: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let p = 0, i = 0; p < data.length; i++) {
    const q = Math.min(data.length, p + sizes[i % sizes.length]);
    out.push(data.slice(p, q));
    p = q;
  }
  return out;
}

interface ServerOptions {
  /** Honour `Range: bytes=N-` requests with 206 replies. */
  ranges: boolean;
  /** Full-body replies number `cutOn` (1-based) stop after this many bytes and drop the connection. */
  cutAfter?: number;
  cutOn?: number[];
  /** Status to send instead of the file. */
  status?: number;
  /** Send each body as separate writes of these sizes (cycled) instead of one. */
  chunks?: number[];
}

interface TestServer {
  url: string;
  /** Range header of every request (null when absent). */
  ranges: (string | null)[];
  close(): Promise<void>;
}

function serve(data: Uint8Array, opts: ServerOptions): TestServer {
  const ranges: (string | null)[] = [];
  let bodies = 0;
  const server = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      onListen: () => {},
      onError: () => new Response(null, { status: 500 }),
    },
    (req) => {
      const range = req.headers.get("range");
      ranges.push(range);
      if (opts.status !== undefined) return new Response("nope", { status: opts.status });
      let start = 0;
      let status = 200;
      const headers = new Headers({ "content-type": "application/gzip" });
      if (opts.ranges) headers.set("accept-ranges", "bytes");
      if (opts.ranges && range !== null) {
        const m = range.match(/^bytes=(\d+)-$/);
        if (!m) return new Response(null, { status: 400 });
        start = Number(m[1]);
        if (start >= data.length) {
          headers.set("content-range", `bytes */${data.length}`);
          return new Response(null, { status: 416, headers });
        }
        status = 206;
        headers.set("content-range", `bytes ${start}-${data.length - 1}/${data.length}`);
      }
      headers.set("content-length", String(data.length - start));
      bodies++;
      const body = data.subarray(start);
      if (opts.cutAfter !== undefined && opts.cutOn?.includes(bodies)) {
        // Send part of the body, then fail the stream: the server drops the connection.
        const cut = opts.cutAfter;
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(body.slice(0, cut));
          },
          pull(controller) {
            controller.error(new Error("simulated network failure"));
          },
        });
        return new Response(stream, { status, headers });
      }
      if (opts.chunks !== undefined) {
        const parts = pieces(body, opts.chunks);
        const stream = new ReadableStream<Uint8Array>({
          pull(controller) {
            const next = parts.shift();
            if (next === undefined) controller.close();
            else controller.enqueue(next);
          },
        });
        return new Response(stream, { status, headers });
      }
      return new Response(body.slice(), { status, headers });
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/cifar-test.tar.gz`,
    ranges,
    close: () => server.shutdown(),
  };
}

/**
 * Runs `fn` with a destination `archive.tar.gz` in a fresh temporary folder, then closes the
 * server and removes the folder, whatever `fn` did.
 */
async function inTempDir(
  server: { close(): Promise<void> },
  fn: (dest: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(`${dir}/archive.tar.gz`, dir);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

// Digests given by the project's former pure-TypeScript SHA-256 (and by FIPS 180-2 for "abc").
const SHA256_VECTORS: readonly { name: string; data: Uint8Array<ArrayBuffer>; sha256: string }[] = [
  {
    name: "the empty string",
    data: new Uint8Array(0),
    sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  },
  {
    name: '"abc"',
    data: new TextEncoder().encode("abc"),
    sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  },
  {
    name: "1 MB of pseudo-random bytes",
    data: makeArchive(1_000_000, 5),
    sha256: "b6d64736eb14e00b9f32293de07c74c92731b97027555ed83383426745598e40",
  },
];

/** Odd read sizes, around and across the 64-byte SHA-256 block. */
const ODD_CHUNKS = [1, 7, 63, 65, 4099, 65537];

Deno.test("SHA-256: the same digests whole or in odd-sized chunks, and as Web Crypto", async () => {
  for (const v of SHA256_VECTORS) {
    assert.equal(createHash("sha256").update(v.data).digest("hex"), v.sha256, v.name);
    const h = createHash("sha256");
    for (const piece of pieces(v.data, ODD_CHUNKS)) h.update(piece);
    assert.equal(h.digest("hex"), v.sha256, `${v.name} in odd-sized chunks`);
    assert.equal(await webCryptoHex(v.data), v.sha256, `${v.name} by Web Crypto`);
  }
});

Deno.test("SHA-256: downloads are hashed as the bytes arrive, resumed and cached files from disk", async () => {
  for (const v of SHA256_VECTORS) {
    const server = serve(v.data, { ranges: true, chunks: ODD_CHUNKS });
    const dir = await Deno.makeTempDir();
    try {
      const dest = `${dir}/archive.tar.gz`;
      const r = await downloadFile({ url: server.url, dest, sha256: v.sha256, retries: 0 });
      assert.equal(r.sha256, v.sha256, `${v.name} downloaded`);
      assert.equal(r.cached, false);
      const again = await downloadFile({ url: server.url, dest, sha256: v.sha256 });
      assert.equal(again.sha256, v.sha256, `${v.name} cached`);
      assert.equal(again.cached, true);
      const bare = await downloadFile({ url: server.url, dest });
      assert.equal(bare.sha256, v.sha256, `${v.name} cached, no checksum given`);
    } finally {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  }

  // A resumed transfer: the kept prefix is read from disk, the rest hashed as it arrives.
  const { data, sha256 } = SHA256_VECTORS[2];
  const cut = 333_333;
  const server = serve(data, { ranges: true, cutAfter: cut, cutOn: [1] });
  await inTempDir(server, async (dest) => {
    await assert.rejects(
      () => downloadFile({ url: server.url, dest, sha256, retries: 0 }),
      DownloadError,
    );
    assert.equal((await Deno.stat(`${dest}.part`)).size, cut);
    const r = await downloadFile({ url: server.url, dest, retries: 0 });
    assert.equal(r.resumed, true);
    assert.equal(r.sha256, sha256);
    assert.deepEqual(server.ranges, [null, `bytes=${cut}-`]);
  });
});

Deno.test("full download: progress, checksum, atomic rename, nested folders", async () => {
  const data = makeArchive(200_000, 3);
  const sha = await webCryptoHex(data);
  const server = serve(data, { ranges: true });
  const dir = await Deno.makeTempDir();
  try {
    const dest = `${dir}/nested/deeper/archive.tar.gz`;
    const seen: [number, number | undefined][] = [];
    const r = await downloadFile({
      url: server.url,
      dest,
      sha256: sha.toUpperCase(), // any case
      onProgress: (received, total) => seen.push([received, total]),
    });
    assert.deepEqual(
      { ...r },
      { path: dest, bytes: data.length, sha256: sha, cached: false, resumed: false, requests: 1 },
    );
    assert.deepEqual(await Deno.readFile(dest), data);
    assert.equal(await exists(`${dest}.part`), false);
    assert.deepEqual(server.ranges, [null]);
    assert.ok(seen.length >= 2);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i][0] >= seen[i - 1][0]);
    assert.deepEqual(seen.at(-1), [data.length, data.length]);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an interrupted transfer keeps its part file and the next call resumes with Range", async () => {
  const data = makeArchive(150_000, 4);
  const sha = await webCryptoHex(data);
  const cut = 60_000;
  const server = serve(data, { ranges: true, cutAfter: cut, cutOn: [1] });
  await inTempDir(server, async (dest) => {
    const err = await downloadFile({ url: server.url, dest, sha256: sha, retries: 0 }).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(err instanceof DownloadError, String(err));
    assert.match(err.message, /did not complete after 1 request/);
    assert.match(err.message, /60000 bytes are kept/);
    assert.equal((await Deno.stat(`${dest}.part`)).size, cut);
    assert.equal(await exists(dest), false);

    const r = await downloadFile({ url: server.url, dest, sha256: sha });
    assert.equal(r.resumed, true);
    assert.equal(r.requests, 1);
    assert.deepEqual(server.ranges, [null, `bytes=${cut}-`]);
    assert.deepEqual(await Deno.readFile(dest), data);
    assert.equal(await exists(`${dest}.part`), false);
  });
});

Deno.test("a broken transfer is resumed automatically within one call", async () => {
  const data = makeArchive(120_000, 5);
  const sha = await webCryptoHex(data);
  // The first two bodies break off after 30,000 bytes each: 0→30k, 30k→60k, then the rest.
  const server = serve(data, { ranges: true, cutAfter: 30_000, cutOn: [1, 2] });
  await inTempDir(server, async (dest) => {
    const progress: number[] = [];
    const r = await downloadFile({
      url: server.url,
      dest,
      sha256: sha,
      retries: 3,
      retryDelayMs: 0,
      onProgress: (received) => progress.push(received),
    });
    assert.equal(r.requests, 3);
    assert.equal(r.resumed, true);
    assert.deepEqual(server.ranges, [null, "bytes=30000-", "bytes=60000-"]);
    assert.deepEqual(await Deno.readFile(dest), data);
    assert.equal(progress.at(-1), data.length);
  });
});

Deno.test("a server without Range support makes the download restart from zero", async () => {
  const data = makeArchive(80_000, 6);
  const sha = await webCryptoHex(data);
  const server = serve(data, { ranges: false });
  await inTempDir(server, async (dest) => {
    // A stale part file whose bytes are wrong: appending to it would corrupt the result.
    await Deno.writeFile(`${dest}.part`, new Uint8Array(25_000).fill(0xee));
    const r = await downloadFile({ url: server.url, dest, sha256: sha });
    assert.equal(r.resumed, false);
    assert.equal(r.bytes, data.length);
    assert.deepEqual(server.ranges, ["bytes=25000-"]); // asked, and was ignored
    assert.deepEqual(await Deno.readFile(dest), data);
  });
});

Deno.test("a part file that is already complete is verified without refetching (416)", async () => {
  const data = makeArchive(10_000, 7);
  const sha = await webCryptoHex(data);
  const server = serve(data, { ranges: true });
  await inTempDir(server, async (dest) => {
    await Deno.writeFile(`${dest}.part`, data);
    const r = await downloadFile({ url: server.url, dest, sha256: sha });
    assert.equal(r.resumed, true);
    assert.deepEqual(server.ranges, [`bytes=${data.length}-`]);
    assert.deepEqual(await Deno.readFile(dest), data);
  });
});

Deno.test("a checksum mismatch deletes the part file and names both digests", async () => {
  const data = makeArchive(50_000, 8);
  const actual = await webCryptoHex(data);
  const wrong = "0".repeat(64);
  const server = serve(data, { ranges: true });
  await inTempDir(server, async (dest) => {
    const err = await downloadFile({ url: server.url, dest, sha256: wrong }).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(err instanceof ChecksumMismatchError, String(err));
    assert.ok(err instanceof DownloadError);
    assert.equal(err.expected, wrong);
    assert.equal(err.actual, actual);
    assert.ok(err.message.includes(wrong) && err.message.includes(actual), err.message);
    assert.equal(await exists(`${dest}.part`), false);
    assert.equal(await exists(dest), false);
  });
});

Deno.test("cache hit: a valid dest returns without a request; a corrupt one is replaced", async () => {
  const data = makeArchive(40_000, 9);
  const sha = await webCryptoHex(data);
  const server = serve(data, { ranges: true });
  await inTempDir(server, async (dest) => {
    await downloadFile({ url: server.url, dest, sha256: sha });
    assert.equal(server.ranges.length, 1);
    const hit = await downloadFile({ url: server.url, dest, sha256: sha });
    assert.deepEqual(
      { ...hit },
      { path: dest, bytes: data.length, sha256: sha, cached: true, resumed: false, requests: 0 },
    );
    assert.equal(server.ranges.length, 1);
    // No checksum given: an existing file is trusted.
    assert.equal((await downloadFile({ url: server.url, dest })).cached, true);
    assert.equal(server.ranges.length, 1);
    // A corrupted dest is downloaded again and atomically replaced.
    await Deno.writeFile(dest, new Uint8Array(10));
    const again = await downloadFile({ url: server.url, dest, sha256: sha });
    assert.equal(again.cached, false);
    assert.equal(server.ranges.length, 2);
    assert.deepEqual(await Deno.readFile(dest), data);
  });
});

Deno.test("HTTP errors and bad arguments are reported", async () => {
  const server = serve(new Uint8Array(0), { ranges: true, status: 404 });
  const dir = await Deno.makeTempDir();
  try {
    const dest = `${dir}/x.tar.gz`;
    const err = await downloadFile({ url: server.url, dest, retryDelayMs: 0 }).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(err instanceof DownloadError, String(err));
    assert.equal(err.status, 404);
    assert.match(err.message, /HTTP 404/);
    assert.equal(server.ranges.length, 1); // client errors are not retried
    await assert.rejects(
      downloadFile({ url: "ftp://example.invalid/x", dest }),
      /url must use http: or https:, got "ftp:"/,
    );
    await assert.rejects(downloadFile({ url: "not a url", dest }), /url must be an absolute/);
    await assert.rejects(
      downloadFile({ url: server.url, dest, sha256: "abc" }),
      /sha256 must be 64 hexadecimal digits, got "abc"/,
    );
    await assert.rejects(
      downloadFile({ url: server.url, dest, retries: -1 }),
      /retries must be a non-negative integer, got -1/,
    );
    await assert.rejects(downloadFile({ url: server.url, dest: "" }), /dest must be a non-empty/);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CIFAR archive constants are well-formed official addresses", () => {
  for (const [name, a] of Object.entries(CIFAR_ARCHIVES)) {
    assert.match(
      a.url,
      /^https:\/\/www\.cs\.toronto\.edu\/~kriz\/cifar-10{1,2}-(binary|python)\.tar\.gz$/,
    );
    assert.ok(a.url.endsWith(`${name}.tar.gz`), name);
    assert.match(a.sha256, /^[0-9a-f]{64}$/);
  }
  assert.deepEqual(Object.keys(CIFAR_ARCHIVES).sort(), [
    "cifar-10-binary",
    "cifar-10-python",
    "cifar-100-binary",
    "cifar-100-python",
  ]);
});

interface Loopback {
  url: string;
  /** Headers of every request, in order. */
  requests: Headers[];
  close(): Promise<void>;
}

/** A loopback server with a custom handler; `n` is the 1-based request number. */
function loopback(handler: (req: Request, n: number) => Response | Promise<Response>): Loopback {
  const requests: Headers[] = [];
  const server = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      onError: () => new Response(null, { status: 500 }),
    },
    (req) => {
      requests.push(req.headers);
      return handler(req, requests.length);
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/archive.tar.gz`,
    requests,
    close: () => server.shutdown(),
  };
}

/** Runs `fn` with a hard deadline so a hanging download fails the test instead of blocking it. */
async function withDeadline<T>(ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const guard = new AbortController();
  const timer = setTimeout(() => guard.abort(new Error(`test deadline of ${ms} ms passed`)), ms);
  try {
    return await fn(guard.signal);
  } finally {
    clearTimeout(timer);
  }
}

async function failure(p: Promise<unknown>): Promise<DownloadError> {
  const err = await p.then(() => undefined, (e) => e);
  assert.ok(err instanceof DownloadError, `expected a DownloadError, got ${err}`);
  return err;
}

Deno.test("a stalled transfer fails after the stall timeout and keeps the bytes for a resume", async () => {
  const data = makeArchive(5_000, 10);
  const sha = await webCryptoHex(data);
  const stalled = Promise.withResolvers<void>();
  const server = loopback((req) => {
    const range = req.headers.get("range");
    if (range !== null) {
      const start = Number(range.match(/^bytes=(\d+)-$/)![1]);
      return new Response(data.slice(start), {
        status: 206,
        headers: { "content-range": `bytes ${start}-${data.length - 1}/${data.length}` },
      });
    }
    // 1,000 bytes, then silence (until the client goes away or the test ends).
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller): Promise<void> | void {
        if (sent) return stalled.promise.then(() => controller.close());
        sent = true;
        controller.enqueue(data.slice(0, 1000));
      },
      cancel(): void {
        stalled.resolve();
      },
    });
    return new Response(body, { headers: { "content-length": String(data.length) } });
  });
  const dir = await Deno.makeTempDir();
  try {
    const dest = `${dir}/archive.tar.gz`;
    const err = await withDeadline(5000, (signal) =>
      failure(
        downloadFile({
          url: server.url,
          dest,
          sha256: sha,
          retries: 0,
          stallTimeoutMs: 300,
          signal,
        }),
      ));
    assert.ok(err.message.includes(server.url), err.message);
    assert.match(err.message, /stalled: no data for 300 ms after 1000 bytes/);
    assert.match(err.message, /stallTimeoutMs = 300/);
    assert.match(
      err.message,
      /1000 bytes are kept in .*archive\.tar\.gz\.part; running again resumes/,
    );
    assert.equal(err.partBytes, 1000);
    assert.deepEqual(await Deno.readFile(`${dest}.part`), data.subarray(0, 1000));
    assert.equal(await exists(dest), false);

    // The next call resumes from the kept bytes.
    const r = await downloadFile({ url: server.url, dest, sha256: sha, stallTimeoutMs: 300 });
    assert.equal(r.resumed, true);
    assert.deepEqual(server.requests.map((h) => h.get("range")), [null, "bytes=1000-"]);
    assert.deepEqual(await Deno.readFile(dest), data);
  } finally {
    stalled.resolve();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a server that never sends headers fails after the connect timeout", async () => {
  const hold = Promise.withResolvers<void>();
  const server = loopback(async () => {
    await hold.promise;
    return new Response("late");
  });
  const dir = await Deno.makeTempDir();
  try {
    const dest = `${dir}/archive.tar.gz`;
    const err = await withDeadline(
      5000,
      (signal) =>
        failure(downloadFile({ url: server.url, dest, retries: 0, connectTimeoutMs: 300, signal })),
    );
    assert.match(err.message, /no response headers from .* within 300 ms \(connect timeout/);
    assert.match(err.message, /No part file was kept/);
    assert.equal(await exists(`${dest}.part`), false);
  } finally {
    hold.resolve();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an endless body never grows the part file past the expected size", async () => {
  const expected = 50_000;
  const chunk = new Uint8Array(16_384).fill(0x5a);
  let chunks = 0;
  const server = loopback(() => {
    // Chunked transfer without Content-Length, bounded at 10,000 chunks (~160 MB).
    const body = new ReadableStream<Uint8Array>({
      pull(controller): void {
        if (++chunks > 10_000) controller.close();
        else controller.enqueue(chunk.slice());
      },
    });
    return new Response(body);
  });
  await inTempDir(server, async (dest) => {
    const sizes: number[] = [];
    const err = await withDeadline(10_000, (signal) =>
      failure(
        downloadFile({
          url: server.url,
          dest,
          bytes: expected,
          retries: 3,
          retryDelayMs: 0,
          signal,
          onProgress: (received) => sizes.push(received),
        }),
      ));
    assert.match(err.message, /expected 50000 bytes in all, at least \d+ arrived/);
    assert.match(err.message, /bytes past 50000 were not written/);
    assert.equal(server.requests.length, 1, "an over-long body is not retried");
    assert.ok(Math.max(...sizes) <= expected, `progress reached ${Math.max(...sizes)}`);
    assert.equal((await Deno.stat(`${dest}.part`)).size, expected);
    assert.equal(err.partBytes, expected);
    assert.ok(chunks < 1000, `the server produced ${chunks} chunks before the client stopped`);
  });
});

Deno.test("a Content-Length that disagrees with the expected size fails before writing", async () => {
  const data = makeArchive(80_000, 11);
  const server = loopback(() =>
    new Response(data.slice(), { headers: { "content-length": String(data.length) } })
  );
  await inTempDir(server, async (dest) => {
    const stale = new Uint8Array(500).fill(0x11);
    await Deno.writeFile(`${dest}.part`, stale);
    const err = await failure(
      downloadFile({ url: server.url, dest, bytes: 70_000, retries: 3, retryDelayMs: 0 }),
    );
    assert.match(err.message, /Content-Length 80000, expected 70000 bytes/);
    assert.match(err.message, /500 bytes are kept/);
    assert.equal(server.requests.length, 1);
    // The answer was a 200 to a Range request, yet the part file was not truncated.
    assert.deepEqual(await Deno.readFile(`${dest}.part`), stale);
  });
});

Deno.test("a gzip-encoded answer despite Accept-Encoding: identity is refused", async () => {
  const data = makeArchive(20_000, 12);
  const gz = new Uint8Array(
    await new Response(new Blob([data]).stream().pipeThrough(new CompressionStream("gzip")))
      .arrayBuffer(),
  );
  const server = loopback(() =>
    new Response(gz.slice(), {
      headers: { "content-encoding": "gzip", "content-length": String(gz.length) },
    })
  );
  await inTempDir(server, async (dest) => {
    const err = await failure(
      downloadFile({ url: server.url, dest, retries: 3, retryDelayMs: 0 }),
    );
    assert.equal(server.requests.length, 1, "not retried");
    assert.equal(server.requests[0].get("accept-encoding"), "identity");
    assert.match(err.message, /Content-Encoding: gzip although the request asked for/);
    assert.match(err.message, /No part file was kept/);
    assert.equal(await exists(`${dest}.part`), false);
    assert.equal(await exists(dest), false);
  });
});

Deno.test("after HTTP 500 with no part file the message does not claim kept bytes", async () => {
  const server = loopback(() => new Response("broken", { status: 500 }));
  await inTempDir(server, async (dest) => {
    const err = await failure(
      downloadFile({ url: server.url, dest, retries: 1, retryDelayMs: 0 }),
    );
    assert.equal(err.status, 500);
    assert.equal(server.requests.length, 2, "a 500 is retried");
    assert.match(err.message, /did not complete after 2 request\(s\): HTTP 500/);
    assert.doesNotMatch(err.message, /bytes are kept/);
    assert.match(err.message, /No part file was kept \(.*archive\.tar\.gz\.part does not exist\)/);
    assert.equal(err.partBytes, undefined);
    assert.equal(await exists(`${dest}.part`), false);
  });
});

Deno.test("after HTTP 500 with an existing part file the message states its size", async () => {
  const server = loopback(() => new Response("broken", { status: 500 }));
  await inTempDir(server, async (dest) => {
    const kept = makeArchive(1234, 13);
    await Deno.writeFile(`${dest}.part`, kept);
    const err = await failure(downloadFile({ url: server.url, dest, retries: 0 }));
    assert.equal(err.status, 500);
    assert.equal(server.requests[0].get("range"), "bytes=1234-");
    assert.match(err.message, /1234 bytes are kept in .*archive\.tar\.gz\.part/);
    assert.equal(err.partBytes, 1234);
    assert.deepEqual(await Deno.readFile(`${dest}.part`), kept);
  });
});

Deno.test("a redirect loop fails at once instead of being retried", async () => {
  const server = loopback((req) => {
    const next = new URL(req.url).pathname === "/a" ? "/b" : "/a";
    return new Response(null, { status: 302, headers: { location: next } });
  });
  await inTempDir(server, async (dest) => {
    const err = await withDeadline(
      5000,
      (signal) => failure(downloadFile({ url: server.url, dest, retries: 3, signal })),
    );
    assert.match(err.message, /redirect loop: .*\/archive\.tar\.gz -> .*\/a -> .*\/b -> .*\/a/);
    assert.equal(server.requests.length, 3);
    assert.equal(err.status, 302);
  });
});

Deno.test("a followed redirect keeps the Range header and resumes", async () => {
  const data = makeArchive(30_000, 14);
  const sha = await webCryptoHex(data);
  const server = loopback((req) => {
    if (new URL(req.url).pathname !== "/moved") {
      return new Response(null, { status: 301, headers: { location: "/moved" } });
    }
    const start = Number(req.headers.get("range")?.match(/^bytes=(\d+)-$/)?.[1] ?? 0);
    return new Response(data.slice(start), {
      status: start > 0 ? 206 : 200,
      headers: start > 0
        ? { "content-range": `bytes ${start}-${data.length - 1}/${data.length}` }
        : {},
    });
  });
  await inTempDir(server, async (dest) => {
    await Deno.writeFile(`${dest}.part`, data.subarray(0, 7_000));
    const r = await downloadFile({ url: server.url, dest, sha256: sha, bytes: data.length });
    assert.equal(r.resumed, true);
    assert.equal(r.requests, 1);
    assert.deepEqual(server.requests.map((h) => h.get("range")), ["bytes=7000-", "bytes=7000-"]);
    assert.deepEqual(await Deno.readFile(dest), data);
  });
});
