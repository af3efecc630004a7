// One peer connection to the other person: the RTCPeerConnection, its two
// data channels (control and bulk), the sealed offer and answer, key
// confirmation, keepalive, and sealed sending and receiving per channel
// (docs/PROTOCOL.md, "Data channel"). A new connection is a new Peer; an
// old one is closed and never reused.
//
// Everything the other side sends is untrusted until it opens under the
// connection's keys, and its contents even then: payload sizes are
// bounded, JSON is checked by the handlers.

import * as c from "./crypto.js";
import {
  BULK_CHANNEL, BULK_LABEL, CONTROL_CHANNEL, CONTROL_LABEL, GATHER_TIMEOUT_MS, HIGH_WATER, LOW_WATER,
  MAX_MESSAGE_SIZE, MSG, PEER_TIMEOUT_MS, PING_INTERVAL_MS, PROTOCOL_VERSION, channelOf, offerVersion,
} from "./protocol.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

// OldPeerError: a "v1." blob, or a sealed offer or answer below version 3:
// the other side speaks an older protocol version (crypto.js).
export { OldPeerError } from "./crypto.js";

// At most this many frames of a channel wait to be sealed and sent: the
// bulk sender reads its next slice while earlier chunks are being sealed,
// without queueing a file's worth of them.
const SEND_WINDOW = 4;

// Connection ids, unique in the page: what the store worker knows a
// connection's bulk channel by.
let lastCid = 0;
// REMOTE stands in channels[] for a bulk channel that lives in the store
// worker.
const REMOTE = Object.freeze({ readyState: "remote" });
// At most this many received file-data frames are being opened at once.
const RECV_WINDOW = 4;

export class Peer {
  // h: onReady(peer), onMessage(peer, type, payload) (may return a
  // promise: the channel's next frame waits for it), onFail(peer, reason),
  // onMismatch(peer), onRtt(peer, ms), onMalformed(peer, error).
  // store, if given, is the page's store worker (transfer.js Store): the
  // bulk channel goes there, where the browser can transfer it, with room
  // (whose incoming files it writes).
  constructor(role, { iceServers, relayOnly, store, room }, h) {
    this.role = role;
    this.store = store || null;
    this.room = room;
    this.cid = ++lastCid;
    this.bulkRemote = false; // the bulk channel lives in the store worker
    this.h = h;
    this.pc = new RTCPeerConnection({ iceServers: iceServers || [], iceTransportPolicy: relayOnly ? "relay" : "all" });
    this.channels = [null, null];
    this.sess = null;
    this.confirmed = false;
    this.closed = false;
    this.lastRecv = Date.now();
    this.timer = null;
    this.nonceHost = null;
    this.out = [{ items: [], running: false }, { items: [], running: false }];
    this.in = [{ items: [], running: false }, { items: [], running: false }];
    this.lowWaiters = [];
    this.openWaiters = [];
    this.closeWaiters = [];
    this.pc.onconnectionstatechange = () => {
      if (this.pc.connectionState === "failed") this.fail("connection failed");
    };
    if (role === "H") {
      // Control first, then bulk: the order the protocol names.
      this.attach(CONTROL_CHANNEL, this.pc.createDataChannel(CONTROL_LABEL));
      this.attach(BULK_CHANNEL, this.pc.createDataChannel(BULK_LABEL));
    } else {
      this.pc.ondatachannel = (ev) => {
        const ch = ev.channel.label === CONTROL_LABEL ? CONTROL_CHANNEL : ev.channel.label === BULK_LABEL ? BULK_CHANNEL : -1;
        if (ch < 0 || this.channels[ch]) { ev.channel.close(); return; }
        this.attach(ch, ev.channel);
      };
    }
  }

  // up reports whether the connection is ready: confirmed, control open.
  up() {
    const ctl = this.channels[CONTROL_CHANNEL];
    return this.confirmed && !this.closed && !!ctl && ctl.readyState === "open";
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.wake();
    for (const w of this.closeWaiters.splice(0)) w();
    for (const q of this.out) for (const it of q.items.splice(0)) it.done(false);
    if (this.bulkRemote) this.store.detachBulk(this.cid);
    try { this.pc.close(); } catch { /* already closed */ }
  }

