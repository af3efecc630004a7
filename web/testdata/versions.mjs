// Checks how peer.js meets the other side's protocol version in the sealed
// offer and answer (docs/PROTOCOL.md, Versions): run by versions_test.go;
// prints "ok" or throws.
import * as c from "../static/crypto.js";
import { OldPeerError, openAnswer, openOffer } from "../static/peer.js";
import { TEXT_OLD_PEER } from "../static/protocol.js";

const enc = new TextEncoder();
const master = c.randomBytes(32);
const room = "K7Q-MX2-P9R-TVW-4HN-C8D";
const sig = await c.Signaler.create(master, room);
const other = await c.Signaler.create(c.randomBytes(32), room);
const seal = (kind, from, obj, s = sig) => s.seal(kind, from, enc.encode(JSON.stringify(obj)));
const nonce = c.b64std(c.randomBytes(32));

async function rejects(f, cls, what) {
  try { await f(); } catch (e) { if (e instanceof cls) return; throw new Error(`${what}: threw ${e}`); }
  throw new Error(`${what}: did not throw`);
}

// An offer without a version, or version 1: a version 1 host.
await rejects(async () => openOffer(sig, await seal("offer", "H", { sdp: "v=0", nonce })), OldPeerError, "offer without version");
await rejects(async () => openOffer(sig, await seal("offer", "H", { sdp: "v=0", nonce, version: 1 })), OldPeerError, "offer version 1");
// Version 2, and a later one (spoken as 2), are taken.
for (const version of [2, 3]) {
  const o = await openOffer(sig, await seal("offer", "H", { sdp: "v=0", nonce, version }));
  if (o.sdp !== "v=0") throw new Error(`offer version ${version} not opened`);
}
// A blob under another password is a mismatch, whatever it holds.
await rejects(async () => openOffer(sig, await seal("offer", "H", { sdp: "v=0", nonce, version: 2 }, other)), c.MismatchError, "offer under another key");

// Answers: the host's peer (only what openAnswer reads of it).
const peer = { closed: false, nonceHost: c.unb64std(nonce) };
await rejects(async () => openAnswer(peer, sig, await seal("answer", "G", { sdp: "v=0", nonce, offer_nonce: nonce })), OldPeerError, "answer without version");
const mm = await openAnswer(peer, sig, await seal("answer", "G", { mismatch: true }));
if (mm.mismatch !== true) throw new Error("a mismatch answer (no version) was not taken as one");
const stale = await openAnswer(peer, sig, await seal("answer", "G", { sdp: "v=0", nonce, offer_nonce: "other", version: 2 }));
if (stale.stale !== true) throw new Error("an answer to another offer was not stale");

const want = "the other person's Tryst speaks protocol version 1; it must be updated (reload the page, or install a newer tryst)";
if (TEXT_OLD_PEER !== want) throw new Error(`the sentence for a version 1 peer: ${TEXT_OLD_PEER}`);
console.log("ok");
