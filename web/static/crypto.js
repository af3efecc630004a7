// Tryst end-to-end cryptography for the browser: the same construction as
// the Go client (client/e2e), specified with test vectors in
// docs/PROTOCOL.md. CPace (cpace.js, on the vendored noble) for the
// password-authenticated key exchange, Web Crypto for everything else.
//
// cpace.js is imported when an exchange first needs it, not statically:
// the store worker imports this module for the sealed frames, and noble's
// bare "@noble/hashes/..." imports resolve only through the page's import
// map, which a worker does not see (web.go).

const subtle = globalThis.crypto.subtle;
const enc = new TextEncoder();

export const NONCE_SIZE = 32;

// MismatchError: a blob, a PAKE reply or a frame did not authenticate
// under this side's key: the passwords differ, or someone tampered with it
// or guessed.
export class MismatchError extends Error {
  constructor(msg = "password mismatch") { super(msg); this.name = "MismatchError"; }
}
// MalformedError: not a PAKE message or sealed blob at all (wrong prefix,
// not canonical base64url, too short); it is ignored.
export class MalformedError extends Error {
  constructor(msg = "malformed message") { super(msg); this.name = "MalformedError"; }
}
// OtherEpochError: a sealed blob names an epoch (sid) other than the
// Signaler's. Not a mismatch.
export class OtherEpochError extends Error {
  constructor(sid) { super("sealed under another epoch"); this.name = "OtherEpochError"; this.sid = sid; }
}
// OldPeerError: the blob or payload comes from a client of protocol
// version 1 or 2 ("v1." blobs, keys from PBKDF2), which cannot meet a PAKE.
export class OldPeerError extends Error {
  constructor() { super("the other side speaks an older protocol version"); this.name = "OldPeerError"; }
}
export class ReplayError extends Error {
  constructor(msg) { super(msg); this.name = "ReplayError"; }
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) { out.set(p instanceof Uint8Array ? p : new Uint8Array(p), o); o += p.byteLength; }
  return out;
}

export function b64url(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function unb64url(s) {
  s = s.replace(/-/g, "+").replace(/_/g, "/");
  while (s.length % 4) s += "=";
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// Go's encoding/json writes []byte as standard base64 with padding.
export function b64std(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}
export function unb64std(s) { return unb64url(s); }

export function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function randomBytes(n) { return globalThis.crypto.getRandomValues(new Uint8Array(n)); }

async function hkdf(ikm, salt, info, bytes) {
  const k = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info: enc.encode(info) }, k, bytes * 8));
}

const aesKey = (raw, usages) => subtle.importKey("raw", raw, "AES-GCM", false, usages);

