/**
 * safetensors reader/writer (https://github.com/huggingface/safetensors):
 *
 *   [8 bytes: N, little-endian u64][N bytes: UTF-8 JSON header, may be right-padded with spaces][data]
 *
 * The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets relative to
 * the start of the data section) plus an optional "__metadata__" string→string map. The data section
 * must be covered exactly by the tensors: no overlaps, no holes, no trailing bytes.
 *
 * Every field is validated before use and every problem is a `CheckpointError` naming the file and,
 * where there is one, the tensor. Tensors are returned as Float32Array (F16 and BF16 converted);
 * each tensor owns its own ArrayBuffer (no aliasing of the file buffer or of the caller's bytes).
 */
import { open } from "node:fs/promises";
import { writeFileAtomic } from "./atomic.js";

/** A checkpoint file or folder is malformed or does not match what was expected. */
export class CheckpointError extends Error {
  override name = "CheckpointError";
  /** The file the problem is in, where known. */
  readonly file?: string;
  /** The tensor the problem is about, where there is one. */
  readonly tensor?: string;
  constructor(message: string, where: { file?: string; tensor?: string } = {}) {
    super(message);
    this.file = where.file;
    this.tensor = where.tensor;
  }
}

/** Bits per element of every dtype the format defines (reading is supported for F32, F16, BF16). */
const DTYPE_BITS: Record<string, number> = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  F64: 64,
  I64: 64,
  U64: 64,
  C64: 64,
};

/** Dtypes this module decodes to Float32Array and can write. */
export type FloatDtype = "F32" | "F16" | "BF16";
export const SUPPORTED_DTYPES: readonly FloatDtype[] = ["F32", "F16", "BF16"];

/** Largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** One header entry, validated; `begin`/`end` are byte offsets relative to the data section. */
export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Entries in header order. */
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** Byte offset of the data section in the file (8 + header length). */
  dataStart: number;
  /** Length of the data section in bytes. */
  dataLength: number;
}

export interface SafetensorsTensor {
  shape: number[];
  data: Float32Array;
  /** The dtype stored in the file (the data is always Float32Array). */
  dtype: string;
}

export interface SafetensorsFile {
  /** Tensors in header order. */
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

export interface ReadSafetensorsOptions {
  /** Decode only tensors for which this returns true; the others are still validated but not read. */
  include?: (name: string, entry: SafetensorsEntry) => boolean;
}

/** A tensor to write. `dtype` defaults to F32; F16/BF16 round to nearest even. */
export interface TensorToWrite {
  name: string;
  shape: readonly number[];
  data: Float32Array;
  dtype?: FloatDtype;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new Error("safetensors I/O assumes a little-endian host");
}

// ---------------------------------------------------------------------------------------------
// F16 / BF16 conversion
// ---------------------------------------------------------------------------------------------

let f16Table: Uint32Array | undefined;

/** f32 bit patterns of all 65536 f16 values (built once, 256 KiB). */
function f16ToF32Table(): Uint32Array {
  if (f16Table) return f16Table;
  const t = new Uint32Array(65536);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) {
      t[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, or NaN keeping the payload
    } else if (exp !== 0) {
      t[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    } else {
      f[0] = mant * 2 ** -24; // subnormal (exact in f32) or zero
      t[h] = (sign | u[0]) >>> 0;
    }
  }
  f16Table = t;
  return t;
}

/** Decode f16 bit patterns into `out` (allocated if omitted). Bit-exact, NaN payloads kept. */
export function f16ToF32Array(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const table = f16ToF32Table();
  const n = src.length;
  const o = new Uint32Array(out.buffer, out.byteOffset, n);
  for (let i = 0; i < n; i++) o[i] = table[src[i]];
  return out;
}

/** Decode bf16 bit patterns (the top half of an f32) into `out`. */
export function bf16ToF32Array(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const n = src.length;
  const o = new Uint32Array(out.buffer, out.byteOffset, n);
  for (let i = 0; i < n; i++) o[i] = src[i] << 16;
  return out;
}

/** f32 bit pattern → f16 bit pattern, round to nearest even; overflow → ±inf, NaN stays NaN. */
function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // f16 biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e >= 1) {
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry into the exponent is correct (up to inf)
    return sign | h;
  }
  const shift = 14 - e; // subnormal result: m = full · 2^-shift
  if (shift > 24) return sign;
  const full = mant | 0x800000;
  let m = full >>> shift;
  const rem = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (m & 1) !== 0)) m++;
  return sign | m;
}

