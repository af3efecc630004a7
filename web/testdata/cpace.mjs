// Runs web/static/cpace.js under Node for cpace_test.go, with the vendored
// noble libraries resolved through index.html's import map:
//
//   node --import ./testdata/importmap.mjs testdata/cpace.mjs vectors  < VECTORS.json
//   node --import ./testdata/importmap.mjs testdata/cpace.mjs exchange < CASES.json
//
// vectors checks the draft's test vectors (hex strings, as cpace_test.go
// copies them from client/cpace) and cpace.js's own rules, printing
// "checked NAME" per check, then "ok", or throws. exchange plays one side
// of each case against the Go side and prints a JSON array of
// {share, isk} (hex), or {error}.
import { readFileSync } from "node:fs";
import { strict as assert } from "node:assert";
import { sha512 } from "@noble/hashes/sha2.js";
import * as c from "../static/cpace.js";

const hex = (b) => Buffer.from(b).toString("hex");
const unhex = (s) => new Uint8Array(Buffer.from(s, "hex"));
const input = JSON.parse(readFileSync(0, "utf8"));

function eq(name, got, want) {
  assert.equal(hex(got), want, name);
  console.log("checked " + name);
}
function throwsInvalid(name, f) {
  assert.throws(f, c.InvalidShareError, name);
  console.log("checked " + name);
}

