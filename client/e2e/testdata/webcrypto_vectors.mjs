// An independent implementation of docs/PROTOCOL.md's cryptography with
// nothing but Web Crypto (as a browser has it, without web/static): it
// recomputes every vector block of the document. Run by webcrypto_test.go
// as `node webcrypto_vectors.mjs PATH/TO/PROTOCOL.md`.
import { check, loadVectors } from "./specvectors.mjs";

const { subtle } = globalThis.crypto;
const enc = new TextEncoder();
const dec = new TextDecoder();
const hex = (b) => Buffer.from(b).toString("hex");
const cat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) { out.set(new Uint8Array(p), o); o += p.byteLength; }
  return out;
};
const b64std = (b) => Buffer.from(b).toString("base64");

async function hkdf(master, salt, info, bytes) {
  const k = await subtle.importKey("raw", master, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info: enc.encode(info) }, k, bytes * 8));
}
async function seal(key, nonce, plaintext, aad) {
  const k = await subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
  return new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, k, plaintext));
}
async function open(key, nonce, ct, aad) {
  const k = await subtle.importKey("raw", key, "AES-GCM", false, ["decrypt"]);
  return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, k, ct));
}
function fingerprint(sdp) {
  for (const line of sdp.split("\n")) {
    const l = line.trim();
    if (!l.startsWith("a=fingerprint:")) continue;
    const v = l.slice("a=fingerprint:".length).trim();
    const i = v.indexOf(" ");
    return i < 0 ? v.toUpperCase() : v.slice(0, i).toLowerCase() + " " + v.slice(i + 1).trim().toUpperCase();
  }
  throw new Error("SDP has no DTLS fingerprint");
}

const vectors = loadVectors(process.argv[2]);
const ss = vectors.get("session");
const nonceHost = ss.bytes("nonce_host_hex");
const nonceGuest = ss.bytes("nonce_guest_hex");
let master, okm, sid;
const plain = {};

