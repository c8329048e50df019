import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { writeFileAtomic, writeJsonAtomic } from "../../src/io/atomic.js";
import {
  bf16ToF32Array,
  CheckpointError,
  encodeSafetensors,
  f16ToF32Array,
  f32ToBf16Array,
  f32ToF16Array,
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from "../../src/io/safetensors.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "srlm-st-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Build a safetensors file by hand: header (object or raw text) + data bytes. */
function raw(header: string | Record<string, unknown>, data: Uint8Array | number[] = [], headerLen?: bigint): Uint8Array {
  const h = Buffer.from(typeof header === "string" ? header : JSON.stringify(header), "utf8");
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function u16Bytes(vals: number[]): Uint8Array {
  return new Uint8Array(new Uint16Array(vals).buffer);
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function randomF32(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  const u = new Uint32Array(out.buffer);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    u[i] = s;
  }
  return out;
}

/** Assert that `fn` throws a CheckpointError whose message contains every fragment. */
function rejects(fn: () => unknown, ...fragments: (string | RegExp)[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
    for (const f of fragments) {
      if (typeof f === "string") assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
      else assert.match(e.message, f);
    }
    return true;
  });
}

const F = "bad.safetensors";

describe("safetensors round trip", () => {
  test("random F32 tensors are bit-exact through encode/parse, including NaN payloads, -0, inf, subnormals", () => {
    const specials = new Float32Array(8);
    const su = new Uint32Array(specials.buffer);
    su.set([0x80000000, 0x7f800000, 0xff800000, 0x7fc00001, 0xffa12345, 0x00000001, 0x807fffff, 0x3f800000]);
    const tensors = [
      { name: "a.weight", shape: [7, 13], data: randomF32(91, 1) },
      { name: "b", shape: [8], data: specials },
      { name: "empty", shape: [0, 5], data: new Float32Array(0) },
      { name: "scalar", shape: [], data: new Float32Array([3.5]) },
      { name: "0", shape: [3], data: randomF32(3, 2) },
    ];
    const bytes = encodeSafetensors(tensors, { format: "pt", note: "héllo" });
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal((8 + headerLen) % 8, 0, "data section is 8-aligned");
    const r = parseSafetensors(bytes, F);
    assert.deepEqual(r.metadata, { format: "pt", note: "héllo" });
    assert.deepEqual([...r.tensors.keys()], ["a.weight", "b", "empty", "scalar", "0"]);
    for (const t of tensors) {
      const got = r.tensors.get(t.name);
      assert.ok(got, "got");
      assert.deepEqual(got.shape, t.shape);
      assert.equal(got.dtype, "F32");
      assert.deepEqual(bits(got.data), bits(t.data));
      assert.notEqual(got.data.buffer, bytes.buffer, "parse copies, never aliases the input");
    }
  });

  test("write/read through files is bit-exact; each tensor owns its buffer; write is atomic (no temp left)", async () => {
    const path = join(dir, "rt.safetensors");
    const tensors = Array.from({ length: 6 }, (_, i) => ({ name: `t${i}`, shape: [i + 1, 17], data: randomF32((i + 1) * 17, 10 + i) }));
    await writeSafetensors(path, tensors, { format: "pt" });
    const r = await readSafetensors(path);
    for (const t of tensors) {
      const got = r.tensors.get(t.name);
      assert.ok(got, "got");
      assert.deepEqual(bits(got.data), bits(t.data));
      assert.equal(got.data.byteOffset, 0);
      assert.equal(got.data.buffer.byteLength, got.data.byteLength);
    }
    assert.deepEqual(r.metadata, { format: "pt" });
    const h = await readSafetensorsHeader(path);
    assert.equal(h.entries.length, 6);
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.endsWith(".tmp")),
      [],
    );
    // the file read by the pure parser agrees
    const again = parseSafetensors(new Uint8Array(await readFile(path)), path);
    assert.deepEqual(bits(again.tensors.get("t3")?.data as Float32Array), bits(tensors[3].data));
  });

  test("include option skips tensors (and their dtype) without failing", async () => {
    const bytes = raw(
      { keep: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, ids: { dtype: "I64", shape: [1], data_offsets: [4, 12] } },
      [...new Uint8Array(new Float32Array([2]).buffer), ...new Uint8Array(8)],
    );
    const r = parseSafetensors(bytes, F, { include: (n) => n !== "ids" });
    assert.deepEqual([...r.tensors.keys()], ["keep"]);
    const path = join(dir, "inc.safetensors");
    await writeFile(path, bytes);
    const r2 = await readSafetensors(path, { include: (n) => n === "keep" });
    assert.equal(r2.tensors.get("keep")?.data[0], 2);
    await assert.rejects(
      readSafetensors(path),
      (e: Error) => e instanceof CheckpointError && e.message.includes(path) && /"ids".*unsupported dtype I64/.test(e.message),
    );
  });

  test("F16 and BF16 writing rounds to nearest even and reads back", async () => {
    const src = new Float32Array([1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65519, 65520, 2 ** -25, 3 * 2 ** -25, -0, Number.NaN, 0.1]);
    const path = join(dir, "half.safetensors");
    await writeSafetensors(path, [
      { name: "h", shape: [src.length], data: src, dtype: "F16" },
      { name: "b", shape: [src.length], data: src, dtype: "BF16" },
      { name: "f", shape: [3], data: new Float32Array([1, 2, 3]) },
    ]);
    const r = await readSafetensors(path);
    const h = r.tensors.get("h");
    const b = r.tensors.get("b");
    assert.equal(h?.dtype, "F16");
    assert.equal(b?.dtype, "BF16");
    assert.deepEqual([...(h?.data ?? [])].slice(0, 8), [1, 1, 1 + 2 ** -9, 65504, Number.POSITIVE_INFINITY, 0, 2 ** -23, -0]);
    assert.ok(Object.is(h?.data[7], -0));
    assert.ok(Number.isNaN(h?.data[8]), "Number.isNaN(h?.data[8])");
    assert.equal(h?.data[9], 0.0999755859375);
    assert.ok(Number.isNaN(b?.data[8]), "Number.isNaN(b?.data[8])");
    assert.equal(b?.data[0], 1);
    assert.equal(b?.data[9], 0.10009765625);
    assert.deepEqual([...(r.tensors.get("f")?.data ?? [])], [1, 2, 3]);
  });
});

