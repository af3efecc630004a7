// Tryst browser client: the same protocol and cryptography as the Go
// client (docs/PROTOCOL.md). Plain ES modules, no dependencies.
import * as c from "./crypto.js";
import { drawQR } from "./qr.js";

const MSG = { CONFIRM: 1, CHAT: 2, CHAT_ACK: 3, PING: 4, PONG: 5, FILE_OFFER: 6, FILE_ACCEPT: 7,
  FILE_CHUNK: 8, FILE_ACK: 9, FILE_DONE: 10, FILE_RESULT: 11, BYE: 12 };
const CHUNK = 16 * 1024;
const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;
const PING_MS = 5000;
const PEER_TIMEOUT_MS = 15000;
// A host that hears the other side come back to the hub (peer-back, or
// resumed with the peer there) while its own connection still looks up asks
// that connection for a sign of life: a live peer answers within this,
// a dead one (a killed tab, say) would otherwise hold the host until the
// 15 s silence timeout. Frames arrive at least every PING_MS from a live peer.
const PROBE_MS = PING_MS;
// The hub is reconnected with a backoff doubling from 500 ms up to this
// (proto.ReconnectBackoffMax).
const BACKOFF_MAX_MS = 10000;
const ACK_EVERY = 1024 * 1024;
const ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ";

const enc = new TextEncoder();
const dec = new TextDecoder();
const $ = (id) => document.getElementById(id);

const state = {
  room: null, role: null, token: null, master: null, signaler: null, ice: null,
  ws: null, backoff: 500, reconnectTimer: null, peer: null, leaving: false, ended: false,
  // hub: "up" while attached; "down" while unreachable; "gone" once it
  // answered that it does not know the room while the peer connection was
  // still up (it may come back: a restarted hub can know it again).
  hub: "down", hubSince: 0,
  chatNext: 1, unacked: [], lastChatIn: 0,
  out: [], // files to send: {id, file, name, size, sha, done, ui, started}
  inFiles: new Map(), finished: new Map(),
  received: new Map(), // name -> verified Blob
  wake: null,
};
window.tryst = state; // for debugging and tests

// ---------- UI helpers ----------

function show(...ids) {
  for (const id of ["start", "share", "password", "resume", "chat"]) $(id).hidden = !ids.includes(id);
  $("leave").hidden = !state.room;
}
function status(text) { $("status").textContent = text; }
function alertBox(text) { const a = $("alert"); a.textContent = text; a.hidden = !text; }
function note(text) { addMessage("note", text); }
function addMessage(kind, text, when = new Date()) {
  const li = document.createElement("li");
  li.className = kind;
  if (kind !== "note") {
    const t = document.createElement("time");
    t.dateTime = when.toISOString();
    t.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    li.append(t);
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = kind === "me" ? "you: " : "peer: ";
    li.append(who);
  }
  li.append(document.createTextNode(text));
  $("messages").append(li);
  li.scrollIntoView({ block: "nearest" });
}
function human(n) {
  const u = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(1)} ${u[i]}`;
}

function normalizeCode(s) {
  const raw = s.toUpperCase().replace(/[\s-]/g, "");
  if (raw.length !== 18 || [...raw].some((ch) => !ALPHABET.includes(ch))) return null;
  return raw.match(/.{3}/g).join("-");
}

// ---------- storage: the room in localStorage, the key (never the password)
// in sessionStorage, encrypted under a non-extractable key in IndexedDB ----------

function idb() {
  return new Promise((res, rej) => {
    const r = indexedDB.open("tryst", 1);
    r.onupgradeneeded = () => r.result.createObjectStore("keys");
    r.onsuccess = () => res(r.result);
    r.onerror = () => rej(r.error);
  });
}
async function idbGet(key) {
  const db = await idb();
  return new Promise((res, rej) => {
    const r = db.transaction("keys").objectStore("keys").get(key);
    r.onsuccess = () => res(r.result);
    r.onerror = () => rej(r.error);
  });
}
async function idbPut(key, val) {
  const db = await idb();
  return new Promise((res, rej) => {
    const tx = db.transaction("keys", "readwrite");
    tx.objectStore("keys").put(val, key);
    tx.oncomplete = () => res();
    tx.onerror = () => rej(tx.error);
  });
}
async function wrapKey() {
  let k = await idbGet("wrap");
  if (!k) {
    k = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    await idbPut("wrap", k);
  }
  return k;
}
async function saveMaster() {
  const iv = c.randomBytes(12);
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await wrapKey(), state.master);
  sessionStorage.setItem("tryst.key", c.b64url(c.concat(iv, new Uint8Array(ct))));
}
async function loadMaster() {
  const s = sessionStorage.getItem("tryst.key");
  if (!s) return null;
  try {
    const raw = c.unb64url(s);
    const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: raw.slice(0, 12) }, await wrapKey(), raw.slice(12));
    return new Uint8Array(pt);
  } catch { return null; }
}
function saveSession() {
  localStorage.setItem("tryst.session", JSON.stringify({ room: state.room, role: state.role, token: state.token }));
}
function saveChat() {
  sessionStorage.setItem("tryst.chat", JSON.stringify({ next: state.chatNext, lastIn: state.lastChatIn, unacked: state.unacked }));
}
function loadChat() {
  try {
    const s = JSON.parse(sessionStorage.getItem("tryst.chat") || "null");
    if (s) { state.chatNext = s.next; state.lastChatIn = s.lastIn; state.unacked = s.unacked || []; }
  } catch { /* start fresh */ }
}
async function forget() {
  localStorage.removeItem("tryst.session");
  sessionStorage.removeItem("tryst.key");
  sessionStorage.removeItem("tryst.chat");
  try { await idbPut("wrap", undefined); } catch { /* nothing stored */ }
}

// ---------- hub connection ----------

function hubURL() { return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`; }

