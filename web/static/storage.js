// What the browser client keeps, in IndexedDB (database "tryst"), shared
// by every tab of the profile:
//
//   keys      the random, non-extractable AES-GCM keys: "wrap" (wraps the
//             epoch in sessionStorage) and "history" (encrypts the chat
//             history). Non-extractable: a script can use them while the
//             page is open but cannot read them out.
//   rooms     "current": the room's code, role, latest resume token and
//             reconnect-on-reload setting.
//   chat      per room: the next chat id to send, the last id shown, the
//             unacknowledged messages. Every change is one readwrite
//             transaction, so two tabs of the same room never take the
//             same id and a reopened tab continues the numbering.
//   history   the room's messages as shown, each sealed under "history".
//   incoming  partial and finished incoming files: offer, bytes flushed,
//             verdict. The bytes are in OPFS (store-worker.js).
//   outgoing  files offered: id, name, size, lastModified, SHA-256, so that
//             choosing the same file again after a reload resumes it.
//
// In localStorage (every tab of the profile, kept until the room is
// forgotten):
//
//   tryst.failures.<room>  the room's count of failed confirmations, and
//                   which side closed the room at the guess limit, once one
//                   did. Shared and lasting like the room and its resume
//                   token, so that a new tab continues the count rather than
//                   granting whoever plays the other side fresh guesses.
//
// And in sessionStorage (this tab only, kept across a reload of it):
//
//   tryst.epoch     the room's current epoch, its sid and master secret
//                   (docs/PROTOCOL.md, "PAKE"), wrapped under "wrap", so that
//                   a reload reconnects without the password.
//   tryst.pending   the guest's pending exchange: its sid and master, the
//                   host's share and the reply sent, wrapped under "wrap", so
//                   that a reload answers the same share with the same reply
//                   and opens the offer sealed under it.
//   tryst.relay     "Relay only", for one room.
//
// Nothing here is the password or derived from the password alone, and
// nothing lets anyone test a password guess offline: the epoch's master
// comes from CPace's Diffie-Hellman secret, which needs one of the two
// secret scalars, and neither side kept them, so even unwrapped it decides
// nothing about a guess (with every frame the hub relayed, it still does
// not; web's noOfflineTest checks what the page keeps); the history and
// everything else are under random keys. The password itself lives in the
// page's memory only, for the exchanges the page may have to run again.

import { b64url, randomBytes, unb64url, concat } from "./crypto.js";

const DB = "tryst";
const STORES = ["keys", "rooms", "chat", "history", "incoming", "outgoing"];
const SESSION_KEY = "tryst.key";
const enc = new TextEncoder();
const dec = new TextDecoder();

let dbPromise = null;

function db() {
  if (!dbPromise) {
    dbPromise = new Promise((res, rej) => {
      const r = indexedDB.open(DB, 2);
      r.onupgradeneeded = () => {
        const d = r.result;
        for (const s of STORES) if (!d.objectStoreNames.contains(s)) d.createObjectStore(s);
      };
      r.onsuccess = () => {
        const d = r.result;
        // Another tab upgrading the database: let it.
        d.onversionchange = () => { d.close(); dbPromise = null; };
        res(d);
      };
      r.onerror = () => rej(r.error);
      r.onblocked = () => rej(new Error("the browser's storage is in use by an older Tryst tab; close it and reload"));
    });
  }
  return dbPromise;
}

// tx runs fn(stores) in one transaction over names and resolves with what
// fn returned once the transaction committed.
async function tx(names, mode, fn) {
  const d = await db();
  return new Promise((res, rej) => {
    const t = d.transaction(names, mode);
    const stores = Object.fromEntries(names.map((n) => [n, t.objectStore(n)]));
    let out;
    t.oncomplete = () => res(out);
    t.onerror = () => rej(t.error);
    t.onabort = () => rej(t.error || new Error("storage transaction aborted"));
    Promise.resolve(fn(stores)).then((v) => { out = v; }, (e) => { try { t.abort(); } catch { /* done */ } rej(e); });
  });
}

const req = (r) => new Promise((res, rej) => { r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });

async function get(store, key) { return tx([store], "readonly", (s) => req(s[store].get(key))); }
async function put(store, key, val) { return tx([store], "readwrite", (s) => { s[store].put(val, key); }); }