describe("F16 / BF16 conversion", () => {
  test("F16 decoding against hand-computed values (normals, subnormals, inf, nan, -0)", () => {
    const cases: [number, number][] = [
      [0x0000, 0],
      [0x3c00, 1],
      [0xc000, -2],
      [0x3800, 0.5],
      [0x3555, 0.333251953125],
      [0x7bff, 65504],
      [0xfbff, -65504],
      [0x0400, 2 ** -14], // smallest normal
      [0x0001, 2 ** -24], // smallest subnormal
      [0x03ff, 1023 * 2 ** -24], // largest subnormal
      [0x8001, -(2 ** -24)],
      [0x7c00, Number.POSITIVE_INFINITY],
      [0xfc00, Number.NEGATIVE_INFINITY],
    ];
    const out = f16ToF32Array(new Uint16Array(cases.map((c) => c[0])));
    for (const [i, [h, v]] of cases.entries()) assert.equal(out[i], v, `0x${h.toString(16)}`);
    const special = f16ToF32Array(new Uint16Array([0x8000, 0x7e00, 0xfe01, 0x7c01]));
    assert.ok(Object.is(special[0], -0));
    assert.ok(
      Number.isNaN(special[1]) && Number.isNaN(special[2]) && Number.isNaN(special[3]),
      "Number.isNaN(special[1]) && Number.isNaN(special[2]) && Number.isNaN(special[3])",
    );
  });

  test("F16 decoding through a file, at an odd (unaligned) data offset", () => {
    // header text of odd length makes the data section start at an odd byte
    let header = JSON.stringify({ x: { dtype: "F16", shape: [2, 2], data_offsets: [0, 8] } });
    if ((8 + header.length) % 2 === 0) header += " ";
    const bytes = raw(header, u16Bytes([0x3c00, 0x8000, 0x0001, 0x7c00]));
    const r = parseSafetensors(bytes, F);
    const d = r.tensors.get("x")?.data as Float32Array;
    assert.deepEqual(r.tensors.get("x")?.shape, [2, 2]);
    assert.equal(d[0], 1);
    assert.ok(Object.is(d[1], -0));
    assert.equal(d[2], 2 ** -24);
    assert.equal(d[3], Number.POSITIVE_INFINITY);
  });

  test("BF16 decoding against hand-computed values", () => {
    const cases: [number, number][] = [
      [0x3f80, 1],
      [0xc040, -3],
      [0x4049, 3.140625],
      [0x0000, 0],
      [0x0001, 2 ** -133], // smallest bf16 subnormal
      [0x7f7f, 3.3895313892515355e38], // largest finite
      [0x7f80, Number.POSITIVE_INFINITY],
      [0xff80, Number.NEGATIVE_INFINITY],
    ];
    const out = bf16ToF32Array(new Uint16Array(cases.map((c) => c[0])));
    for (const [i, [h, v]] of cases.entries()) assert.equal(out[i], v, `0x${h.toString(16)}`);
    const special = bf16ToF32Array(new Uint16Array([0x8000, 0x7fc0]));
    assert.ok(Object.is(special[0], -0));
    assert.ok(Number.isNaN(special[1]), "Number.isNaN(special[1])");
    const bytes = raw({ y: { dtype: "BF16", shape: [3], data_offsets: [0, 6] } }, u16Bytes([0x3f80, 0xc040, 0x0001]));
    assert.deepEqual([...(parseSafetensors(bytes, F).tensors.get("y")?.data ?? [])], [1, -3, 2 ** -133]);
  });

  test("every finite F16 value survives f16 → f32 → f16; NaNs stay NaN", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToF16Array(f16ToF32Array(all));
    for (let h = 0; h < 65536; h++) {
      const isNan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNan) assert.ok((back[h] & 0x7c00) === 0x7c00 && (back[h] & 0x3ff) !== 0, `0x${h.toString(16)}`);
      else assert.equal(back[h], h, `0x${h.toString(16)}`);
    }
  });

  test("f32 → f16 / bf16 rounding edge cases", () => {
    const f16 = f32ToF16Array(
      new Float32Array([
        1 + 2 ** -11,
        1 + 3 * 2 ** -11,
        65520,
        2 ** -25,
        2 ** -25 * 1.0001,
        3 * 2 ** -25,
        2 ** -14 - 2 ** -25,
        1e-30,
        -1e10,
      ]),
    );
    assert.deepEqual([...f16], [0x3c00, 0x3c02, 0x7c00, 0x0000, 0x0001, 0x0002, 0x0400, 0x0000, 0xfc00]);
    const bf = f32ToBf16Array(
      new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, Number.NaN, Number.NEGATIVE_INFINITY]),
    );
    assert.deepEqual([...bf.slice(0, 3)], [0x3f80, 0x3f82, 0x3f81]);
    assert.ok((bf[3] & 0x7f80) === 0x7f80 && (bf[3] & 0x7f) !== 0, "(bf[3] & 0x7f80) === 0x7f80 && (bf[3] & 0x7f) !== 0");
    assert.equal(bf[4], 0xff80);
  });
});

