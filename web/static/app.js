// Tryst browser client: the wiring between the hub (hub.js), the
// connection to the other person (peer.js), chat, files (transfer.js),
// what is kept (storage.js) and the page (ui.js). The same protocol and
// cryptography as the Go client (docs/PROTOCOL.md).
//
// Everything lives in this module's scope: nothing is put on window, so no
// other script on the page can reach the room key or the connection.

import * as c from "./crypto.js";
import * as ui from "./ui.js";
import * as storage from "./storage.js";
import { Hub } from "./hub.js";
import { OldPeerError, Peer, answer, jsonOf, mismatchAnswer, offer, openAnswer, openOffer } from "./peer.js";
import { Store, Transfers } from "./transfer.js";
import { MAX_CHAT_TEXT, MSG, TEXT_OLD_PEER, normalizeCode, shown } from "./protocol.js";

const { $ } = ui;
const enc = new TextEncoder();

// A host that hears the other side come back to the hub while its own
// connection still looks up asks that connection for a sign of life: a
// live peer answers within this (frames arrive at least every 5 s).
const PROBE_MS = 5000;

const s = {
  room: null, role: null, master: null, signaler: null, ice: null,
  relayOnly: false, auto: true,
  peer: null, conns: 0, ended: false, leaving: false, mismatched: false,
  guestJoined: false, // the host's invite is wanted until the guest has joined
  transfers: null, store: null,
};

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
  else if (!s.master) ui.state("idle", s.role === "H" ? "Choose the password" : "Not connected");
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
  if (s.master && !s.signaler) s.signaler = await c.Signaler.create(s.master, s.room);
  showInvite();
  if (peerUp()) {
    // The hub came back under a live connection: keep it, but make sure
    // the other side is still at its end.
    showState();
    if (s.role === "H" && f.peer) probe(s.peer);
    return;
  }
  showState();
  if (s.role === "H" && s.master && !s.mismatched) await makeOffer();
}

