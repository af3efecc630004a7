// File transfers (docs/PROTOCOL.md, "Files"): the outgoing queue, sent one
// file at a time in the order chosen, and the incoming files, streamed to
// the origin-private file system by the store worker. Nothing holds a
// whole file: the sender reads slices of the File, the receiver hands each
// chunk to the worker as it arrives.
//
// A transfer outlives the connection that carried it: on the next ready
// connection the sender offers the file again with the same id and the
// receiver accepts from what it has flushed (also after a reload of the
// receiving page: the partial file stays in OPFS, its record in IndexedDB).

import {
  ACK_EVERY, DEFAULT_CHUNK_DATA, MAX_SAFE_ID, MSG, TEXT_CANNOT_STORE, TEXT_CORRUPTED, TEXT_WRITE_FAILED,
  decodeChunk, encodeChunk, nameProblem, shown,
} from "./protocol.js";
import { jsonOf } from "./peer.js";
import { randomBytes } from "./crypto.js";
import * as storage from "./storage.js";

// How many chunks may be queued for sealing ahead of the data channel.
const CHUNKS_AHEAD = 4;
// READ_BLOCK is how much of an outgoing File one read takes (64 chunks).
const READ_BLOCK = 64 * DEFAULT_CHUNK_DATA;
// How many incoming files may be open at once; a sender sends one at a
// time, so more means a misbehaving one.
const MAX_OPEN_INCOMING = 16;

// Store is the page's side of store-worker.js: a request/answer RPC.
export class Store {
  constructor() {
    this.w = new Worker(new URL("./store-worker.js", import.meta.url), { type: "module" });
    this.rid = 0;
    this.pending = new Map();
    this.bulk = new Map(); // cid -> Peer whose bulk channel lives in the worker
    this.w.onmessage = (ev) => {
      const m = ev.data;
      if ("bulk" in m) {
        const p = this.bulk.get(m.bulk);
        if (p) p.onBulk(m);
        return;
      }
      const p = this.pending.get(m.rid);
      if (!p) return;
      this.pending.delete(m.rid);
      if (m.ok) p.res(m); else p.rej(new Error(m.error));
    };
    // A worker that cannot start (a browser without module workers, say)
    // fails every request with a sentence rather than leave it waiting.
    this.w.onerror = (ev) => {
      ev.preventDefault();
      this.broken = new Error("this browser could not start the file store (" + (ev.message || "module worker error") + ")");
      console.error(this.broken.message);
      for (const [, p] of this.pending) p.rej(this.broken);
      this.pending.clear();
    };
  }
  call(op, args = {}, transfer = []) {
    if (this.broken) return Promise.reject(this.broken);
    const rid = ++this.rid;
    return new Promise((res, rej) => {
      this.pending.set(rid, { res, rej });
      this.w.postMessage({ op, rid, ...args }, transfer);
    });
  }
  // attachBulk moves peer's bulk data channel into the worker; false where
  // the browser cannot transfer a data channel (the page keeps it).
  attachBulk(peer, dc) {
    if (this.broken || this.bulkInPage) return false;
    const rid = ++this.rid;
    try {
      this.w.postMessage({ op: "bulkAttach", rid, cid: peer.cid, room: peer.room, dc }, [dc]);
    } catch {
      return false; // DataCloneError: not transferable here
    }
    this.pending.set(rid, { res() {}, rej() {} });
    this.bulk.set(peer.cid, peer);
    return true;
  }
  detachBulk(cid) {
    this.bulk.delete(cid);
    this.call("bulkDetach", { cid }).catch(() => {});
  }
  terminate() { this.w.terminate(); }
}

// randomID is a file id below 2^53, so that JSON numbers stay exact.
function randomID() {
  const b = randomBytes(7);
  return (b[0] & 0x1f) * 2 ** 48 + b[1] * 2 ** 40 + b[2] * 2 ** 32 + b[3] * 2 ** 24 + b[4] * 2 ** 16 + b[5] * 2 ** 8 + b[6];
}

const isID = (v) => Number.isSafeInteger(v) && v >= 0 && v < MAX_SAFE_ID;
const isSHA256 = (v) => typeof v === "string" && /^[0-9a-f]{64}$/.test(v);

export class Transfers {
  // ui: the ui module's file-card functions; note(text) tells the user.
  constructor(room, store, ui, note) {
    this.room = room;
    this.store = store;
    this.ui = ui;
    this.note = note;
    this.out = []; // {id, file, name, size, sha, ready, done, card, accept, result, waiters}
    this.inc = new Map(); // id -> {offer, written, acked, card, failed}
    this.peer = null;
    this.wakeSender = null;
    this.ended = false;
    this.hid = 0; // the last outgoing hash's id in the store worker
  }

