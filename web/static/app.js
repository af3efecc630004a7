// Tryst browser client: the wiring between the hub (hub.js), the
// connection to the other person (peer.js), chat, files (transfer.js),
// what is kept (storage.js) and the page (ui.js). The same protocol and
// cryptography as the Go client (docs/PROTOCOL.md): a CPace exchange
// through the hub gives both sides an epoch, under which every offer,
// answer and restart request is sealed, across reconnects and reloads.
//
// Everything lives in this module's scope: nothing is put on window, so no
// other script on the page can reach the password, the epoch or the
// connection.

import * as c from "./crypto.js";
import * as ui from "./ui.js";
import * as storage from "./storage.js";
import { Hub } from "./hub.js";
import { OldPeerError, Peer, answer, jsonOf, mismatchAnswer, offer, openAnswer, openOffer } from "./peer.js";
import { Store, Transfers } from "./transfer.js";
import {
  CLOSED_GUESS_LIMIT, GUESS_LIMIT, MAX_CHAT_TEXT, MSG, REPORT_FAILED_CONFIRMATION, TEXT_OLD_PEER, normalizeCode, shown,
} from "./protocol.js";

const { $ } = ui;
const enc = new TextEncoder();

// A host that hears the other side come back to the hub while its own
// connection still looks up asks that connection for a sign of life: a
// live peer answers within this (frames arrive at least every 5 s).
const PROBE_MS = 5000;

// What each side says when the room closes at the guess limit: this side
// reached it, or the other side did (room-closed with code guess_limit).
const TEXT_LIMIT_HERE = `The room was closed after ${GUESS_LIMIT} failed password attempts: the passwords differ, or ` +
  "someone was trying to guess the password. Nothing was decrypted or sent.";
const TEXT_LIMIT_THERE = "The other person's Tryst closed the room after too many failed password attempts: the " +
  "passwords differ, or someone was trying to guess the password.";

const s = {
  room: null, role: null, ice: null,
  // The password, in this module's memory only (never stored): a fresh
  // exchange may need it again.
  password: null,
  // The current epoch {sid, master} and its Signaler (docs/PROTOCOL.md,
  // "PAKE"). The host holds an epoch or an exchange in flight (exchange: a
  // crypto.js HostExchange), the guest an epoch or a pending exchange
  // (pending: the epoch its reply leads to, with its Signaler, the share it
  // answered and its reply), never both.
  epoch: null, signaler: null, exchange: null, pending: null,
  // A share that arrived while no password was in memory (guest): answered
  // once the password is typed.
  waitingShare: null,
  unreported: 0, // failed confirmations not yet reported to the hub
  relayOnly: false, auto: true,
  peer: null, conns: 0, ended: false, leaving: false, mismatched: false,
  guestJoined: false, // the host's invite is wanted until the guest has joined
  transfers: null, store: null,
};

// Hub frames that move the exchange and the signaling on are handled one at
// a time, in arrival order: each may change the epoch the next one needs.
// What waits for WebRTC (ICE gathering) runs outside this queue.
let signaling = Promise.resolve();
function serially(fn) {
  const run = signaling.then(fn);
  signaling = run.catch((e) => console.error(e));
  return run;
}

const hub = new Hub({
  peerUp,
  relayWait,
  onAttached,
  onFrame: onHubFrame,
  onState: showState,
  onRoomGone: () => end("This room no longer exists (it expired or was closed).", true),
  onFatal: (text) => end(text, true),
  onToken: () => saveRoom(),
  onReplaced: () => {
    // This tab is no longer the room's: nothing to type here.
    closePeer();
    s.ended = true;
    ui.ended();
    ui.invite(false, false);
    ui.state("ended", "Opened in another tab");
    ui.alert("This room is now open in another tab of this browser. Chat goes on there.", "Reconnect", () => location.reload());
  },
});

function peerUp() { return !!s.peer && s.peer.up(); }

// relayWait is how long before a resume would bring back a relay the hub
// withheld (docs/PROTOCOL.md, credential budget); 0 otherwise.
function relayWait() { return s.ice && s.ice.limited ? (s.ice.retry_after || 5) * 1000 : 0; }

function saveRoom() {
  if (!s.room || s.ended || s.leaving) return;
  storage.saveRoom({ room: s.room, role: s.role, token: hub.token, auto: s.auto }).catch((e) => console.error(e));
}