  // onClose runs fn once the connection closed (at once if it has).
  // onBulk takes what the store worker reports about the bulk channel it
  // holds (see store-worker.js).
  onBulk(m) {
    if (this.closed) return;
    switch (m.ev) {
      case "open":
        this.lastRecv = Date.now();
        for (const w of this.openWaiters.splice(0)) w();
        return;
      case "close": this.fail("data channel closed"); return;
      case "fail": this.fail(m.reason); return;
      case "done":
        this.lastRecv = Date.now();
        Promise.resolve(this.h.onMessage(this, MSG.FILE_DONE, m.payload))
          .catch((e) => { if (!this.closed) this.h.onMalformed(this, e); });
        return;
      default:
        if (m.ev === "flushed") this.lastRecv = Date.now();
        this.h.onBulkEvent(this, m);
    }
  }

  // keysReady hands the bulk channel's keys to the store worker, once both
  // the keys and the channel exist (the host creates the channel first, the
  // guest makes its keys first).
  keysReady() {
    if (!this.bulkRemote) return;
    this.store.call("bulkKeys", { cid: this.cid, sendKey: this.sess.sendKey, recvKey: this.sess.recvKey }).catch(() => {});
  }

  onClose(fn) { if (this.closed) fn(); else this.closeWaiters.push(fn); }

  fail(reason) {
    if (this.closed) return;
    this.h.onFail(this, reason);
  }

  wake() {
    for (const w of this.lowWaiters.splice(0)) w();
    for (const w of this.openWaiters.splice(0)) w();
  }

  attach(ch, dc) {
    // The bulk channel goes to the store worker if this browser can
    // transfer it; that must happen in the task that created or announced
    // the channel, before any of its events.
    if (ch === BULK_CHANNEL && this.store && this.store.attachBulk(this, dc)) {
      this.bulkRemote = true;
      this.channels[ch] = REMOTE;
      // The guest hears of the channel after its keys were made.
      if (this.sess) this.keysReady();
      return;
    }
    this.channels[ch] = dc;
    dc.binaryType = "arraybuffer";
    if (ch === BULK_CHANNEL) {
      dc.bufferedAmountLowThreshold = LOW_WATER;
      dc.onbufferedamountlow = () => { for (const w of this.lowWaiters.splice(0)) w(); };
    }
    dc.onopen = async () => {
      this.lastRecv = Date.now();
      for (const w of this.openWaiters.splice(0)) w();
      if (ch !== CONTROL_CHANNEL) return;
      if (!this.sess) { this.fail("data channel opened before key agreement"); return; }
      // Key confirmation: frame 0 of control, before anything else.
      this.send(MSG.CONFIRM, await this.sess.confirmation(this.role));
    };
    dc.onclose = () => this.fail("data channel closed");
    dc.onmessage = (ev) => {
      const q = this.in[ch];
      q.items.push(ev.data);
      if (!q.running) this.consume(ch);
    };
  }

  // consume opens a channel's frames one at a time, in arrival order: one
  // loop per channel, not a promise chain per frame.
  async consume(ch) {
    if (ch === BULK_CHANNEL && this.confirmed) return this.consumeBulk();
    const q = this.in[ch];
    q.running = true;
    try {
      while (q.items.length && !this.closed) {
        try {
          await this.onFrame(ch, q.items.shift());
        } catch (e) {
          // A frame that opened (it is the other side's) but could not be
          // read: reported and skipped, the next one goes on.
          if (!this.closed) this.h.onMalformed(this, e);
        }
      }
    } finally {
      q.running = false;
    }
  }

  // consumeBulk is consume for file data once the connection is ready:
  // it starts opening up to RECV_WINDOW frames at once (open takes each
  // frame's sequence number in arrival order) and hands them on in that
  // order, so decryption overlaps the handling of the frames before.
  async consumeBulk() {
    const q = this.in[BULK_CHANNEL];
    q.running = true;
    const opening = [];
    try {
      while ((q.items.length || opening.length) && !this.closed) {
        while (q.items.length && opening.length < RECV_WINDOW) {
          const data = q.items.shift();
          if (typeof data === "string" || data.byteLength > MAX_MESSAGE_SIZE) {
            this.fail("the other side sent a message that is not a frame");
            return;
          }
          opening.push(this.sess.open(BULK_CHANNEL, data).then((m) => ({ m }), (e) => ({ e })));
        }
        const r = await opening.shift();
        if (this.closed) return;
        if (r.e) {
          this.fail("a message failed verification; reconnecting with fresh keys");
          return;
        }
        this.lastRecv = Date.now();
        // A known type of the other channel is ignored, as in onFrame.
        if (channelOf(r.m.type) !== BULK_CHANNEL) continue;
        try {
          await this.h.onMessage(this, r.m.type, r.m.payload);
        } catch (e) {
          if (!this.closed) this.h.onMalformed(this, e);
        }
      }
    } finally {
      q.running = false;
    }
  }