  // restore shows what IndexedDB says about this room's incoming files
  // (after a reload: verified ones with their Save button, partial ones at
  // the offset they will resume from).
  async restore() {
    for (const rec of await storage.allIncoming(this.room)) {
      const card = this.ui.fileCard(rec.id, "in", rec.offer.name, rec.offer.size);
      if (rec.status === "verified") this.verifiedCard(card, rec);
      else if (rec.status === "failed") card.set({ status: "failed", done: rec.flushed, detail: rec.error });
      else card.set({ status: "waiting", done: rec.flushed, detail: "Waiting for the other person to resume" });
    }
    // A page cannot keep a File across a reload: files it was sending wait
    // to be chosen again, and then resume (queue keeps their ids).
    for (const rec of await storage.allOutgoing(this.room)) {
      if (rec.done) continue;
      this.ui.fileCard(rec.id, "out", rec.name, rec.size)
        .set({ status: "waiting", detail: "Choose this file again to finish sending it." });
    }
  }

  // ---- outgoing ----

  // queue adds files to send. Each is hashed while it is sent (its
  // SHA-256 goes in file-done), so sending starts at once and the File is
  // read once.
  async queue(files) {
    for (const file of files) {
      if (this.ended) return;
      // The same file chosen again after a reload (same name, size and
      // modification time) keeps its id, so the receiver resumes it. A file
      // changed in place without a new modification time fails the
      // receiver's SHA-256 check at the end, and is discarded there.
      const known = await storage.findOutgoing(this.room, file.name, file.size, file.lastModified).catch(() => null);
      const f = { id: known ? known.id : randomID(), file, name: file.name, size: file.size, sha: null, ready: false,
        done: false, accept: null, result: null, waiters: {} };
      f.card = this.ui.fileCard(f.id, "out", f.name, f.size);
      this.out.push(f);
      try {
        await storage.putOutgoing(this.room, { id: f.id, name: f.name, size: f.size, lastModified: file.lastModified, done: false });
      } catch (e) {
        console.error("storage:", e); // only a resume after a reload needs it
      }
      f.ready = true;
      f.card.set({ status: "queued", done: 0, detail: "" });
      if (this.wakeSender) this.wakeSender();
    }
  }

  // waitFor resolves with the other side's answer of kind (accept,
  // result) for f, or null once the connection p closed. Only that answer
  // or the connection's end wakes it.
  waitFor(f, kind, p) {
    if (f[kind]) return Promise.resolve(f[kind]);
    return new Promise((res) => {
      f.waiters[kind] = res;
      p.onClose(() => res(null));
    });
  }

  settle(msg, kind) {
    const f = this.out.find((x) => x.id === msg.id && !x.done);
    if (!f) return;
    f[kind] = msg;
    const w = f.waiters[kind];
    if (w) { delete f.waiters[kind]; w(msg); }
  }

  // sendLoop sends the queued files, one at a time, while p is up.
  async sendLoop(p) {
    while (!p.closed && !this.ended) {
      const f = this.out.find((x) => x.ready && !x.done);
      if (!f) {
        await new Promise((res) => { this.wakeSender = res; p.openWaiters.push(res); });
        this.wakeSender = null;
        continue;
      }
      if (!await this.sendOne(p, f)) return;
    }
  }

