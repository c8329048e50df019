/**
 * GGUF reader (format versions 2 and 3, little-endian) and a loader for llama.cpp "llama" models.
 *
 * Layout (all little-endian):
 *   magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
 *   kv_count × { string key | u32 value_type | value }
 *   tensor_count × { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
 *   padding to `general.alignment` (default 32) | tensor data (offsets relative to here)
 * A string is u64 length + UTF-8 bytes; an array is u32 element type + u64 count + elements.
 * Tensor dims are listed fastest-varying first (ne[0] is the row length), so GGUF dims [C, V]
 * describe the row-major (PyTorch/HF) shape [V, C] with identical bytes.
 *
 * The header is read incrementally and each tensor is read on demand with positioned reads, so
 * files larger than a Node Buffer can still be inspected.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { LlamaConfig } from "../model/config.js";
import { llamaConfig } from "../model/config.js";
import type { LlamaParams } from "../model/params.js";
import { fromNamed } from "../model/params.js";
import { SentencePieceTokenizer } from "../tokenizer/sentencepiece.js";

export class GgufError extends Error {
  override name = "GgufError";
}

/** GGUF metadata value types. */
export enum GgufType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/**
 * A metadata value. Scalars: integers and floats up to 32 bits → number; 64-bit integers → number
 * when exactly representable, else bigint; bool → boolean; string → string.
 * Arrays of numbers come back as the matching typed array (Uint8Array … Float64Array,
 * BigInt64Array/BigUint64Array for 64-bit integers); arrays of bools/strings/arrays as JS arrays.
 */
export type GgufValue =
  | number
  | bigint
  | boolean
  | string
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | boolean[]
  | string[]
  | GgufValue[];

export interface GgufKvType {
  type: GgufType;
  /** Element type when `type` is ARRAY. */
  elemType?: GgufType;
}

/** ggml tensor types: name, elements per block, bytes per block. */
const GGML_TYPES: Record<number, { name: string; block: number; bytes: number }> = {
  0: { name: "F32", block: 1, bytes: 4 },
  1: { name: "F16", block: 1, bytes: 2 },
  2: { name: "Q4_0", block: 32, bytes: 18 },
  3: { name: "Q4_1", block: 32, bytes: 20 },
  6: { name: "Q5_0", block: 32, bytes: 22 },
  7: { name: "Q5_1", block: 32, bytes: 24 },
  8: { name: "Q8_0", block: 32, bytes: 34 },
  9: { name: "Q8_1", block: 32, bytes: 36 },
  10: { name: "Q2_K", block: 256, bytes: 84 },
  11: { name: "Q3_K", block: 256, bytes: 110 },
  12: { name: "Q4_K", block: 256, bytes: 144 },
  13: { name: "Q5_K", block: 256, bytes: 176 },
  14: { name: "Q6_K", block: 256, bytes: 210 },
  15: { name: "Q8_K", block: 256, bytes: 292 },
  16: { name: "IQ2_XXS", block: 256, bytes: 66 },
  17: { name: "IQ2_XS", block: 256, bytes: 74 },
  18: { name: "IQ3_XXS", block: 256, bytes: 98 },
  19: { name: "IQ1_S", block: 256, bytes: 50 },
  20: { name: "IQ4_NL", block: 32, bytes: 18 },
  21: { name: "IQ3_S", block: 256, bytes: 110 },
  22: { name: "IQ2_S", block: 256, bytes: 82 },
  23: { name: "IQ4_XS", block: 256, bytes: 136 },
  24: { name: "I8", block: 1, bytes: 1 },
  25: { name: "I16", block: 1, bytes: 2 },
  26: { name: "I32", block: 1, bytes: 4 },
  27: { name: "I64", block: 1, bytes: 8 },
  28: { name: "F64", block: 1, bytes: 8 },
  29: { name: "IQ1_M", block: 256, bytes: 56 },
  30: { name: "BF16", block: 1, bytes: 2 },
  34: { name: "TQ1_0", block: 256, bytes: 54 },
  35: { name: "TQ2_0", block: 256, bytes: 66 },
  39: { name: "MXFP4", block: 32, bytes: 17 },
};

export const GGML_TYPE_F32 = 0;
export const GGML_TYPE_F16 = 1;
export const GGML_TYPE_BF16 = 30;

export function ggmlTypeName(type: number): string {
  return GGML_TYPES[type]?.name ?? `unknown(${type})`;
}