// canonical64 decodes base64url without padding, refusing what Go's
// RawURLEncoding.Strict refuses: other characters, a length that is 1
// modulo 4, and unused low bits of the last character that are not zero.
// Returns null for any of these.
function canonical64(s) {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return null;
  let raw;
  try { raw = unb64url(s); } catch { return null; }
  return b64url(raw) === s ? raw : null;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

// ---- the PAKE (docs/PROTOCOL.md, "PAKE") ----

// SID_SIZE is the length of an exchange's session identifier, which names
// the epoch it leads to; CONFIRM_SIZE, of the guest's confirm_G.
export const SID_SIZE = 16;
export const CONFIRM_SIZE = 32;
const SHARE_SIZE = 32;

// PAKE message kinds: the first byte of a PAKE message.
export const PAKE = Object.freeze({ SHARE: 1, REPLY: 2, FAILED: 3, NEED: 4 });
// The body of each kind after sid: Ya; Yb ‖ confirm_G; nothing; nothing.
const BODY = { [PAKE.SHARE]: SHARE_SIZE, [PAKE.REPLY]: SHARE_SIZE + CONFIRM_SIZE, [PAKE.FAILED]: 0, [PAKE.NEED]: 0 };

const PAKE_PREFIX = "c3.";
const SEAL_PREFIX = "s3.";
// The sealed blobs of protocol versions 1 and 2.
const LEGACY_PREFIX = "v1.";

// isPAKE reports whether a hub frame's data is a PAKE message (it may still
// be malformed); anything else is a sealed blob, or nothing.
export function isPAKE(data) { return typeof data === "string" && data.startsWith(PAKE_PREFIX); }

// encodePAKE writes {kind, sid, share, confirm} as it travels in a hub
// frame's data: "c3." ‖ base64url-nopad(kind ‖ sid ‖ share ‖ confirm).
export function encodePAKE({ kind, sid, share = new Uint8Array(), confirm = new Uint8Array() }) {
  return PAKE_PREFIX + b64url(concat(Uint8Array.of(kind), sid, share, confirm));
}

// decodePAKE reads a PAKE message, checking its kind and exact length:
// {kind, sid, share?, confirm?}, or null for anything malformed (which the
// receiver ignores).
export function decodePAKE(data) {
  if (!isPAKE(data)) return null;
  const raw = canonical64(data.slice(PAKE_PREFIX.length));
  if (!raw || raw.length < 1 + SID_SIZE) return null;
  const kind = raw[0];
  if (!Object.hasOwn(BODY, kind) || raw.length !== 1 + SID_SIZE + BODY[kind]) return null;
  const m = { kind, sid: raw.slice(1, 1 + SID_SIZE) };
  if (kind === PAKE.SHARE || kind === PAKE.REPLY) m.share = raw.slice(1 + SID_SIZE, 1 + SID_SIZE + SHARE_SIZE);
  if (kind === PAKE.REPLY) m.confirm = raw.slice(1 + SID_SIZE + SHARE_SIZE);
  return m;
}

// failedMessage is the host's "failed" for the exchange sid.
export function failedMessage(sid) { return encodePAKE({ kind: PAKE.FAILED, sid }); }

// needMessage is the guest's "need": sid names the epoch it does not hold;
// null asks for a fresh exchange whatever the host holds (all zero).
export function needMessage(sid = null) { return encodePAKE({ kind: PAKE.NEED, sid: sid || new Uint8Array(SID_SIZE) }); }

// anyEpoch reports whether a need's sid is the all-zero "any".
export function anyEpoch(sid) { return sid.every((b) => b === 0); }

export function sameSID(a, b) { return !!a && !!b && equalBytes(a, b); }

const AD_HOST = enc.encode("H");
const AD_GUEST = enc.encode("G");
const ciOf = (room) => enc.encode("tryst/v3/cpace|" + room);

// epochKeys derives an exchange's master secret and the guest's
// confirmation from CPace's 64-byte ISK.
async function epochKeys(isk) {
  const none = new Uint8Array();
  const master = await hkdf(isk, none, "tryst/v3/master", 32);
  const confirmG = await hkdf(isk, none, "tryst/v3/confirm-guest", CONFIRM_SIZE);
  isk.fill(0);
  return { master, confirmG };
}

let cpaceModule = null;
const cpace = () => (cpaceModule ||= import("./cpace.js"));

function prs(password) {
  if (typeof password !== "string" || password === "") throw new Error("empty password");
  // As typed: not normalised, not trimmed.
  return enc.encode(password);
}

// HostExchange is the host's side of one exchange, between the share it
// sent and the guest's reply. Its secret scalar stays in cpace.js.
export class HostExchange {
  // start begins an exchange as host with a fresh random sid: {ex, msg},
  // msg the share to post in an offer frame.
  static async start(password, room) {
    const sid = randomBytes(SID_SIZE);
    const cp = await cpace();
    const pw = prs(password);
    const { state, share } = cp.start(pw, ciOf(room), sid, AD_HOST);
    pw.fill(0);
    return HostExchange.from(cp, state, share, sid, room);
  }
  // from wraps a cpace.js state and share started for sid (by a test,
  // with a given scalar).
  static from(cp, state, share, sid, room) {
    const ex = new HostExchange();
    ex.cp = cp;
    ex.state = state;
    ex.sid = sid.slice();
    ex.room = room;
    ex.msg = encodePAKE({ kind: PAKE.SHARE, sid: ex.sid, share });
    return { ex, msg: ex.msg };
  }
  // finish completes the exchange with the guest's decoded reply and
  // returns the epoch {sid, master}. A wrong confirm_G (the passwords
  // differ, or a guess) or an invalid Yb throws MismatchError: one failed
  // confirmation. The exchange is spent either way.
  async finish(reply) {
    if (!reply || reply.kind !== PAKE.REPLY || !sameSID(reply.sid, this.sid)) throw new MalformedError("not the reply to this exchange");
    const state = this.state;
    if (!state) throw new Error("exchange already finished");
    this.state = null;
    let isk;
    try {
      isk = this.cp.finish(state, reply.share, AD_GUEST, this.cp.INITIATOR);
    } catch (e) {
      if (e instanceof this.cp.InvalidShareError) throw new MismatchError("invalid PAKE share");
      throw e;
    }
    const { master, confirmG } = await epochKeys(isk);
    // Constant time: the comparison does not stop at the first difference.
    if (!equalBytes(confirmG, reply.confirm)) throw new MismatchError();
    return { sid: this.sid, master };
  }
}

// respond answers a host's decoded share as guest: {epoch, msg}, the epoch
// this exchange leads to if the passwords match (pending until a sealed
// offer under it opens) and the reply to post in an answer frame. An
// invalid share throws MismatchError.
export async function respond(password, room, share) {
  if (!share || share.kind !== PAKE.SHARE) throw new MalformedError("not a PAKE share");
  const cp = await cpace();
  const pw = prs(password);
  const { state, share: yb } = cp.start(pw, ciOf(room), share.sid, AD_GUEST);
  pw.fill(0);
  return respondFrom(cp, state, yb, share);
}

// respondFrom is respond from a cpace.js state and share started for it
// (by a test, with a given scalar).
export async function respondFrom(cp, state, yb, share) {
  if (!share || share.kind !== PAKE.SHARE) throw new MalformedError("not a PAKE share");
  let isk;
  try {
    isk = cp.finish(state, share.share, AD_HOST, cp.RESPONDER);
  } catch (e) {
    if (e instanceof cp.InvalidShareError) throw new MismatchError("invalid PAKE share");
    throw e;
  }
  const { master, confirmG } = await epochKeys(isk);
  const sid = share.sid.slice();
  return { epoch: { sid, master }, msg: encodePAKE({ kind: PAKE.REPLY, sid, share: yb, confirm: confirmG }) };
}

// ---- sealed signaling (docs/PROTOCOL.md, "Sealed signaling") ----

// decodeBlob returns a sealed blob's bytes, sid ‖ nonce ‖ ciphertext ‖ tag,
// or throws OldPeerError ("v1.") or MalformedError.
function decodeBlob(blob) {
  if (typeof blob !== "string" || !blob.startsWith(SEAL_PREFIX)) {
    if (typeof blob === "string" && blob.startsWith(LEGACY_PREFIX)) throw new OldPeerError();
    throw new MalformedError("not a sealed blob");
  }
  const raw = canonical64(blob.slice(SEAL_PREFIX.length));
  if (!raw || raw.length < SID_SIZE + 12 + 16) throw new MalformedError("bad blob encoding");
  return raw;
}

// blobSID returns the epoch a sealed blob names, or throws OldPeerError or
// MalformedError.
export function blobSID(blob) { return decodeBlob(blob).slice(0, SID_SIZE); }

// Signaler seals and opens the blobs of one epoch {sid, master}.
export class Signaler {
  static async create(epoch, roomCode) {
    if (!epoch || !(epoch.sid instanceof Uint8Array) || epoch.sid.length !== SID_SIZE) throw new Error("an epoch's sid must be 16 bytes");
    const s = new Signaler();
    s.room = roomCode;
    s.sid = epoch.sid;
    // The epoch's master secret, for the per-connection keys (module state
    // only; never on window).
    s.master = epoch.master;
    s.key = await aesKey(await hkdf(epoch.master, new Uint8Array(), "tryst/v1/signal", 32), ["encrypt", "decrypt"]);
    return s;
  }
  aad(kind, from) { return enc.encode(`tryst/v1/signal|${this.room}|${kind}|${from}`); }
  async seal(kind, from, plaintext, nonce = randomBytes(12)) {
    const ct = await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: this.aad(kind, from) }, this.key, plaintext);
    return SEAL_PREFIX + b64url(concat(this.sid, nonce, new Uint8Array(ct)));
  }
  // open returns the plaintext of a blob of kind sent by from, or throws:
  // OldPeerError, MalformedError, OtherEpochError (its .sid), or
  // MismatchError for a blob of this epoch that does not authenticate.
  async open(kind, from, blob) {
    const raw = decodeBlob(blob);
    const sid = raw.slice(0, SID_SIZE);
    if (!equalBytes(sid, this.sid)) throw new OtherEpochError(sid);
    try {
      return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: raw.slice(SID_SIZE, SID_SIZE + 12), additionalData: this.aad(kind, from) },
        this.key, raw.slice(SID_SIZE + 12)));
    } catch {
      throw new MismatchError();
    }
  }
}