// showState renders the room's state from the hub's and the connection's.
function showState() {
  if (s.ended) return;
  if (hub.state === "down") ui.hub("down", "Hub unreachable; reconnecting…");
  else if (hub.state === "gone") {
    ui.hub("gone", "The hub no longer knows this room: chat goes on, but a lost connection could not be restored.");
  } else ui.hub("up", "");
  if (s.mismatched) return;
  if (peerUp()) ui.state("connected", "Connected");
  else if (!s.epoch && !s.pending && !s.password) ui.state("idle", s.role === "H" ? "Choose the password" : "Not connected");
  else if (hub.state !== "up") ui.state("reconnecting", s.conns ? "Connection lost; reconnecting…" : "Reaching the hub…");
  else if (s.peer) ui.state("connecting", "Connecting to the other person…");
  else if (s.conns) ui.state("reconnecting", "Waiting for the other person to come back…");
  else ui.state("waiting", "Waiting for the other person…");
}

function note(text) {
  ui.note(text);
  if (s.room) storage.appendHistory(s.room, { kind: "note", text, ts: Date.now() }).catch(() => {});
}

// ---------- the hub ----------

async function onAttached(f) {
  s.room = f.room;
  s.role = f.role === "host" ? "H" : "G";
  s.ice = f.ice;
  if (!s.transfers) startRoom();
  if (f.ice && f.ice.limited) {
    note("The hub sent no relay this time (too many requests from your network address). Direct connections " +
      `still work; the relay comes back when reconnecting, in about ${f.ice.retry_after || 5} s.`);
  }
  if (f.type === "created") {
    ui.share(`${location.origin}${location.pathname}#${s.room}`, s.room);
  }
  if (s.role === "H" && (f.type === "joined" || f.peer)) s.guestJoined = true;
  saveRoom();
  showInvite();
  await serially(() => attached(f));
}

async function attached(f) {
  flushReports();
  if (peerUp()) {
    // The hub came back under a live connection: keep it, but make sure
    // the other side is still at its end.
    showState();
    if (s.role === "H" && f.peer) probe(s.peer);
    return;
  }
  showState();
  if (s.mismatched) return; // nothing by itself after a failed confirmation
  if (s.role === "H") {
    if (s.epoch || s.exchange || s.password) await hostOffer();
  } else if (f.type === "resumed" && f.peer) {
    // The host is there and this side has no live connection: ask for an
    // offer now rather than wait for the host to notice the silence.
    // Under the epoch, a sealed restart request; with nothing to seal it
    // under (a tab that kept no epoch), need for a fresh exchange; with a
    // pending exchange, nothing: its offer is on the way.
    if (s.epoch) restartRequest();
    else if (!s.pending && s.password) hub.send({ type: "answer", data: c.needMessage() });
  }
}

async function onHubFrame(f) {
  switch (f.type) {
    case "offer": if (s.role === "G") await serially(() => guestOffer(f.data)); break;
    case "answer": if (s.role === "H") await serially(() => hostAnswer(f.data)); break;
    case "candidate": if (s.role === "H") await serially(() => hostCandidate(f.data)); break;
    case "peer-joined":
      s.guestJoined = true;
      showInvite();
      if (!peerUp()) ui.state("connecting", "The other person joined; connecting…");
      break;
    case "peer-back":
      s.guestJoined = true;
      showInvite();
      if (s.role !== "H") break;
      await serially(async () => {
        if (s.mismatched) return;
        if (peerUp()) probe(s.peer);
        else await hostOffer();
      });
      break;
    case "peer-left":
      // Their hub connection ended; a live connection to them goes on.
      showState();
      break;
    case "room-closed":
      // After the frames before it (a failed, say).
      await serially(() => {
        if (s.ended) return;
        if (f.code === CLOSED_GUESS_LIMIT) {
          storage.closeRoom(s.room, "there").catch((e) => console.error(e));
          end(TEXT_LIMIT_THERE, true);
        } else end("The other person left the room.", true);
      });
      break;
    case "error":
      if (!hub.hubError(f)) note("Hub: " + shown(String(f.message || f.code).slice(0, 300)));
      break;
  }
}

// probe: if no frame arrives within PROBE_MS, the connection is given up
// and a fresh offer made.
function probe(p) {
  const since = Date.now();
  p.ping();
  setTimeout(() => {
    if (p === s.peer && !p.closed && p.lastRecv < since) failPeer(p, "the other person reconnected");
  }, PROBE_MS);
}