const PROTOCOL_VERSION = 1;

function hubSend(frame) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(frame));
}

// connectHub opens the WebSocket and sends first (create, join or resume).
function connectHub(first) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(hubURL());
    state.ws = ws;
    let answered = false;
    // Every first frame announces the protocol version (docs/PROTOCOL.md, Versions).
    ws.onopen = () => ws.send(JSON.stringify({ ...first, version: PROTOCOL_VERSION }));
    ws.onmessage = (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch { return; }
      if (!answered) {
        answered = true;
        if (f.type === "error") {
          // A refused first frame leaves the connection with no use; the
          // hub keeps it open, so close it rather than hold a slot of the
          // per-address connection cap until the page goes away.
          if (state.ws === ws) state.ws = null;
          ws.close();
          reject(f);
        } else resolve(f);
        return;
      }
      onHubFrame(f).catch((e) => console.error(e));
    };
    ws.onclose = () => {
      const current = state.ws === ws;
      if (current) state.ws = null;
      if (!answered) {
        // The caller's hubFailure decides what comes next; calling
        // onHubLost here too would schedule a second attempt.
        answered = true;
        reject({ code: "closed", message: "could not reach the hub" });
        return;
      }
      if (current) onHubLost();
    };
  });
}

// relayWait is how long before a resume would bring the relay back, when
// the hub withheld it (docs/PROTOCOL.md, credential budget); 0 otherwise.
function relayWait() {
  return state.ice && state.ice.limited ? (state.ice.retry_after || 5) * 1000 : 0;
}

// peerUp reports whether the data channel to the other person is open and
// confirmed: chat and files flow, whatever the hub's state.
function peerUp() {
  const p = state.peer;
  return !!(p && p.confirmed && !p.closed && p.dc && p.dc.readyState === "open");
}

// showConnected sets the status line of a confirmed connection, saying
// what the hub's state means for it.
function showConnected() {
  if (state.hub === "down") status("Connected · hub unreachable, reconnecting…");
  else if (state.hub === "gone") {
    status("Connected · the hub no longer knows this room: chat goes on, but a lost connection could not be " +
      "restored; asking the hub again…");
  } else status("Connected");
}

// onHubLost runs when the hub connection ends or an attempt to reach it
// failed: try again (resume) after the backoff. The peer connection is
// left alone: once connected, chat and files never go through the hub.
function onHubLost() {
  state.ws = null;
  if (state.leaving || state.ended || !state.token) return;
  if (state.hub === "up") {
    state.hub = "down";
    // A connection that stayed up a while was a working one: start the
    // backoff over. One dropped at once (say, by a second tab with the same
    // token) keeps doubling it.
    if (Date.now() - state.hubSince > BACKOFF_MAX_MS) state.backoff = 500;
  }
  // A live connection needs the hub back only to signal; the relay the hub
  // withheld matters only to a new one.
  const wait = peerUp() ? state.backoff : Math.max(state.backoff, relayWait());
  state.backoff = Math.min(state.backoff * 2, BACKOFF_MAX_MS);
  if (peerUp()) showConnected();
  else status(`Hub connection lost; reconnecting in ${(wait / 1000).toFixed(1)} s`);
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = setTimeout(() => attach({ type: "resume", token: state.token }).catch(hubFailure), wait);
}

// roomGone: the hub answered that it does not know the room. That ends the
// session unless the connection to the other person is still up; then chat
// goes on and the hub is asked again with the backoff (a hub that restarted
// may know the room again), and the session ends only if that connection
// is lost before it does (failPeer).
function roomGone() {
  if (peerUp() && !state.leaving && !state.ended) {
    state.hub = "gone";
    onHubLost();
    return;
  }
  end("This room no longer exists (it expired or was closed).");
}

