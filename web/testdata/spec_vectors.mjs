// Checks the browser's web/static/crypto.js and cpace.js against every
// vector block of docs/PROTOCOL.md, read from the document itself, with
// Node's Web Crypto and the vendored noble (through the page's import map).
// Run by spec_vectors_test.go as
// `node --import ./testdata/importmap.mjs testdata/spec_vectors.mjs PATH/TO/PROTOCOL.md`;
// prints "checked NAME" per vector, then "ok", or throws.
import * as c from "../static/crypto.js";
import * as cpace from "../static/cpace.js";
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
let master, sid, signalKey, okm;
const plain = {};
const session = (role) => c.Session.create(master, role, nonceHost, nonceGuest, ss.text("fp_host"), ss.text("fp_guest"));

await check(vectors, {
  async pake(v, eq) {
    const password = v.text("password"), room = v.text("room");
    const ci = v.text("ci");
    eq("ci", ci, "tryst/v3/cpace|" + room);
    sid = v.bytes("sid_hex");
    const ya = v.bytes("ya_hex"), yb = v.bytes("yb_hex");
    const pw = enc.encode(password), ciBytes = enc.encode(ci), H = enc.encode("H"), G = enc.encode("G");
    // CPace itself (cpace.js on noble), from the scalars: both shares and
    // the ISK from both sides.
    const a = cpace._startWithScalar(pw, ciBytes, sid, H, ya);
    const b = cpace._startWithScalar(pw, ciBytes, sid, G, yb);
    eq("share_host (Ya)", c.hex(a.share), v.text("share_host_hex"));
    eq("share_guest (Yb)", c.hex(b.share), v.text("share_guest_hex"));
    const isk = cpace.finish(a.state, b.share, G, cpace.INITIATOR);
    eq("isk (host)", c.hex(isk), v.text("isk_hex"));
    eq("isk (guest)", c.hex(cpace.finish(b.state, a.share, H, cpace.RESPONDER)), v.text("isk_hex"));
    // master and confirm_G from the ISK with nothing but Web Crypto.
    const hkdf = async (info) => {
      const k = await subtle.importKey("raw", isk, "HKDF", false, ["deriveBits"]);
      return c.hex(new Uint8Array(await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(), info: enc.encode(info) }, k, 256)));
    };
    eq("master = HKDF(ISK)", await hkdf("tryst/v3/master"), v.text("master_hex"));
    eq("confirm_G = HKDF(ISK)", await hkdf("tryst/v3/confirm-guest"), v.text("confirm_guest_hex"));

    // The exchange as app.js runs it (crypto.js), from the same scalars:
    // the host's share, the guest's reply, the host's check.
    const h = cpace._startWithScalar(pw, ciBytes, sid, H, ya);
    const { ex, msg: share } = c.HostExchange.from(cpace, h.state, h.share, sid, room);
    eq("msg_share", share, v.text("msg_share"));
    const dShare = c.decodePAKE(share);
    eq("share decoded", `${dShare.kind} ${c.hex(dShare.sid)} ${c.hex(dShare.share)}`, `${c.PAKE.SHARE} ${c.hex(sid)} ${v.text("share_host_hex")}`);
    const gs = cpace._startWithScalar(pw, ciBytes, sid, G, yb);
    const g = await c.respondFrom(cpace, gs.state, gs.share, dShare);
    eq("msg_reply", g.msg, v.text("msg_reply"));
    eq("guest master", c.hex(g.epoch.master), v.text("master_hex"));
    eq("guest sid", c.hex(g.epoch.sid), c.hex(sid));
    const dReply = c.decodePAKE(g.msg);
    eq("reply decoded", `${dReply.kind} ${c.hex(dReply.sid)} ${c.hex(dReply.share)} ${c.hex(dReply.confirm)}`,
      `${c.PAKE.REPLY} ${c.hex(sid)} ${v.text("share_guest_hex")} ${v.text("confirm_guest_hex")}`);
    const epoch = await ex.finish(dReply);
    eq("host master", c.hex(epoch.master), v.text("master_hex"));
    eq("host sid", c.hex(epoch.sid), c.hex(sid));
    master = epoch.master;
    eq("msg_failed", c.failedMessage(sid), v.text("msg_failed"));
    eq("msg_need", c.needMessage(sid), v.text("msg_need"));
    eq("msg_need_any", c.needMessage(), v.text("msg_need_any"));
    for (const [name, kind] of [["msg_failed", c.PAKE.FAILED], ["msg_need", c.PAKE.NEED], ["msg_need_any", c.PAKE.NEED]]) {
      const m = c.decodePAKE(v.text(name));
      eq(name + " decoded", `${m.kind} ${c.hex(m.sid)}`, `${kind} ${name === "msg_need_any" ? "00".repeat(16) : c.hex(sid)}`);
    }
    eq("need_any is any", c.anyEpoch(c.decodePAKE(v.text("msg_need_any")).sid) && !c.anyEpoch(sid), true);

    // The host's check: a confirm_G one bit off, and a reply from a guest
    // with another password, are mismatches; so is an invalid Yb.
    const again = () => c.HostExchange.from(cpace, cpace._startWithScalar(pw, ciBytes, sid, H, ya).state, h.share, sid, room).ex;
    const flipped = { ...dReply, confirm: dReply.confirm.slice() };
    flipped.confirm[31] ^= 1;
    if (!await throws(() => again().finish(flipped), c.MismatchError)) throw new Error("a wrong confirm_G was accepted");
    const os = cpace._startWithScalar(enc.encode(password + "!"), ciBytes, sid, G, yb);
    const other = await c.respondFrom(cpace, os.state, os.share, dShare);
    if (c.hex(other.epoch.master) === v.text("master_hex")) throw new Error("another password gave the same master");
    if (!await throws(() => again().finish(c.decodePAKE(other.msg)), c.MismatchError)) throw new Error("another password's reply was accepted");
    if (!await throws(() => again().finish({ ...dReply, share: new Uint8Array(32) }), c.MismatchError)) throw new Error("the identity as Yb was accepted");
    if (!await throws(() => c.respond(password, room, { ...dShare, share: new Uint8Array(32).fill(0xff) }), c.MismatchError)) {
      throw new Error("an undecodable Ya was answered");
    }
  },
  async "signal-key"(v, eq) {
    eq("master", v.text("master_hex"), c.hex(master));
    eq("info", v.text("info"), "tryst/v1/signal");
    signalKey = v.bytes("key_hex");
    // A blob crypto.js seals opens under the document's k_signal.
    const sig = await c.Signaler.create({ sid, master }, "K7Q-MX2-P9R-TVW-4HN-C8D");
    const blob = c.unb64url((await sig.seal("offer", "H", enc.encode("x"))).slice(3));
    eq("blob sid", c.hex(blob.slice(0, 16)), c.hex(sid));
    const pt = await rawOpen(signalKey, blob.slice(16, 28), blob.slice(28), sig.aad("offer", "H"));
    eq("opened under key", dec.decode(pt), "x");
  },
  ...Object.fromEntries(["seal-minimal", "seal-offer", "seal-answer", "seal-mismatch", "seal-restart", "seal-restart-relay"].map((name) => [name, async (v, eq) => {
    eq("master", v.text("master_hex"), c.hex(master));
    // The pake vector's epoch seals the blobs.
    eq("sid", v.text("sid_hex"), c.hex(sid));
    const sig = await c.Signaler.create({ sid: v.bytes("sid_hex"), master }, v.text("room"));
    const kind = v.text("kind"), from = v.role("sender");
    eq("aad", dec.decode(sig.aad(kind, from)), v.text("aad"));
    const pt = v.text("plaintext");
    const blob = v.text("blob");
    eq("blob", await sig.seal(kind, from, enc.encode(pt), v.bytes("nonce_hex")), blob);
    eq("blob sid", c.hex(c.blobSID(blob)), v.text("sid_hex"));
    eq("opened", dec.decode(await sig.open(kind, from, blob)), pt);
    // The outcomes of docs/PROTOCOL.md, "Sealed signaling", told apart.
    if (!await throws(() => sig.open(kind, from === "H" ? "G" : "H", blob), c.MismatchError)) {
      throw new Error(`${name}: opened as sent by the other role`);
    }
    const otherSID = v.bytes("sid_hex");
    otherSID[0] ^= 1;
    const other = await c.Signaler.create({ sid: otherSID, master }, v.text("room"));
    try {
      await other.open(kind, from, blob);
      throw new Error(`${name}: opened under another epoch`);
    } catch (e) {
      if (!(e instanceof c.OtherEpochError) || c.hex(e.sid) !== v.text("sid_hex")) throw new Error(`${name}: another epoch's Signaler threw ${e}`);
    }
    const otherMaster = await c.Signaler.create({ sid: v.bytes("sid_hex"), master: new Uint8Array(32) }, v.text("room"));
    if (!await throws(() => otherMaster.open(kind, from, blob), c.MismatchError)) throw new Error(`${name}: opened under another master`);
    if (!await throws(() => sig.open(kind, from, "v1." + blob.slice(3)), c.OldPeerError)) throw new Error(`${name}: a v1. blob is not an old peer's`);
    for (const bad of ["x3." + blob.slice(3), blob.slice(0, 3 + 58), blob + "=", blob.slice(0, -1) + "!", "s3.", "s3" + blob.slice(2, 40)]) {
      if (!await throws(() => sig.open(kind, from, bad), c.MalformedError)) throw new Error(`${name}: ${bad.slice(0, 12)}… is not malformed`);
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