export function normalizeFingerprint(fp) {
  const t = fp.trim();
  const i = t.indexOf(" ");
  if (i < 0) return t.toUpperCase();
  return t.slice(0, i).toLowerCase() + " " + t.slice(i + 1).trim().toUpperCase();
}

export function fingerprintOf(sdp) {
  for (const line of sdp.split("\n")) {
    const l = line.trim();
    if (l.startsWith("a=fingerprint:")) return normalizeFingerprint(l.slice("a=fingerprint:".length));
  }
  throw new Error("SDP has no DTLS fingerprint");
}

// frameNonce is a sealed frame's nonce: channel (4 bytes) ‖ sequence (8
// bytes), both big endian. Channel 0 (control) gives version 1's nonces.
function frameNonce(channel, seq) {
  const nonce = new Uint8Array(12);
  const dv = new DataView(nonce.buffer);
  dv.setUint32(0, channel);
  dv.setBigUint64(4, seq);
  return nonce;
}

// sealFrame seals one frame (docs/PROTOCOL.md, "Sealed frames") under key
// with the given channel and sequence number: version ‖ type ‖ seq, then
// the AES-GCM ciphertext of payload with that header as associated data.
// The store worker seals file data with it, off the page's main thread.
export async function sealFrame(key, channel, seq, type, payload) {
  const { hdr, ct } = await sealParts(key, channel, seq, type, payload);
  return concat(hdr, ct);
}