export interface GgufTensorInfo {
  name: string;
  /** GGUF order: ne[0] (fastest-varying, the row length) first. */
  dims: number[];
  /** Row-major (PyTorch/HF) shape: `dims` reversed. */
  shape: number[];
  /** ggml type id (0 F32, 1 F16, 30 BF16, …). */
  type: number;
  typeName: string;
  nElements: number;
  nBytes: number;
  /** Offset relative to the start of the data section, as stored in the file. */
  offset: number;
  /** Absolute byte position in the file. */
  fileOffset: number;
}

export interface GgufHeader {
  path: string;
  version: number;
  fileSize: number;
  alignment: number;
  /** Absolute byte position where tensor data starts. */
  dataOffset: number;
  metadata: Record<string, GgufValue>;
  kvTypes: Record<string, GgufKvType>;
  tensors: GgufTensorInfo[];
}

const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
const MAX_DIMS = 4; // GGML_MAX_DIMS

const SCALAR_SIZE: Partial<Record<GgufType, number>> = {
  [GgufType.UINT8]: 1,
  [GgufType.INT8]: 1,
  [GgufType.UINT16]: 2,
  [GgufType.INT16]: 2,
  [GgufType.UINT32]: 4,
  [GgufType.INT32]: 4,
  [GgufType.FLOAT32]: 4,
  [GgufType.BOOL]: 1,
  [GgufType.UINT64]: 8,
  [GgufType.INT64]: 8,
  [GgufType.FLOAT64]: 8,
};

