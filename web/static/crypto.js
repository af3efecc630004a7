// Tryst end-to-end cryptography for the browser: the same construction as
// the Go client (client/e2e), specified with test vectors in
// docs/PROTOCOL.md. Only Web Crypto primitives are used.

const subtle = globalThis.crypto.subtle;
const enc = new TextEncoder();

export const ITERATIONS = 600000;
export const NONCE_SIZE = 32;

export class MismatchError extends Error {
  constructor(msg = "password mismatch") { super(msg); this.name = "MismatchError"; }
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

export async function roomSalt(roomCode) {
  return new Uint8Array(await subtle.digest("SHA-256", enc.encode("tryst/v1/salt\x00" + roomCode)));
}

// deriveMaster is slow on purpose (600,000 PBKDF2 rounds).
export async function deriveMaster(password, roomCode, iterations = ITERATIONS) {
  if (!password) throw new Error("empty password");
  const key = await subtle.importKey("raw", enc.encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: await roomSalt(roomCode), iterations }, key, 256);
  return new Uint8Array(bits);
}

async function hkdf(master, salt, info, bytes) {
  const k = await subtle.importKey("raw", master, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info: enc.encode(info) }, k, bytes * 8));
}

const aesKey = (raw, usages) => subtle.importKey("raw", raw, "AES-GCM", false, usages);

export class Signaler {
  static async create(master, roomCode) {
    const s = new Signaler();
    s.room = roomCode;
    // The room key, for the per-connection keys (module state only; never
    // on window).
    s.master = master;
    s.key = await aesKey(await hkdf(master, new Uint8Array(), "tryst/v1/signal", 32), ["encrypt", "decrypt"]);
    return s;
  }
  aad(kind, from) { return enc.encode(`tryst/v1/signal|${this.room}|${kind}|${from}`); }
  async seal(kind, from, plaintext, nonce = randomBytes(12)) {
    const ct = await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: this.aad(kind, from) }, this.key, plaintext);
    return "v1." + b64url(concat(nonce, new Uint8Array(ct)));
  }
  async open(kind, from, blob) {
    if (typeof blob !== "string" || !blob.startsWith("v1.")) throw new Error("malformed blob");
    let raw;
    try { raw = unb64url(blob.slice(3)); } catch { throw new Error("malformed blob"); }
    if (raw.length < 28) throw new Error("malformed blob");
    try {
      return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: raw.slice(0, 12), additionalData: this.aad(kind, from) }, this.key, raw.slice(12)));
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