// ---------- the exchange and the signaling (docs/PROTOCOL.md, "PAKE", "Signaling") ----------

// setEpoch makes epoch the current one and keeps it for a reload.
async function setEpoch(epoch, signaler = null) {
  s.epoch = epoch;
  s.signaler = signaler || await c.Signaler.create(epoch, s.room);
  s.exchange = null;
  s.pending = null;
  storage.dropPending();
  s.mismatched = false;
  await storage.saveEpoch(s.room, epoch).catch((e) => console.error(e));
}

function dropEpoch() {
  s.epoch = null;
  s.signaler = null;
  storage.dropEpoch();
}

// hostOffer is what the host sends whenever it must offer: a sealed offer
// under its epoch; else the share of the exchange in flight again (a hub
// that restarted lost it; a guest that has it answers it again with the
// same reply, counting nothing); else a fresh exchange.
async function hostOffer() {
  if (s.epoch) startOffer();
  else if (s.exchange) hub.send({ type: "offer", data: s.exchange.msg });
  else await startExchange();
}

// startExchange starts a fresh exchange with the password, replacing any
// earlier one and the epoch; without a password in memory (a reloaded tab
// whose epoch the other side no longer holds) it asks for it first.
async function startExchange() {
  s.exchange = null;
  if (s.epoch) dropEpoch();
  if (!s.password) {
    askPassword("exchange");
    return;
  }
  const { ex, msg } = await c.HostExchange.start(s.password, s.room);
  s.exchange = ex;
  hub.send({ type: "offer", data: msg });
  showState();
}

// startOffer makes a new connection and posts its offer, sealed under the
// epoch, outside the signaling queue (it waits for ICE gathering).
function startOffer() {
  const p = newPeer("H");
  const sig = s.signaler;
  offer(p, sig).then((blob) => {
    if (blob && p === s.peer && sig === s.signaler) hub.send({ type: "offer", data: blob });
  }).catch((e) => console.error(e));
}

// splitSignal tells what an offer or answer carries: a PAKE message ({m})
// or a sealed blob ({sid}: its epoch). It returns null for what is ignored:
// a malformed PAKE message, or a blob without a sid (a signaling problem
// with the what).
function splitSignal(data, what) {
  if (c.isPAKE(data)) {
    const m = c.decodePAKE(data);
    if (!m) console.warn("ignored a malformed PAKE message");
    return m ? { m } : null;
  }
  try {
    return { sid: c.blobSID(data) };
  } catch (e) {
    signalProblem(e, what);
    return null;
  }
}

// hostAnswer: the guest's reply or need, or its sealed answer.
async function hostAnswer(data) {
  const sp = splitSignal(data, "answer");
  if (!sp) return;
  const { m, sid } = sp;
  if (m) {
    if (m.kind === c.PAKE.REPLY) await onReply(m);
    else if (m.kind === c.PAKE.NEED) await onNeed(m);
    return;
  }
  // An answer to an epoch this side left (or never had) is ignored.
  if (!s.signaler || !c.sameSID(sid, s.signaler.sid)) return;
  let r;
  try {
    r = await openAnswer(s.peer, s.signaler, data);
  } catch (e) {
    if (e instanceof c.MismatchError) failure();
    else signalProblem(e, "answer");
    return;
  }
  if (r.mismatch) failure();
}

// onReply checks the guest's confirm_G: right, the epoch is set and the
// sealed offer goes out at once; wrong, the guest is told (failed) and one
// failed confirmation counted.
async function onReply(m) {
  const ex = s.exchange;
  if (!ex || !c.sameSID(m.sid, ex.sid)) return; // a reply to an older exchange
  s.exchange = null;
  let epoch;
  try {
    epoch = await ex.finish(m);
  } catch (e) {
    if (!(e instanceof c.MismatchError)) throw e;
    hub.send({ type: "offer", data: c.failedMessage(ex.sid) });
    failure();
    return;
  }
  await setEpoch(epoch);
  ui.alert("");
  showState();
  startOffer();
}