/** Sequential reader over a file descriptor with a growing window; every read is bounds-checked. */
class HeaderReader {
  private buf: Buffer = Buffer.alloc(0);
  private bufStart = 0; // file position of buf[0]
  pos = 0; // absolute file position
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });

  constructor(
    private readonly fd: number,
    readonly fileSize: number,
    private readonly path: string,
  ) {}

  fail(what: string): never {
    throw new GgufError(`${this.path}: ${what}`);
  }

  /** Make bytes [pos, pos+n) available; returns the index of pos in buf. */
  private ensure(n: number, what: string): number {
    if (this.pos + n > this.fileSize) {
      this.fail(`truncated file: ${what} needs ${n} bytes at offset ${this.pos}, file has ${this.fileSize} bytes`);
    }
    const rel = this.pos - this.bufStart;
    if (rel + n <= this.buf.length) return rel;
    const want = Math.min(Math.max(n, 1 << 20, this.buf.length * 2), this.fileSize - this.pos);
    const nb = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const r = readSync(this.fd, nb, got, want - got, this.pos + got);
      if (r <= 0) this.fail(`read error: got ${got} of ${want} bytes at offset ${this.pos}`);
      got += r;
    }
    this.buf = nb;
    this.bufStart = this.pos;
    return 0;
  }

  u8(what: string): number {
    const i = this.ensure(1, what);
    this.pos += 1;
    return this.buf[i];
  }
  u32(what: string): number {
    const i = this.ensure(4, what);
    this.pos += 4;
    return this.buf.readUInt32LE(i);
  }
  /** u64 as a number; fails (naming `what`) when above 2^53. */
  u64(what: string): number {
    const i = this.ensure(8, what);
    this.pos += 8;
    const v = this.buf.readBigUInt64LE(i);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} is implausibly large (${v})`);
    return Number(v);
  }
  string(what: string): string {
    const n = this.u64(`${what} length`);
    const i = this.ensure(n, what);
    this.pos += n;
    try {
      return this.decoder.decode(this.buf.subarray(i, i + n));
    } catch {
      this.fail(`${what} at offset ${this.pos - n} is not valid UTF-8`);
    }
  }

  scalar(type: GgufType, what: string): GgufValue {
    const size = SCALAR_SIZE[type];
    if (size === undefined) this.fail(`${what}: not a scalar type (${type})`);
    const i = this.ensure(size, what);
    this.pos += size;
    const b = this.buf;
    switch (type) {
      case GgufType.UINT8:
        return b.readUInt8(i);
      case GgufType.INT8:
        return b.readInt8(i);
      case GgufType.UINT16:
        return b.readUInt16LE(i);
      case GgufType.INT16:
        return b.readInt16LE(i);
      case GgufType.UINT32:
        return b.readUInt32LE(i);
      case GgufType.INT32:
        return b.readInt32LE(i);
      case GgufType.FLOAT32:
        return b.readFloatLE(i);
      case GgufType.FLOAT64:
        return b.readDoubleLE(i);
      case GgufType.BOOL: {
        const v = b.readUInt8(i);
        if (v > 1) this.fail(`${what}: invalid bool byte ${v}`);
        return v === 1;
      }
      case GgufType.UINT64:
        return safeNumber(b.readBigUInt64LE(i));
      case GgufType.INT64:
        return safeNumber(b.readBigInt64LE(i));
      default:
        this.fail(`${what}: not a scalar type (${type})`);
    }
  }

  /** A numeric array as a typed array (copied, so alignment does not matter). */
  numericArray(type: GgufType, count: number, what: string): GgufValue {
    const size = SCALAR_SIZE[type] as number;
    const nBytes = count * size;
    const i = this.ensure(nBytes, what);
    this.pos += nBytes;
    const bytes = new Uint8Array(nBytes);
    bytes.set(this.buf.subarray(i, i + nBytes));
    const ab = bytes.buffer;
    switch (type) {
      case GgufType.UINT8:
        return bytes;
      case GgufType.INT8:
        return new Int8Array(ab);
      case GgufType.UINT16:
        return new Uint16Array(ab);
      case GgufType.INT16:
        return new Int16Array(ab);
      case GgufType.UINT32:
        return new Uint32Array(ab);
      case GgufType.INT32:
        return new Int32Array(ab);
      case GgufType.FLOAT32:
        return new Float32Array(ab);
      case GgufType.FLOAT64:
        return new Float64Array(ab);
      case GgufType.UINT64:
        return new BigUint64Array(ab);
      case GgufType.INT64:
        return new BigInt64Array(ab);
      default:
        this.fail(`${what}: not a numeric type (${type})`);
    }
  }

  value(type: GgufType, what: string, depth = 0): { value: GgufValue; elemType?: GgufType } {
    if (type === GgufType.STRING) return { value: this.string(what) };
    if (type === GgufType.ARRAY) {
      if (depth > 8) this.fail(`${what}: arrays nested too deeply`);
      const elemType = this.u32(`${what} array type`) as GgufType;
      const count = this.u64(`${what} array length`);
      const remaining = this.fileSize - this.pos;
      const minElem = elemType === GgufType.STRING || elemType === GgufType.ARRAY ? 8 : (SCALAR_SIZE[elemType] ?? 0);
      if (!(elemType in GgufType) || typeof GgufType[elemType] !== "string") {
        this.fail(`${what}: unknown array element type ${elemType}`);
      }
      if (count * minElem > remaining) {
        this.fail(`truncated file: ${what} claims ${count} elements but only ${remaining} bytes remain`);
      }
      if (elemType === GgufType.BOOL) {
        const out: boolean[] = new Array(count);
        for (let k = 0; k < count; k++) out[k] = this.scalar(GgufType.BOOL, what) as boolean;
        return { value: out, elemType };
      }
      if (elemType === GgufType.STRING) {
        const out: string[] = new Array(count);
        for (let k = 0; k < count; k++) out[k] = this.string(`${what}[${k}]`);
        return { value: out, elemType };
      }
      if (elemType === GgufType.ARRAY) {
        const out: GgufValue[] = new Array(count);
        for (let k = 0; k < count; k++) out[k] = this.value(GgufType.ARRAY, `${what}[${k}]`, depth + 1).value;
        return { value: out, elemType };
      }
      return { value: this.numericArray(elemType, count, what), elemType };
    }
    if (SCALAR_SIZE[type] === undefined) this.fail(`${what}: unknown value type ${type}`);
    return { value: this.scalar(type, what) };
  }
}

function safeNumber(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function withFd<T>(path: string, f: (fd: number, size: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new GgufError(`${path}: cannot open: ${(e as Error).message}`);
  }
  try {
    return f(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

/** Read and validate the header (metadata and tensor infos) of a GGUF file; no tensor data is read. */
export function readGgufHeader(path: string): GgufHeader {
  return withFd(path, (fd, fileSize) => parseHeader(fd, fileSize, path));
}

function parseHeader(fd: number, fileSize: number, path: string): GgufHeader {
  const r = new HeaderReader(fd, fileSize, path);
  if (fileSize < 4) r.fail(`not a GGUF file (only ${fileSize} bytes)`);
  const magic = r.u32("magic");
  if (magic !== GGUF_MAGIC) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(magic);
    r.fail(`not a GGUF file: magic is ${JSON.stringify(b.toString("latin1"))}, expected "GGUF"`);
  }
  const version = r.u32("version");
  if (version === 1) r.fail("GGUF version 1 is not supported (re-convert the model with a current llama.cpp)");
  if (version !== 2 && version !== 3) {
    if ((version & 0xffff) === 0 && version !== 0) r.fail(`big-endian GGUF files are not supported (version field ${version})`);
    r.fail(`unsupported GGUF version ${version} (supported: 2, 3)`);
  }
  const tensorCount = r.u64("tensor count");
  const kvCount = r.u64("metadata key/value count");
  // Each kv needs at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at least 8+4+4+8.
  if (kvCount * 13 > fileSize) r.fail(`corrupt header: ${kvCount} metadata entries cannot fit in ${fileSize} bytes`);
  if (tensorCount * 24 > fileSize) r.fail(`corrupt header: ${tensorCount} tensors cannot fit in ${fileSize} bytes`);

  const metadata: Record<string, GgufValue> = Object.create(null);
  const kvTypes: Record<string, GgufKvType> = Object.create(null);
  for (let k = 0; k < kvCount; k++) {
    const key = r.string(`metadata key #${k}`);
    if (key in metadata) r.fail(`duplicate metadata key "${key}"`);
    const type = r.u32(`type of metadata "${key}"`) as GgufType;
    const { value, elemType } = r.value(type, `metadata "${key}"`);
    metadata[key] = value;
    kvTypes[key] = elemType === undefined ? { type } : { type, elemType };
  }

  let alignment = 32;
  if ("general.alignment" in metadata) {
    const a = metadata["general.alignment"];
    if (typeof a !== "number" || !Number.isInteger(a) || a <= 0 || (a & (a - 1)) !== 0) {
      r.fail(`general.alignment must be a positive power of two, got ${String(a)}`);
    }
    alignment = a as number;
  }

  const tensors: GgufTensorInfo[] = [];
  const seen = new Set<string>();
  for (let t = 0; t < tensorCount; t++) {
    const name = r.string(`name of tensor #${t}`);
    if (seen.has(name)) r.fail(`duplicate tensor "${name}"`);
    seen.add(name);
    const nDims = r.u32(`dimension count of tensor "${name}"`);
    if (nDims < 1 || nDims > MAX_DIMS) r.fail(`tensor "${name}" has ${nDims} dimensions (expected 1..${MAX_DIMS})`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(r.u64(`dimension ${d} of tensor "${name}"`));
    const type = r.u32(`type of tensor "${name}"`);
    const offset = r.u64(`offset of tensor "${name}"`);
    const tt = GGML_TYPES[type];
    if (!tt) r.fail(`tensor "${name}" has unknown ggml type ${type}`);
    let nElements = 1;
    for (const d of dims) {
      nElements *= d;
      if (!Number.isSafeInteger(nElements)) r.fail(`tensor "${name}" dimensions [${dims.join(", ")}] overflow`);
    }
    if (dims[0] % tt.block !== 0) {
      r.fail(`tensor "${name}": row length ${dims[0]} is not a multiple of the ${tt.name} block size ${tt.block}`);
    }
    const nBytes = (nElements / tt.block) * tt.bytes;
    if (offset % alignment !== 0) r.fail(`tensor "${name}" offset ${offset} is not a multiple of the alignment ${alignment}`);
    tensors.push({
      name,
      dims,
      shape: [...dims].reverse(),
      type,
      typeName: tt.name,
      nElements,
      nBytes,
      offset,
      fileOffset: 0,
    });
  }
  const dataOffset = Math.ceil(r.pos / alignment) * alignment;
  if (tensorCount > 0 && dataOffset > fileSize) {
    r.fail(`truncated file: tensor data should start at offset ${dataOffset}, file has ${fileSize} bytes`);
  }
  for (const t of tensors) {
    t.fileOffset = dataOffset + t.offset;
    if (t.fileOffset + t.nBytes > fileSize) {
      r.fail(
        `truncated file: tensor "${t.name}" (${t.typeName} [${t.dims.join(", ")}], ${t.nBytes} bytes at offset ${t.fileOffset}) ` +
          `extends past the end of the file (${fileSize} bytes)`,
      );
    }
  }
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let k = 1; k < byOffset.length; k++) {
    const prev = byOffset[k - 1];
    if (prev.offset + prev.nBytes > byOffset[k].offset) {
      r.fail(`corrupt header: tensors "${prev.name}" and "${byOffset[k].name}" overlap`);
    }
  }
  return { path, version, fileSize, alignment, dataOffset, metadata, kvTypes, tensors };
}