function hubFailure(err) {
  if (err && err.code === "no_such_room") {
    roomGone();
    return;
  }
  if (err && err.code === "unsupported_version") {
    end("Hub: " + err.message);
    return;
  }
  if (err && err.code === "room_full") {
    end("This room is full: it already has two people.");
    return;
  }
  onHubLost();
}

// attach sends first and handles the hub's welcome.
async function attach(first) {
  const f = await connectHub(first);
  state.hub = "up";
  state.hubSince = Date.now();
  state.room = f.room;
  state.token = f.token;
  state.role = f.role === "host" ? "H" : "G";
  state.ice = f.ice;
  if (f.ice && f.ice.limited) {
    note(`The hub sent no relay this time (too many requests from your network address). Direct connections ` +
      `still work; the relay comes back when reconnecting, in about ${f.ice.retry_after || 5} s.`);
  }
  saveSession();
  if (f.type === "created") showShare();
  if (state.master && !state.signaler) state.signaler = await c.Signaler.create(state.master, state.room);
  if (peerUp()) {
    // The hub came back under a live connection: keep it. If the other
    // side is attached too, make sure it is still at the other end.
    showConnected();
    if (state.role === "H" && f.peer) probePeer(state.peer);
    return f;
  }
  status(f.type === "resumed" && f.peer ? "Reconnecting to the other person…" : "Waiting for the other person…");
  if (state.role === "H" && state.master) await makeOffer();
  return f;
}

// probePeer is the host's check that a connection which looks up still has
// the other person at its end, after the hub said they came back: if no
// frame arrives within PROBE_MS, the connection is given up and a fresh
// offer made (failPeer).
function probePeer(p) {
  const since = Date.now();
  sendJSON(p, MSG.PING, { t: Math.round(performance.now() * 1000) });
  setTimeout(() => {
    if (p === state.peer && !p.closed && p.lastRecv < since) failPeer(p, "the other person reconnected");
  }, PROBE_MS);
}

async function onHubFrame(f) {
  // The hub re-issues the resume token (resumed, peer-joined, peer-back):
  // the latest one is what brings the room back after a hub restart.
  if (f.token && f.type !== "error") { state.token = f.token; saveSession(); }
  switch (f.type) {
    case "offer": if (state.role === "G") await answerOffer(f.data); break;
    case "answer": if (state.role === "H") await acceptAnswer(f.data); break;
    case "candidate": {
      try {
        const p = JSON.parse(dec.decode(await state.signaler.open("candidate", otherRole(), f.data)));
        if (p.restart && state.role === "H") await makeOffer();
      } catch { /* not from our peer */ }
      break;
    }
    case "peer-joined": status("The other person joined; connecting…"); break;
    case "peer-back":
      if (state.role !== "H") break;
      if (peerUp()) probePeer(state.peer);
      else await makeOffer();
      break;
    case "peer-left":
      // Their hub connection ended; a live connection to them goes on.
      if (!peerUp()) status("The other person disconnected; waiting for them to come back…");
      break;
    case "room-closed": end("The other person left the room."); break;
    case "error":
      if (f.code === "no_such_room") {
        if (state.ws) { const ws = state.ws; state.ws = null; ws.close(); }
        roomGone();
      } else note("Hub: " + f.message);
      break;
  }
}

function otherRole() { return state.role === "H" ? "G" : "H"; }

// ---------- WebRTC ----------

function newPeer(role) {
  const relayOnly = $("relay-only").checked || localStorage.getItem("tryst.relay") === "1";
  const pc = new RTCPeerConnection({ iceServers: (state.ice && state.ice.iceServers) || [], iceTransportPolicy: relayOnly ? "relay" : "all" });
  const p = { pc, dc: null, sess: null, role, confirmed: false, closed: false, lastRecv: Date.now(),
    sendChain: Promise.resolve(), recvChain: Promise.resolve(), timer: null, nonceHost: null, lowWaiters: [] };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed") failPeer(p, "connection failed");
  };
  return p;
}

function closePeer() {
  const p = state.peer;
  state.peer = null;
  if (!p) return;
  p.closed = true;
  clearInterval(p.timer);
  p.lowWaiters.forEach((w) => w());
  try { p.pc.close(); } catch { /* already closed */ }
  // The path and round trip were this connection's.
  $("path").textContent = "";
  $("rtt").textContent = "";
}

function gathered(pc) {
  return new Promise((res) => {
    if (pc.iceGatheringState === "complete") return res();
    const t = setTimeout(res, 10000);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(t); res(); }
    });
  });
}

