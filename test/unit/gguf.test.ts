import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { mulberry32, randn } from "../../src/engine/tensor.js";
import {
  type GgufKvType,
  GgufType,
  type GgufValue,
  loadGgufModel,
  permuteQK,
  readGguf,
  readGgufHeader,
  readGgufTensor,
  unpermuteQK,
} from "../../src/io/gguf.js";
import { paramSpecs, toNamed } from "../../src/model/params.js";
import { sharedPath } from "../helpers.js";

const STORIES = sharedPath("models", "stories260K.gguf");
const tmp = mkdtempSync(join(tmpdir(), "srlm-gguf-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// A minimal GGUF writer for tests.
// ---------------------------------------------------------------------------------------------

interface Kv {
  key: string;
  type: GgufType;
  elemType?: GgufType;
  value: GgufValue;
}
interface RawTensor {
  name: string;
  dims: number[]; // GGUF order
  type: number;
  bytes: Uint8Array;
}

class Bytes {
  parts: Buffer[] = [];
  length = 0;
  push(b: Buffer | Uint8Array): void {
    const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    this.parts.push(buf);
    this.length += buf.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: number | bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.push(b);
  }
  pad(align: number): void {
    const n = (align - (this.length % align)) % align;
    if (n) this.push(Buffer.alloc(n));
  }
  scalar(type: GgufType, v: GgufValue): void {
    if (type === GgufType.STRING) {
      this.str(v as string);
      return;
    }
    const b = Buffer.alloc(8);
    const n = Number(v);
    let len: number;
    switch (type) {
      case GgufType.UINT8:
        len = b.writeUInt8(n);
        break;
      case GgufType.INT8:
        len = b.writeInt8(n);
        break;
      case GgufType.UINT16:
        len = b.writeUInt16LE(n);
        break;
      case GgufType.INT16:
        len = b.writeInt16LE(n);
        break;
      case GgufType.UINT32:
        len = b.writeUInt32LE(n);
        break;
      case GgufType.INT32:
        len = b.writeInt32LE(n);
        break;
      case GgufType.FLOAT32:
        len = b.writeFloatLE(n);
        break;
      case GgufType.FLOAT64:
        len = b.writeDoubleLE(n);
        break;
      case GgufType.BOOL:
        len = b.writeUInt8(v ? 1 : 0);
        break;
      case GgufType.UINT64:
        len = b.writeBigUInt64LE(BigInt(v as number | bigint));
        break;
      case GgufType.INT64:
        len = b.writeBigInt64LE(BigInt(v as number | bigint));
        break;
      default:
        throw new Error(`writer: type ${type}`);
    }
    this.push(b.subarray(0, len));
  }
  value(type: GgufType, v: GgufValue, elemType?: GgufType): void {
    if (type !== GgufType.ARRAY) {
      this.scalar(type, v);
      return;
    }
    const arr = Array.from(v as ArrayLike<GgufValue>);
    this.u32(elemType as number);
    this.u64(arr.length);
    for (const x of arr) {
      if (elemType === GgufType.ARRAY) {
        // nested arrays in these tests hold uint8
        this.value(GgufType.ARRAY, x, GgufType.UINT8);
      } else this.scalar(elemType as GgufType, x);
    }
  }
}

function writeGgufFile(path: string, kvs: Kv[], tensors: RawTensor[], opts: { version?: number; alignment?: number } = {}): void {
  const align = opts.alignment ?? 32;
  const w = new Bytes();
  w.push(Buffer.from("GGUF", "latin1"));
  w.u32(opts.version ?? 3);
  w.u64(tensors.length);
  w.u64(kvs.length);
  for (const kv of kvs) {
    w.str(kv.key);
    w.u32(kv.type);
    w.value(kv.type, kv.value, kv.elemType);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(offset);
    offsets.push(offset);
    offset += Math.ceil(t.bytes.length / align) * align;
  }
  w.pad(align);
  for (const t of tensors) {
    w.push(t.bytes);
    w.pad(align);
  }
  writeFileSync(path, Buffer.concat(w.parts));
}

function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Float → IEEE half bits (round to nearest even; enough for test values). */
function toHalf(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  let mant = u & 0x7fffff;
  if (exp <= 0) return sign; // flush tiny values (tests avoid them)
  if (exp >= 31) return sign | 0x7c00;
  const rounded = mant + 0xfff + ((mant >>> 13) & 1);
  if (rounded & 0x800000) return (sign | ((exp + 1) << 10)) & 0xffff;
  mant = rounded >>> 13;
  return sign | (exp << 10) | mant;
}

/** Rewrite stories260K through the test writer, with optional edits. */
function rewriteStories(path: string, edit: (kvs: Kv[], tensors: RawTensor[]) => void = () => {}): void {
  const { header, tensors } = readGguf(STORIES);
  const kvs: Kv[] = Object.entries(header.metadata).map(([key, value]) => {
    const t = header.kvTypes[key] as GgufKvType;
    return { key, type: t.type, elemType: t.elemType, value };
  });
  const raw: RawTensor[] = header.tensors.map((t) => ({ name: t.name, dims: t.dims, type: 0, bytes: f32Bytes(tensors.get(t.name)!.data) }));
  edit(kvs, raw);
  writeGgufFile(path, kvs, raw);
}

// ---------------------------------------------------------------------------------------------

test("stories260K: header, config and every tensor in HF layout", () => {
  const h = readGgufHeader(STORIES);
  assert.equal(h.version, 3);
  assert.equal(h.alignment, 32);
  assert.equal(h.tensors.length, 3 + 5 * 9);
  assert.equal(h.metadata["general.architecture"], "llama");

  const m = loadGgufModel(STORIES);
  const c = m.config;
  assert.equal(c.dim, 64);
  assert.equal(c.nLayers, 5);
  assert.equal(c.nHeads, 8);
  assert.equal(c.nKvHeads, 4);
  assert.equal(c.headDim, 8);
  assert.equal(c.vocabSize, 512);
  assert.equal(c.hiddenDim, 172);
  assert.equal(c.maxSeqLen, 512);
  assert.equal(c.ropeTheta, 10000);
  assert.ok(Math.abs(c.normEps - 1e-5) < 1e-10, `normEps ${c.normEps}`);
  assert.equal(c.tieEmbeddings, false);
  assert.equal(m.tokenizer.vocabSize, 512);

  // every HF tensor present with the shape the config implies
  const named = toNamed(c, m.params);
  assert.equal(named.length, paramSpecs(c).length);
  for (const t of named) {
    assert.ok(t.data instanceof Float32Array, t.name);
    assert.equal(
      t.data.length,
      t.shape.reduce((a, b) => a * b, 1),
      t.name,
    );
  }
  const shapes = new Map(h.tensors.map((t) => [t.name, t.shape]));
  assert.deepEqual(shapes.get("token_embd.weight"), [512, 64]);
  assert.deepEqual(shapes.get("blk.0.attn_q.weight"), [64, 64]);
  assert.deepEqual(shapes.get("blk.0.attn_k.weight"), [32, 64]);
  assert.deepEqual(shapes.get("blk.0.attn_v.weight"), [32, 64]);
  assert.deepEqual(shapes.get("blk.0.ffn_gate.weight"), [172, 64]);
  assert.deepEqual(shapes.get("blk.0.ffn_down.weight"), [64, 172]);
  assert.deepEqual(shapes.get("output.weight"), [512, 64]);
  assert.equal(m.params.layers[0].wk.length, 32 * 64);
  assert.equal(m.params.layers[4].wDown.length, 64 * 172);
  assert.notEqual(m.params.lmHead, m.params.embed);
});

test("stories260K: q/k are un-permuted, everything else is byte-identical", () => {
  const { header, tensors } = readGguf(STORIES);
  const m = loadGgufModel(STORIES);
  const raw = (n: string) => tensors.get(n)!.data;
  assert.deepEqual(m.params.embed, raw("token_embd.weight"));
  assert.deepEqual(m.params.lmHead, raw("output.weight"));
  assert.deepEqual(m.params.norm, raw("output_norm.weight"));
  for (let i = 0; i < 5; i++) {
    const l = m.params.layers[i];
    assert.deepEqual(l.wq, unpermuteQK(raw(`blk.${i}.attn_q.weight`), 8, 64));
    assert.deepEqual(l.wk, unpermuteQK(raw(`blk.${i}.attn_k.weight`), 4, 64));
    assert.deepEqual(permuteQK(l.wq, 8, 64), raw(`blk.${i}.attn_q.weight`));
    assert.deepEqual(permuteQK(l.wk, 4, 64), raw(`blk.${i}.attn_k.weight`));
    assert.notDeepEqual(l.wq, raw(`blk.${i}.attn_q.weight`));
    assert.deepEqual(l.wv, raw(`blk.${i}.attn_v.weight`));
    assert.deepEqual(l.wo, raw(`blk.${i}.attn_output.weight`));
    assert.deepEqual(l.wGate, raw(`blk.${i}.ffn_gate.weight`));
    assert.deepEqual(l.wUp, raw(`blk.${i}.ffn_up.weight`));
    assert.deepEqual(l.wDown, raw(`blk.${i}.ffn_down.weight`));
    assert.deepEqual(l.inputNorm, raw(`blk.${i}.attn_norm.weight`));
    assert.deepEqual(l.postNorm, raw(`blk.${i}.ffn_norm.weight`));
  }
  assert.deepEqual(readGgufTensor(header, "blk.2.ffn_up.weight"), raw("blk.2.ffn_up.weight"));
});

test("q/k permutation: hand-made example, the converter's reshape/swapaxes formula, identity round trip", () => {
  // 2 heads of width 4, one column: per head HF rows [r0 r1 | r2 r3] (rotate-half pairs (r0,r2), (r1,r3))
  // become interleaved [r0 r2 r1 r3].
  const w = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(Array.from(permuteQK(w, 2, 1)), [0, 2, 1, 3, 4, 6, 5, 7]);
  assert.deepEqual(Array.from(unpermuteQK(permuteQK(w, 2, 1), 2, 1)), Array.from(w));

  // convert_hf_to_gguf.py: w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols)
  const nHead = 3;
  const hd = 6;
  const cols = 5;
  const rows = nHead * hd;
  const x = randn(mulberry32(3), rows * cols);
  const ref = new Float32Array(rows * cols);
  const half = hd / 2;
  // output index (h, j, i, c) in shape (n_head, half, 2, cols) reads input (h, i, j, c) of shape (n_head, 2, half, cols)
  for (let h = 0; h < nHead; h++)
    for (let j = 0; j < half; j++)
      for (let i = 0; i < 2; i++)
        for (let c = 0; c < cols; c++) ref[((h * half + j) * 2 + i) * cols + c] = x[((h * 2 + i) * half + j) * cols + c];
  assert.deepEqual(permuteQK(x, nHead, cols), ref);
  assert.deepEqual(unpermuteQK(ref, nHead, cols), x);
  assert.deepEqual(permuteQK(unpermuteQK(x, nHead, cols), nHead, cols), x);
  assert.throws(() => permuteQK(x, 4, cols), /cannot be split into 4 heads of even width/);
});

test("q/k permutation: interleaved RoPE on permuted rows = permuted rotate-half RoPE", () => {
  const hd = 8;
  const half = hd / 2;
  const x = randn(mulberry32(11), hd);
  for (const pos of [0, 1, 5, 37]) {
    const ang = (j: number) => pos * 10000 ** ((-2 * j) / hd);
    const rotHalf = new Float32Array(hd); // HF: pairs (j, j + half)
    for (let j = 0; j < half; j++) {
      const [c, s] = [Math.cos(ang(j)), Math.sin(ang(j))];
      rotHalf[j] = x[j] * c - x[j + half] * s;
      rotHalf[j + half] = x[j + half] * c + x[j] * s;
    }
    const xp = permuteQK(x, 1, 1);
    const inter = new Float32Array(hd); // ggml/Meta: pairs (2j, 2j + 1)
    for (let j = 0; j < half; j++) {
      const [c, s] = [Math.cos(ang(j)), Math.sin(ang(j))];
      inter[2 * j] = xp[2 * j] * c - xp[2 * j + 1] * s;
      inter[2 * j + 1] = xp[2 * j + 1] * c + xp[2 * j] * s;
    }
    const expect = permuteQK(rotHalf, 1, 1);
    for (let k = 0; k < hd; k++) assert.ok(Math.abs(inter[k] - expect[k]) < 1e-5, `pos ${pos} k ${k}`);
  }
});

test("synthetic GGUF: every metadata type, alignment 64, F32/F16/BF16 data, quantised types rejected", () => {
  const path = join(tmp, "synthetic.gguf");
  const f32 = Float32Array.from([1.5, -2, 0.25, 1e3, -0.125, 3]);
  const halves = [1, -2.5, 0.5, 65504, -0.0009765625, 0];
  const f16 = Uint16Array.from(halves.map(toHalf));
  const bf16Values = [1, -3.5, 0.15625, 256];
  const bf16 = Uint16Array.from(bf16Values.map((v) => new Uint32Array(Float32Array.from([v]).buffer)[0] >>> 16));
  const q8 = new Uint8Array(34 * 2);
  const kvs: Kv[] = [
    { key: "general.alignment", type: GgufType.UINT32, value: 64 },
    { key: "u8", type: GgufType.UINT8, value: 200 },
    { key: "i8", type: GgufType.INT8, value: -100 },
    { key: "u16", type: GgufType.UINT16, value: 60000 },
    { key: "i16", type: GgufType.INT16, value: -30000 },
    { key: "u32", type: GgufType.UINT32, value: 4000000000 },
    { key: "i32", type: GgufType.INT32, value: -2000000000 },
    { key: "f32", type: GgufType.FLOAT32, value: 0.5 },
    { key: "f64", type: GgufType.FLOAT64, value: Math.PI },
    { key: "b", type: GgufType.BOOL, value: true },
    { key: "s", type: GgufType.STRING, value: "héllo ▁ 🙂" },
    { key: "u64", type: GgufType.UINT64, value: 2n ** 40n },
    { key: "u64big", type: GgufType.UINT64, value: 2n ** 63n + 5n },
    { key: "i64", type: GgufType.INT64, value: -(2n ** 40n) },
    { key: "arr.str", type: GgufType.ARRAY, elemType: GgufType.STRING, value: ["a", "", "<0x0A>", "中"] },
    { key: "arr.f32", type: GgufType.ARRAY, elemType: GgufType.FLOAT32, value: Float32Array.from([1, -1, 0.5]) },
    { key: "arr.i32", type: GgufType.ARRAY, elemType: GgufType.INT32, value: Int32Array.from([1, -2, 3]) },
    { key: "arr.bool", type: GgufType.ARRAY, elemType: GgufType.BOOL, value: [true, false] },
    { key: "arr.u64", type: GgufType.ARRAY, elemType: GgufType.UINT64, value: BigUint64Array.from([1n, 2n]) },
    { key: "arr.empty", type: GgufType.ARRAY, elemType: GgufType.UINT8, value: new Uint8Array(0) },
    { key: "arr.nested", type: GgufType.ARRAY, elemType: GgufType.ARRAY, value: [Uint8Array.from([1, 2]), Uint8Array.from([3])] },
  ];
  writeGgufFile(
    path,
    kvs,
    [
      { name: "a.f32", dims: [3, 2], type: 0, bytes: f32Bytes(f32) },
      { name: "b.f16", dims: [6], type: 1, bytes: new Uint8Array(f16.buffer) },
      { name: "c.bf16", dims: [2, 2], type: 30, bytes: new Uint8Array(bf16.buffer) },
      { name: "d.q8_0", dims: [64], type: 8, bytes: q8 },
    ],
    { alignment: 64 },
  );
  const h = readGgufHeader(path);
  assert.equal(h.alignment, 64);
  assert.equal(h.dataOffset % 64, 0);
  const md = h.metadata;
  assert.equal(md.u8, 200);
  assert.equal(md.i8, -100);
  assert.equal(md.u16, 60000);
  assert.equal(md.i16, -30000);
  assert.equal(md.u32, 4000000000);
  assert.equal(md.i32, -2000000000);
  assert.equal(md.f32, 0.5);
  assert.equal(md.f64, Math.PI);
  assert.equal(md.b, true);
  assert.equal(md.s, "héllo ▁ 🙂");
  assert.equal(md.u64, 2 ** 40);
  assert.equal(md.u64big, 2n ** 63n + 5n);
  assert.equal(md.i64, -(2 ** 40));
  assert.deepEqual(md["arr.str"], ["a", "", "<0x0A>", "中"]);
  assert.deepEqual(md["arr.f32"], Float32Array.from([1, -1, 0.5]));
  assert.deepEqual(md["arr.i32"], Int32Array.from([1, -2, 3]));
  assert.deepEqual(md["arr.bool"], [true, false]);
  assert.deepEqual(md["arr.u64"], BigUint64Array.from([1n, 2n]));
  assert.deepEqual(md["arr.empty"], new Uint8Array(0));
  assert.deepEqual(md["arr.nested"], [Uint8Array.from([1, 2]), Uint8Array.from([3])]);
  assert.deepEqual(h.kvTypes["arr.str"], { type: GgufType.ARRAY, elemType: GgufType.STRING });

  const byName = new Map(h.tensors.map((t) => [t.name, t]));
  assert.deepEqual(byName.get("a.f32")?.shape, [2, 3]);
  assert.equal(byName.get("d.q8_0")?.nBytes, 68);
  assert.deepEqual(readGgufTensor(h, "a.f32"), f32);
  assert.deepEqual(Array.from(readGgufTensor(h, "b.f16")), halves);
  assert.deepEqual(Array.from(readGgufTensor(h, "c.bf16")), bf16Values);
  assert.throws(
    () => readGgufTensor(h, "d.q8_0"),
    (e: Error) => e.message.includes(path) && /tensor "d\.q8_0" has type Q8_0; only F32, F16 and BF16/.test(e.message),
  );
  assert.throws(() => readGgufTensor(h, "nope"), /no tensor named "nope"/);
  assert.throws(() => loadGgufModel(path), /synthetic\.gguf: general\.architecture is undefined; only "llama" is supported/);
});

test("rewritten stories260K: identical load; F16 copy loads within f16 precision; tied embeddings", () => {
  const same = join(tmp, "same.gguf");
  rewriteStories(same);
  const a = loadGgufModel(STORIES);
  const b = loadGgufModel(same);
  assert.deepEqual(b.config, a.config);
  assert.deepEqual(b.params, a.params);

  const half = join(tmp, "f16.gguf");
  rewriteStories(half, (_kvs, ts) => {
    for (const t of ts) {
      const f = new Float32Array(t.bytes.buffer.slice(t.bytes.byteOffset, t.bytes.byteOffset + t.bytes.byteLength));
      t.bytes = new Uint8Array(Uint16Array.from(f, toHalf).buffer);
      t.type = 1;
    }
  });
  const c = loadGgufModel(half);
  // f16 keeps 11 significant bits; the test's toHalf flushes values below 2^-14 to zero
  const worst = (x: Float32Array, y: Float32Array) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]) - 1e-3 * Math.abs(y[i])), 0);
  assert.ok(worst(c.params.layers[3].wq, a.params.layers[3].wq) < 1e-4, "f16 wq (un-permuted) close to f32");
  assert.ok(worst(c.params.lmHead, a.params.lmHead) < 1e-4, "f16 lm_head close to f32");

  const tied = join(tmp, "tied.gguf");
  rewriteStories(tied, (_kvs, ts) =>
    ts.splice(
      ts.findIndex((t) => t.name === "output.weight"),
      1,
    ),
  );
  const d = loadGgufModel(tied);
  assert.equal(d.config.tieEmbeddings, true);
  assert.equal(d.params.lmHead, d.params.embed);
});

