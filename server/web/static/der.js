// ASN.1 DER (ITU-T X.690) encoding and decoding: just what PKCS#10, PKCS#7, PKCS#12 and X.509
// need. The decoder also reads BER indefinite lengths and constructed strings, which some
// PKCS#12 files made by other software use (X.690 §8.1.3.6, §8.7.3).

export class DERError extends Error {}

export const TAG = Object.freeze({
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
});

// -- bytes ----------------------------------------------------------------------------------------
export function concat(...parts) {
  const chunks = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function compare(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

export function hex(bytes, separator = "") {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(separator);
}

export function fromHex(text) {
  const clean = text.replace(/[^0-9a-fA-F]/g, "");
  if (clean.length % 2) throw new DERError("odd number of hex digits");
  return Uint8Array.from(clean.match(/../g) ?? [], (h) => parseInt(h, 16));
}

export function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function fromBase64(text) {
  const clean = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) throw new DERError("not base64");
  const binary = atob(clean);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

// PEM (RFC 7468): every block with the label, or with any label when label is null.
export function fromPEM(text, label = null) {
  const blocks = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (const match of text.matchAll(re)) {
    if (label === null || match[1] === label) blocks.push(fromBase64(match[2]));
  }
  return blocks;
}

export function toPEM(label, bytes) {
  const lines = toBase64(bytes).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

// -- encoding -------------------------------------------------------------------------------------
function lengthBytes(length) {
  if (length < 0x80) return [length];
  const out = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) out.unshift(n & 0xff);
  return [0x80 | out.length, ...out];
}

export function tlv(tag, content) {
  return concat([tag], lengthBytes(content.length), content);
}

export const sequence = (...items) => tlv(TAG.SEQUENCE, concat(...items));

// DER §11.6: the elements of a SET OF in ascending order of their encodings.
export const setOf = (...items) => tlv(TAG.SET, concat(...[...items].sort(compare)));

export const octetString = (bytes) => tlv(TAG.OCTET_STRING, bytes);
export const bitString = (bytes, unused = 0) => tlv(TAG.BIT_STRING, concat([unused], bytes));
export const nullValue = () => new Uint8Array([TAG.NULL, 0]);
export const utf8String = (text) => tlv(TAG.UTF8_STRING, new TextEncoder().encode(text));
export const bmpString = (text) => tlv(TAG.BMP_STRING, bmpBytes(text));
// [n] EXPLICIT: a constructed context tag around a whole encoding.
export const explicit = (n, encoding) => tlv(0xa0 | n, encoding);
// [n] IMPLICIT: the context tag replaces the inner tag, keeping the content.
export const implicit = (n, content, constructed) => tlv((constructed ? 0xa0 : 0x80) | n, content);

// UTF-16 big-endian code units (surrogate pairs for characters beyond the BMP).
export function bmpBytes(text) {
  const out = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    out[2 * i] = unit >> 8;
    out[2 * i + 1] = unit & 0xff;
  }
  return out;
}

// INTEGER from a non-negative number, bigint, or unsigned big-endian bytes (X.690 §8.3: two's
// complement, minimal length).
export function integer(value) {
  let bytes;
  if (value instanceof Uint8Array) {
    bytes = value;
  } else {
    let n = BigInt(value);
    if (n < 0n) throw new DERError("negative integers are not used here");
    const digits = [];
    do {
      digits.unshift(Number(n & 0xffn));
      n >>= 8n;
    } while (n > 0n);
    bytes = Uint8Array.from(digits);
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  bytes = bytes.subarray(start);
  if (bytes.length === 0) bytes = new Uint8Array([0]);
  if (bytes[0] & 0x80) bytes = concat([0], bytes);
  return tlv(TAG.INTEGER, bytes);
}

// OBJECT IDENTIFIER from dotted text (X.690 §8.19).
export function oid(dotted) {
  const arcs = dotted.split(".").map((a) => BigInt(a));
  if (arcs.length < 2 || arcs[0] > 2n) throw new DERError(`bad OID ${dotted}`);
  const out = [];
  const base128 = (value) => {
    const digits = [Number(value & 0x7fn)];
    for (let n = value >> 7n; n > 0n; n >>= 7n) digits.unshift(Number(n & 0x7fn) | 0x80);
    out.push(...digits);
  };
  base128(arcs[0] * 40n + arcs[1]);
  for (const arc of arcs.slice(2)) base128(arc);
  return tlv(TAG.OID, Uint8Array.from(out));
}

// -- decoding -------------------------------------------------------------------------------------
export class Node {
  constructor(bytes, start, tag, headerLength, length, end) {
    this.bytes = bytes; // the whole buffer
    this.start = start;
    this.tag = tag;
    this.headerLength = headerLength;
    this.length = length; // null for an indefinite length
    this.end = end;
  }

  get constructed() {
    return (this.tag & 0x20) !== 0;
  }

  get tagClass() {
    return this.tag >> 6; // 0 universal, 1 application, 2 context, 3 private
  }

  get tagNumber() {
    return this.tag & 0x1f;
  }

  isContext(n) {
    return this.tagClass === 2 && this.tagNumber === n;
  }

  // The whole encoding (tag, length, content).
  get der() {
    return this.bytes.subarray(this.start, this.end);
  }

  get content() {
    const from = this.start + this.headerLength;
    return this.bytes.subarray(from, this.length === null ? this.end - 2 : from + this.length);
  }

  get children() {
    if (!this.constructed) throw new DERError(`tag 0x${this.tag.toString(16)} is primitive`);
    if (!this._children) {
      this._children = [];
      let offset = this.start + this.headerLength;
      const limit = this.length === null ? this.end - 2 : offset + this.length;
      while (offset < limit) {
        const child = parseAt(this.bytes, offset, limit);
        this._children.push(child);
        offset = child.end;
      }
    }
    return this._children;
  }

  child(index, tag = undefined) {
    const node = this.children[index];
    if (!node) throw new DERError(`element ${index} is missing`);
    if (tag !== undefined) node.expect(tag);
    return node;
  }

  expect(tag) {
    if (this.tag !== tag) {
      throw new DERError(`expected tag 0x${tag.toString(16)}, found 0x${this.tag.toString(16)}`);
    }
    return this;
  }

  // OCTET STRING or BIT STRING value; BER constructed strings are joined (X.690 §8.7.3).
  octets() {
    if (this.constructed) return concat(...this.children.map((c) => c.octets()));
    return this.content;
  }

  bits() {
    this.expect(TAG.BIT_STRING);
    const content = this.content;
    if (content[0] !== 0) throw new DERError("BIT STRING with unused bits");
    return content.subarray(1);
  }

  oid() {
    this.expect(TAG.OID);
    const arcs = [];
    let value = 0n;
    for (const byte of this.content) {
      value = (value << 7n) | BigInt(byte & 0x7f);
      if (!(byte & 0x80)) {
        arcs.push(value);
        value = 0n;
      }
    }
    if (arcs.length === 0) throw new DERError("empty OID");
    const first = arcs[0] < 80n ? arcs[0] / 40n : 2n;
    return [first, arcs[0] - first * 40n, ...arcs.slice(1)].join(".");
  }

  bigint() {
    this.expect(TAG.INTEGER);
    let value = 0n;
    for (const byte of this.content) value = (value << 8n) | BigInt(byte);
    if (this.content[0] & 0x80) value -= 1n << BigInt(this.content.length * 8);
    return value;
  }

  number() {
    return Number(this.bigint());
  }

  // Unsigned big-endian magnitude of a non-negative INTEGER (leading zero dropped).
  unsigned() {
    this.expect(TAG.INTEGER);
    let content = this.content;
    while (content.length > 1 && content[0] === 0) content = content.subarray(1);
    return content;
  }

  boolean() {
    this.expect(TAG.BOOLEAN);
    return this.content[0] !== 0;
  }

  string() {
    const content = this.octets();
    switch (this.tag) {
      case TAG.UTF8_STRING:
        return new TextDecoder("utf-8", { fatal: true }).decode(content);
      case TAG.BMP_STRING: {
        let out = "";
        for (let i = 0; i + 1 < content.length; i += 2) {
          out += String.fromCharCode((content[i] << 8) | content[i + 1]);
        }
        return out;
      }
      case TAG.UNIVERSAL_STRING: {
        let out = "";
        for (let i = 0; i + 3 < content.length; i += 4) {
          out += String.fromCodePoint(
            ((content[i] << 24) | (content[i + 1] << 16) | (content[i + 2] << 8) | content[i + 3]) >>> 0,
          );
        }
        return out;
      }
      default: // PrintableString, IA5String, T61String (read as Latin-1), VisibleString
        return String.fromCharCode(...content);
    }
  }

  // UTCTime (RFC 5280 §4.1.2.5.1: YY >= 50 is 19YY) or GeneralizedTime, in UTC.
  date() {
    const text = String.fromCharCode(...this.content);
    let match;
    if (this.tag === TAG.UTC_TIME) {
      match = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?Z$/.exec(text);
      if (!match) throw new DERError(`bad UTCTime ${text}`);
      const yy = Number(match[1]);
      match = [null, String(yy >= 50 ? 1900 + yy : 2000 + yy), ...match.slice(2)];
    } else if (this.tag === TAG.GENERALIZED_TIME) {
      match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(text);
      if (!match) throw new DERError(`bad GeneralizedTime ${text}`);
    } else {
      throw new DERError(`tag 0x${this.tag.toString(16)} is not a time`);
    }
    const [y, mo, d, h, mi, s] = match.slice(1, 7).map((v) => Number(v ?? 0));
    return new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  }
}

function parseAt(bytes, offset, limit) {
  if (offset + 2 > limit) throw new DERError("truncated encoding");
  const start = offset;
  const tag = bytes[offset++];
  if ((tag & 0x1f) === 0x1f) throw new DERError("high tag numbers are not used here");
  let length = bytes[offset++];
  if (length === 0x80) {
    // BER indefinite length: children up to the end-of-contents octets.
    if (!(tag & 0x20)) throw new DERError("indefinite length on a primitive encoding");
    let cursor = offset;
    for (;;) {
      if (cursor + 2 > limit) throw new DERError("unterminated indefinite length");
      if (bytes[cursor] === 0 && bytes[cursor + 1] === 0) break;
      cursor = parseAt(bytes, cursor, limit).end;
    }
    return new Node(bytes, start, tag, offset - start, null, cursor + 2);
  }
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count > 4 || offset + count > limit) throw new DERError("bad length");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[offset++];
  }
  const end = offset + length;
  if (end > limit) throw new DERError("truncated encoding");
  return new Node(bytes, start, tag, offset - start, length, end);
}

// The single encoding in ``bytes``; trailing bytes are an error.
export function decode(bytes) {
  const buffer = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const node = parseAt(buffer, 0, buffer.length);
  if (node.end !== buffer.length) throw new DERError("trailing bytes after the encoding");
  return node;
}

// An AlgorithmIdentifier (RFC 5280 §4.1.1.2): { oid, parameters node or null }.
export function algorithm(node) {
  node.expect(TAG.SEQUENCE);
  const children = node.children;
  return { oid: children[0].oid(), parameters: children[1] ?? null };
}