async function makeOffer() {
  closePeer();
  const p = newPeer("H");
  state.peer = p;
  p.nonceHost = c.randomBytes(c.NONCE_SIZE);
  attachDC(p, p.pc.createDataChannel("tryst"));
  await p.pc.setLocalDescription(await p.pc.createOffer());
  await gathered(p.pc);
  if (p.closed) return;
  const body = JSON.stringify({ sdp: p.pc.localDescription.sdp, nonce: c.b64std(p.nonceHost) });
  hubSend({ type: "offer", data: await state.signaler.seal("offer", "H", enc.encode(body)) });
}

async function acceptAnswer(blob) {
  const p = state.peer;
  let a;
  try {
    a = JSON.parse(dec.decode(await state.signaler.open("answer", "G", blob)));
  } catch (e) {
    if (e instanceof c.MismatchError) mismatch();
    return;
  }
  if (a.mismatch) { mismatch(); return; }
  if (!p || !a.offer_nonce || a.offer_nonce !== c.b64std(p.nonceHost)) return; // answers an older offer
  p.sess = await c.Session.create(state.master, "H", p.nonceHost, c.unb64std(a.nonce),
    c.fingerprintOf(p.pc.localDescription.sdp), c.fingerprintOf(a.sdp));
  await p.pc.setRemoteDescription({ type: "answer", sdp: a.sdp });
}

async function answerOffer(blob) {
  let o;
  try {
    o = JSON.parse(dec.decode(await state.signaler.open("offer", "H", blob)));
  } catch (e) {
    if (e instanceof c.MismatchError) {
      // Tell the host too, with an answer it cannot open either.
      hubSend({ type: "answer", data: await state.signaler.seal("answer", "G", enc.encode(JSON.stringify({ mismatch: true }))) });
      mismatch();
    }
    return;
  }
  closePeer();
  const p = newPeer("G");
  state.peer = p;
  p.nonceHost = c.unb64std(o.nonce);
  const nonceGuest = c.randomBytes(c.NONCE_SIZE);
  p.pc.ondatachannel = (ev) => attachDC(p, ev.channel);
  await p.pc.setRemoteDescription({ type: "offer", sdp: o.sdp });
  await p.pc.setLocalDescription(await p.pc.createAnswer());
  await gathered(p.pc);
  if (p.closed) return;
  const local = p.pc.localDescription.sdp;
  p.sess = await c.Session.create(state.master, "G", p.nonceHost, nonceGuest, c.fingerprintOf(o.sdp), c.fingerprintOf(local));
  const body = JSON.stringify({ sdp: local, nonce: c.b64std(nonceGuest), offer_nonce: o.nonce });
  hubSend({ type: "answer", data: await state.signaler.seal("answer", "G", enc.encode(body)) });
}

function attachDC(p, dc) {
  p.dc = dc;
  dc.binaryType = "arraybuffer";
  dc.bufferedAmountLowThreshold = LOW_WATER;
  dc.onbufferedamountlow = () => { const w = p.lowWaiters; p.lowWaiters = []; w.forEach((f) => f()); };
  dc.onopen = async () => {
    p.lastRecv = Date.now();
    if (!p.sess) { failPeer(p, "data channel opened before key agreement"); return; }
    send(p, MSG.CONFIRM, await p.sess.confirmation(p.role));
  };
  dc.onclose = () => failPeer(p, "data channel closed");
  dc.onmessage = (ev) => {
    // One message this side cannot read (a control payload that is not the
    // JSON it should be, a short chunk) is reported and skipped; a rejected
    // link would otherwise leave the chain rejected and drop every later
    // frame of the connection unread.
    p.recvChain = p.recvChain.then(() => onFrame(p, ev.data)).catch((e) => malformed(p, e));
  };
}

// send seals and sends in call order; it resolves once the frame is queued.
function send(p, type, payload = new Uint8Array()) {
  p.sendChain = p.sendChain.then(async () => {
    if (p.closed || !p.dc || p.dc.readyState !== "open") return;
    p.dc.send(await p.sess.seal(type, payload));
  }).catch((e) => failPeer(p, "send failed: " + e.message));
  return p.sendChain;
}
function sendJSON(p, type, obj) { return send(p, type, enc.encode(JSON.stringify(obj))); }