  // sendOne offers f and sends it from the accepted offset; false if the
  // connection ended first (f is offered again on the next one).
  async sendOne(p, f) {
    f.accept = null;
    f.result = null;
    f.card.set({ status: "waiting", detail: "Waiting for the other person to accept" });
    p.sendJSON(MSG.FILE_OFFER, { id: f.id, name: f.name, size: f.size });
    const acc = await this.waitFor(f, "accept", p);
    if (!acc) return false;
    if (typeof acc.reject === "string" && acc.reject) {
      this.finishOut(f, "refused", "The other person refused it: " + shown(acc.reject.slice(0, 300)));
      return true;
    }
    let off = acc.offset;
    if (!Number.isSafeInteger(off) || off < 0 || off > f.size) {
      this.finishOut(f, "failed", "The receiver asked for a bad offset.");
      return true;
    }
    const resumed = off;
    f.card.set({ status: "sending", done: off, started: performance.now(), from: off,
      detail: off > 0 ? `Resumed at ${Math.round(off / 1e5) / 10} MB` : "", resumedAt: off > 0 ? off : null });
    if (p.bulkRemote) {
      // The store worker holds the bulk channel: it reads, hashes, seals
      // and sends every chunk, then file-done.
      let r;
      try {
        r = await this.store.call("bulkSend", { cid: p.cid, file: f.file, id: f.id, offset: off });
      } catch (e) {
        r = { failed: "This browser could not send the file: " + e.message };
      }
      if (r.failed) { this.finishOut(f, "failed", r.failed); return true; }
      if (!r.sent || p.closed) return false;
      f.sha = r.sha256;
      return this.awaitVerdict(p, f, resumed);
    }
    // The store worker hashes the file beside the sending: what comes
    // before the offset from the File, then every block sent, handed over.
    const hid = ++this.hid;
    const hashed = this.store.call("hashStart", { hid, file: f.file, upto: off });
    hashed.catch(() => {}); // hashEnd reports it
    const sent = await this.sendFrom(p, f, off, hid);
    if (sent !== true) {
      this.store.call("hashDrop", { hid }).catch(() => {});
      if (sent === false) return false;
      this.finishOut(f, "failed", sent);
      return true;
    }
    let sha;
    try {
      await hashed;
      ({ sha256: sha } = await this.store.call("hashEnd", { hid }));
    } catch (e) {
      this.finishOut(f, "failed", "This browser could not read the file any more: " + e.message);
      return true;
    }
    f.sha = sha;
    if (!await p.sendJSON(MSG.FILE_DONE, { id: f.id, sha256: sha })) return false;
    return this.awaitVerdict(p, f, resumed);
  }

  // awaitVerdict waits for the receiver's file-result once every chunk and
  // file-done went out; false if the connection ended first.
  async awaitVerdict(p, f, resumed) {
    f.card.set({ status: "verifying", detail: resumed ? `Resumed at ${Math.round(resumed / 1e5) / 10} MB; waiting for the verdict` : "Waiting for the verdict" });
    const res = await this.waitFor(f, "result", p);
    if (!res) return false;
    if (res.ok === true) this.finishOut(f, "verified", "Sent; the other person verified the SHA-256.");
    else this.finishOut(f, "failed", "The other person reports: " + shown(String(res.error || "no reason given").slice(0, 300)));
    return true;
  }

  // sendFrom sends f's chunks from off on p, handing each block to the
  // hash hid once its chunks are out: true when every chunk went, false if
  // the connection ended first, or a sentence saying why the file failed.
  async sendFrom(p, f, off, hid) {
    const ahead = [];
    // The File is read a block of chunks at a time: each read is a round
    // trip to the browser process.
    while (off < f.size) {
      let block;
      try {
        block = new Uint8Array(await f.file.slice(off, off + READ_BLOCK).arrayBuffer());
      } catch (e) {
        return "This browser could not read the file any more: " + e.message;
      }
      if (p.closed) return false;
      if (block.length === 0) return "The file got shorter while it was being sent.";
      for (let i = 0; i < block.length; i += DEFAULT_CHUNK_DATA) {
        if (!await p.bulkReady()) return false;
        // encodeChunk copies the data, so the block is free once its
        // chunks are encoded.
        ahead.push(p.send(MSG.FILE_CHUNK, encodeChunk(f.id, off + i, block.subarray(i, i + DEFAULT_CHUNK_DATA))));
        if (ahead.length >= CHUNKS_AHEAD && !await ahead.shift()) return false;
      }
      off += block.length;
      this.store.call("hashUpdate", { hid, data: block }, [block.buffer]).catch(() => {}); // hashEnd reports it
    }
    for (const a of ahead) if (!await a) return false;
    return true;
  }

  finishOut(f, status, detail) {
    f.done = true;
    f.card.set({ status, done: status === "verified" ? f.size : undefined, detail });
    storage.putOutgoing(this.room, { id: f.id, name: f.name, size: f.size, lastModified: f.file.lastModified, sha256: f.sha, done: true }).catch(() => {});
  }

  onAck(msg) {
    const f = this.out.find((x) => x.id === msg.id && !x.done);
    if (f && Number.isSafeInteger(msg.offset) && msg.offset >= 0 && msg.offset <= f.size) f.card.set({ done: msg.offset });
  }

  // ---- incoming ----