/** f16 bits → float. */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

let halfTable: Float32Array | undefined;
function f16Table(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

function readBytes(fd: number, into: Uint8Array, position: number, path: string, name: string): void {
  let got = 0;
  while (got < into.length) {
    const n = readSync(fd, into, got, into.length - got, position + got);
    if (n <= 0) throw new GgufError(`${path}: tensor "${name}": read error after ${got} of ${into.length} bytes`);
    got += n;
  }
}

function readTensorFd(fd: number, h: GgufHeader, t: GgufTensorInfo): Float32Array {
  const out = new Float32Array(t.nElements);
  if (t.type === GGML_TYPE_F32) {
    readBytes(fd, new Uint8Array(out.buffer), t.fileOffset, h.path, t.name);
    return out;
  }
  if (t.type === GGML_TYPE_F16 || t.type === GGML_TYPE_BF16) {
    const raw = new Uint16Array(t.nElements);
    readBytes(fd, new Uint8Array(raw.buffer), t.fileOffset, h.path, t.name);
    if (t.type === GGML_TYPE_F16) {
      const table = f16Table();
      for (let i = 0; i < raw.length; i++) out[i] = table[raw[i]];
    } else {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < raw.length; i++) u[i] = raw[i] << 16;
    }
    return out;
  }
  throw new GgufError(
    `${h.path}: tensor "${t.name}" has type ${t.typeName}; only F32, F16 and BF16 tensors can be loaded ` +
      `(quantised models are not supported — convert with --outtype f32/f16/bf16)`,
  );
}