/** Encode f32 values as f16 bit patterns (round to nearest even). */
export function f32ToF16Array(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const n = src.length;
  const u = new Uint32Array(src.buffer, src.byteOffset, n);
  for (let i = 0; i < n; i++) out[i] = f32BitsToF16(u[i]);
  return out;
}

/** Encode f32 values as bf16 bit patterns (round to nearest even; NaN stays a quiet NaN). */
export function f32ToBf16Array(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const n = src.length;
  const u = new Uint32Array(src.buffer, src.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const x = u[i];
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) out[i] = (x >>> 16) | 0x40;
    else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Header validation
// ---------------------------------------------------------------------------------------------

const isWs = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/**
 * Top-level keys of a valid JSON object text in document order, and the first one that occurs twice
 * (JSON.parse keeps the last silently, and Object.entries puts integer-like keys first).
 */
function topLevelKeys(text: string): { keys: string[]; duplicate?: string } {
  const keys: string[] = [];
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22) {
      const start = i++;
      while (i < text.length) {
        const c = text.charCodeAt(i);
        if (c === 0x5c) i += 2;
        else if (c === 0x22) break;
        else i++;
      }
      if (depth === 1) {
        let j = i + 1;
        while (j < text.length && isWs(text.charCodeAt(j))) j++;
        if (text.charCodeAt(j) === 0x3a) {
          const key = JSON.parse(text.slice(start, i + 1)) as string;
          if (seen.has(key)) return { keys, duplicate: key };
          seen.add(key);
          keys.push(key);
        }
      }
    } else if (ch === 0x7b || ch === 0x5b) depth++;
    else if (ch === 0x7d || ch === 0x5d) depth--;
  }
  return { keys };
}

const isNonNegInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** Validate the 8-byte prefix against the file size; returns the header length. */
function checkPrefix(prefix: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < 8) {
    throw new CheckpointError(
      `${source}: file is ${fileSize} bytes, shorter than the 8-byte header-length prefix (not a safetensors file, or truncated)`,
      {
        file: source,
      },
    );
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new CheckpointError(`${source}: header length ${n} is larger than the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`, {
      file: source,
    });
  }
  const len = Number(n);
  if (len > fileSize - 8) {
    throw new CheckpointError(`${source}: header length ${len} is larger than the file (${fileSize} bytes; truncated?)`, { file: source });
  }
  if (len < 2) throw new CheckpointError(`${source}: header length ${len} is too small for a JSON object`, { file: source });
  return len;
}