test("corrupt or unsupported files are rejected with messages naming the file (and tensor)", () => {
  const bytes = readFileSync(STORIES);
  const named = (p: string, re: RegExp) => (e: Error) => e.message.startsWith(`${p}:`) && re.test(e.message);

  const truncated = join(tmp, "truncated.gguf");
  copyFileSync(STORIES, truncated);
  truncateSync(truncated, bytes.length - 1000);
  assert.throws(
    () => readGgufHeader(truncated),
    named(truncated, /truncated file: tensor "output\.weight" .*extends past the end of the file/),
  );
  assert.throws(() => loadGgufModel(truncated), named(truncated, /output\.weight/));

  const header = join(tmp, "header-cut.gguf");
  writeFileSync(header, bytes.subarray(0, 3000));
  assert.throws(() => readGgufHeader(header), named(header, /truncated file/));

  const magic = join(tmp, "magic.gguf");
  const m = Buffer.from(bytes);
  m.write("GGML", 0, "latin1");
  writeFileSync(magic, m);
  assert.throws(() => readGgufHeader(magic), named(magic, /not a GGUF file: magic is "GGML"/));

  const version = join(tmp, "version.gguf");
  const v = Buffer.from(bytes);
  v.writeUInt32LE(7, 4);
  writeFileSync(version, v);
  assert.throws(() => readGgufHeader(version), named(version, /unsupported GGUF version 7/));
  v.writeUInt32LE(1, 4);
  writeFileSync(version, v);
  assert.throws(() => readGgufHeader(version), named(version, /version 1 is not supported/));

  const counts = join(tmp, "counts.gguf");
  const c = Buffer.from(bytes);
  c.writeBigUInt64LE(10n ** 9n, 8);
  writeFileSync(counts, c);
  assert.throws(() => readGgufHeader(counts), named(counts, /1000000000 tensors cannot fit/));

  const empty = join(tmp, "empty.gguf");
  writeFileSync(empty, Buffer.alloc(0));
  assert.throws(() => readGgufHeader(empty), named(empty, /not a GGUF file/));
  assert.throws(() => readGgufHeader(join(tmp, "missing.gguf")), /missing\.gguf: cannot open/);

  const missing = join(tmp, "missing-tensor.gguf");
  rewriteStories(missing, (_kvs, ts) =>
    ts.splice(
      ts.findIndex((t) => t.name === "blk.4.ffn_up.weight"),
      1,
    ),
  );
  assert.throws(
    () => loadGgufModel(missing),
    named(missing, /"model\.layers\.4\.mlp\.up_proj\.weight" is missing \(GGUF tensor "blk\.4\.ffn_up\.weight"\)/),
  );

  const shape = join(tmp, "bad-shape.gguf");
  rewriteStories(shape, (_kvs, ts) => {
    const t = ts.find((x) => x.name === "blk.1.ffn_down.weight")!;
    t.dims = [172, 32];
    t.bytes = t.bytes.subarray(0, 172 * 32 * 4);
  });
  assert.throws(() => loadGgufModel(shape), named(shape, /blk\.1\.ffn_down\.weight/));

  const extra = join(tmp, "extra.gguf");
  rewriteStories(extra, (_kvs, ts) => ts.push({ name: "rope_freqs.weight", dims: [4], type: 0, bytes: new Uint8Array(16) }));
  assert.throws(() => loadGgufModel(extra), named(extra, /rope_freqs\.weight/));

  const quant = join(tmp, "quant.gguf");
  rewriteStories(quant, (_kvs, ts) => {
    const t = ts.find((x) => x.name === "blk.0.attn_v.weight")!;
    t.type = 8; // Q8_0: 32 values per 34-byte block
    t.bytes = new Uint8Array((64 * 32 * 34) / 32);
  });
  assert.equal(readGgufHeader(quant).tensors.find((t) => t.name === "blk.0.attn_v.weight")?.typeName, "Q8_0");
  assert.throws(() => loadGgufModel(quant), named(quant, /tensor "blk\.0\.attn_v\.weight" has type Q8_0/));

  const arch = join(tmp, "arch.gguf");
  rewriteStories(arch, (kvs) => {
    kvs.find((k) => k.key === "general.architecture")!.value = "qwen2";
  });
  assert.throws(() => loadGgufModel(arch), named(arch, /general\.architecture is "qwen2"; only "llama" is supported/));

  const heads = join(tmp, "heads.gguf");
  rewriteStories(heads, (kvs) => {
    kvs.find((k) => k.key === "llama.attention.head_count_kv")!.value = 3;
  });
  assert.throws(() => loadGgufModel(heads), named(heads, /invalid GGUF metadata: nKvHeads: nKvHeads \(3\) must divide nHeads \(8\)/));
});