// onNeed: the guest holds no epoch this side could seal for. One that
// names this side's epoch gets a fresh exchange; any (all zero: its person
// typed the password again, or it kept nothing) gets the share of the
// exchange in flight again, or else a fresh exchange at once (an offer
// under this side's epoch would only bring a need for it back); one naming
// an epoch this side already left is ignored.
async function onNeed(m) {
  if (s.epoch && c.sameSID(m.sid, s.epoch.sid)) await startExchange();
  else if (c.anyEpoch(m.sid)) {
    s.mismatched = false;
    if (s.exchange) hub.send({ type: "offer", data: s.exchange.msg });
    else await startExchange();
  }
}

async function hostCandidate(data) {
  if (!s.signaler) return;
  let restart = false;
  try {
    restart = jsonOf(await s.signaler.open("candidate", "G", data)).restart === true;
  } catch {
    return; // a candidate blob that does not open is ignored
  }
  if (restart) startOffer();
}

// guestOffer: the host's share or failed, or its sealed offer.
async function guestOffer(data) {
  const sp = splitSignal(data, "offer");
  if (!sp) return;
  const { m, sid } = sp;
  if (m) {
    if (m.kind === c.PAKE.SHARE) await onShare(data, m);
    else if (m.kind === c.PAKE.FAILED && s.pending && c.sameSID(m.sid, s.pending.sid)) failure();
    return;
  }
  const pending = !!s.pending && c.sameSID(sid, s.pending.sid);
  const sig = pending ? s.pending.signaler : s.epoch && c.sameSID(sid, s.epoch.sid) ? s.signaler : null;
  if (!sig) {
    // An epoch this side does not hold (a reload that kept none, say): ask
    // for a fresh exchange.
    hub.send({ type: "answer", data: c.needMessage(sid) });
    return;
  }
  let o;
  try {
    o = await openOffer(sig, data);
  } catch (e) {
    if (e instanceof c.MismatchError) {
      // Tell the host too, with an answer it cannot open either.
      hub.send({ type: "answer", data: await mismatchAnswer(sig) });
      failure();
    } else signalProblem(e, "offer");
    return;
  }
  if (pending) await setEpoch({ sid: s.pending.sid, master: s.pending.master }, sig);
  s.mismatched = false;
  const p = newPeer("G");
  answer(p, sig, o).then((blob) => {
    if (blob && p === s.peer) hub.send({ type: "answer", data: blob });
  }).catch((e) => console.error(e));
}

// onShare answers the host's share with the password: the reply carries
// confirm_G, and the exchange is pending (kept for a reload) until a sealed
// offer under it opens. The same share again is answered with the same
// reply; a share of the current epoch is a replay (a host never reuses a
// sid), ignored.
async function onShare(data, m) {
  if (s.pending && s.pending.share === data) {
    hub.send({ type: "answer", data: s.pending.reply });
    return;
  }
  if (s.epoch && c.sameSID(m.sid, s.epoch.sid)) return;
  // A new exchange: the host has no connection left under the old one.
  closePeer();
  showState();
  if (!s.password) {
    // The other side needs a fresh exchange, and this tab (reloaded) has
    // no password: ask for it, then answer.
    s.waitingShare = data;
    askPassword("share");
    return;
  }
  // A new share while the pending exchange was never confirmed: whoever
  // sent the last one learnt from its confirm_G whether a guess was right.
  if (s.pending && failure()) return;
  let r;
  try {
    r = await c.respond(s.password, s.room, m);
  } catch (e) {
    if (!(e instanceof c.MismatchError)) throw e;
    failure(); // an invalid share
    return;
  }
  if (s.epoch) dropEpoch();
  s.pending = { ...r.epoch, signaler: await c.Signaler.create(r.epoch, s.room), share: data, reply: r.msg };
  // Kept before the reply leaves: a reload after it still has it.
  await storage.savePending(s.room, s.pending).catch((e) => console.error(e));
  hub.send({ type: "answer", data: r.msg });
}

// signalProblem handles a blob that is neither ours nor a mismatch: an old
// peer's, or a malformed one (ignored).
function signalProblem(e, kind) {
  if (e instanceof OldPeerError) oldPeer();
  else if (e instanceof c.MalformedError) console.warn(`ignored a malformed ${kind}: ${e.message}`);
  else console.error(e);
}

// oldPeer: the other side runs protocol version 1 or 2. Not a mismatch and
// not the end: nothing is counted, the room stays, and a new exchange goes
// out when they come back updated.
function oldPeer() {
  closePeer();
  ui.alert(`Cannot connect: ${TEXT_OLD_PEER}.`);
  ui.state("waiting", "Waiting for the other person to update Tryst");
}

