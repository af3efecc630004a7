// CPace, the balanced password-authenticated key exchange of the IRTF draft
// draft-irtf-cfrg-cpace (revision 21, as client/cpace follows it), with its
// CPACE-RISTR255-SHA512 suite: the browser's twin of the Go package
// client/cpace, function for function, checked against the draft's
// appendix A and B.3 test vectors and against the Go package itself
// (web/cpace_test.go). Web Crypto has no ristretto255, so the group and
// SHA-512 come from the vendored @noble/curves and @noble/hashes (their
// bare "@noble/hashes/..." imports resolve through index.html's import map).
//
// Each side calls start with PRS (the secret password-related string), CI
// (channel identifier, never sent), sid (session identifier) and its AD,
// sends its share and AD, and calls finish with the peer's to get the
// 64-byte ISK, an intermediate key to feed into a KDF and confirm
// explicitly: two sides with different PRS derive different keys, and CPace
// itself reports no mismatch. See client/cpace's package comment for what
// each input must be.
//
// Secrets: the scalar y is a BigInt, which JavaScript cannot wipe; it is
// dropped once finish has run. The byte arrays this module builds from PRS
// and from K are zeroed after use.

import { ristretto255, ristretto255_hasher } from "./vendor/noble-curves-2.4.0/ed25519.js";
import { sha512 } from "./vendor/noble-hashes-2.4.0/sha2.js";

const Point = ristretto255.Point;
const enc = new TextEncoder();

// G_Ristretto255.DSI, the domain-separation identifier.
const DSI = enc.encode("CPaceRistretto255");
const DSI_ISK = enc.encode("CPaceRistretto255_ISK");
// H.s_in_bytes, SHA-512's block size: the generator string pads DSI and PRS
// to fill it.
const S_IN_BYTES = 128;

export const SHARE_SIZE = 32;
export const ISK_SIZE = 64;

// Roles (draft section 6.3), as client/cpace's Role: the initiator sent
// first and the responder answered (transcript_ir); symmetric is for sides
// that may both speak first (transcript_oc; then ADa and ADb must differ).
export const INITIATOR = "initiator";
export const RESPONDER = "responder";
export const SYMMETRIC = "symmetric";

// The peer's share is not the encoding of a ristretto255 element other than
// the identity: the draft says to abort. (client/cpace's ErrInvalidShare.)
export class InvalidShareError extends Error {
  constructor(why) { super("cpace: invalid peer share: " + why); this.name = "InvalidShareError"; }
}

// A state's secrets, kept out of the object start returns; finish deletes
// the entry, so a state is single use.
const secrets = new WeakMap();

// start begins an exchange: it samples the secret scalar y and returns the
// opaque state to finish with and the share Y = y*g to send along with ad.
export function start(prs, ci, sid, ad) {
  return startWith(prs, ci, sid, ad, sampleScalar());
}

// _startWithScalar is start with a given scalar y (32 bytes, little-endian,
// 0 < y < the group order): for tests only, to reproduce the draft's vectors.
export function _startWithScalar(prs, ci, sid, ad, yBytes) {
  const y = bytesToNumberLE(bytes(yBytes, "y"));
  if (yBytes.length !== 32 || y === 0n || y >= Point.Fn.ORDER) throw new RangeError("cpace: scalar out of range");
  return startWith(prs, ci, sid, ad, y);
}

function startWith(prs, ci, sid, ad, y) {
  for (const [name, v] of Object.entries({ prs, ci, sid, ad })) bytes(v, name);
  const g = calculateGenerator(prs, ci, sid);
  const share = g.multiply(y).toBytes();
  // The state is an empty token; what finish needs stays in this module.
  const state = Object.freeze({});
  secrets.set(state, { y, share, ad: ad.slice(), sid: sid.slice() });
  return { state, share: share.slice() };
}

// finish completes the exchange with the peer's share and AD and returns
// the ISK (Uint8Array(64)). An invalid share throws InvalidShareError. It
// spends the state whether or not it succeeds (the draft aborts on an
// invalid share, and a scalar must never be reused), except for an unknown
// role, a caller's bug.
export function finish(state, peerShare, peerAD, role) {
  if (role !== INITIATOR && role !== RESPONDER && role !== SYMMETRIC) {
    throw new TypeError(`cpace: unknown role ${role}`);
  }
  const s = secrets.get(state);
  if (!s) throw new Error("cpace: finish called twice on one state (or not a state from start)");
  secrets.delete(state);
  peerShare = bytes(peerShare, "peerShare");
  peerAD = bytes(peerAD, "peerAD");
  const k = scalarMultVfy(s.y, peerShare);
  try {
    let tr;
    if (role === INITIATOR) tr = transcriptIR(s.share, s.ad, peerShare, peerAD);
    else if (role === RESPONDER) tr = transcriptIR(peerShare, peerAD, s.share, s.ad);
    else tr = transcriptOC(s.share, s.ad, peerShare, peerAD);
    return deriveISK(s.sid, k, tr);
  } finally {
    k.fill(0);
  }
}

