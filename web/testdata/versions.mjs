// Checks how peer.js and crypto.js meet the other side's protocol version
// and epoch in the sealed offer and answer (docs/PROTOCOL.md, "Versions"
// and "Sealed signaling"): run by versions_test.go; prints "ok" or throws.
import * as c from "../static/crypto.js";
import { OldPeerError, openAnswer, openOffer } from "../static/peer.js";
import { TEXT_OLD_PEER } from "../static/protocol.js";

const enc = new TextEncoder();
const room = "K7Q-MX2-P9R-TVW-4HN-C8D";
const epoch = { sid: c.randomBytes(16), master: c.randomBytes(32) };
const sig = await c.Signaler.create(epoch, room);
// The same epoch's sid under another master (another password: the blob
// names this side's epoch but does not open), and another epoch.
const otherMaster = await c.Signaler.create({ sid: epoch.sid, master: c.randomBytes(32) }, room);
const otherEpoch = await c.Signaler.create({ sid: c.randomBytes(16), master: epoch.master }, room);
const seal = (kind, from, obj, s = sig) => s.seal(kind, from, enc.encode(JSON.stringify(obj)));
const nonce = c.b64std(c.randomBytes(32));

async function rejects(f, cls, what) {
  try { await f(); } catch (e) { if (e instanceof cls) return e; throw new Error(`${what}: threw ${e}`); }
  throw new Error(`${what}: did not throw`);
}

// Inside a sealed offer, no version, or one below 3: a client of an older
// version (it cannot have sealed it; refused as an old peer all the same).
for (const version of [undefined, 1, 2]) {
  await rejects(async () => openOffer(sig, await seal("offer", "H", { sdp: "v=0", nonce, version })), OldPeerError, `offer version ${version}`);
}
// Version 3, and a later one (spoken as 3), are taken.
for (const version of [3, 4]) {
  const o = await openOffer(sig, await seal("offer", "H", { sdp: "v=0", nonce, version }));
  if (o.sdp !== "v=0") throw new Error(`offer version ${version} not opened`);
}
// A version 1 or 2 client's blob ("v1."): an old peer, whatever it holds.
const legacy = "v1." + c.b64url(c.randomBytes(60));
await rejects(() => openOffer(sig, legacy), OldPeerError, "a v1. offer");
// The epoch's sid under another master: a mismatch, whatever it holds.
await rejects(async () => openOffer(sig, await seal("offer", "H", { sdp: "v=0", nonce, version: 3 }, otherMaster)), c.MismatchError, "offer under another master");
// Another epoch: not a mismatch; the error names it (a guest answers need).
const oe = await rejects(async () => openOffer(sig, await seal("offer", "H", { sdp: "v=0", nonce, version: 3 }, otherEpoch)), c.OtherEpochError, "offer of another epoch");
if (c.hex(oe.sid) !== c.hex(otherEpoch.sid)) throw new Error("OtherEpochError does not name the blob's epoch");
// A PAKE message, or anything else, is no sealed blob.
for (const bad of [c.needMessage(), "", "s3.", "s3.!!!!", "hello"]) {
  await rejects(() => openOffer(sig, bad), c.MalformedError, `offer ${JSON.stringify(bad)}`);
}

// Answers: the host's peer (only what openAnswer reads of it).
const peer = { closed: false, nonceHost: c.unb64std(nonce) };
for (const version of [undefined, 2]) {
  await rejects(async () => openAnswer(peer, sig, await seal("answer", "G", { sdp: "v=0", nonce, offer_nonce: nonce, version })), OldPeerError, `answer version ${version}`);
}
await rejects(() => openAnswer(peer, sig, legacy), OldPeerError, "a v1. answer");
const mm = await openAnswer(peer, sig, await seal("answer", "G", { mismatch: true }));
if (mm.mismatch !== true) throw new Error("a mismatch answer (no version) was not taken as one");
await rejects(async () => openAnswer(peer, sig, await seal("answer", "G", { mismatch: true }, otherMaster)), c.MismatchError, "a mismatch answer under the guest's own key");
const stale = await openAnswer(peer, sig, await seal("answer", "G", { sdp: "v=0", nonce, offer_nonce: "other", version: 3 }));
if (stale.stale !== true) throw new Error("an answer to another offer was not stale");

const want = "the other person's Tryst speaks an older protocol version; it must be updated (reload the page, or install a newer tryst)";
if (TEXT_OLD_PEER !== want) throw new Error(`the sentence for an older peer: ${TEXT_OLD_PEER}`);
console.log("ok");
