// Bare data-channel peers for web's BenchmarkBrowserRaw (docs/BENCHMARKS.md,
// "Browser transfers"). The test drives them over CDP: it moves each
// offer and answer between pages itself, then asks one peer to send and
// another to report when everything has arrived. No crypto, no framing:
// the baseline Tryst's client is compared with.
"use strict";

// The sender keeps bufferedAmount between LOW and HIGH: it writes while at
// or below HIGH and waits for bufferedamountlow (threshold LOW) otherwise.
const HIGH = 8 << 20;
const LOW = 1 << 20;

const peers = new Map(); // name -> peer

// iceServers: the test's STUN server. In the test's network namespace
// (loopback only) Chromium gathers no host candidate; the server-reflexive
// one it learns from STUN is 127.0.0.1, so the path is still direct.
function newPeer(name, iceServers) {
  if (peers.has(name)) throw new Error(`peer ${name} exists`);
  const p = { pc: new RTCPeerConnection({ iceServers }), dc: null, got: 0, target: 0, arrived: null, done: null, opened: null };
  peers.set(name, p);
  return p;
}

function peer(name) {
  const p = peers.get(name);
  if (!p) throw new Error(`no peer ${name}`);
  return p;
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
}

function receive(p, dc) {
  dc.binaryType = "arraybuffer";
  dc.onmessage = (e) => {
    p.got += e.data.byteLength;
    if (p.arrived && p.got >= p.target) {
      const done = p.arrived;
      p.arrived = null;
      done();
    }
  };
}

function whenOpen(dc) {
  if (dc.readyState === "open") return Promise.resolve();
  return new Promise((resolve, reject) => {
    dc.addEventListener("open", () => resolve());
    dc.addEventListener("close", () => reject(new Error("data channel closed")));
  });
}

window.bench = {
  // offer makes peer name the offerer with one ordered, reliable channel;
  // it returns the offer with every candidate.
  async offer(name, iceServers) {
    const p = newPeer(name, iceServers);
    p.dc = p.pc.createDataChannel("bench", { ordered: true });
    receive(p, p.dc);
    p.opened = whenOpen(p.dc);
    await p.pc.setLocalDescription();
    await gathered(p.pc);
    return JSON.stringify(p.pc.localDescription);
  },

  // answer makes peer name the answerer of offer; it returns the answer.
  async answer(name, offer, iceServers) {
    const p = newPeer(name, iceServers);
    p.opened = new Promise((resolve) => {
      p.pc.ondatachannel = (e) => {
        p.dc = e.channel;
        receive(p, p.dc);
        resolve(whenOpen(p.dc));
      };
    });
    await p.pc.setRemoteDescription(JSON.parse(offer));
    await p.pc.setLocalDescription();
    await gathered(p.pc);
    return JSON.stringify(p.pc.localDescription);
  },

  async accept(name, answer) {
    await peer(name).pc.setRemoteDescription(JSON.parse(answer));
    return true;
  },

  async opened(name) {
    await peer(name).opened;
    return peer(name).dc.readyState;
  },

  // expect arms peer name to resolve arrived(name) once n more bytes have
  // come. Armed before the sender starts, so no byte is missed.
  expect(name, n) {
    const p = peer(name);
    p.target = p.got + n;
    p.done = new Promise((resolve) => {
      p.arrived = resolve;
    });
    return p.target;
  },

  async arrived(name) {
    await peer(name).done;
    return peer(name).got;
  },

  // send writes total bytes in messages of size bytes (the last one may be
  // shorter) and returns once the last one is queued.
  async send(name, total, size) {
    const dc = peer(name).dc;
    dc.bufferedAmountLowThreshold = LOW;
    const msg = new Uint8Array(size);
    crypto.getRandomValues(msg.subarray(0, Math.min(size, 65536)));
    let drained = null;
    dc.onbufferedamountlow = () => {
      if (drained) {
        const d = drained;
        drained = null;
        d();
      }
    };
    for (let sent = 0; sent < total; ) {
      if (dc.bufferedAmount > HIGH) {
        await new Promise((resolve) => {
          drained = resolve;
        });
        continue;
      }
      const n = Math.min(size, total - sent);
      dc.send(n === size ? msg : msg.subarray(0, n));
      sent += n;
    }
    return total;
  },

  // pair connects two peers of this page (both ends in one renderer).
  async pair(a, b, iceServers) {
    const answer = await this.answer(b, await this.offer(a, iceServers), iceServers);
    await this.accept(a, answer);
    await this.opened(a);
    await this.opened(b);
    return true;
  },

  // path is the selected candidate pair's types, "local/remote".
  async path(name) {
    const stats = await peer(name).pc.getStats();
    for (const s of stats.values()) {
      if (s.type === "transport" && s.selectedCandidatePairId) {
        const pair = stats.get(s.selectedCandidatePairId);
        return stats.get(pair.localCandidateId).candidateType + "/" + stats.get(pair.remoteCandidateId).candidateType;
      }
    }
    return "";
  },

  close() {
    for (const p of peers.values()) p.pc.close();
    peers.clear();
    return true;
  },
};