  async onOffer(p, o) {
    if (!isID(o.id)) return; // no id to answer to
    const id = o.id;
    const rec = this.inc.has(id) ? null : await storage.getIncoming(this.room, id).catch(() => null);
    if (rec && (rec.status === "verified" || rec.status === "failed")) {
      // Its verdict was lost with a connection: say it again.
      p.sendJSON(MSG.FILE_ACCEPT, { id, offset: rec.offer.size });
      p.sendJSON(MSG.FILE_RESULT, rec.status === "verified" ? { id, ok: true, name: rec.offer.name } : { id, ok: false, error: rec.error });
      return;
    }
    const refuse = (reason, why) => {
      this.note(`Refused the file ${shown(JSON.stringify(String(o.name).slice(0, 300)))}: ${why || reason}`);
      p.sendJSON(MSG.FILE_ACCEPT, { id, offset: 0, reject: reason });
    };
    const problem = nameProblem(o.name);
    if (problem) { refuse(`refused file name: ${problem}`); return; }
    // sha256 may be left out by a sender that hashes while sending (then it
    // comes in file-done).
    if (!Number.isSafeInteger(o.size) || o.size < 0 || o.sha256 !== undefined && !isSHA256(o.sha256)) {
      refuse("malformed file offer");
      return;
    }
    const osha = o.sha256 || null;
    let f = this.inc.get(id);
    if (f && (f.offer.size !== o.size || (f.offer.sha256 || null) !== osha)) { refuse("malformed file offer"); return; }
    if (!f) {
      if (this.inc.size >= MAX_OPEN_INCOMING) { refuse(TEXT_CANNOT_STORE, "too many files at once"); return; }
      if (!rec && !await this.hasRoomFor(o.size)) { refuse(TEXT_CANNOT_STORE, "not enough storage space in this browser"); return; }
      const offer = { id, name: o.name, size: o.size, sha256: osha };
      f = { offer, written: 0, acked: 0, failed: false, opening: true, card: null };
      this.inc.set(id, f);
      f.card = this.ui.fileCard(id, "in", offer.name, offer.size);
      if (!rec) await storage.putIncoming(this.room, { id, offer, flushed: 0, status: "receiving" });
    }
    f.opening = true;
    let have;
    try {
      ({ offset: have } = await this.store.call("open", { room: this.room, id, size: o.size, offset: rec ? rec.flushed : f.written }));
    } catch (e) {
      this.inc.delete(id);
      console.error("store:", e);
      this.failIn(id, f, TEXT_CANNOT_STORE);
      refuse(TEXT_CANNOT_STORE, "this browser cannot store it (" + e.message + ")");
      return;
    }
    f.written = f.acked = have;
    f.opening = false;
    f.card.set({ status: "receiving", done: have, started: performance.now(), from: have,
      detail: have > 0 ? `Resumed at ${Math.round(have / 1e5) / 10} MB` : "" });
    p.sendJSON(MSG.FILE_ACCEPT, { id, offset: have });
  }

  // hasRoomFor reports whether the browser's storage quota has room for size
  // more bytes (an estimate; a write that fails later still fails the file).
  async hasRoomFor(size) {
    try {
      const { quota, usage } = await navigator.storage.estimate();
      return !quota || quota - usage > size;
    } catch { return true; }
  }

  // onChunk takes one chunk: checked, handed to the worker without waiting
  // (the worker writes in order), acked once flushed every ACK_EVERY.
  onChunk(p, payload) {
    const ch = decodeChunk(payload);
    if (!ch) return;
    const f = this.inc.get(ch.id);
    if (!f || f.opening || f.failed || ch.offset !== f.written || f.written + ch.data.length > f.offer.size) return;
    f.written += ch.data.length;
    const data = ch.data;
    this.store.call("write", { room: this.room, id: ch.id, offset: ch.offset, data }, [data.buffer])
      .catch((e) => this.writeFailed(p, ch.id, f, e));
    if (f.written - f.acked >= ACK_EVERY || f.written === f.offer.size) {
      f.acked = f.written;
      const at = f.written;
      this.store.call("flush", { room: this.room, id: ch.id }).then(async () => {
        await storage.putIncoming(this.room, { id: ch.id, offer: f.offer, flushed: at, status: "receiving" });
        f.card.set({ done: at });
        p.sendJSON(MSG.FILE_ACK, { id: ch.id, offset: at });
      }, () => { /* the write's failure is reported */ });
    }
  }

  // onBulkEvent takes what the store worker did with incoming chunks on a
  // bulk channel it holds: flushed up to at (acknowledge it), or failed to
  // write.
  onBulkEvent(p, m) {
    const f = this.inc.get(m.id);
    if (!f || f.failed) return;
    if (m.ev === "writefail") { this.writeFailed(p, m.id, f, new Error(m.error)); return; }
    if (m.ev !== "flushed" || !Number.isSafeInteger(m.at) || m.at < f.acked) return;
    f.written = f.acked = m.at;
    storage.putIncoming(this.room, { id: m.id, offer: f.offer, flushed: m.at, status: "receiving" })
      .catch((e) => console.error("storage:", e))
      .then(() => {
        f.card.set({ done: m.at });
        p.sendJSON(MSG.FILE_ACK, { id: m.id, offset: m.at });
      });
  }