  async onFrame(ch, data) {
    if (typeof data === "string" || data.byteLength > MAX_MESSAGE_SIZE) {
      this.fail("the other side sent a message that is not a frame");
      return;
    }
    if (!this.confirmed && ch === BULK_CHANNEL) {
      // File data follows a file-accept, sent only once ready: no correct
      // peer sends bulk frames before that.
      this.fail("file data before the connection was ready");
      return;
    }
    let m;
    try {
      m = await this.sess.open(ch, data);
    } catch (e) {
      if (this.closed) return;
      if (!this.confirmed && e instanceof c.MismatchError) { this.h.onMismatch(this); return; }
      this.fail("a message failed verification; reconnecting with fresh keys");
      return;
    }
    if (this.closed) return;
    this.lastRecv = Date.now();
    if (!this.confirmed) {
      if (m.type !== MSG.CONFIRM) { this.h.onMismatch(this); return; }
      try { await this.sess.checkConfirmation(m.payload); } catch { this.h.onMismatch(this); return; }
      this.confirmed = true;
      this.timer = setInterval(() => this.keepalive(), PING_INTERVAL_MS);
      this.h.onReady(this);
      return;
    }
    // A known type on the wrong channel is ignored (it opened, so the
    // sequences stay in step).
    if (m.type >= MSG.CONFIRM && m.type <= MSG.BYE && channelOf(m.type) !== ch) return;
    switch (m.type) {
      case MSG.PING: this.send(MSG.PONG, m.payload); return;
      case MSG.PONG: {
        const t = Number(jsonOf(m.payload).t);
        const ms = (performance.now() * 1000 - t) / 1000;
        if (Number.isFinite(ms) && ms >= 0 && ms < PEER_TIMEOUT_MS * 4) this.h.onRtt(this, ms);
        return;
      }
    }
    await this.h.onMessage(this, m.type, m.payload);
  }

  keepalive() {
    if (Date.now() - this.lastRecv > PEER_TIMEOUT_MS) { this.fail("the other person went silent"); return; }
    this.ping();
  }

  ping() { this.sendJSON(MSG.PING, { t: Math.round(performance.now() * 1000) }); }

  // send seals and sends a message on its channel; frames of a channel go
  // out in call order. It resolves true once the frame was handed to the
  // data channel, false if the connection closed first.
  send(type, payload = new Uint8Array()) {
    const ch = channelOf(type);
    return new Promise((done) => {
      if (this.closed) { done(false); return; }
      this.out[ch].items.push({ type, payload, done });
      if (!this.out[ch].running) this.pump(ch);
    });
  }

  sendJSON(type, obj) { return this.send(type, enc.encode(JSON.stringify(obj))); }

  async pump(ch) {
    const q = this.out[ch];
    q.running = true;
    const sealing = [];
    try {
      while ((q.items.length || sealing.length) && !this.closed) {
        // Seal up to SEND_WINDOW frames ahead (seal takes the sequence
        // number at once, so they are numbered in order), then hand the
        // oldest to the channel.
        while (q.items.length && sealing.length < SEND_WINDOW) {
          const it = q.items.shift();
          sealing.push({ it, frame: this.sess.seal(ch, it.type, it.payload) });
        }
        const { it, frame } = sealing.shift();
        const f = await frame;
        const dc = this.channels[ch];
        if (this.closed || !dc || dc.readyState !== "open") { it.done(false); continue; }
        dc.send(f);
        it.done(true);
      }
    } catch (e) {
      this.fail("send failed: " + (e && e.message || e));
    } finally {
      for (const s of sealing) s.it.done(false);
      q.running = false;
    }
  }

  // bulkReady waits until the bulk channel is open and its buffer below
  // the high-water mark; false if the connection closed.
  async bulkReady() {
    for (;;) {
      if (this.closed) return false;
      const dc = this.channels[BULK_CHANNEL];
      if (!dc || dc.readyState !== "open") {
        await new Promise((r) => this.openWaiters.push(r));
        continue;
      }
      if (dc.bufferedAmount < HIGH_WATER) return true;
      await new Promise((r) => this.lowWaiters.push(r));
    }
  }