async function onFrame(p, data) {
  if (p.closed) return;
  let m;
  try {
    m = await p.sess.open(data);
  } catch (e) {
    if (!p.confirmed && e instanceof c.MismatchError) { mismatch(); return; }
    note("Rejected a message that failed verification (" + e.message + "); reconnecting with fresh keys.");
    failPeer(p, "rejected frame");
    return;
  }
  p.lastRecv = Date.now();
  if (!p.confirmed) {
    if (m.type !== MSG.CONFIRM) { mismatch(); return; }
    try { await p.sess.checkConfirmation(m.payload); } catch { mismatch(); return; }
    p.confirmed = true;
    onReady(p);
    return;
  }
  const json = () => JSON.parse(dec.decode(m.payload));
  switch (m.type) {
    case MSG.CHAT: {
      const msg = json();
      if (msg.id > state.lastChatIn) {
        state.lastChatIn = msg.id;
        saveChat();
        addMessage("peer", msg.text, new Date(msg.ts));
      }
      sendJSON(p, MSG.CHAT_ACK, { id: msg.id });
      break;
    }
    case MSG.CHAT_ACK: {
      const { id } = json();
      state.unacked = state.unacked.filter((x) => x.id > id);
      saveChat();
      break;
    }
    case MSG.PING: send(p, MSG.PONG, m.payload); break;
    case MSG.PONG: {
      const { t } = json();
      $("rtt").textContent = `· round trip ${((performance.now() * 1000 - t) / 1000).toFixed(1)} ms`;
      break;
    }
    case MSG.BYE: end("The other person left the room."); break;
    case MSG.FILE_OFFER: await onFileOffer(p, json()); break;
    case MSG.FILE_ACCEPT: fileEvent(json(), "accept"); break;
    case MSG.FILE_ACK: onFileAck(json()); break;
    case MSG.FILE_RESULT: fileEvent(json(), "result"); break;
    case MSG.FILE_CHUNK: onChunk(p, m.payload); break;
    case MSG.FILE_DONE: await onFileDone(p, json()); break;
  }
}

// malformed reports a message that opened (it is the other side's) but
// could not be read; the first of a connection is shown, the rest logged.
function malformed(p, e) {
  console.error("malformed message:", e);
  if (p.closed || p.malformedShown) return;
  p.malformedShown = true;
  note(`Ignored a malformed message from the other person (${e.message || e}).`);
}

function failPeer(p, reason) {
  if (p !== state.peer || p.closed) return;
  closePeer();
  if (state.ended || state.leaving) return;
  if (state.hub === "gone") {
    // Nothing left to signal a new connection through.
    end(`The connection to the other person ended (${reason}), and the hub no longer knows this room ` +
      "(it expired, was closed, or the hub restarted).");
    return;
  }
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
    // Offers and restart requests need the hub: the resume that brings it
    // back starts the new connection (attach, peer-back).
    status(`Connection lost (${reason}); hub unreachable, reconnecting…`);
    return;
  }
  status(`Connection lost (${reason}); reconnecting…`);
  if (relayWait() && state.ws) {
    // The hub withheld the relay, which this connection may have needed:
    // re-attach (resume) for fresh ICE servers instead of retrying without
    // one. onHubLost waits until the relay can be had.
    state.ws.close();
    return;
  }
  if (state.role === "H") {
    makeOffer().catch((e) => console.error(e));
  } else if (state.signaler) {
    state.signaler.seal("candidate", "G", enc.encode(JSON.stringify({ restart: true })))
      .then((data) => hubSend({ type: "candidate", data }));
  }
}

async function onReady(p) {
  alertBox("");
  show("chat");
  $("message").focus();
  showConnected();
  for (const m of state.unacked) sendJSON(p, MSG.CHAT, m);
  p.timer = setInterval(() => {
    if (Date.now() - p.lastRecv > PEER_TIMEOUT_MS) { failPeer(p, "the other person went silent"); return; }
    sendJSON(p, MSG.PING, { t: Math.round(performance.now() * 1000) });
  }, PING_MS);
  const path = await pathOf(p.pc);
  if (p.closed) return;
  $("path").textContent = path;
  sendFiles(p);
}

async function pathOf(pc) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) stats.forEach((s) => { if (s.type === "candidate-pair" && s.state === "succeeded" && s.nominated) pair = s; });
  if (!pair) return "Connected";
  const local = stats.get(pair.localCandidateId), remote = stats.get(pair.remoteCandidateId);
  const relayed = [local, remote].some((x) => x && x.candidateType === "relay");
  return relayed ? "Relayed through TURN" : `Direct (${local ? local.candidateType : "host"})`;
}

// ---------- chat ----------

function sendChat(text) {
  if (!text || state.ended) return;
  const m = { id: state.chatNext++, text, ts: Date.now() };
  state.unacked.push(m);
  saveChat();
  addMessage("me", text);
  const p = state.peer;
  if (p && p.confirmed) sendJSON(p, MSG.CHAT, m);
}

// ---------- files ----------