// key returns the named random AES-GCM key, creating it once.
async function key(name) {
  let k = await get("keys", name);
  if (!k) {
    const fresh = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    // Two tabs may race to create it: the first one stored wins.
    k = await tx(["keys"], "readwrite", async (s) => {
      const had = await req(s.keys.get(name));
      if (had) return had;
      s.keys.put(fresh, name);
      return fresh;
    });
  }
  return k;
}

async function seal(name, bytes) {
  const iv = randomBytes(12);
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await key(name), bytes);
  return concat(iv, new Uint8Array(ct));
}
async function unseal(name, raw) {
  return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: raw.slice(0, 12) }, await key(name), raw.slice(12)));
}

// ---- the room ----

export async function loadRoom() { return (await get("rooms", "current")) || null; }
export async function saveRoom(r) { await put("rooms", "current", { room: r.room, role: r.role, token: r.token, auto: r.auto }); }

// ---- this tab's secrets: the epoch, the guest's pending exchange ----

// keepWrapped keeps bytes for room in sessionStorage under key (field: the
// JSON field that holds them), wrapped under "wrap".
async function keepWrapped(key, field, room, bytes) {
  sessionStorage.setItem(key, JSON.stringify({ room, [field]: b64url(await seal("wrap", bytes)) }));
}
// keptWrapped returns the bytes keepWrapped kept for room, or null.
async function keptWrapped(key, field, room) {
  try {
    const kept = JSON.parse(sessionStorage.getItem(key));
    if (kept.room !== room) return null;
    return await unseal("wrap", unb64url(kept[field]));
  } catch {
    return null;
  }
}

const EPOCH_KEY = "tryst.epoch";

// saveEpoch keeps room's epoch {sid, master} for a reload of this tab.
export async function saveEpoch(room, epoch) {
  await keepWrapped(EPOCH_KEY, "epoch", room, concat(epoch.sid, epoch.master));
}
// loadEpoch returns room's kept epoch, or null.
export async function loadEpoch(room) {
  const raw = await keptWrapped(EPOCH_KEY, "epoch", room);
  if (!raw || raw.length !== 16 + 32) return null;
  return { sid: raw.slice(0, 16), master: raw.slice(16) };
}
export function dropEpoch() { sessionStorage.removeItem(EPOCH_KEY); }

const PENDING_KEY = "tryst.pending";

// savePending keeps room's pending exchange {sid, master, share, reply}
// (share and reply as they travelled) for a reload of this tab.
export async function savePending(room, p) {
  const body = enc.encode(JSON.stringify({ share: p.share, reply: p.reply }));
  await keepWrapped(PENDING_KEY, "pending", room, concat(p.sid, p.master, body));
}
// loadPending returns room's kept pending exchange, or null.
export async function loadPending(room) {
  const raw = await keptWrapped(PENDING_KEY, "pending", room);
  if (!raw || raw.length <= 16 + 32) return null;
  try {
    const { share, reply } = JSON.parse(dec.decode(raw.slice(16 + 32)));
    if (typeof share !== "string" || typeof reply !== "string") return null;
    return { sid: raw.slice(0, 16), master: raw.slice(16, 16 + 32), share, reply };
  } catch {
    return null;
  }
}
export function dropPending() { sessionStorage.removeItem(PENDING_KEY); }

// ---- failed confirmations, every tab ----

const failuresKey = (room) => "tryst.failures." + room;

// failures is room's record: n failed confirmations so far, and closed:
// "here" once this side closed the room at the guess limit, "there" once
// the other side did, else "". Kept in localStorage, where every tab of the
// profile reads it at once and it outlives the tab.
export function failures(room) {
  try {
    const f = JSON.parse(localStorage.getItem(failuresKey(room)));
    if (f && Number.isSafeInteger(f.n)) return { n: f.n, closed: typeof f.closed === "string" ? f.closed : "" };
  } catch { /* none kept */ }
  return { n: 0, closed: "" };
}
export function setFailures(room, { n, closed = "" }) {
  localStorage.setItem(failuresKey(room), JSON.stringify({ n, closed }));
}