// sampleScalar is G.sample_scalar as the draft recommends for ristretto255
// (section 8.3): 32 random bytes with the bits above group_size_bits (252)
// cleared, read little-endian; below 2^252 it is always less than the group
// order, so no reduction. Zero (probability 2^-252) means a broken source.
function sampleScalar() {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(32));
  b[31] &= 0x0f;
  const y = bytesToNumberLE(b);
  b.fill(0);
  if (y === 0n) throw new Error("cpace: the random source gave a zero scalar");
  return y;
}

// calculateGenerator is G.calculate_generator (draft section 8.3): SHA-512
// of the generator string, mapped to the group by ristretto255's element
// derivation from 64 uniform bytes (RFC 9496 section 4.3.4), which is
// noble's deriveToCurve (not its hashToCurve, RFC 9380's, which hashes
// again with a DST).
function calculateGenerator(prs, ci, sid) {
  const gs = generatorString(DSI, prs, ci, sid, S_IN_BYTES);
  const h = sha512(gs);
  const g = ristretto255_hasher.deriveToCurve(h);
  // Both hold the password; wipe them.
  gs.fill(0);
  h.fill(0);
  return g;
}

// scalarMultVfy is G.scalar_mult_vfy followed by the draft's abort check:
// an undecodable X (noble's fromBytes accepts only canonical encodings, RFC
// 9496 section 4.3.1) or y*X = the identity throws InvalidShareError.
// Otherwise it returns the encoding of K = y*X.
function scalarMultVfy(y, x) {
  if (x.length !== SHARE_SIZE) throw new InvalidShareError(`${x.length} bytes, want ${SHARE_SIZE}`);
  let X;
  try {
    X = Point.fromBytes(x);
  } catch {
    throw new InvalidShareError("not a ristretto255 encoding");
  }
  // ristretto255 has prime order, so y*X is the identity only when X is
  // (y is never zero).
  const k = X.multiply(y);
  if (k.is0()) throw new InvalidShareError("the identity element");
  return k.toBytes();
}

// deriveISK is ISK = H.hash(lv_cat(G.DSI || b"_ISK", sid, K) || transcript)
// (draft section 7.2).
function deriveISK(sid, k, transcript) {
  const prefix = lvCat(DSI_ISK, sid, k);
  const isk = sha512(concat(prefix, transcript));
  prefix.fill(0);
  return isk;
}

// generatorString is the draft's generator_string (appendix A.2):
// lv_cat(DSI, PRS, zero_bytes(len_zpad), CI, sid), the zero padding filling
// the hash's first input block after DSI and PRS.
function generatorString(dsi, prs, ci, sid, sInBytes) {
  const zpad = Math.max(0, sInBytes - 1 - prependLenSize(prs) - prependLenSize(dsi));
  return lvCat(dsi, prs, new Uint8Array(zpad), ci, sid);
}

// leb128 is the draft's prepend_len's length prefix: the length in unsigned
// LEB128 (Go's binary.AppendUvarint).
function leb128(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function prependLenSize(a) { return leb128(a.length).length + a.length; }

// lvCat is the draft's lv_cat (appendix A.1.3): each argument preceded by
// its length in LEB128.
function lvCat(...args) {
  const out = new Uint8Array(args.reduce((n, a) => n + prependLenSize(a), 0));
  let o = 0;
  for (const a of args) {
    const len = leb128(a.length);
    out.set(len, o);
    out.set(a, o + len.length);
    o += len.length + a.length;
  }
  return out;
}

// oCat is the draft's o_cat (appendix A.3.2): b"oc", then the
// lexicographically larger string, then the other (a proper prefix is the
// smaller, as Go's bytes.Compare orders).
function oCat(a, b) {
  if (compare(a, b) < 0) [a, b] = [b, a];
  return concat(enc.encode("oc"), a, b);
}

function compare(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return a.length - b.length;
}

// transcriptIR is the initiator-responder transcript (appendix A.3.4).
function transcriptIR(ya, ada, yb, adb) { return concat(lvCat(ya, ada), lvCat(yb, adb)); }

// transcriptOC is the symmetric-setting transcript (appendix A.3.6).
function transcriptOC(ya, ada, yb, adb) { return oCat(lvCat(ya, ada), lvCat(yb, adb)); }

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function bytesToNumberLE(b) {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]);
  return n;
}

function bytes(x, name) {
  if (!(x instanceof Uint8Array)) throw new TypeError(`cpace: ${name} must be a Uint8Array`);
  return x;
}

// _internals exposes the draft's building blocks for the vector tests
// only (the generator and K must never leave this module otherwise: either
// allows offline password guessing, draft sections 10.3 and 8.3).
export const _internals = Object.freeze({
  generatorString: (prs, ci, sid) => generatorString(DSI, prs, ci, sid, S_IN_BYTES),
  generator: (prs, ci, sid) => calculateGenerator(prs, ci, sid).toBytes(),
  scalarMultVfy: (yBytes, x) => scalarMultVfy(bytesToNumberLE(yBytes), x),
  lvCat, oCat, transcriptIR, transcriptOC,
});
