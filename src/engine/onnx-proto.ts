/**
 * A minimal hand-written protobuf encoder for the part of ONNX's ModelProto that srlm needs to build
 * one-node (or few-node) compute graphs in memory and hand them to onnxruntime as bytes.
 *
 * Only encoding is supported, and only these messages and fields (numbers from onnx/onnx.proto3):
 *
 *   ModelProto         ir_version = 1 (int64), producer_name = 2 (string), graph = 7 (GraphProto),
 *                      opset_import = 8 (repeated OperatorSetIdProto)
 *   OperatorSetIdProto domain = 1 (string, "" is the default ONNX domain), version = 2 (int64)
 *   GraphProto         node = 1 (repeated NodeProto), name = 2 (string),
 *                      input = 11, output = 12 (repeated ValueInfoProto)
 *   NodeProto          input = 1, output = 2 (repeated string), name = 3, op_type = 4 (string),
 *                      attribute = 5 (repeated AttributeProto), domain = 7 (string)
 *   AttributeProto     name = 1 (string), f = 2 (float, fixed32), i = 3 (int64), ints = 8 (repeated int64,
 *                      packed is NOT accepted by every parser so they are written unpacked),
 *                      type = 20 (AttributeType enum: FLOAT = 1, INT = 2, INTS = 7)
 *   ValueInfoProto     name = 1 (string), type = 2 (TypeProto)
 *   TypeProto          tensor_type = 1 (TypeProto.Tensor)
 *   TypeProto.Tensor   elem_type = 1 (int32, TensorProto.DataType: FLOAT = 1), shape = 2 (TensorShapeProto)
 *   TensorShapeProto   dim = 1 (repeated Dimension)
 *   Dimension          dim_value = 1 (int64) | dim_param = 2 (string), a oneof
 *
 * Wire format: each field is a key varint (field_number << 3 | wire_type) followed by the value;
 * wire type 0 = varint, 2 = length-delimited (strings, bytes, sub-messages), 5 = 32-bit fixed.
 */

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7 } as const;

/** AttributeProto.AttributeType values used here. */
export const AttributeType = { FLOAT: 1, INT: 2, INTS: 7 } as const;

export type Dim = number | string;

export interface ValueInfo {
  name: string;
  /** TensorProto.DataType; default FLOAT. */
  elemType?: number;
  /** Each dimension fixed (a number ≥ 0) or symbolic (a name, shared between tensors that agree). */
  shape: Dim[];
}

export type Attribute =
  | { name: string; type: "int"; value: number }
  | { name: string; type: "float"; value: number }
  | { name: string; type: "ints"; value: number[] };

export interface Node {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  /** "" (or absent) for the default ONNX domain, e.g. "com.microsoft" for contrib ops. */
  domain?: string;
  attributes?: Attribute[];
}

export interface Graph {
  name: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

export interface OpsetImport {
  domain: string;
  version: number;
}

export interface Model {
  /** ONNX IR version; 8 (ONNX 1.10+) is read by every onnxruntime of the last years. */
  irVersion?: number;
  producerName?: string;
  opsetImports: OpsetImport[];
  graph: Graph;
}

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const utf8 = new TextEncoder();

/** A growable byte buffer with protobuf primitives. Sub-messages are encoded into their own writer
 * first so that their length is known (simple, and these models are a few hundred bytes). */
class Writer {
  private buf = new Uint8Array(64);
  private len = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** Unsigned varint of a non-negative safe integer (up to 2^53), or a negative int64 (10 bytes,
   * two's complement), which is how protobuf encodes negative int32/int64. */
  varint(value: number): void {
    if (!Number.isSafeInteger(value)) throw new Error(`onnx-proto: varint ${value} is not a safe integer`);
    if (value < 0) {
      let v = BigInt.asUintN(64, BigInt(value));
      this.ensure(10);
      while (v >= 0x80n) {
        this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
        v >>= 7n;
      }
      this.buf[this.len++] = Number(v);
      return;
    }
    this.ensure(10);
    let v = value;
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  key(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  bytes(field: number, data: Uint8Array): void {
    this.key(field, WIRE_LEN);
    this.varint(data.length);
    this.ensure(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  string(field: number, s: string): void {
    this.bytes(field, utf8.encode(s));
  }

  int(field: number, value: number): void {
    this.key(field, WIRE_VARINT);
    this.varint(value);
  }

  float(field: number, value: number): void {
    this.key(field, WIRE_FIXED32);
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, value, true);
    this.len += 4;
  }

  message(field: number, encode: (w: Writer) => void): void {
    const sub = new Writer();
    encode(sub);
    this.bytes(field, sub.finish());
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function encodeValueInfo(w: Writer, v: ValueInfo): void {
  w.string(1, v.name); // ValueInfoProto.name
  w.message(2, (type) => {
    // ValueInfoProto.type: TypeProto
    type.message(1, (tensor) => {
      // TypeProto.tensor_type: TypeProto.Tensor
      tensor.int(1, v.elemType ?? DataType.FLOAT); // elem_type
      tensor.message(2, (shape) => {
        // shape: TensorShapeProto
        for (const d of v.shape) {
          shape.message(1, (dim) => {
            // TensorShapeProto.dim: Dimension
            if (typeof d === "number") {
              if (!Number.isInteger(d) || d < 0) throw new Error(`onnx-proto: bad dimension ${d} in ${v.name}`);
              dim.int(1, d); // dim_value
            } else {
              dim.string(2, d); // dim_param
            }
          });
        }
      });
    });
  });
}

function encodeAttribute(w: Writer, a: Attribute): void {
  w.string(1, a.name); // AttributeProto.name
  switch (a.type) {
    case "float":
      w.float(2, a.value); // f
      w.int(20, AttributeType.FLOAT); // type
      break;
    case "int":
      if (!Number.isInteger(a.value)) throw new Error(`onnx-proto: attribute ${a.name} = ${a.value} is not an integer`);
      w.int(3, a.value); // i
      w.int(20, AttributeType.INT);
      break;
    case "ints":
      for (const x of a.value) w.int(8, x); // ints, unpacked
      w.int(20, AttributeType.INTS);
      break;
  }
}

function encodeNode(w: Writer, n: Node): void {
  for (const i of n.inputs) w.string(1, i); // NodeProto.input
  for (const o of n.outputs) w.string(2, o); // NodeProto.output
  if (n.name) w.string(3, n.name); // name
  w.string(4, n.opType); // op_type
  for (const a of n.attributes ?? []) w.message(5, (m) => encodeAttribute(m, a)); // attribute
  if (n.domain) w.string(7, n.domain); // domain
}

function encodeGraph(w: Writer, g: Graph): void {
  for (const n of g.nodes) w.message(1, (m) => encodeNode(m, n)); // GraphProto.node
  w.string(2, g.name); // name
  for (const v of g.inputs) w.message(11, (m) => encodeValueInfo(m, v)); // input
  for (const v of g.outputs) w.message(12, (m) => encodeValueInfo(m, v)); // output
}

/** Encode a ModelProto to bytes, ready for `InferenceSession.create(bytes)`. */
export function encodeModel(model: Model): Uint8Array {
  const w = new Writer();
  w.int(1, model.irVersion ?? 8); // ModelProto.ir_version
  w.string(2, model.producerName ?? "srlm"); // producer_name
  w.message(7, (g) => encodeGraph(g, model.graph)); // graph
  for (const op of model.opsetImports) {
    w.message(8, (m) => {
      // opset_import: OperatorSetIdProto
      if (op.domain) m.string(1, op.domain); // domain
      m.int(2, op.version); // version
    });
  }
  return w.finish();
}