/** Read one tensor's data as float32 (F32, F16, BF16; other types are rejected with an error naming the tensor). */
export function readGgufTensor(h: GgufHeader, tensor: string | GgufTensorInfo): Float32Array {
  const t = typeof tensor === "string" ? h.tensors.find((x) => x.name === tensor) : tensor;
  if (!t) throw new GgufError(`${h.path}: no tensor named "${String(tensor)}"`);
  return withFd(h.path, (fd, size) => {
    if (size !== h.fileSize) throw new GgufError(`${h.path}: file changed size since its header was read`);
    return readTensorFd(fd, h, t);
  });
}

/** Header plus every tensor as float32, keyed by GGUF name (shape in row-major/HF order). */
export function readGguf(path: string): { header: GgufHeader; tensors: Map<string, { shape: number[]; data: Float32Array }> } {
  return withFd(path, (fd, fileSize) => {
    const header = parseHeader(fd, fileSize, path);
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const t of header.tensors) tensors.set(t.name, { shape: t.shape, data: readTensorFd(fd, header, t) });
    return { header, tensors };
  });
}

// ---------------------------------------------------------------------------------------------
// q/k RoPE permutation
// ---------------------------------------------------------------------------------------------

/**
 * llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel.permute) reorders the rows of q_proj and
 * k_proj from Hugging Face's rotate-half RoPE layout to the interleaved (GPT-J style) layout that
 * ggml's rope uses:
 *
 *   w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols)
 *
 * i.e. within each head of width hd (half = hd/2): gguf row h·hd + 2j + i = hf row h·hd + i·half + j
 * for i ∈ {0,1}, j ∈ [0, half). This is that function (HF → GGUF). `cols` is the row length
 * (1 for a bias vector).
 */
export function permuteQK(w: Float32Array, nHeads: number, cols: number): Float32Array {
  return qkReorder(w, nHeads, cols, true);
}

/** Inverse of `permuteQK` (GGUF interleaved → HF rotate-half): hf row h·hd + i·half + j = gguf row h·hd + 2j + i. */
export function unpermuteQK(w: Float32Array, nHeads: number, cols: number): Float32Array {
  return qkReorder(w, nHeads, cols, false);
}