// failure is one failed confirmation (docs/PROTOCOL.md, "PAKE"): the
// passwords differ, or someone is guessing. Nothing was decrypted or sent;
// the epoch or exchange ends, the hub is told, and the count (kept in
// localStorage, seen by every tab of the profile and kept after it) goes
// up; at GUESS_LIMIT the room
// closes. Otherwise the room stays, so either person can try another
// password in it; this side keeps its password in memory: it may be the
// right one, and the other person's retry then connects without a word
// from this one. It returns whether the room closed.
function failure() {
  closePeer();
  dropEpoch();
  s.exchange = null;
  s.pending = null;
  storage.dropPending();
  s.mismatched = true;
  const n = storage.failures(s.room).n + 1;
  storage.setFailures(s.room, { n });
  s.unreported++;
  flushReports();
  if (n >= GUESS_LIMIT) {
    // No bye on the data channel first (failure closed the connection):
    // the other side learns why from room-closed's code.
    storage.closeRoom(s.room, "here").catch((e) => console.error(e));
    hub.send({ type: "leave", reason: CLOSED_GUESS_LIMIT });
    end(TEXT_LIMIT_HERE, true);
    return true;
  }
  note(`Password mismatch (or someone guessing): failed attempt ${n} of ${GUESS_LIMIT}.`);
  ui.state("mismatch", "Password mismatch");
  ui.alert("Password mismatch: the other person typed a different password, or someone is trying to guess it. " +
    `Nothing was decrypted or sent. Failed attempts: ${n} of ${GUESS_LIMIT}; at ${GUESS_LIMIT} the room closes. ` +
    "Agree on the password again, then try it here.", "Try another password", () => askPassword("retry"));
  return false;
}

// flushReports tells the hub of each failed confirmation it has not heard
// of (it throttles the room and the other member's address).
function flushReports() {
  while (s.unreported > 0 && hub.open()) {
    hub.send({ type: "report", reason: REPORT_FAILED_CONFIRMATION });
    s.unreported--;
  }
}

// ---------- the connection ----------

const handlers = {
  onReady,
  onMessage,
  onBulkEvent: (p, m) => { if (p === s.peer) s.transfers.onBulkEvent(p, m); },
  onFail: failPeer,
  onMismatch: (p) => { if (p === s.peer) failure(); },
  onRtt: (p, ms) => { if (p === s.peer) ui.rtt(ms); },
  onMalformed: (p, e) => {
    console.error("malformed message:", e);
    if (p !== s.peer || p.malformedShown) return;
    p.malformedShown = true;
    note(`Ignored a malformed message from the other person (${e.message || e}).`);
  },
};

function newPeer(role) {
  closePeer();
  s.peer = new Peer(role, { iceServers: s.ice && s.ice.iceServers, relayOnly: s.relayOnly, store: s.store, room: s.room }, handlers);
  showState();
  return s.peer;
}

function closePeer() {
  const p = s.peer;
  s.peer = null;
  if (!p) return;
  p.close();
  // The path and round trip were this connection's.
  ui.path("");
  ui.rtt(null);
}

async function onReady(p) {
  if (p !== s.peer) return;
  s.conns++;
  s.mismatched = false;
  ui.connections(s.conns);
  ui.alert("");
  ui.show("chat");
  showInvite();
  showState();
  $("message").focus();
  flushChat(p).catch((e) => console.error(e));
  s.transfers.attach(p);
  // Where file data is handled, for tests and diagnosis: the store worker
  // (the bulk channel was handed to it) or the page.
  document.body.dataset.bulk = p.bulkRemote ? "worker" : "page";
  const path = await p.path();
  if (p === s.peer && !p.closed) ui.path(path);
  p.ping();
}

function failPeer(p, reason) {
  if (p !== s.peer || p.closed) return;
  closePeer();
  if (s.ended || s.leaving) return;
  showState();
  if (hub.state === "gone") {
    // Nothing left to signal a new connection through.
    end(`The connection to the other person ended (${reason}), and the hub no longer knows this room ` +
      "(it expired, was closed, or the hub restarted).", true);
    return;
  }
  if (!hub.open()) return; // the resume that brings the hub back starts the new connection
  if (relayWait()) {
    // The hub withheld the relay, which this connection may have needed:
    // resume for fresh ICE servers once it can be had.
    hub.ws.close();
    return;
  }
  if (!s.signaler) return; // no epoch to reconnect under
  if (s.role === "H") startOffer();
  else restartRequest();
}