describe("safetensors corruption is rejected naming file and tensor", () => {
  const f32 = (n: number) => new Uint8Array(new Float32Array(n).fill(1).buffer);
  const ok = (extra: Record<string, unknown> = {}) => ({ w: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, ...extra });

  test("file shorter than 8 bytes", () => {
    rejects(() => parseSafetensors(new Uint8Array(5), F), F, "5 bytes", "shorter than the 8-byte");
    rejects(() => parseSafetensors(new Uint8Array(0), F), F);
  });

  test("header length larger than the file, or absurd", () => {
    rejects(() => parseSafetensors(raw(ok(), f32(2), 5000n), F), F, "header length 5000 is larger than the file");
    rejects(() => parseSafetensors(raw(ok(), f32(2), 2n ** 40n), F), F, "limit");
    rejects(() => parseSafetensors(raw(ok(), f32(2), 0n), F), F, "too small");
  });

  test("header not JSON / not an object / not UTF-8", () => {
    rejects(() => parseSafetensors(raw('{"w": {"dtype": "F32",', f32(2)), F), F, "not valid JSON");
    rejects(() => parseSafetensors(raw("[1, 2]", []), F), F, 'does not start with "{"');
    rejects(() => parseSafetensors(raw('"abc"', []), F), F, 'does not start with "{"');
    const bad = raw('{"\xff": 1}');
    bad[10] = 0xff; // invalid UTF-8 byte inside the key
    rejects(() => parseSafetensors(bad, F), F, "UTF-8");
  });

  test("trailing space padding of the header is accepted", () => {
    const r = parseSafetensors(raw(`${JSON.stringify(ok())}       `, f32(2)), F);
    assert.deepEqual([...(r.tensors.get("w")?.data ?? [])], [1, 1]);
  });

  test("entry not an object", () => {
    rejects(() => parseSafetensors(raw({ w: [1, 2] }), F), F, '"w"', "must be an object");
  });

  test("unknown dtype, and a known but unsupported dtype", () => {
    rejects(
      () => parseSafetensors(raw({ w: { dtype: "Q4_K", shape: [2], data_offsets: [0, 8] } }, f32(2)), F),
      F,
      '"w"',
      'unknown dtype "Q4_K"',
    );
    rejects(
      () => parseSafetensors(raw({ w: { dtype: 7, shape: [2], data_offsets: [0, 8] } }, f32(2)), F),
      F,
      '"w"',
      "dtype must be a string",
    );
    for (const dtype of ["F64", "I64", "I32"]) {
      const bytes = raw(
        { w: { dtype, shape: [2], data_offsets: [0, dtype === "I32" ? 8 : 16] } },
        new Uint8Array(dtype === "I32" ? 8 : 16),
      );
      rejects(() => parseSafetensors(bytes, F), F, '"w"', `unsupported dtype ${dtype}`);
    }
  });

  test("shape not an array of non-negative integers", () => {
    for (const shape of [[-1, 2], [1.5], "2", [2, null], null]) {
      rejects(
        () => parseSafetensors(raw({ w: { dtype: "F32", shape, data_offsets: [0, 8] } }, f32(2)), F),
        F,
        'tensor "w"',
        "shape must be",
      );
    }
  });

  test("data_offsets not [begin, end] with begin <= end", () => {
    rejects(() => parseSafetensors(raw({ w: { dtype: "F32", shape: [2], data_offsets: [8, 0] } }, f32(2)), F), F, '"w"', "begin > end");
    for (const offs of [[0], [0, 8, 9], ["0", "8"], [-8, 0], undefined]) {
      rejects(
        () => parseSafetensors(raw({ w: { dtype: "F32", shape: [2], data_offsets: offs } }, f32(2)), F),
        F,
        '"w"',
        "data_offsets must be",
      );
    }
  });

  test("byte size not equal to product(shape) × dtype size", () => {
    rejects(
      () => parseSafetensors(raw({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, f32(2)), F),
      F,
      '"w"',
      "byte size 8",
      "12 bytes",
    );
    rejects(() => parseSafetensors(raw({ w: { dtype: "F16", shape: [2], data_offsets: [0, 8] } }, f32(2)), F), F, '"w"', "F16 = 4 bytes");
  });

  test("offsets outside the data section (truncated file)", () => {
    const full = raw(
      { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, last: { dtype: "F32", shape: [4], data_offsets: [8, 24] } },
      f32(6),
    );
    assert.equal(parseSafetensors(full, F).tensors.size, 2);
    rejects(() => parseSafetensors(full.subarray(0, full.length - 3), F), F, '"last"', "outside", "truncated");
  });

  test("overlapping tensors", () => {
    const bytes = raw(
      { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } },
      f32(3),
    );
    rejects(() => parseSafetensors(bytes, F), F, '"b"', "overlap", '"a"');
  });

  test("gaps and unused trailing bytes", () => {
    const gap = raw(
      { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } },
      f32(3),
    );
    rejects(() => parseSafetensors(gap, F), F, '"b"', "4 unused bytes before it");
    const tail = raw(ok(), f32(3));
    rejects(() => parseSafetensors(tail, F), F, "4 unused bytes at the end", '"w"');
    const nothing = raw({}, f32(1));
    rejects(() => parseSafetensors(nothing, F), F, "4 unused bytes at the end");
  });

  test("zero-size tensors may share an offset", () => {
    const bytes = raw(
      {
        a: { dtype: "F32", shape: [0], data_offsets: [0, 0] },
        b: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
        c: { dtype: "F16", shape: [0, 3], data_offsets: [4, 4] },
      },
      f32(1),
    );
    assert.equal(parseSafetensors(bytes, F).tensors.size, 3);
  });

  test("duplicate names", () => {
    const text =
      '{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}';
    rejects(() => parseSafetensors(raw(text, f32(2)), F), F, 'tensor "w"', "twice");
    // the same string as a metadata value or nested key is not a duplicate
    const fine = '{"__metadata__": {"w": "w"}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}';
    assert.equal(parseSafetensors(raw(fine, f32(1)), F).tensors.size, 1);
    const escaped =
      '{"a\\"b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a\\"b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}';
    rejects(() => parseSafetensors(raw(escaped, f32(2)), F), F, 'tensor "a"b"', "twice");
  });

  test("__metadata__ must be a string map", () => {
    rejects(() => parseSafetensors(raw(ok({ __metadata__: { step: 3 } }), f32(2)), F), F, '"__metadata__"', '"step"');
    rejects(() => parseSafetensors(raw(ok({ __metadata__: [1] }), f32(2)), F), F, '"__metadata__"');
    assert.deepEqual(parseSafetensors(raw(ok({ __metadata__: null }), f32(2)), F).metadata, {});
  });

  test("readSafetensors names the path on disk", async () => {
    const path = join(dir, "trunc.safetensors");
    const good = encodeSafetensors([{ name: "x.weight", shape: [4, 4], data: randomF32(16, 3) }]);
    await writeFile(path, good.subarray(0, good.length - 1));
    await assert.rejects(
      readSafetensors(path),
      (e: Error) => e instanceof CheckpointError && e.message.includes(path) && e.message.includes('"x.weight"'),
    );
    await assert.rejects(readSafetensors(join(dir, "nope.safetensors")), /nope\.safetensors: cannot open \(file not found\)/);
    await writeFile(path, new Uint8Array(3));
    await assert.rejects(readSafetensors(path), (e: Error) => e.message.includes(path) && e.message.includes("3 bytes"));
  });

  test("encoder validates its input, naming the tensor", () => {
    assert.throws(
      () => encodeSafetensors([{ name: "w", shape: [3], data: new Float32Array(2) }]),
      /tensor "w": data has 2 elements, shape \[3\] needs 3/,
    );
    assert.throws(
      () =>
        encodeSafetensors([
          { name: "w", shape: [1], data: new Float32Array(1) },
          { name: "w", shape: [1], data: new Float32Array(1) },
        ]),
      /tensor "w": name given twice/,
    );
    assert.throws(() => encodeSafetensors([{ name: "__metadata__", shape: [1], data: new Float32Array(1) }]), /reserved/);
    assert.throws(
      () => encodeSafetensors([{ name: "w", shape: [1], data: new Float32Array(1), dtype: "I8" as "F32" }]),
      /tensor "w": cannot write dtype "I8"/,
    );
  });
});

