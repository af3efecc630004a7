// Checks the browser's web/static/crypto.js against every vector block of
// docs/PROTOCOL.md, read from the document itself with Node's Web Crypto.
// Run by spec_vectors_test.go as `node spec_vectors.mjs PATH/TO/PROTOCOL.md`;
// prints "checked NAME" per vector, then "ok", or throws.
import * as c from "../static/crypto.js";
import * as p from "../static/protocol.js";
import { check, loadVectors } from "../../client/e2e/testdata/specvectors.mjs";

const { subtle } = globalThis.crypto;
const enc = new TextEncoder();
const dec = new TextDecoder();

// rawOpen decrypts with a key given in a vector, to tie crypto.js's
// internal keys (not exported) to the document's.
async function rawOpen(key, iv, ct, aad) {
  const k = await subtle.importKey("raw", key, "AES-GCM", false, ["decrypt"]);
  return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv, additionalData: aad }, k, ct));
}
async function throws(f, cls) {
  try { await f(); } catch (e) { return !cls || e instanceof cls; }
  return false;
}

const vectors = loadVectors(process.argv[2]);
const ss = vectors.get("session");
const nonceHost = ss.bytes("nonce_host_hex");
const nonceGuest = ss.bytes("nonce_guest_hex");
let master, signalKey, okm;
const plain = {};
const session = (role) => c.Session.create(master, role, nonceHost, nonceGuest, ss.text("fp_host"), ss.text("fp_guest"));