// restartRequest asks the host for a fresh offer, sealed under the epoch.
function restartRequest() {
  s.signaler.seal("candidate", "G", enc.encode(JSON.stringify({ restart: true })))
    .then((data) => hub.send({ type: "candidate", data })).catch((e) => console.error(e));
}

async function onMessage(p, type, payload) {
  if (p !== s.peer) return;
  switch (type) {
    case MSG.CHAT: return onChat(p, jsonOf(payload));
    case MSG.CHAT_ACK: {
      const { id } = jsonOf(payload);
      if (Number.isSafeInteger(id)) await storage.ackChat(s.room, id);
      return;
    }
    case MSG.BYE: end("The other person left the room.", true); return;
    default: return s.transfers.onMessage(p, type, payload);
  }
}

async function onChat(p, m) {
  if (!Number.isSafeInteger(m.id) || m.id < 1 || typeof m.text !== "string") throw new Error("not a chat message");
  // Shown once (ids above the last shown, kept in IndexedDB for every tab
  // of this room), acked always.
  if (enc.encode(m.text).length <= MAX_CHAT_TEXT && await storage.acceptChat(s.room, m.id)) {
    const ts = Number.isFinite(m.ts) ? m.ts : Date.now();
    ui.message("peer", m.text, new Date(ts), m.id);
    storage.appendHistory(s.room, { kind: "peer", text: m.text, ts, id: m.id }).catch(() => {});
  }
  p.sendJSON(MSG.CHAT_ACK, { id: m.id });
}

async function sendChat(text) {
  if (s.ended || !text.trim()) return;
  if (enc.encode(text).length > MAX_CHAT_TEXT) {
    ui.alert("That message is too long to send (at most 32 KiB).");
    return;
  }
  const m = await storage.newChat(s.room, text, Date.now());
  ui.message("me", text, new Date(m.ts), m.id);
  storage.appendHistory(s.room, { kind: "me", text, ts: m.ts, id: m.id }).catch(() => {});
  if (peerUp()) await flushChat(s.peer);
}

// flushChat sends p the unacknowledged messages it has not had yet, in
// id order, from the list in IndexedDB. Everything goes through here, one
// flush at a time per connection: a message written while a new
// connection resends the older ones must not overtake them (the receiver
// would then drop the older ones as already shown).
async function flushChat(p) {
  if (p.chatFlushing) { p.chatFlushAgain = true; return; }
  p.chatFlushing = true;
  try {
    do {
      p.chatFlushAgain = false;
      const { unacked } = await storage.chatState(s.room);
      for (const m of unacked) {
        if (p !== s.peer || !p.up()) return;
        if (m.id > (p.chatSent || 0)) {
          p.sendJSON(MSG.CHAT, m);
          p.chatSent = m.id;
        }
      }
    } while (p.chatFlushAgain);
  } finally {
    p.chatFlushing = false;
  }
}

// ---------- the room's life ----------

// startRoom sets up what belongs to the room once its code is known.
function startRoom() {
  if (s.transfers) return;
  ui.roomExists(true);
  s.store = new Store();
  // ?bulk=page keeps file data on the page's main thread, as in a browser
  // that cannot hand a data channel to a worker (for tests and comparison).
  s.store.bulkInPage = new URLSearchParams(location.search).get("bulk") === "page";
  s.transfers = new Transfers(s.room, s.store, ui, note);
}

function showInvite() {
  const canShow = s.role === "H" && !s.guestJoined && !s.ended;
  if (!canShow) ui.invite(false, false);
  else ui.invite(!$("share").hidden, true);
}

// askPassword shows the password form, saying why it is asked: "retry"
// after a failed confirmation, "share" and "exchange" when the other side
// needs a fresh exchange and this tab (reloaded) has no password in memory,
// "resume" for a reloaded tab that kept no epoch.
function askPassword(why) {
  const f = storage.failures(s.room);
  const notes = {
    retry: `Failed attempts: ${f.n} of ${GUESS_LIMIT}. Agree on the password again with the other person, then connect.`,
    share: "The other person needs a fresh key exchange: type the password you agreed on to reconnect.",
    exchange: "The other person needs a fresh key exchange: type the password you agreed on to reconnect.",
    resume: "",
  };
  ui.alert("");
  ui.show("password");
  showInvite();
  if (why === "share" || why === "exchange") ui.state("idle", "Password needed");
  $("password-note").textContent = notes[why] || "";
  $("password-input").value = "";
  $("password-input").focus();
}