function qkReorder(w: Float32Array, nHeads: number, cols: number, toGguf: boolean): Float32Array {
  const rows = w.length / cols;
  if (!Number.isInteger(rows) || rows % nHeads !== 0 || (rows / nHeads) % 2 !== 0) {
    throw new Error(`q/k permutation: ${w.length} values with row length ${cols} cannot be split into ${nHeads} heads of even width`);
  }
  const hd = rows / nHeads;
  const half = hd / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < half; j++) {
        const hfRow = h * hd + i * half + j;
        const ggRow = h * hd + 2 * j + i;
        const [src, dst] = toGguf ? [hfRow, ggRow] : [ggRow, hfRow];
        out.set(w.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// llama model loader
// ---------------------------------------------------------------------------------------------

export interface GgufModel {
  config: LlamaConfig;
  /** HF layout: q/k rows un-permuted to rotate-half order; linear weights (out, in). */
  params: LlamaParams;
  tokenizer: SentencePieceTokenizer;
  metadata: Record<string, GgufValue>;
  header: GgufHeader;
}

const LAYER_MAP: [string, string][] = [
  ["attn_norm.weight", "input_layernorm.weight"],
  ["attn_q.weight", "self_attn.q_proj.weight"],
  ["attn_k.weight", "self_attn.k_proj.weight"],
  ["attn_v.weight", "self_attn.v_proj.weight"],
  ["attn_output.weight", "self_attn.o_proj.weight"],
  ["attn_q.bias", "self_attn.q_proj.bias"],
  ["attn_k.bias", "self_attn.k_proj.bias"],
  ["attn_v.bias", "self_attn.v_proj.bias"],
  ["ffn_norm.weight", "post_attention_layernorm.weight"],
  ["ffn_gate.weight", "mlp.gate_proj.weight"],
  ["ffn_up.weight", "mlp.up_proj.weight"],
  ["ffn_down.weight", "mlp.down_proj.weight"],
];

/** llama.cpp tensor name → HF name (undefined when it is not a llama tensor we know). */
export function ggufToHfName(name: string): string | undefined {
  if (name === "token_embd.weight") return "model.embed_tokens.weight";
  if (name === "output_norm.weight") return "model.norm.weight";
  if (name === "output.weight") return "lm_head.weight";
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  if (!m) return undefined;
  const hit = LAYER_MAP.find(([g]) => g === m[2]);
  return hit ? `model.layers.${m[1]}.${hit[1]}` : undefined;
}

function num(h: GgufHeader, key: string, fallback?: number): number {
  const v = h.metadata[key];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new GgufError(`${h.path}: metadata "${key}" is missing`);
  }
  if (typeof v !== "number") throw new GgufError(`${h.path}: metadata "${key}" should be a number, got ${typeof v}`);
  return v;
}

/**
 * Load a llama-architecture GGUF (F32/F16/BF16 tensors) into HF-layout params, a validated config,
 * and the SentencePiece tokenizer stored in its metadata. q/k weights are un-permuted from
 * llama.cpp's interleaved RoPE layout to HF's rotate-half layout.
 */
export function loadGgufModel(path: string): GgufModel {
  return withFd(path, (fd, fileSize) => {
    const h = parseHeader(fd, fileSize, path);
    const { config, tokenizer } = llamaFromMetadata(h);
    const infos = new Map(h.tensors.map((t) => [t.name, t]));

    // Check names before reading any data.
    const unknown = h.tensors
      .map((t) => t.name)
      .filter((name) => {
        const layer = /^blk\.(\d+)\./.exec(name);
        return !ggufToHfName(name) || (layer !== null && Number(layer[1]) >= config.nLayers);
      });
    if (unknown.length > 0) {
      const hint = unknown.includes("rope_freqs.weight")
        ? " (rope_freqs.weight: Llama 3.1-style RoPE frequency scaling is not supported)"
        : "";
      throw new GgufError(
        `${path}: unexpected tensors for a ${config.nLayers}-layer llama model: ${unknown.slice(0, 5).join(", ")}${unknown.length > 5 ? ", …" : ""}${hint}`,
      );
    }

    const named = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, t] of infos) {
      const hf = ggufToHfName(name) as string;
      let data = readTensorFd(fd, h, t);
      const isQ = /\.attn_q\.(weight|bias)$/.test(name);
      const isK = /\.attn_k\.(weight|bias)$/.test(name);
      if (isQ || isK) {
        const heads = isQ ? config.nHeads : config.nKvHeads;
        if (t.shape[0] !== heads * config.headDim || t.shape.length > 2) {
          throw new GgufError(
            `${path}: tensor "${name}" has shape [${t.shape.join(", ")}], expected ${heads * config.headDim} rows (${heads} heads × ${config.headDim})`,
          );
        }
        data = unpermuteQK(data, heads, t.shape.length === 2 ? t.shape[1] : 1);
      }
      named.set(hf, { shape: t.shape, data });
    }
    let params: LlamaParams;
    try {
      params = fromNamed(config, named, path);
    } catch (e) {
      // fromNamed speaks HF names; add the GGUF name so the message points into the file.
      const msg = (e as Error).message;
      const m = /tensor "([^"]+)"/.exec(msg);
      const gg = m ? hfToGgufName(m[1]) : undefined;
      throw new GgufError(gg ? `${msg} (GGUF tensor "${gg}")` : msg);
    }
    return { config, params, tokenizer, metadata: h.metadata, header: h };
  });
}

