// The hub connection: one WebSocket to /v1/ws that creates, joins or
// resumes the room, carries the sealed signaling, and is reconnected with a
// backoff whenever it drops. Once the two people are connected, chat and
// files never go through the hub: its state only matters for signaling a
// new connection. The hub is untrusted (it sees only sealed blobs).
//
// Hub.state is "up" while attached; "down" while unreachable; "gone" once
// it answered that it does not know the room while the peer connection was
// still up (a restarted hub may know it again, so it is asked again).

import { PROTOCOL_VERSION, RECONNECT_BACKOFF_MAX_MS } from "./protocol.js";

const BACKOFF_START_MS = 500;

export class Hub {
  // app provides: peerUp() (the data path is up), relayWait() (ms until a
  // resume would bring back a withheld relay), onAttached(frame),
  // onFrame(frame), onState(), onRoomGone(), onFatal(text),
  // onToken(token), onReplaced().
  constructor(app) {
    this.app = app;
    this.ws = null;
    this.state = "down";
    this.since = 0;
    this.backoff = BACKOFF_START_MS;
    this.timer = null;
    this.token = null;
    this.stopped = false;
    this.nextAttempt = 0; // when a scheduled reconnect is due (ms epoch)
  }

  url() { return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`; }

  open() { return !!this.ws && this.ws.readyState === WebSocket.OPEN; }

  send(frame) { if (this.open()) this.ws.send(JSON.stringify(frame)); }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
  }

  // connect opens the WebSocket, sends first, and resolves with the hub's
  // answer (created, joined, resumed) or rejects with its error.
  connect(first) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url());
      this.ws = ws;
      let answered = false;
      // A hub that refuses the version (unsupported_version: an older hub)
      // is not asked again with another; its message is shown.
      ws.onopen = () => ws.send(JSON.stringify({ ...first, version: PROTOCOL_VERSION }));
      ws.onmessage = (ev) => {
        let f;
        try { f = JSON.parse(ev.data); } catch { return; }
        if (!f || typeof f !== "object") return;
        if (!answered) {
          answered = true;
          if (f.type === "error") {
            // A refused first frame leaves the connection with no use;
            // close it rather than hold a slot of the per-address cap.
            if (this.ws === ws) this.ws = null;
            ws.close();
            reject(f);
          } else resolve(f);
          return;
        }
        if (f.token && f.type !== "error") this.setToken(f.token);
        Promise.resolve(this.app.onFrame(f)).catch((e) => console.error(e));
      };
      ws.onclose = (ev) => {
        const current = this.ws === ws;
        if (current) this.ws = null;
        if (answered && current && ev.code === 1008 && /another connection/.test(ev.reason)) {
          // This room was resumed elsewhere (another tab of this profile):
          // step aside rather than take it back, which would only make the
          // two tabs take turns.
          this.stopped = true;
          clearTimeout(this.timer);
          this.app.onReplaced();
          return;
        }
        if (!answered) {
          // The caller's failure handler decides what comes next.
          answered = true;
          reject({ code: "closed", message: "could not reach the hub" });
          return;
        }
        if (current) this.lost();
      };
    });
  }

  setToken(token) {
    // The hub re-issues the resume token (resumed, peer-joined,
    // peer-back): the latest one is what brings the room back after a hub
    // restart.
    this.token = token;
    this.app.onToken(token);
  }

  // attach sends first and handles the welcome; it rejects with the hub's
  // error, which the caller passes to failure().
  async attach(first) {
    const f = await this.connect(first);
    this.state = "up";
    this.since = Date.now();
    if (f.token) this.setToken(f.token);
    this.app.onState();
    await this.app.onAttached(f);
    return f;
  }

  resume() {
    return this.attach({ type: "resume", token: this.token }).catch((e) => this.failure(e));
  }

  // lost runs when the hub connection ended or an attempt to reach it
  // failed: resume after the backoff. The peer connection is left alone.
  lost() {
    this.ws = null;
    if (this.stopped || !this.token) return;
    if (this.state === "up") {
      this.state = "down";
      // A connection that stayed up a while was a working one: start the
      // backoff over. One dropped at once keeps doubling it.
      if (Date.now() - this.since > RECONNECT_BACKOFF_MAX_MS) this.backoff = BACKOFF_START_MS;
    }
    // A live connection needs the hub only to signal; a relay the hub
    // withheld matters only to a new one.
    const up = this.app.peerUp();
    const wait = up ? this.backoff : Math.max(this.backoff, this.app.relayWait());
    this.backoff = Math.min(this.backoff * 2, RECONNECT_BACKOFF_MAX_MS);
    this.nextAttempt = Date.now() + wait;
    this.app.onState();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.resume(), wait);
  }

  // roomGone: the hub does not know the room. That ends the session unless
  // the connection to the other person is still up; then chat goes on and
  // the hub is asked again with the backoff.
  roomGone() {
    if (this.stopped) return;
    if (this.app.peerUp()) {
      this.state = "gone";
      this.lost();
      return;
    }
    this.app.onRoomGone();
  }

  failure(err) {
    if (this.stopped) return;
    const code = err && err.code;
    if (code === "no_such_room") return this.roomGone();
    if (code === "unsupported_version") return this.app.onFatal("The hub does not speak this page's protocol: " + err.message);
    if (code === "room_full") return this.app.onFatal("This room is full: it already has two people.");
    this.lost();
  }

  // hubError handles an error frame after the welcome.
  hubError(f) {
    if (f.code === "no_such_room") {
      const ws = this.ws;
      this.ws = null;
      if (ws) ws.close();
      this.roomGone();
      return true;
    }
    return false;
  }
}