function vectors(v) {
  const b = Object.fromEntries(Object.entries(v.b3).map(([k, s]) => [k, unhex(s)]));
  const { _internals: i } = c;

  // Appendix A.1.2, A.1.4: prepend_len and lv_cat.
  for (const n of [0, 4, 127, 128]) {
    const a = Uint8Array.from({ length: n }, (_, j) => j);
    const want = v.a.prepend_len[String(n)];
    assert.equal(hex(i.lvCat(a)), want + hex(a), `prepend_len(${n} bytes)`);
  }
  console.log("checked prepend_len");
  eq("lv_cat", i.lvCat(...v.a.lv_cat.args.map(unhex)), v.a.lv_cat.want);
  // Appendix A.3.3, A.3.5, A.3.7: o_cat and the transcripts.
  for (const o of v.a.o_cat) eq(`o_cat(${o.a},${o.b})`, i.oCat(unhex(o.a), unhex(o.b)), o.want);
  for (const tr of v.a.transcripts) {
    const f = tr.kind === "ir" ? i.transcriptIR : i.transcriptOC;
    eq(`transcript_${tr.kind}(${tr.ya})`, f(unhex(tr.ya), unhex(tr.ada), unhex(tr.yb), unhex(tr.adb)), tr.want);
  }

  // Appendix B.3.1: the generator.
  const gs = i.generatorString(b.prs, b.ci, b.sid);
  eq("generator_string", gs, v.b3.generator_string);
  eq("hash result", sha512(gs), v.b3.generator_hash);
  eq("encoded generator g", i.generator(b.prs, b.ci, b.sid), v.b3.g);

  // B.3.2, B.3.3: the messages.
  eq("Ya", c._startWithScalar(b.prs, b.ci, b.sid, b.ada, b.ya).share, v.b3.Ya);
  eq("Yb", c._startWithScalar(b.prs, b.ci, b.sid, b.adb, b.yb).share, v.b3.Yb);
  // B.3.4: K from both sides.
  eq("scalar_mult_vfy(ya,Yb)", i.scalarMultVfy(b.ya, b.Yb), v.b3.K);
  eq("scalar_mult_vfy(yb,Ya)", i.scalarMultVfy(b.yb, b.Ya), v.b3.K);
  // B.3.5, B.3.6: transcripts and ISK as finish gives it to each side.
  eq("transcript_ir", i.transcriptIR(b.Ya, b.ada, b.Yb, b.adb), v.b3.transcript_ir);
  eq("transcript_oc", i.transcriptOC(b.Ya, b.ada, b.Yb, b.adb), v.b3.transcript_oc);
  for (const [name, y, ad, peer, peerAD, role, want] of [
    ["ISK_IR for A", b.ya, b.ada, b.Yb, b.adb, c.INITIATOR, v.b3.isk_ir],
    ["ISK_IR for B", b.yb, b.adb, b.Ya, b.ada, c.RESPONDER, v.b3.isk_ir],
    ["ISK_SY for A", b.ya, b.ada, b.Yb, b.adb, c.SYMMETRIC, v.b3.isk_sy],
    ["ISK_SY for B", b.yb, b.adb, b.Ya, b.ada, c.SYMMETRIC, v.b3.isk_sy],
  ]) {
    const { state } = c._startWithScalar(b.prs, b.ci, b.sid, ad, y);
    eq(name, c.finish(state, peer, peerAD, role), want);
  }
  // B.3.10, B.3.11: scalar_mult_vfy on a valid point and on invalid ones,
  // which finish refuses too.
  eq("G.scalar_mult_vfy(s,X)", i.scalarMultVfy(b.mult_s, b.mult_X), v.b3.mult_K);
  for (const bad of v.invalid) {
    throwsInvalid(`scalar_mult_vfy(s,${bad})`, () => i.scalarMultVfy(b.mult_s, unhex(bad)));
    const { state } = c.start(b.prs, b.ci, b.sid, b.ada);
    throwsInvalid(`finish with ${bad}`, () => c.finish(state, unhex(bad), b.adb, c.INITIATOR));
  }

  // cpace.js's own rules, as client/cpace's tests hold them.
  for (const n of [0, 31, 33, 64]) {
    const { state } = c.start(b.prs, b.ci, b.sid, b.ada);
    throwsInvalid(`finish with a ${n}-byte share`, () => c.finish(state, new Uint8Array(n).fill(2), b.adb, c.INITIATOR));
  }
  // 2^255-1 (all ones but the top bit): not a canonical field element.
  const { state: s0 } = c.start(b.prs, b.ci, b.sid, b.ada);
  throwsInvalid("finish with a non-canonical encoding", () => c.finish(s0, new Uint8Array(32).fill(0xff).fill(0x7f, 31), b.adb, c.INITIATOR));

  // Random scalars: both sides agree in each setting; a different PRS, CI,
  // sid or AD (as the peer sees it) gives different keys.
  for (const [roleA, roleB] of [[c.INITIATOR, c.RESPONDER], [c.SYMMETRIC, c.SYMMETRIC]]) {
    const a = c.start(b.prs, b.ci, b.sid, b.ada), bb = c.start(b.prs, b.ci, b.sid, b.adb);
    assert.notEqual(hex(a.share), hex(bb.share));
    const ka = c.finish(a.state, bb.share, b.adb, roleA), kb = c.finish(bb.state, a.share, b.ada, roleB);
    assert.equal(ka.length, c.ISK_SIZE);
    assert.equal(hex(ka), hex(kb), `round trip ${roleA}/${roleB}`);
    // A spent state: finish again is refused, and not as an invalid share.
    assert.throws(() => c.finish(a.state, bb.share, b.adb, roleA), (e) => !(e instanceof c.InvalidShareError) && /twice/.test(e.message));
  }
  console.log("checked round trips and spent states");
  const other = new TextEncoder().encode("x");
  for (const [what, f] of [
    ["PRS", (p) => [other, p.ci, p.sid, p.ad]],
    ["CI", (p) => [p.prs, other, p.sid, p.ad]],
    ["sid", (p) => [p.prs, p.ci, other, p.ad]],
  ]) {
    const a = c.start(b.prs, b.ci, b.sid, b.ada);
    const bb = c.start(...f({ prs: b.prs, ci: b.ci, sid: b.sid, ad: b.adb }));
    assert.notEqual(hex(c.finish(a.state, bb.share, b.adb, c.INITIATOR)), hex(c.finish(bb.state, a.share, b.ada, c.RESPONDER)), what);
  }
  {
    const a = c.start(b.prs, b.ci, b.sid, b.ada), bb = c.start(b.prs, b.ci, b.sid, b.adb);
    assert.notEqual(hex(c.finish(a.state, bb.share, b.adb, c.INITIATOR)), hex(c.finish(bb.state, a.share, other, c.RESPONDER)), "AD");
  }
  console.log("checked mismatched PRS, CI, sid and AD");
  // An unknown role is a caller's bug: refused without spending the state.
  const a = c.start(b.prs, b.ci, b.sid, b.ada), bb = c.start(b.prs, b.ci, b.sid, b.adb);
  assert.throws(() => c.finish(a.state, bb.share, b.adb, "both"), TypeError);
  c.finish(a.state, bb.share, b.adb, c.INITIATOR);
  assert.throws(() => c.start("Password", b.ci, b.sid, b.ada), TypeError);
  assert.throws(() => c._startWithScalar(b.prs, b.ci, b.sid, b.ada, new Uint8Array(32)), RangeError);
  console.log("checked argument errors");
}

function exchange(cases) {
  return cases.map((k) => {
    try {
      const { state, share } = c.start(unhex(k.prs), unhex(k.ci), unhex(k.sid), unhex(k.ad));
      const isk = c.finish(state, unhex(k.peer_share), unhex(k.peer_ad), k.role);
      return { share: hex(share), isk: hex(isk) };
    } catch (e) {
      return { error: String(e) };
    }
  });
}

switch (process.argv[2]) {
  case "vectors":
    vectors(input);
    console.log("ok");
    break;
  case "exchange":
    console.log(JSON.stringify(exchange(input)));
    break;
  default:
    throw new Error(`unknown mode ${process.argv[2]}`);
}