// end closes the session for good; startOver offers a new room.
function end(text, startOver) {
  if (s.ended) return;
  s.ended = true;
  hub.stop();
  closePeer();
  if (s.transfers) s.transfers.end();
  ui.state("ended", text);
  ui.hub("down", "");
  ui.ended();
  ui.invite(false, false);
  ui.note(text);
  // What was received stays (history, verified files to save) until the
  // person starts a new room or leaves: a reload shows this end again.
  ui.alert(text, startOver ? "Start a new room" : null, () => forgetAndRestart());
}

async function forgetAndRestart() {
  const room = s.room;
  hub.stop();
  closePeer();
  await storage.forget(room).catch(() => {});
  if (s.store && room) await s.store.call("forgetRoom", { room }).catch(() => {});
  history.replaceState(null, "", location.pathname);
  location.reload();
}

async function leave() {
  s.leaving = true;
  const p = s.peer;
  if (p && p.up()) await p.send(MSG.BYE);
  hub.send({ type: "leave" });
  await forgetAndRestart();
}

// usePassword takes the password typed (into this module's memory only)
// and the room's settings.
function usePassword(password) {
  s.password = password;
  s.relayOnly = $("relay-only").checked;
  s.auto = $("auto-connect").checked;
  storage.setRelayOnly(s.room, s.relayOnly);
  saveRoom();
}

// afterPassword moves the exchange on once a password was typed on an open
// hub connection: the host starts a fresh exchange with it (after creating
// the room, after a failed confirmation, or because the other side needs
// one); the guest answers the share that waited for it, or asks for a
// fresh exchange (after a failed confirmation).
async function afterPassword(retry) {
  if (s.role === "H") {
    await startExchange();
    return;
  }
  const share = s.waitingShare;
  s.waitingShare = null;
  if (share) await guestOffer(share);
  else if (retry || (!s.epoch && !s.pending)) hub.send({ type: "answer", data: c.needMessage() });
}

async function onPasswordSubmit(ev) {
  ev.preventDefault();
  const pw = $("password-input").value;
  if (!pw) return;
  $("password-input").value = "";
  $("password-note").textContent = "";
  $("connect").disabled = true;
  const retry = s.mismatched;
  try {
    usePassword(pw);
    s.mismatched = false;
    ui.alert("");
    ui.show("chat");
    showInvite();
    showState();
    if (hub.open()) await serially(() => afterPassword(retry));
    else if (hub.token) await hub.attach({ type: "resume", token: hub.token });
    else await hub.attach({ type: "join", room: s.room });
  } catch (e) {
    const code = e && e.code;
    if (!code) {
      console.error(e);
      return;
    }
    if (!hub.token && !["no_such_room", "room_full", "unsupported_version"].includes(code)) {
      // Nothing to resume yet: say what happened, and offer the next step.
      ui.state("idle", "Not connected");
      const why = code === "closed" ? "the hub could not be reached" : "the hub said: " + shown(String(e.message || code).slice(0, 300));
      ui.alert(`Could not join the room (${why}). Try again in a moment.`, "Reconnect", () => location.reload());
    } else hub.failure(e);
  } finally {
    $("connect").disabled = false;
  }
}

async function restoreChat() {
  for (const h of await storage.loadHistory(s.room)) {
    if (h.kind === "note") ui.note(h.text);
    else ui.message(h.kind, h.text, new Date(h.ts), h.id);
  }
}