await check(vectors, {
  async pake(v, eq) {
    // Web Crypto has no ristretto255: the shares and ISK are taken as the
    // document gives them (web's TestBrowserCryptoSpecVectors recomputes them
    // from password, room, sid, ya and yb with the vendored @noble/curves),
    // and everything Web Crypto can do is recomputed from there.
    for (const k of ["password", "ya_hex", "yb_hex"]) v.text(k);
    eq("ci", "tryst/v3/cpace|" + v.text("room"), v.text("ci"));
    sid = v.bytes("sid_hex");
    const isk = v.bytes("isk_hex");
    eq("isk length", isk.length, 64);
    master = await hkdf(isk, new Uint8Array(), "tryst/v3/master", 32);
    eq("master", hex(master), v.text("master_hex"));
    const confirmG = await hkdf(isk, new Uint8Array(), "tryst/v3/confirm-guest", 32);
    eq("confirm_guest", hex(confirmG), v.text("confirm_guest_hex"));
    const msg = (kind, ...body) => "c3." + Buffer.from(cat(Uint8Array.of(kind), ...body)).toString("base64url");
    const ya = v.bytes("share_host_hex"), yb = v.bytes("share_guest_hex");
    eq("msg_share", msg(1, sid, ya), v.text("msg_share"));
    eq("msg_reply", msg(2, sid, yb, confirmG), v.text("msg_reply"));
    eq("msg_failed", msg(3, sid), v.text("msg_failed"));
    eq("msg_need", msg(4, sid), v.text("msg_need"));
    eq("msg_need_any", msg(4, new Uint8Array(16)), v.text("msg_need_any"));
  },
  async "signal-key"(v, eq) {
    eq("master", v.text("master_hex"), hex(master));
    eq("key", hex(await hkdf(master, new Uint8Array(), v.text("info"), 32)), v.text("key_hex"));
  },
  ...Object.fromEntries(["seal-minimal", "seal-offer", "seal-answer", "seal-mismatch", "seal-restart", "seal-restart-relay"].map((name) => [name, async (v, eq) => {
    eq("master", v.text("master_hex"), hex(master));
    eq("sid", v.text("sid_hex"), hex(sid));
    const k = await hkdf(master, new Uint8Array(), "tryst/v1/signal", 32);
    const aad = `tryst/v1/signal|${v.text("room")}|${v.text("kind")}|${v.role("sender")}`;
    eq("aad", aad, v.text("aad"));
    const nonce = v.bytes("nonce_hex");
    const pt = v.text("plaintext");
    const blob = "s3." + Buffer.from(cat(sid, nonce, await seal(k, nonce, enc.encode(pt), enc.encode(aad)))).toString("base64url");
    eq("blob", blob, v.text("blob"));
    const raw = Buffer.from(v.text("blob").slice(3), "base64url");
    eq("blob sid", hex(raw.subarray(0, 16)), hex(sid));
    eq("opened", dec.decode(await open(k, raw.subarray(16, 28), raw.subarray(28), enc.encode(aad))), pt);
    plain[name] = JSON.parse(pt);
  }])),
  async fingerprint(v, eq) {
    eq("fingerprint", fingerprint(v.text("sdp")), v.text("fingerprint"));
  },
  async session(v, eq) {
    eq("master", v.text("master_hex"), hex(master));
    const info = `tryst/v1/session|${fingerprint("a=fingerprint:" + v.text("fp_host"))}|${fingerprint("a=fingerprint:" + v.text("fp_guest"))}`;
    eq("info", info, v.text("info"));
    okm = await hkdf(master, cat(nonceHost, nonceGuest), info, 96);
    eq("okm", hex(okm), v.text("okm_hex"));
    const conf = await subtle.importKey("raw", okm.slice(64, 96), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    eq("confirm_host", hex(await subtle.sign("HMAC", conf, enc.encode("tryst/v1/confirm|H"))), v.text("confirm_host_hex"));
    eq("confirm_guest", hex(await subtle.sign("HMAC", conf, enc.encode("tryst/v1/confirm|G"))), v.text("confirm_guest_hex"));
    // The worked example: the offer and the answer carry this session's
    // nonces (standard base64 with padding) and fingerprints.
    eq("offer nonce", plain["seal-offer"].nonce, b64std(nonceHost));
    eq("answer nonce", plain["seal-answer"].nonce, b64std(nonceGuest));
    eq("answer offer_nonce", plain["seal-answer"].offer_nonce, plain["seal-offer"].nonce);
    eq("offer version", plain["seal-offer"].version, 3);
    eq("answer version", plain["seal-answer"].version, 3);
    eq("offer fingerprint", fingerprint(plain["seal-offer"].sdp), v.text("fp_host"));
    eq("answer fingerprint", fingerprint(plain["seal-answer"].sdp), v.text("fp_guest"));
    eq("mismatch", JSON.stringify(plain["seal-mismatch"]), '{"mismatch":true}');
    eq("restart", JSON.stringify(plain["seal-restart"]), '{"restart":true}');
    eq("restart-relay", JSON.stringify(plain["seal-restart-relay"]), '{"restart":true,"relay":true}');
  },
  async "frame-*"(v, eq) {
    // channel: 0 control, 1 bulk; the nonce is channel (4 bytes) ‖ sequence
    // (8 bytes), both big endian.
    const channel = Number(v.int("channel"));
    if (channel > 1) throw new Error(`vector ${v.name}: channel ${channel} is neither 0 nor 1`);
    const seq = v.int("sequence");
    const type = Number(v.int("type"));
    // Version 2: file-chunk (8) and file-done (10) travel on bulk, the rest
    // on control; frame-file-chunk is the chunk as version 1 sent it.
    if (v.name !== "frame-file-chunk") eq("channel of the type", channel, type === 8 || type === 10 ? 1 : 0);
    const key = v.role("from") === "H" ? okm.slice(0, 32) : okm.slice(32, 64);
    const hdr = new Uint8Array(10);
    hdr[0] = 1; hdr[1] = type;
    new DataView(hdr.buffer).setBigUint64(2, seq);
    const nonce = new Uint8Array(12);
    new DataView(nonce.buffer).setUint32(0, channel);
    new DataView(nonce.buffer).setBigUint64(4, seq);
    const payload = v.payload();
    eq("frame", hex(cat(hdr, await seal(key, nonce, payload, hdr))), v.text("frame_hex"));
    const f = v.bytes("frame_hex");
    eq("opened", hex(await open(key, nonce, f.slice(10), f.slice(0, 10))), hex(payload));
    // On the other channel, at the same sequence, it does not open.
    const wrong = nonce.slice();
    new DataView(wrong.buffer).setUint32(0, 1 - channel);
    const refused = await open(key, wrong, f.slice(10), f.slice(0, 10)).then(() => false, () => true);
    eq("refused on the other channel", refused, true);
  },
  async "file-chunk"(v, eq) {
    const hdr = new Uint8Array(16);
    new DataView(hdr.buffer).setBigUint64(0, v.int("id"));
    new DataView(hdr.buffer).setBigUint64(8, v.int("offset"));
    eq("payload", hex(cat(hdr, v.bytes("data_hex"))), v.text("payload_hex"));
  },
});