function transferUI(name, size, incoming) {
  const div = document.createElement("div");
  div.className = "transfer";
  const label = document.createElement("div");
  label.textContent = `${incoming ? "Receiving" : "Sending"} ${name} (${human(size)})`;
  const bar = document.createElement("progress");
  bar.max = size || 1;
  bar.value = 0;
  bar.setAttribute("aria-label", `Progress of ${name}`);
  const info = document.createElement("div");
  info.className = "info";
  div.append(label, bar, info);
  $("transfers").append(div);
  return { div, bar, info, label, started: performance.now() };
}
function progressUI(ui, done, size) {
  ui.bar.value = done;
  const secs = (performance.now() - ui.started) / 1000;
  const rate = secs > 0 ? done / secs : 0;
  const eta = rate > 0 ? Math.round((size - done) / rate) : 0;
  ui.info.textContent = `${size ? Math.floor((done * 100) / size) : 100}% · ${human(rate)}/s · ETA ${eta} s`;
}

function randomID() {
  // File ids stay below 2^53 so that JSON numbers are exact in JavaScript.
  const b = c.randomBytes(8);
  return (b[0] & 0x1f) * 2 ** 48 + b[1] * 2 ** 40 + b[2] * 2 ** 32 + b[3] * 2 ** 24 + b[4] * 2 ** 16 + b[5] * 2 ** 8 + b[6];
}

async function queueFiles(files) {
  if (state.ended) return;
  for (const file of files) {
    const sha = c.hex(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
    const f = { id: randomID(), file, name: file.name, size: file.size, sha, done: false, ui: transferUI(file.name, file.size, false),
      accept: null, result: null, waiters: {} };
    state.out.push(f);
  }
  if (state.wake) state.wake();
}

function fileEvent(msg, kind) {
  const f = state.out.find((x) => x.id === msg.id);
  if (!f) return;
  f[kind] = msg;
  const w = f.waiters[kind];
  if (w) { delete f.waiters[kind]; w(); }
}
// waitFile returns once the other side's f[kind] message has arrived or
// the connection closed. The waiter also sits among lowWaiters, to wake on
// close, so a drained send buffer wakes it too: it waits again then, rather
// than go on without the message.
async function waitFile(f, kind, p) {
  while (!f[kind] && !p.closed) {
    await new Promise((res) => {
      f.waiters[kind] = res;
      p.lowWaiters.push(res);
    });
  }
}
function onFileAck(msg) {
  const f = state.out.find((x) => x.id === msg.id);
  if (f) progressUI(f.ui, msg.offset, f.size);
}

async function sendFiles(p) {
  while (!p.closed) {
    const f = state.out.find((x) => !x.done);
    if (!f) {
      await new Promise((res) => { state.wake = res; p.lowWaiters.push(res); });
      state.wake = null;
      continue;
    }
    f.accept = null;
    f.result = null;
    await sendJSON(p, MSG.FILE_OFFER, { id: f.id, name: f.name, size: f.size, sha256: f.sha });
    await waitFile(f, "accept", p);
    if (p.closed) return;
    if (f.accept.reject) { finishOut(f, false, f.accept.reject); continue; }
    let off = f.accept.offset;
    if (off > 0) f.ui.info.textContent = `Resuming at ${human(off)}`;
    while (off < f.size && !p.closed) {
      while (p.dc.bufferedAmount > HIGH_WATER && !p.closed) await new Promise((res) => p.lowWaiters.push(res));
      const data = new Uint8Array(await f.file.slice(off, off + CHUNK).arrayBuffer());
      const hdr = new Uint8Array(16);
      const dv = new DataView(hdr.buffer);
      dv.setBigUint64(0, BigInt(f.id));
      dv.setBigUint64(8, BigInt(off));
      await send(p, MSG.FILE_CHUNK, c.concat(hdr, data));
      off += data.length;
    }
    if (p.closed) return;
    await sendJSON(p, MSG.FILE_DONE, { id: f.id });
    await waitFile(f, "result", p);
    if (p.closed) return;
    finishOut(f, f.result.ok, f.result.error);
  }
}

function finishOut(f, ok, err) {
  f.done = true;
  progressUI(f.ui, ok ? f.size : f.ui.bar.value, f.size);
  const s = document.createElement("div");
  s.className = ok ? "ok" : "bad";
  s.textContent = ok ? `Sent ${f.name}: the other person verified it.` : `Failed to send ${f.name}: ${err}`;
  f.ui.div.append(s);
}

// nameProblem is the rule an offered file name breaks, as the Go client
// words it (docs/PROTOCOL.md, "Receiving safely"), or "" for a plain name.
function nameProblem(name) {
  if (typeof name !== "string" || name === "" || name === "." || name === "..") return 'is empty, "." or ".."';
  if (new TextEncoder().encode(name).length > 255) return "is longer than 255 bytes";
  if (name.includes("\ufffd") || /\p{Cs}/u.test(name)) return "is not valid UTF-8";
  if (/[\/\\]/.test(name)) return "contains a path separator";
  if (/^[A-Za-z]:/.test(name)) return "names a drive or an absolute path";
  if (/\p{Cc}/u.test(name)) return "contains control characters";
  if (/[\p{Cf}\u2028\u2029]/u.test(name)) return "contains invisible or direction-changing characters";
  if (/[. ]$/.test(name) || /^(con|prn|aux|nul|com[1-9]|lpt[1-9]) *(\.|$)/i.test(name)) {
    return "is a device name or ends with a dot or a space, which Windows cannot store";
  }
  return "";
}

// shown renders text the other side chose with anything that could hide or
// reorder it made visible (\u202e), as the Go client prints it.
function shown(text) {
  return String(text).replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu,
    (c) => "\\u" + c.codePointAt(0).toString(16).padStart(4, "0"));
}

