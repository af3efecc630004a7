// Checks crypto.js's PAKE (docs/PROTOCOL.md, "PAKE") beyond the document's
// vector: the messages' exact lengths and encodings (anything else is
// malformed and ignored), and exchanges with random scalars, matching and
// not. Run by pake_test.go as
// `node --import ./testdata/importmap.mjs testdata/pake.mjs`; prints "ok" or
// throws.
import { strict as assert } from "node:assert";
import * as c from "../static/crypto.js";

const room = "K7Q-MX2-P9R-TVW-4HN-C8D";
const sid = c.randomBytes(c.SID_SIZE);
const bytes = (n, v = 7) => new Uint8Array(n).fill(v);
const raw = (...parts) => "c3." + c.b64url(c.concat(...parts));

// Each kind at its length decodes; one byte more or less, another kind,
// or no sid is malformed.
const bodies = { [c.PAKE.SHARE]: 32, [c.PAKE.REPLY]: 64, [c.PAKE.FAILED]: 0, [c.PAKE.NEED]: 0 };
for (const [kind, n] of Object.entries(bodies).map(([k, n]) => [Number(k), n])) {
  const m = c.decodePAKE(raw(Uint8Array.of(kind), sid, bytes(n)));
  assert.ok(m, `kind ${kind} of ${n} bytes`);
  assert.equal(m.kind, kind);
  assert.equal(c.hex(m.sid), c.hex(sid));
  if (kind === c.PAKE.SHARE || kind === c.PAKE.REPLY) assert.equal(m.share.length, 32);
  if (kind === c.PAKE.REPLY) assert.equal(m.confirm.length, 32);
  assert.equal(c.decodePAKE(raw(Uint8Array.of(kind), sid, bytes(n + 1))), null, `kind ${kind} with a byte more`);
  if (n > 0) assert.equal(c.decodePAKE(raw(Uint8Array.of(kind), sid, bytes(n - 1))), null, `kind ${kind} with a byte less`);
  assert.equal(c.decodePAKE(raw(Uint8Array.of(kind), sid.slice(0, 15))), null, `kind ${kind} with a short sid`);
  // encodePAKE writes what decodePAKE reads.
  const again = c.decodePAKE(c.encodePAKE(m));
  assert.deepEqual(again, m);
}
for (const kind of [0, 5, 255]) assert.equal(c.decodePAKE(raw(Uint8Array.of(kind), sid)), null, `kind ${kind}`);
const good = raw(Uint8Array.of(c.PAKE.SHARE), sid, bytes(32));
assert.ok(c.decodePAKE(good));
for (const bad of [
  "", "c3.", "c3", "C3." + good.slice(3), "s3." + good.slice(3), "v1." + good.slice(3), " " + good, good + " ",
  good + "=", "c3.+" + good.slice(4), "c3./" + good.slice(4), good + "A", good.slice(0, -1),
  null, undefined, 42,
]) {
  assert.equal(c.decodePAKE(bad), null, `malformed ${JSON.stringify(bad)}`);
}
// Not canonical: the unused low bits of the last character set. A share is
// 49 bytes, 66 characters: the last carries 2 bits of data and 4 unused.
const last = good.at(-1);
const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const i = alphabet.indexOf(last);
assert.equal(i & 3, 0, "the canonical encoding has zero unused bits");
assert.equal(c.decodePAKE(good.slice(0, -1) + alphabet[i | 1]), null, "non-canonical base64url");
// The fixed messages.
assert.equal(c.needMessage(), "c3.BAAAAAAAAAAAAAAAAAAAAAA");
assert.ok(c.anyEpoch(c.decodePAKE(c.needMessage()).sid));
assert.equal(c.decodePAKE(c.failedMessage(sid)).kind, c.PAKE.FAILED);
assert.ok(c.isPAKE(good) && !c.isPAKE("s3.x") && !c.isPAKE(null));

// Exchanges with fresh random scalars: the same password gives both sides
// the same epoch; another password, a mismatch on the host; every share
// and every epoch differs.
const masters = new Set();
for (const [pwHost, pwGuest] of [["correct horse", "correct horse"], ["pässwörd 🐎", "pässwörd 🐎"], ["right", "wrong"], ["a", "a "]]) {
  const { ex, msg } = await c.HostExchange.start(pwHost, room);
  const share = c.decodePAKE(msg);
  assert.equal(share.kind, c.PAKE.SHARE);
  assert.equal(share.sid.length, 16);
  const g = await c.respond(pwGuest, room, share);
  assert.equal(c.hex(g.epoch.sid), c.hex(share.sid));
  masters.add(c.hex(g.epoch.master));
  const reply = c.decodePAKE(g.msg);
  if (pwHost === pwGuest) {
    const epoch = await ex.finish(reply);
    assert.equal(c.hex(epoch.master), c.hex(g.epoch.master), `${pwHost}: the two masters`);
    assert.equal(c.hex(epoch.sid), c.hex(share.sid));
    // Both sides' Signalers open each other's blobs.
    const h = await c.Signaler.create(epoch, room), gs = await c.Signaler.create(g.epoch, room);
    assert.equal(new TextDecoder().decode(await gs.open("offer", "H", await h.seal("offer", "H", new TextEncoder().encode("o")))), "o");
  } else {
    await assert.rejects(ex.finish(reply), c.MismatchError, `${pwHost} / ${pwGuest}`);
  }
  // An exchange is spent once finished, or once it failed.
  await assert.rejects(ex.finish(reply), /already finished/);
}
assert.equal(masters.size, 4, "each exchange's master differs");
// A reply to another exchange is not this one's.
{
  const { ex } = await c.HostExchange.start("pw", room);
  const { msg } = await c.HostExchange.start("pw", room);
  const g = await c.respond("pw", room, c.decodePAKE(msg));
  await assert.rejects(ex.finish(c.decodePAKE(g.msg)), c.MalformedError);
  await assert.rejects(c.respond("pw", room, c.decodePAKE(g.msg)), c.MalformedError, "a reply answered as a share");
}
// The room is bound (CI): the same password in another room mismatches.
{
  const { ex, msg } = await c.HostExchange.start("pw", room);
  const g = await c.respond("pw", "ABC-DEF-GHJ-KMN-PQR-STV", c.decodePAKE(msg));
  await assert.rejects(ex.finish(c.decodePAKE(g.msg)), c.MismatchError);
}
// No empty password.
await assert.rejects(c.HostExchange.start("", room), /empty password/);
console.log("ok");