describe("atomic writes", () => {
  test("writeFileAtomic replaces content; a failed write leaves the old file and no temp", async () => {
    const path = join(dir, "atomic.txt");
    await writeFileAtomic(path, "first");
    await writeFileAtomic(path, [Buffer.from("sec"), Buffer.from("ond")]);
    assert.equal(await readFile(path, "utf8"), "second");
    const bogus = { byteLength: 10 } as unknown as Uint8Array;
    await assert.rejects(writeFileAtomic(path, [Buffer.from("x"), bogus]));
    assert.equal(await readFile(path, "utf8"), "second");
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.includes("atomic.txt") && n !== "atomic.txt"),
      [],
    );
    await assert.rejects(writeFileAtomic(join(dir, "no-such-dir", "f.txt"), "x"), /ENOENT/);
    await writeJsonAtomic(join(dir, "j.json"), { a: [1, 2] });
    assert.equal(await readFile(join(dir, "j.json"), "utf8"), '{\n  "a": [\n    1,\n    2\n  ]\n}\n');
  });
});

describe("speed", () => {
  test("a ~50 MB F32 file and a ~25 MB BF16/F16 file read quickly", async () => {
    const n = 12_500_000;
    const data = randomF32(n, 7);
    for (let i = 0; i < n; i++) if (!Number.isFinite(data[i])) data[i] = 0;
    const path = join(dir, "big.safetensors");
    await writeSafetensors(path, [
      { name: "a", shape: [n / 2], data: data.subarray(0, n / 2) },
      { name: "b", shape: [n / 2], data: data.subarray(n / 2) },
    ]);
    let t0 = performance.now();
    const r = await readSafetensors(path);
    const tF32 = performance.now() - t0;
    assert.equal(r.tensors.get("b")?.data[5], data[n / 2 + 5]);
    await writeSafetensors(path, [
      { name: "h", shape: [n / 2], data: data.subarray(0, n / 2), dtype: "F16" },
      { name: "b", shape: [n / 2], data: data.subarray(n / 2), dtype: "BF16" },
    ]);
    t0 = performance.now();
    const r2 = await readSafetensors(path);
    const tHalf = performance.now() - t0;
    assert.equal(r2.tensors.get("h")?.data.length, n / 2);
    // generous bounds: they catch per-element allocation, not machine noise
    assert.ok(tF32 < 3000, `F32 read took ${tF32.toFixed(0)} ms`);
    assert.ok(tHalf < 3000, `F16/BF16 read took ${tHalf.toFixed(0)} ms`);
    console.log(`    50 MB F32 read ${tF32.toFixed(0)} ms; 25 MB F16+BF16 read ${tHalf.toFixed(0)} ms`);
  });
});