  writeFailed(p, id, f, e) {
    if (f.failed) return;
    f.failed = true;
    console.error("store:", e);
    this.inc.delete(id);
    this.failIn(id, f, TEXT_WRITE_FAILED);
    this.note(`Could not store ${shown(f.offer.name)}: ${e.message}`);
    p.sendJSON(MSG.FILE_RESULT, { id, ok: false, error: TEXT_WRITE_FAILED });
    this.store.call("discard", { room: this.room, id }).catch(() => {});
  }

  failIn(id, f, error) {
    f.card.set({ status: "failed", detail: error });
    storage.putIncoming(this.room, { id, offer: f.offer, flushed: 0, status: "failed", error }).catch(() => {});
  }

  async onDone(p, msg) {
    const f = this.inc.get(msg.id);
    if (!f || f.opening || f.failed || f.written !== f.offer.size) return;
    this.inc.delete(msg.id);
    f.card.set({ status: "verifying", done: f.written, detail: "Checking the SHA-256…" });
    let sha;
    try {
      ({ sha256: sha } = await this.store.call("finish", { room: this.room, id: msg.id }));
    } catch (e) {
      this.writeFailed(p, msg.id, f, e);
      return;
    }
    const id = msg.id;
    // The offer's SHA-256 counts; without one, file-done's. With neither,
    // nothing vouches for the bytes.
    const want = f.offer.sha256 || (isSHA256(msg.sha256) ? msg.sha256 : null);
    if (want && sha === want) {
      const rec = { id, offer: f.offer, flushed: f.written, status: "verified", sha256: sha };
      await storage.putIncoming(this.room, rec);
      this.verifiedCard(f.card, rec);
      p.sendJSON(MSG.FILE_RESULT, { id, ok: true, name: f.offer.name });
    } else {
      this.failIn(id, f, TEXT_CORRUPTED + "; it was discarded");
      await storage.putIncoming(this.room, { id, offer: f.offer, flushed: 0, status: "failed", error: TEXT_CORRUPTED });
      this.store.call("discard", { room: this.room, id }).catch(() => {});
      p.sendJSON(MSG.FILE_RESULT, { id, ok: false, error: TEXT_CORRUPTED });
    }
  }

  verifiedCard(card, rec) {
    card.set({ status: "verified", done: rec.offer.size, detail: "Received; SHA-256 verified." });
    card.save(rec.sha256 || rec.offer.sha256, () => this.save(rec));
  }

  // save hands a verified file to the user: through the save picker where
  // the browser has one (written straight from OPFS), else as a download
  // of the OPFS file (disk-backed, not read into memory).
  async save(rec) {
    const root = await navigator.storage.getDirectory();
    const dir = await (await root.getDirectoryHandle("tryst")).getDirectoryHandle(this.room);
    const file = await (await dir.getFileHandle(`in-${rec.id}`)).getFile();
    if (typeof globalThis.showSaveFilePicker === "function") {
      let handle;
      try {
        handle = await globalThis.showSaveFilePicker({ suggestedName: rec.offer.name });
      } catch (e) {
        if (e.name === "AbortError") return; // the person cancelled
        handle = null;
      }
      if (handle) {
        await file.stream().pipeTo(await handle.createWritable());
        return;
      }
    }
    const url = URL.createObjectURL(file);
    const a = document.createElement("a");
    a.href = url;
    a.download = rec.offer.name;
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  // onMessage takes the file messages of a ready connection.
  async onMessage(p, type, payload) {
    switch (type) {
      case MSG.FILE_CHUNK: this.onChunk(p, payload); return;
      case MSG.FILE_OFFER: await this.onOffer(p, jsonOf(payload)); return;
      case MSG.FILE_ACCEPT: this.settle(jsonOf(payload), "accept"); return;
      case MSG.FILE_ACK: this.onAck(jsonOf(payload)); return;
      case MSG.FILE_DONE: await this.onDone(p, jsonOf(payload)); return;
      case MSG.FILE_RESULT: this.settle(jsonOf(payload), "result"); return;
    }
  }

  // attach starts sending on a ready connection.
  attach(p) {
    this.peer = p;
    this.sendLoop(p).catch((e) => console.error(e));
  }

  // end stops everything for good (the room ended or was left).
  end() {
    this.ended = true;
    if (this.wakeSender) this.wakeSender();
    for (const f of this.out) if (!f.done) f.card.set({ status: "failed", detail: "The room ended before it was sent." });
    for (const [, f] of this.inc) f.card.set({ status: "failed", detail: "The room ended before it arrived." });
  }
}