  // path says how the connection goes: "direct", "relayed" or "".
  async path() {
    const stats = await this.pc.getStats();
    let pair = null;
    stats.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    if (!pair) stats.forEach((s) => { if (s.type === "candidate-pair" && s.state === "succeeded" && s.nominated) pair = s; });
    if (!pair) return "";
    const local = stats.get(pair.localCandidateId), remote = stats.get(pair.remoteCandidateId);
    return [local, remote].some((x) => x && x.candidateType === "relay") ? "relayed" : "direct";
  }
}

export function jsonOf(payload) {
  const v = JSON.parse(dec.decode(payload));
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("not a JSON object");
  return v;
}

function gathered(pc) {
  return new Promise((res) => {
    if (pc.iceGatheringState === "complete") return res();
    const t = setTimeout(res, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(t); res(); }
    });
  });
}

// offer prepares the host's offer on a new Peer and returns the sealed
// blob, or null if the peer closed meanwhile.
export async function offer(p, signaler) {
  p.nonceHost = c.randomBytes(c.NONCE_SIZE);
  await p.pc.setLocalDescription(await p.pc.createOffer());
  await gathered(p.pc);
  if (p.closed) return null;
  const body = { sdp: p.pc.localDescription.sdp, nonce: c.b64std(p.nonceHost), version: PROTOCOL_VERSION };
  return signaler.seal("offer", "H", enc.encode(JSON.stringify(body)));
}

// openAnswer opens an answer blob under the host's epoch: {mismatch: true},
// {stale: true} (it answers another offer), or the answer applied to p. It
// throws what Signaler.open throws (MismatchError for a blob of the epoch
// that does not open, OtherEpochError, OldPeerError, MalformedError), and
// OldPeerError for an answer below version 3.
export async function openAnswer(p, signaler, blob) {
  const a = jsonOf(await signaler.open("answer", "G", blob));
  if (a.mismatch === true) return { mismatch: true };
  if (!p || p.closed || typeof a.offer_nonce !== "string" || a.offer_nonce !== c.b64std(p.nonceHost)) return { stale: true };
  if (offerVersion(a) < PROTOCOL_VERSION) throw new c.OldPeerError();
  if (typeof a.sdp !== "string" || typeof a.nonce !== "string") return { stale: true };
  p.sess = await c.Session.create(signaler.master, "H", p.nonceHost, c.unb64std(a.nonce),
    c.fingerprintOf(p.pc.localDescription.sdp), c.fingerprintOf(a.sdp));
  p.keysReady();
  await p.pc.setRemoteDescription({ type: "answer", sdp: a.sdp });
  return {};
}

// openOffer opens an offer blob under the epoch or pending exchange its sid
// names; it throws what Signaler.open throws, and OldPeerError for an
// offer below version 3.
export async function openOffer(signaler, blob) {
  const o = jsonOf(await signaler.open("offer", "H", blob));
  if (offerVersion(o) < PROTOCOL_VERSION) throw new c.OldPeerError();
  if (typeof o.sdp !== "string" || typeof o.nonce !== "string") throw new Error("malformed offer");
  return o;
}

// answer applies an opened offer to a new guest Peer and returns the
// sealed answer, or null if the peer closed meanwhile.
export async function answer(p, signaler, o) {
  p.nonceHost = c.unb64std(o.nonce);
  const nonceGuest = c.randomBytes(c.NONCE_SIZE);
  await p.pc.setRemoteDescription({ type: "offer", sdp: o.sdp });
  await p.pc.setLocalDescription(await p.pc.createAnswer());
  await gathered(p.pc);
  if (p.closed) return null;
  const local = p.pc.localDescription.sdp;
  p.sess = await c.Session.create(signaler.master, "G", p.nonceHost, nonceGuest, c.fingerprintOf(o.sdp), c.fingerprintOf(local));
  p.keysReady();
  const body = { sdp: local, nonce: c.b64std(nonceGuest), offer_nonce: o.nonce, version: PROTOCOL_VERSION };
  return signaler.seal("answer", "G", enc.encode(JSON.stringify(body)));
}

export function mismatchAnswer(signaler) {
  return signaler.seal("answer", "G", enc.encode(JSON.stringify({ mismatch: true })));
}