await check(vectors, {
  async "room-secret"(v, eq) {
    const room = v.text("room");
    eq("salt", c.hex(await c.roomSalt(room)), v.text("salt_hex"));
    eq("iterations", BigInt(c.ITERATIONS), v.int("iterations"));
    master = await c.deriveMaster(v.text("password"), room);
    eq("master", c.hex(master), v.text("master_hex"));
  },
  async "signal-key"(v, eq) {
    eq("master", v.text("master_hex"), c.hex(master));
    eq("info", v.text("info"), "tryst/v1/signal");
    signalKey = v.bytes("key_hex");
    // A blob crypto.js seals opens under the document's k_signal.
    const sig = await c.Signaler.create(master, "K7Q-MX2-P9R-TVW-4HN-C8D");
    const blob = c.unb64url((await sig.seal("offer", "H", enc.encode("x"))).slice(3));
    const pt = await rawOpen(signalKey, blob.slice(0, 12), blob.slice(12), sig.aad("offer", "H"));
    eq("opened under key", dec.decode(pt), "x");
  },
  ...Object.fromEntries(["seal-minimal", "seal-offer", "seal-answer", "seal-mismatch", "seal-restart", "seal-restart-relay"].map((name) => [name, async (v, eq) => {
    eq("master", v.text("master_hex"), c.hex(master));
    const sig = await c.Signaler.create(master, v.text("room"));
    const kind = v.text("kind"), from = v.role("sender");
    eq("aad", dec.decode(sig.aad(kind, from)), v.text("aad"));
    const pt = v.text("plaintext");
    eq("blob", await sig.seal(kind, from, enc.encode(pt), v.bytes("nonce_hex")), v.text("blob"));
    eq("opened", dec.decode(await sig.open(kind, from, v.text("blob"))), pt);
    if (!await throws(() => sig.open(kind, from === "H" ? "G" : "H", v.text("blob")), c.MismatchError)) {
      throw new Error(`${name}: opened as sent by the other role`);
    }
    plain[name] = JSON.parse(pt);
  }])),
  async fingerprint(v, eq) {
    eq("fingerprint", c.fingerprintOf(v.text("sdp")), v.text("fingerprint"));
    if (!await throws(() => c.fingerprintOf(v.text("sdp").replaceAll("a=fingerprint:", "a=x-fingerprint:")))) {
      throw new Error("an SDP without a=fingerprint gave a fingerprint");
    }
  },
  async session(v, eq) {
    eq("master", v.text("master_hex"), c.hex(master));
    const fpHost = v.text("fp_host"), fpGuest = v.text("fp_guest");
    eq("info", `tryst/v1/session|${c.normalizeFingerprint(fpHost)}|${c.normalizeFingerprint(fpGuest)}`, v.text("info"));
    okm = v.bytes("okm_hex");
    const host = await session("H"), guest = await session("G");
    eq("confirm_host", c.hex(await host.confirmation("H")), v.text("confirm_host_hex"));
    eq("confirm_guest", c.hex(await host.confirmation("G")), v.text("confirm_guest_hex"));
    await guest.checkConfirmation(v.bytes("confirm_host_hex"));
    await host.checkConfirmation(v.bytes("confirm_guest_hex"));
    // k_conf of the document gives these confirmations.
    const conf = await subtle.importKey("raw", okm.slice(64, 96), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    eq("k_conf", c.hex(await subtle.sign("HMAC", conf, enc.encode("tryst/v1/confirm|H"))), v.text("confirm_host_hex"));
    // The worked example, as app.js reads it: nonces in standard base64,
    // the fingerprints of the two SDPs, offer_nonce compared as a string.
    eq("offer nonce", plain["seal-offer"].nonce, c.b64std(nonceHost));
    eq("answer nonce", c.hex(c.unb64std(plain["seal-answer"].nonce)), c.hex(nonceGuest));
    eq("answer offer_nonce", plain["seal-answer"].offer_nonce, c.b64std(nonceHost));
    eq("offer fingerprint", c.fingerprintOf(plain["seal-offer"].sdp), c.normalizeFingerprint(fpHost));
    eq("answer fingerprint", c.fingerprintOf(plain["seal-answer"].sdp), c.normalizeFingerprint(fpGuest));
    eq("mismatch", plain["seal-mismatch"].mismatch, true);
    eq("restart", plain["seal-restart"].restart, true);
    eq("restart-relay", plain["seal-restart-relay"].restart === true && plain["seal-restart-relay"].relay === true, true);
  },
  async "frame-*"(v, eq) {
    const from = v.role("from");
    // Protocol version 2's frames name their channel (0 control, 1 bulk);
    // a block without one is a control frame, as every frame of version 1.
    const channel = v.has("channel") ? Number(v.int("channel")) : 0;
    const seq = v.int("sequence");
    const type = Number(v.int("type"));
    const payload = v.payload();
    const s = await session(from);
    s.sendSeq[channel] = seq;
    eq("frame", c.hex(await s.seal(channel, type, payload)), v.text("frame_hex"));
    const frame = v.bytes("frame_hex");
    const r = await session(from === "H" ? "G" : "H");
    r.recvSeq[channel] = seq;
    const m = await r.open(channel, frame);
    eq("opened type", m.type, type);
    eq("opened payload", c.hex(m.payload), c.hex(payload));
    // The sequence of the other channel does not open it.
    const other = await session(from === "H" ? "G" : "H");
    other.recvSeq[1 - channel] = seq;
    if (!await throws(() => other.open(1 - channel, frame))) throw new Error("opened on the other channel");
    // The direction's key in the document's okm opens it too, under the
    // nonce channel ‖ sequence.
    const key = from === "H" ? okm.slice(0, 32) : okm.slice(32, 64);
    const iv = new Uint8Array(12);
    new DataView(iv.buffer).setUint32(0, channel);
    new DataView(iv.buffer).setBigUint64(4, seq);
    eq("opened under okm", c.hex(await rawOpen(key, iv, frame.slice(10), frame.slice(0, 10))), c.hex(payload));
    // A bulk frame's type is one that travels on bulk (protocol.js). (The
    // file-chunk vector of version 1 is a control frame: it checks the
    // sealing, not the channel.)
    if (channel === p.BULK_CHANNEL) eq("channel of type", p.channelOf(type), channel);
  },
  async "file-chunk"(v, eq) {
    // protocol.js's encoder and decoder.
    const id = Number(v.int("id")), offset = Number(v.int("offset"));
    const data = v.bytes("data_hex");
    eq("payload", c.hex(p.encodeChunk(id, offset, data)), v.text("payload_hex"));
    const d = p.decodeChunk(v.bytes("payload_hex"));
    eq("decoded", `${d.id} ${d.offset} ${c.hex(d.data)}`, `${id} ${offset} ${c.hex(data)}`);
  },
});