async function onHubFrame(f) {
  switch (f.type) {
    case "offer": if (s.role === "G" && s.signaler) await onOffer(f.data); break;
    case "answer": if (s.role === "H" && s.signaler) await onAnswer(f.data); break;
    case "candidate": {
      if (s.role !== "H" || !s.signaler) break;
      let restart = false;
      try {
        restart = jsonOf(await s.signaler.open("candidate", "G", f.data)).restart === true;
      } catch {
        // After a mismatch, the guest's retry under a password that still
        // differs: offer, so that it finds out.
        restart = s.mismatched;
      }
      if (restart) await makeOffer();
      break;
    }
    case "peer-joined":
      s.guestJoined = true;
      showInvite();
      if (!peerUp()) ui.state("connecting", "The other person joined; connecting…");
      break;
    case "peer-back":
      s.guestJoined = true;
      showInvite();
      if (s.role !== "H" || s.mismatched) break;
      if (peerUp()) probe(s.peer);
      else await makeOffer();
      break;
    case "peer-left":
      // Their hub connection ended; a live connection to them goes on.
      showState();
      break;
    case "room-closed": end("The other person left the room.", true); break;
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

// ---------- the connection ----------

const handlers = {
  onReady,
  onMessage,
  onBulkEvent: (p, m) => { if (p === s.peer) s.transfers.onBulkEvent(p, m); },
  onFail: failPeer,
  onMismatch: () => mismatch(),
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

async function makeOffer() {
  const p = newPeer("H");
  const blob = await offer(p, s.signaler);
  if (blob && p === s.peer) hub.send({ type: "offer", data: blob });
}

async function onAnswer(blob) {
  const p = s.peer;
  let r;
  try {
    r = await openAnswer(p, s.signaler, blob);
  } catch (e) {
    if (e instanceof c.MismatchError) mismatch();
    else if (e instanceof OldPeerError) oldPeer();
    else console.error(e);
    return;
  }
  if (r.mismatch) mismatch();
}

async function onOffer(blob) {
  let o;
  try {
    o = await openOffer(s.signaler, blob);
  } catch (e) {
    if (e instanceof c.MismatchError) {
      // Tell the host too, with an answer it cannot open either.
      hub.send({ type: "answer", data: await mismatchAnswer(s.signaler) });
      mismatch();
    } else if (e instanceof OldPeerError) oldPeer();
    else console.error(e);
    return;
  }
  s.mismatched = false;
  const p = newPeer("G");
  const blobOut = await answer(p, s.signaler, o);
  if (blobOut && p === s.peer) hub.send({ type: "answer", data: blobOut });
}

// oldPeer: the other side runs protocol version 1. Not a mismatch and not
// the end: the room stays, and a new offer goes out when they come back.
function oldPeer() {
  closePeer();
  ui.alert(`Cannot connect: ${TEXT_OLD_PEER}.`);
  ui.state("waiting", "Waiting for the other person to update Tryst");
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
  if (s.role === "H") makeOffer().catch((e) => console.error(e));
  else {
    s.signaler.seal("candidate", "G", enc.encode(JSON.stringify({ restart: true })))
      .then((data) => hub.send({ type: "candidate", data }));
  }
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

// mismatch: the two passwords differ. Nothing was decrypted or sent; the
// room stays, so either person can try another password in it. This side
// keeps its key: it may be the right one, and the other person's retry
// then connects without a word from this one.
function mismatch() {
  closePeer();
  s.mismatched = true;
  ui.state("mismatch", "Password mismatch");
  ui.alert("Password mismatch: the other person typed a different password. Nothing was decrypted or sent. " +
    "Agree on the password again, then try it here.", "Try another password", () => askPassword());
}

function askPassword() {
  ui.alert("");
  ui.show("password");
  showInvite();
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

async function usePassword(password) {
  $("password-note").textContent = "Deriving the key (600,000 PBKDF2 rounds)…";
  try {
    s.master = await c.deriveMaster(password, s.room);
  } finally {
    $("password-note").textContent = "";
  }
  s.signaler = await c.Signaler.create(s.master, s.room);
  s.relayOnly = $("relay-only").checked;
  s.auto = $("auto-connect").checked;
  await storage.saveMaster(s.master);
  storage.setRelayOnly(s.room, s.relayOnly);
  saveRoom();
}

async function onPasswordSubmit(ev) {
  ev.preventDefault();
  const pw = $("password-input").value;
  if (!pw) return;
  $("password-input").value = "";
  $("connect").disabled = true;
  const retry = s.mismatched;
  try {
    await usePassword(pw);
    s.mismatched = false;
    ui.show("chat");
    showInvite();
    showState();
    if (hub.open()) {
      // The host after creating (or after a mismatch), or a guest trying
      // another password in the room it joined.
      if (s.role === "H") await makeOffer();
      else if (retry) {
        hub.send({ type: "candidate", data: await s.signaler.seal("candidate", "G", enc.encode(JSON.stringify({ restart: true }))) });
      }
    } else if (hub.token) {
      await hub.attach({ type: "resume", token: hub.token });
    } else {
      await hub.attach({ type: "join", room: s.room });
    }
  } catch (e) {
    const code = e && e.code;
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
  if (saved && saved.token && (!hash || hash === saved.room)) {
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
    s.master = await storage.loadMaster();
    $("resume-code").textContent = s.room;
    if (s.master && s.auto) {
      s.signaler = await c.Signaler.create(s.master, s.room);
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
  // Checked before anything slow: a mistyped code never reaches the KDF.
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
$("resume-btn").addEventListener("click", async () => {
  if (s.master) {
    s.signaler = await c.Signaler.create(s.master, s.room);
    ui.show("chat");
    showState();
    hub.resume();
  } else askPassword();
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
ui.files((fs) => s.transfers.queue(fs).catch((e) => console.error(e)), () => !!s.transfers && !s.ended && !!s.master);
$("leave").addEventListener("click", () => leave().catch((e) => console.error(e)));

init().catch((e) => {
  console.error(e);
  ui.alert("Tryst could not start: " + e.message, "Reconnect", () => location.reload());
});