/** Parse and validate the JSON header against a data section of `dataLength` bytes. */
function parseHeaderBytes(header: Uint8Array, dataStart: number, dataLength: number, source: string): SafetensorsHeader {
  const fail = (msg: string, tensor?: string): never => {
    throw new CheckpointError(tensor === undefined ? `${source}: ${msg}` : `${source}: tensor "${tensor}": ${msg}`, {
      file: source,
      tensor,
    });
  };
  if (header[0] !== 0x7b) fail(`header does not start with "{" (not a safetensors file?)`);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(header);
  } catch {
    return fail("header is not valid UTF-8");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return fail("header is not a JSON object");
  const { keys, duplicate: dup } = topLevelKeys(text);
  if (dup === "__metadata__") fail(`"__metadata__" appears twice in the header`);
  if (dup !== undefined) fail("name appears twice in the header", dup);
  const obj = json as Record<string, unknown>;

  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const name of keys) {
    const raw = obj[name];
    if (name === "__metadata__") {
      if (raw === null) continue;
      if (typeof raw !== "object" || Array.isArray(raw)) fail(`"__metadata__" must be an object of strings`);
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`"__metadata__" value for "${k}" must be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (name.length === 0) fail("empty tensor name", name);
    if (typeof raw !== "object" || raw === null || Array.isArray(raw))
      fail("entry must be an object with dtype, shape and data_offsets", name);
    const info = raw as Record<string, unknown>;
    const { dtype, shape, data_offsets: offs } = info;
    if (typeof dtype !== "string") fail(`dtype must be a string, got ${JSON.stringify(dtype)}`, name);
    const bits = DTYPE_BITS[dtype as string];
    if (bits === undefined) fail(`unknown dtype ${JSON.stringify(dtype)}`, name);
    if (!Array.isArray(shape) || !shape.every(isNonNegInt))
      fail(`shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`, name);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isNonNegInt)) {
      fail(`data_offsets must be [begin, end] of non-negative integers, got ${JSON.stringify(offs)}`, name);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end) fail(`data_offsets [${begin}, ${end}] has begin > end`, name);
    let count = 1;
    for (const d of shape as number[]) count *= d;
    const bitsTotal = count * bits;
    if (!Number.isSafeInteger(bitsTotal) || bitsTotal % 8 !== 0)
      fail(`shape [${(shape as number[]).join(", ")}] gives an invalid byte size for ${dtype}`, name);
    const want = bitsTotal / 8;
    if (end - begin !== want) {
      fail(
        `byte size ${end - begin} (data_offsets [${begin}, ${end}]) does not match shape [${(shape as number[]).join(", ")}] × ${dtype} = ${want} bytes`,
        name,
      );
    }
    if (end > dataLength) {
      fail(`data_offsets [${begin}, ${end}] lie outside the ${dataLength}-byte data section (file truncated?)`, name);
    }
    entries.push({ name, dtype: dtype as string, shape: shape as number[], begin, end });
  }

  // The data section must be covered exactly: sorted by offset, each tensor starts where the previous ended.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: SafetensorsEntry | undefined;
  for (const e of sorted) {
    if (e.begin < pos) fail(`data_offsets [${e.begin}, ${e.end}] overlap tensor "${prev?.name}" [${prev?.begin}, ${prev?.end}]`, e.name);
    if (e.begin > pos) {
      fail(`${e.begin - pos} unused bytes before it (data section bytes [${pos}, ${e.begin}) belong to no tensor)`, e.name);
    }
    pos = e.end;
    prev = e;
  }
  if (pos < dataLength) {
    const msg = `${dataLength - pos} unused bytes at the end of the data section (bytes [${pos}, ${dataLength}) belong to no tensor)`;
    if (prev) fail(`${msg}; last tensor is "${prev.name}"`);
    else fail(msg);
  }
  return { entries, metadata, dataStart, dataLength };
}

/** Validate the header of an in-memory safetensors file. */
export function parseSafetensorsHeader(bytes: Uint8Array, source: string): SafetensorsHeader {
  const len = checkPrefix(bytes, bytes.byteLength, source);
  return parseHeaderBytes(bytes.subarray(8, 8 + len), 8 + len, bytes.byteLength - 8 - len, source);
}

function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function unsupported(e: SafetensorsEntry, source: string): never {
  throw new CheckpointError(`${source}: tensor "${e.name}": unsupported dtype ${e.dtype} (srlm reads ${SUPPORTED_DTYPES.join(", ")})`, {
    file: source,
    tensor: e.name,
  });
}

/** Decode one tensor's bytes (any alignment) into a fresh Float32Array. */
function decode(e: SafetensorsEntry, bytes: Uint8Array, source: string): Float32Array {
  const n = numelOf(e.shape);
  const out = new Float32Array(n);
  if (e.dtype === "F32") {
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  if (e.dtype !== "F16" && e.dtype !== "BF16") unsupported(e, source);
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  const u16 = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
  return e.dtype === "F16" ? f16ToF32Array(u16, out) : bf16ToF32Array(u16, out);
}

/** Parse a whole safetensors file held in memory (`source` names it in errors). Copies the data. */
export function parseSafetensors(bytes: Uint8Array, source: string, opts: ReadSafetensorsOptions = {}): SafetensorsFile {
  assertLittleEndian();
  const h = parseSafetensorsHeader(bytes, source);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of h.entries) {
    if (opts.include && !opts.include(e.name, e)) continue;
    const data = decode(e, bytes.subarray(h.dataStart + e.begin, h.dataStart + e.end), source);
    tensors.set(e.name, { shape: e.shape, data, dtype: e.dtype });
  }
  return { tensors, metadata: h.metadata };
}

type FileHandle = Awaited<ReturnType<typeof open>>;

async function readFully(fh: FileHandle, buf: Uint8Array, position: number, source: string): Promise<void> {
  let off = 0;
  while (off < buf.byteLength) {
    const { bytesRead } = await fh.read(buf, off, buf.byteLength - off, position + off);
    if (bytesRead === 0) {
      throw new CheckpointError(`${source}: file ended at byte ${position + off} while reading (truncated or changed while reading?)`, {
        file: source,
      });
    }
    off += bytesRead;
  }
}

async function readHeaderFrom(fh: FileHandle, path: string): Promise<SafetensorsHeader> {
  const size = (await fh.stat()).size;
  const prefix = new Uint8Array(8);
  if (size >= 8) await readFully(fh, prefix, 0, path);
  const len = checkPrefix(prefix, size, path);
  const header = new Uint8Array(len);
  await readFully(fh, header, 8, path);
  return parseHeaderBytes(header, 8 + len, size - 8 - len, path);
}

async function openForRead(path: string): Promise<FileHandle> {
  try {
    return await open(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(`${path}: cannot open (${code === "ENOENT" ? "file not found" : (e as Error).message})`, { file: path });
  }
}

/** Read and validate only the header of a safetensors file. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const fh = await openForRead(path);
  try {
    return await readHeaderFrom(fh, path);
  } finally {
    await fh.close();
  }
}

/**
 * Read a safetensors file. The header is fully validated before any tensor data is read; F32 data is
 * read straight into each tensor's own buffer, F16/BF16 through one scratch buffer.
 */
export async function readSafetensors(path: string, opts: ReadSafetensorsOptions = {}): Promise<SafetensorsFile> {
  assertLittleEndian();
  const fh = await openForRead(path);
  try {
    const h = await readHeaderFrom(fh, path);
    const wanted = h.entries.filter((e) => !opts.include || opts.include(e.name, e));
    for (const e of wanted) if (!SUPPORTED_DTYPES.includes(e.dtype as FloatDtype)) unsupported(e, path);
    let scratch = new Uint8Array(0);
    const decoded = new Map<string, Float32Array>();
    for (const e of [...wanted].sort((a, b) => a.begin - b.begin)) {
      const nbytes = e.end - e.begin;
      if (e.dtype === "F32") {
        const out = new Float32Array(nbytes / 4);
        await readFully(fh, new Uint8Array(out.buffer), h.dataStart + e.begin, path);
        decoded.set(e.name, out);
      } else {
        if (scratch.byteLength < nbytes) scratch = new Uint8Array(Math.max(nbytes, scratch.byteLength * 2));
        const buf = scratch.subarray(0, nbytes);
        await readFully(fh, buf, h.dataStart + e.begin, path);
        decoded.set(e.name, decode(e, buf, path));
      }
    }
    const tensors = new Map<string, SafetensorsTensor>();
    for (const e of wanted) tensors.set(e.name, { shape: e.shape, data: decoded.get(e.name) as Float32Array, dtype: e.dtype });
    return { tensors, metadata: h.metadata };
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

const DTYPE_BYTES: Record<FloatDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** Validate and lay out tensors; returns the chunks of the file (header, then each tensor's bytes). */
function encodeChunks(tensors: readonly TensorToWrite[], metadata: Record<string, string> | undefined, source: string): Uint8Array[] {
  assertLittleEndian();
  const fail = (msg: string, tensor?: string): never => {
    throw new CheckpointError(tensor === undefined ? `${source}: ${msg}` : `${source}: tensor "${tensor}": ${msg}`, {
      file: source,
      tensor,
    });
  };
  const seen = new Set<string>();
  for (const t of tensors) {
    if (typeof t.name !== "string" || t.name.length === 0) fail("tensor name must be a non-empty string");
    if (t.name === "__metadata__") fail(`"__metadata__" is reserved`, t.name);
    if (seen.has(t.name)) fail("name given twice", t.name);
    seen.add(t.name);
    const dtype = t.dtype ?? "F32";
    if (!SUPPORTED_DTYPES.includes(dtype))
      fail(`cannot write dtype ${JSON.stringify(dtype)} (supported: ${SUPPORTED_DTYPES.join(", ")})`, t.name);
    if (!Array.isArray(t.shape) || !t.shape.every(isNonNegInt))
      fail(`shape must be an array of non-negative integers, got ${JSON.stringify(t.shape)}`, t.name);
    if (!(t.data instanceof Float32Array)) fail("data must be a Float32Array", t.name);
    const n = numelOf(t.shape);
    if (t.data.length !== n) fail(`data has ${t.data.length} elements, shape [${t.shape.join(", ")}] needs ${n}`, t.name);
  }
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== "string") fail(`metadata value for "${k}" must be a string`);
  }
  // Wider dtypes first so every tensor stays aligned to its element size (data section starts 8-aligned).
  const order = tensors
    .map((t, i) => ({ t, i, size: DTYPE_BYTES[t.dtype ?? "F32"] }))
    .sort((a, b) => b.size - a.size || a.i - b.i)
    .map((x) => x.t);
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  const body: Uint8Array[] = [];
  let offset = 0;
  for (const t of order) {
    const dtype = t.dtype ?? "F32";
    const nbytes = t.data.length * DTYPE_BYTES[dtype];
    parts.push(`${JSON.stringify(t.name)}:${JSON.stringify({ dtype, shape: [...t.shape], data_offsets: [offset, offset + nbytes] })}`);
    offset += nbytes;
    if (dtype === "F32") body.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    else {
      const u16 = dtype === "F16" ? f32ToF16Array(t.data) : f32ToBf16Array(t.data);
      body.push(new Uint8Array(u16.buffer, u16.byteOffset, u16.byteLength));
    }
  }
  let header = Buffer.from(`{${parts.join(",")}}`, "utf8");
  const padded = Math.ceil((8 + header.byteLength) / 8) * 8 - 8;
  if (padded > header.byteLength) header = Buffer.concat([header, Buffer.alloc(padded - header.byteLength, 0x20)]);
  if (header.byteLength > MAX_HEADER_BYTES) fail(`header would be ${header.byteLength} bytes, over the ${MAX_HEADER_BYTES}-byte limit`);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(header.byteLength), true);
  return [prefix, header, ...body];
}

/** Encode tensors as a safetensors file in memory. */
export function encodeSafetensors(tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const chunks = encodeChunks(tensors, metadata, "safetensors");
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** Write tensors to `path` atomically (temp file + fsync + rename); F32 data is written without copying. */
export async function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Promise<void> {
  await writeFileAtomic(path, encodeChunks(tensors, metadata, path));
}

/** Bytes a tensor occupies in the data section. */
export function tensorBytes(shape: readonly number[], dtype: FloatDtype = "F32"): number {
  return numelOf(shape) * DTYPE_BYTES[dtype];
}