async function onFileOffer(p, o) {
  if (state.finished.has(o.id)) {
    await sendJSON(p, MSG.FILE_ACCEPT, { id: o.id, offset: o.size });
    await sendJSON(p, MSG.FILE_RESULT, state.finished.get(o.id));
    return;
  }
  const known = state.inFiles.get(o.id);
  if (known) { await sendJSON(p, MSG.FILE_ACCEPT, { id: o.id, offset: known.written }); return; }
  const problem = nameProblem(o.name);
  if (problem || !(o.size >= 0) || typeof o.sha256 !== "string" || o.sha256.length !== 64) {
    const reason = problem ? `refused file name: ${problem}` : "malformed file offer";
    note(`Refused the file ${shown(JSON.stringify(o.name))}: ${reason}`);
    await sendJSON(p, MSG.FILE_ACCEPT, { id: o.id, reject: reason, offset: 0 });
    return;
  }
  state.inFiles.set(o.id, { offer: o, chunks: [], written: 0, acked: 0, ui: transferUI(o.name, o.size, true) });
  await sendJSON(p, MSG.FILE_ACCEPT, { id: o.id, offset: 0 });
}

function onChunk(p, payload) {
  const dv = new DataView(payload.buffer, payload.byteOffset);
  const id = Number(dv.getBigUint64(0));
  const off = Number(dv.getBigUint64(8));
  const f = state.inFiles.get(id);
  const data = payload.slice(16);
  if (!f || off !== f.written || f.written + data.length > f.offer.size) return;
  f.chunks.push(data);
  f.written += data.length;
  if (f.written - f.acked >= ACK_EVERY || f.written === f.offer.size) {
    f.acked = f.written;
    sendJSON(p, MSG.FILE_ACK, { id, offset: f.written });
    progressUI(f.ui, f.written, f.offer.size);
  }
}