async function init() {
  const rawHash = decodeURIComponent(location.hash.slice(1));
  const hash = normalizeCode(rawHash);
  const saved = await storage.loadRoom().catch(() => null);
  // A room closed at the guess limit has no token left (no tab resumes
  // it), but its page still says why.
  const closedRoom = !!saved && !!saved.room && !!storage.failures(saved.room).closed;
  if (saved && (saved.token || closedRoom) && (!hash || hash === saved.room)) {
    s.room = saved.room;
    s.role = saved.role;
    s.auto = saved.auto !== false;
    s.guestJoined = true; // the invite was for the first meeting
    hub.token = saved.token;
    s.relayOnly = storage.relayOnly(s.room);
    $("relay-only").checked = s.relayOnly;
    $("auto-connect").checked = s.auto;
    startRoom();
    await restoreChat();
    await s.transfers.restore();
    $("resume-code").textContent = s.room;
    const closed = storage.failures(s.room).closed;
    if (closed) {
      // Closed at the guess limit: a reload shows why again.
      ui.show("chat");
      end(closed === "here" ? TEXT_LIMIT_HERE : TEXT_LIMIT_THERE, true);
      return;
    }
    // The epoch comes back from sessionStorage (unwrapped with the
    // non-extractable key): no password to type, unless the other side
    // turns out to need a fresh exchange.
    const epoch = await storage.loadEpoch(s.room);
    if (epoch) {
      s.epoch = epoch;
      s.signaler = await c.Signaler.create(epoch, s.room);
    } else if (s.role === "G") {
      // A guest that replied to a share and reloaded before the offer
      // came: the same share gets the same reply, and the offer sealed
      // under it opens.
      const p = await storage.loadPending(s.room);
      if (p) s.pending = { ...p, signaler: await c.Signaler.create(p, s.room) };
    }
    if ((s.epoch || s.pending) && s.auto) {
      ui.show("chat");
      showState();
      hub.resume();
      return;
    }
    ui.show("resume");
    showState();
    return;
  }
  if (saved && saved.room) {
    // Another room's link: the old room is forgotten.
    await storage.forget(saved.room);
    const st = new Store();
    await st.call("forgetRoom", { room: saved.room }).catch(() => {});
    st.terminate();
  }
  if (hash) {
    s.room = hash;
    s.role = "G";
    ui.roomExists(true);
    ui.show("password");
    ui.state("idle", `Joining room ${hash}`);
    $("password-input").focus();
    return;
  }
  ui.show("start");
  if (rawHash) {
    $("join-code").value = rawHash;
    ui.joinError("That link's room code is not complete: a code has 18 letters and digits, like K7Q-MX2-P9R-TVW-4HN-C8D.");
  }
}

// ---------- page events ----------

$("new-room").addEventListener("click", async () => {
  $("new-room").disabled = true;
  let wait = 0;
  try {
    await hub.attach({ type: "create" });
    ui.show("share", "password");
    showInvite();
    $("password-input").focus();
  } catch (e) {
    ui.alert("Could not create a room: " + shown(String(e.message || e.code || e)));
    // The hub says when a create can succeed again; a click before then
    // would only be refused again.
    if (e.code === "rate_limited") wait = (e.retry_after || 5) * 1000;
  } finally {
    setTimeout(() => { $("new-room").disabled = false; }, wait);
  }
});

$("join-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  // Checked before anything else: a mistyped code never reaches the hub.
  const code = normalizeCode($("join-code").value);
  if (!code) {
    ui.joinError("That is not a room code: a code has 18 letters and digits, like K7Q-MX2-P9R-TVW-4HN-C8D.");
    $("join-code").focus();
    return;
  }
  ui.joinError("");
  location.hash = code;
});
$("join-code").addEventListener("input", () => ui.joinError(""));
window.addEventListener("hashchange", () => location.reload());
$("password-form").addEventListener("submit", onPasswordSubmit);
$("resume-btn").addEventListener("click", () => {
  if (s.epoch || s.pending) {
    ui.show("chat");
    showState();
    hub.resume();
  } else askPassword("resume"); // any connection needs a fresh exchange
});
$("copy-link").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("share-link").value);
    ui.copied(true);
  } catch {
    $("share-link").select();
    ui.copied(false);
  }
});
$("show-invite").addEventListener("click", () => { ui.invite(true, true); });
$("hide-invite").addEventListener("click", () => { ui.invite(false, true); });
$("message").addEventListener("input", ui.sendEnabled);
$("send-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("message").value;
  if (!text.trim()) return; // white space only is not a message
  $("message").value = "";
  ui.sendEnabled();
  sendChat(text).catch((e) => ui.alert("Could not send the message: " + e.message));
});
ui.files((fs) => s.transfers.queue(fs).catch((e) => console.error(e)), () => !!s.transfers && !s.ended && !!(s.epoch || s.password));
$("leave").addEventListener("click", () => leave().catch((e) => console.error(e)));

init().catch((e) => {
  console.error(e);
  ui.alert("Tryst could not start: " + e.message, "Reconnect", () => location.reload());
});