// closeRoom records that the room closed at the guess limit (closed: "here"
// or "there") and forgets its resume token, so that no tab resumes it; what
// it showed stays until the person starts a new room.
export async function closeRoom(room, closed) {
  setFailures(room, { ...failures(room), closed });
  await tx(["rooms"], "readwrite", async (s) => {
    const r = await req(s.rooms.get("current"));
    if (r && r.room === room) s.rooms.put({ ...r, token: null }, "current");
  });
}

// "Relay only" belongs to one room: kept for a reload of it, in this tab,
// never carried to a later room.
const RELAY_KEY = "tryst.relay";
export function setRelayOnly(room, yes) {
  if (yes) sessionStorage.setItem(RELAY_KEY, room);
  else sessionStorage.removeItem(RELAY_KEY);
}
export function relayOnly(room) { return sessionStorage.getItem(RELAY_KEY) === room; }

// ---- chat numbering ----

const freshChat = () => ({ next: 1, lastIn: 0, unacked: [] });

export async function chatState(room) { return (await get("chat", room)) || freshChat(); }

// newChat numbers a message to send and keeps it until acked.
export async function newChat(room, text, ts) {
  return tx(["chat"], "readwrite", async (s) => {
    const c = (await req(s.chat.get(room))) || freshChat();
    const m = { id: c.next++, text, ts };
    c.unacked.push(m);
    s.chat.put(c, room);
    return m;
  });
}

// ackChat forgets every message up to id (acks are cumulative).
export async function ackChat(room, id) {
  return tx(["chat"], "readwrite", async (s) => {
    const c = (await req(s.chat.get(room))) || freshChat();
    c.unacked = c.unacked.filter((m) => m.id > id);
    s.chat.put(c, room);
  });
}

// acceptChat reports whether a received message is new (its id above the
// last shown), and records it as shown.
export async function acceptChat(room, id) {
  return tx(["chat"], "readwrite", async (s) => {
    const c = (await req(s.chat.get(room))) || freshChat();
    if (!(id > c.lastIn)) return false;
    c.lastIn = id;
    s.chat.put(c, room);
    return true;
  });
}

// ---- history ----

export async function appendHistory(room, entry) {
  const sealed = await seal("history", enc.encode(JSON.stringify(entry)));
  await tx(["history"], "readwrite", (s) => { s.history.put(sealed, [room, Date.now(), Math.random()]); });
}

export async function loadHistory(room) {
  const rows = await tx(["history"], "readonly", (s) =>
    req(s.history.getAll(IDBKeyRange.bound([room], [room, []]))));
  const out = [];
  for (const raw of rows || []) {
    try { out.push(JSON.parse(dec.decode(await unseal("history", raw)))); } catch { /* a key from before: skip */ }
  }
  return out;
}

// ---- transfers ----

export async function getIncoming(room, id) { return (await get("incoming", [room, id])) || null; }
export async function putIncoming(room, rec) { await put("incoming", [room, rec.id], rec); }
export async function allIncoming(room) {
  return (await tx(["incoming"], "readonly", (s) => req(s.incoming.getAll(IDBKeyRange.bound([room], [room, []]))))) || [];
}
export async function putOutgoing(room, rec) { await put("outgoing", [room, rec.id], rec); }
export async function allOutgoing(room) {
  return (await tx(["outgoing"], "readonly", (s) => req(s.outgoing.getAll(IDBKeyRange.bound([room], [room, []]))))) || [];
}
export async function findOutgoing(room, name, size, lastModified) {
  const all = await allOutgoing(room);
  return all.find((r) => r.name === name && r.size === size && r.lastModified === lastModified && !r.done) || null;
}

// forget wipes everything kept about room (its files are the store
// worker's to remove).
export async function forget(room) {
  dropEpoch();
  dropPending();
  if (room) localStorage.removeItem(failuresKey(room));
  sessionStorage.removeItem(RELAY_KEY);
  await tx(["rooms", "chat", "history", "incoming", "outgoing"], "readwrite", (s) => {
    s.rooms.delete("current");
    if (!room) return;
    s.chat.delete(room);
    const range = IDBKeyRange.bound([room], [room, []]);
    s.history.delete(range);
    s.incoming.delete(range);
    s.outgoing.delete(range);
  });
}