async function onFileDone(p, { id }) {
  const f = state.inFiles.get(id);
  if (!f || f.written !== f.offer.size) return;
  const blob = new Blob(f.chunks);
  const sha = c.hex(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
  state.inFiles.delete(id);
  const ok = sha === f.offer.sha256;
  const result = ok ? { id, ok: true, name: f.offer.name } : { id, ok: false, error: "SHA-256 mismatch" };
  state.finished.set(id, result);
  await sendJSON(p, MSG.FILE_RESULT, result);
  progressUI(f.ui, f.written, f.offer.size);
  const s = document.createElement("div");
  if (ok) {
    state.received.set(f.offer.name, blob);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = f.offer.name;
    a.className = "download";
    a.dataset.sha256 = sha;
    a.textContent = `Save ${f.offer.name} (SHA-256 verified)`;
    s.className = "ok";
    s.append(a);
  } else {
    s.className = "bad";
    s.textContent = `${f.offer.name} was corrupted in transit (SHA-256 mismatch) and was discarded.`;
  }
  f.ui.div.append(s);
}

// ---------- session lifecycle ----------

function mismatch() {
  state.ended = true;
  clearTimeout(state.reconnectTimer);
  closePeer();
  show();
  alertBox("Password mismatch: the other person typed a different password. Nothing was decrypted or sent. Leave, agree on the password again, and start a new room.");
  status("Password mismatch");
  sessionStorage.removeItem("tryst.key");
  if (state.ws) state.ws.close();
}

// end closes the session for good: no connection, no reconnecting, and a
// page that shows it (nothing to type into, no path or round trip).
function end(text) {
  state.ended = true;
  clearTimeout(state.reconnectTimer);
  closePeer();
  status(text);
  note(text);
  for (const el of document.querySelectorAll("#send-form input, #send-form button, #file-input")) el.disabled = true;
  $("drop").setAttribute("aria-disabled", "true");
  $("message").placeholder = "This chat has ended";
  forget();
  if (state.ws) { const ws = state.ws; state.ws = null; ws.close(); }
}

async function leave() {
  state.leaving = true;
  const p = state.peer;
  if (p && p.confirmed) await send(p, MSG.BYE);
  hubSend({ type: "leave" });
  closePeer();
  await forget();
  if (state.ws) { const ws = state.ws; state.ws = null; ws.close(); }
  history.replaceState(null, "", location.pathname);
  location.reload();
}

function showShare() {
  const link = `${location.origin}${location.pathname}#${state.room}`;
  $("share-link").value = link;
  $("share-code").textContent = state.room;
  drawQR($("qr"), link);
  show("share", "password");
  $("password-input").focus();
}

async function usePassword(password) {
  status("Deriving the key (600,000 PBKDF2 rounds)…");
  state.master = await c.deriveMaster(password, state.room);
  state.signaler = await c.Signaler.create(state.master, state.room);
  await saveMaster();
  localStorage.setItem("tryst.auto", $("auto-connect").checked ? "1" : "0");
  localStorage.setItem("tryst.relay", $("relay-only").checked ? "1" : "0");
}

async function onPasswordSubmit(ev) {
  ev.preventDefault();
  const pw = $("password-input").value;
  $("password-input").value = "";
  $("connect").disabled = true;
  try {
    if (state.token) {
      // Host after creating, or anyone resuming: the room is known.
      await usePassword(pw);
      if (state.ws && state.ws.readyState === WebSocket.OPEN) {
        if (state.role === "H") await makeOffer();
        status("Waiting for the other person…");
      } else {
        await attach({ type: "resume", token: state.token });
      }
    } else {
      await usePassword(pw);
      await attach({ type: "join", room: state.room });
    }
    show("chat");
  } catch (e) {
    hubFailure(e);
  } finally {
    $("connect").disabled = false;
  }
}

async function init() {
  const hash = normalizeCode(decodeURIComponent(location.hash.slice(1)));
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem("tryst.session") || "null"); } catch { /* none */ }
  $("auto-connect").checked = localStorage.getItem("tryst.auto") === "1";
  $("relay-only").checked = localStorage.getItem("tryst.relay") === "1";
  loadChat();
  if (saved && saved.token && (!hash || hash === saved.room)) {
    Object.assign(state, { room: saved.room, role: saved.role, token: saved.token });
    state.master = await loadMaster();
    $("resume-code").textContent = saved.room;
    if (state.master && localStorage.getItem("tryst.auto") === "1") {
      state.signaler = await c.Signaler.create(state.master, state.room);
      show("chat");
      status("Reconnecting…");
      attach({ type: "resume", token: state.token }).catch(hubFailure);
      return;
    }
    show("resume");
    status("Not connected");
    return;
  }
  if (saved && hash && hash !== saved.room) await forget();
  if (hash) {
    state.room = hash;
    state.role = "G";
    show("password");
    status(`Joining room ${hash}`);
    $("password-input").focus();
    return;
  }
  show("start");
  status("Not connected");
}

$("new-room").addEventListener("click", async () => {
  $("new-room").disabled = true;
  let wait = 0;
  try {
    await attach({ type: "create" });
  } catch (e) {
    alertBox("Could not create a room: " + (e.message || e.code || e));
    // The hub says when a create can succeed again; a click before then
    // would only be refused again.
    if (e.code === "rate_limited") wait = (e.retry_after || 5) * 1000;
  } finally {
    setTimeout(() => { $("new-room").disabled = false; }, wait);
  }
});
$("join-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const code = normalizeCode($("join-code").value);
  if (!code) { alertBox("That is not a room code: it has 18 letters and digits, like K7Q-MX2-P9R-TVW-4HN-C8D."); return; }
  alertBox("");
  location.hash = code;
});
window.addEventListener("hashchange", () => location.reload());
$("password-form").addEventListener("submit", onPasswordSubmit);
$("resume-btn").addEventListener("click", async () => {
  if (state.master) {
    state.signaler = await c.Signaler.create(state.master, state.room);
    show("chat");
    attach({ type: "resume", token: state.token }).catch(hubFailure);
  } else {
    show("password");
    $("password-input").focus();
  }
});
$("copy-link").addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText($("share-link").value));
$("send-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sendChat($("message").value);
  $("message").value = "";
});
$("file-input").addEventListener("change", () => { queueFiles([...$("file-input").files]); $("file-input").value = ""; });
const drop = $("drop");
drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (ev) => { ev.preventDefault(); drop.classList.remove("over"); queueFiles([...ev.dataTransfer.files]); });
drop.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); $("file-input").click(); } });
$("leave").addEventListener("click", leave);

init().catch((e) => { console.error(e); status("Error: " + e.message); });