/** Config and tokenizer of a llama GGUF from its header alone (no tensor data is read). */
export function llamaFromMetadata(h: GgufHeader): { config: LlamaConfig; tokenizer: SentencePieceTokenizer } {
  const path = h.path;
  const md = h.metadata;
  const arch = md["general.architecture"];
  if (arch !== "llama") {
    throw new GgufError(`${path}: general.architecture is ${JSON.stringify(arch)}; only "llama" is supported`);
  }
  if (md["llama.expert_count"] !== undefined && num(h, "llama.expert_count") > 0) {
    throw new GgufError(`${path}: mixture-of-experts llama models are not supported`);
  }
  const scaling = md["llama.rope.scaling.type"];
  if (scaling !== undefined && scaling !== "none") {
    throw new GgufError(`${path}: RoPE scaling "${String(scaling)}" is not supported`);
  }
  let tokenizer: SentencePieceTokenizer;
  try {
    tokenizer = SentencePieceTokenizer.fromGgufMetadata(md, path);
  } catch (e) {
    throw new GgufError((e as Error).message);
  }
  const dim = num(h, "llama.embedding_length");
  const nHeads = num(h, "llama.attention.head_count");
  const nKvHeads = num(h, "llama.attention.head_count_kv", nHeads);
  const headDim = num(h, "llama.attention.key_length", dim / nHeads);
  const valueLength = num(h, "llama.attention.value_length", headDim);
  if (valueLength !== headDim) {
    throw new GgufError(`${path}: attention key_length ${headDim} ≠ value_length ${valueLength} is not supported`);
  }
  const ropeDims = num(h, "llama.rope.dimension_count", headDim);
  if (ropeDims !== headDim) {
    throw new GgufError(`${path}: partial RoPE (rope.dimension_count ${ropeDims} ≠ head dim ${headDim}) is not supported`);
  }
  const vocabSize = tokenizer.vocabSize;
  const declaredVocab = md["llama.vocab_size"];
  if (declaredVocab !== undefined && declaredVocab !== vocabSize) {
    throw new GgufError(`${path}: llama.vocab_size ${String(declaredVocab)} ≠ ${vocabSize} tokens in tokenizer.ggml.tokens`);
  }
  const names = new Set(h.tensors.map((t) => t.name));
  try {
    const config = llamaConfig(
      {
        vocabSize,
        dim,
        nLayers: num(h, "llama.block_count"),
        nHeads,
        nKvHeads,
        headDim,
        hiddenDim: num(h, "llama.feed_forward_length"),
        ropeTheta: num(h, "llama.rope.freq_base", 10000),
        normEps: num(h, "llama.attention.layer_norm_rms_epsilon", 1e-5),
        maxSeqLen: num(h, "llama.context_length", 2048),
        tieEmbeddings: !names.has("output.weight"),
        qkvBias: [...names].some((n) => /\.attn_[qkv]\.bias$/.test(n)),
      },
      "GGUF metadata",
    );
    return { config, tokenizer };
  } catch (e) {
    throw new GgufError(`${path}: ${(e as Error).message}`);
  }
}

/** HF tensor name → llama.cpp name (undefined when it is not a llama tensor we know). */
export function hfToGgufName(hf: string): string | undefined {
  if (hf === "model.embed_tokens.weight") return "token_embd.weight";
  if (hf === "model.norm.weight") return "output_norm.weight";
  if (hf === "lm_head.weight") return "output.weight";
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
  const hit = m && LAYER_MAP.find(([, h]) => h === m[2]);
  return m && hit ? `blk.${m[1]}.${hit[0]}` : undefined;
}