// sealParts is sealFrame without joining the frame: its header and its
// ciphertext, for a caller that assembles frames in a buffer of its own.
// Web Crypto copies payload before it returns, so the caller may reuse
// payload's memory at once.
export function sealParts(key, channel, seq, type, payload) {
  const hdr = new Uint8Array(10);
  hdr[0] = 1; hdr[1] = type;
  new DataView(hdr.buffer).setBigUint64(2, seq);
  return subtle.encrypt({ name: "AES-GCM", iv: frameNonce(channel, seq), additionalData: hdr }, key, payload)
    .then((ct) => ({ hdr, ct: new Uint8Array(ct) }));
}

// frameSeq reads a frame's sequence number, or returns -1n for a frame too
// short or of another version.
export function frameSeq(frame) {
  if (frame.length < 26 || frame[0] !== 1) return -1n;
  return new DataView(frame.buffer, frame.byteOffset).getBigUint64(2);
}

// openFrame decrypts a frame whose sequence number the caller checked:
// {type, payload}, or a MismatchError.
export function openFrame(key, channel, seq, frame) {
  return subtle.decrypt({ name: "AES-GCM", iv: frameNonce(channel, seq), additionalData: frame.subarray(0, 10) },
    key, frame.subarray(10))
    .then((pt) => ({ type: frame[1], payload: new Uint8Array(pt) }), () => { throw new MismatchError("frame failed to authenticate"); });
}

// Session: one connection's keys. Each channel (0 control, 1 bulk) has its
// own send and receive sequence. seal() takes its sequence number
// synchronously, so a channel's frames must be sent in the order seal was
// called; open() must be called in arrival order per channel.
export class Session {
  static async create(master, role, nonceHost, nonceGuest, fpHost, fpGuest) {
    if (nonceHost.length !== NONCE_SIZE || nonceGuest.length !== NONCE_SIZE) throw new Error("bad connection nonces");
    const okm = await hkdf(master, concat(nonceHost, nonceGuest),
      `tryst/v1/session|${normalizeFingerprint(fpHost)}|${normalizeFingerprint(fpGuest)}`, 96);
    const s = new Session();
    s.role = role;
    const h2g = await aesKey(okm.slice(0, 32), ["encrypt", "decrypt"]);
    const g2h = await aesKey(okm.slice(32, 64), ["encrypt", "decrypt"]);
    [s.sendKey, s.recvKey] = role === "H" ? [h2g, g2h] : [g2h, h2g];
    s.confirmKey = await subtle.importKey("raw", okm.slice(64, 96), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    s.sendSeq = [0n, 0n];
    s.recvSeq = [0n, 0n];
    return s;
  }
  async confirmation(role) {
    return new Uint8Array(await subtle.sign("HMAC", this.confirmKey, enc.encode("tryst/v1/confirm|" + role)));
  }
  async checkConfirmation(got) {
    const other = this.role === "H" ? "G" : "H";
    const ok = await subtle.verify("HMAC", this.confirmKey, got, enc.encode("tryst/v1/confirm|" + other));
    if (!ok) throw new MismatchError();
  }
  seal(channel, type, payload) {
    return sealFrame(this.sendKey, channel, this.sendSeq[channel]++, type, payload);
  }
  // open checks the sequence at once (a frame out of sequence does not
  // advance it) and decrypts asynchronously.
  open(channel, frame) {
    frame = frame instanceof Uint8Array ? frame : new Uint8Array(frame);
    const seq = frameSeq(frame);
    if (seq < 0n) return Promise.reject(new Error("malformed frame"));
    if (seq !== this.recvSeq[channel]) {
      return Promise.reject(new ReplayError(`frame out of sequence: got ${seq}, want ${this.recvSeq[channel]}`));
    }
    this.recvSeq[channel]++;
    return openFrame(this.recvKey, channel, seq, frame);
  }
}
