// The store worker: a dedicated module worker that owns the files of
// transfers, so that neither the page nor any single buffer ever holds a
// whole file.
//
// - Incoming files go to the origin-private file system (OPFS), one file
//   per transfer at tryst/<room>/in-<id>, through createSyncAccessHandle
//   (only workers have it: synchronous writes at an offset, with no copy
//   through a stream). An incremental SHA-256 (the vendored hash-wasm,
//   WebAssembly: 360 MB/s in Chromium here, where @noble/hashes' plain
//   JavaScript managed 55 MB/s and held a core busy at a browser's transfer
//   rate; docs/BENCHMARKS.md)
//   follows the bytes as they are written; flush() makes them durable
//   before the page acks them, so an ack is a true resume point. After a
//   reload, open() with a resume offset cuts the file to what was flushed
//   and rebuilds the hash by reading that part back.
// - Outgoing files are hashed here too, while they are sent: the page hands
//   over each block of the File it has read and sent (transferred, not
//   copied), so the File is read once; a file resumed at an offset first
//   hashes what came before it, read in slices of the File (a disk-backed
//   Blob), never as one ArrayBuffer.
//
// Requests are {op, rid, ...}; every answer is {rid, ok, ...} or
// {rid, ok: false, error}. Requests are handled one at a time in arrival
// order, in two queues: the incoming files' (so a flush answers after every
// write before it) and the outgoing hashes' (so that receiving never waits
// for a resumed file's prefix to be hashed).
// hash-wasm ships as a UMD script: imported as a module it defines
// hashwasm on the worker's global (the page's window never sees it).
import "./vendor/hash-wasm-4.13.0/sha256.umd.min.js";
import { frameSeq, openFrame, sealParts } from "./crypto.js";
import {
  ACK_EVERY, BULK_CHANNEL, CHUNK_HEADER, DEFAULT_CHUNK_DATA, HIGH_WATER, LOW_WATER, MAX_MESSAGE_SIZE, MSG, decodeChunk,
} from "./protocol.js";

const { createSHA256 } = globalThis.hashwasm;

const SLICE = 4 << 20; // a reopened partial file is read back (and hashed) 4 MiB at a time
const open = new Map(); // key -> {handle, hash, size, written}

async function roomDir(room, create = true) {
  const root = await navigator.storage.getDirectory();
  const top = await root.getDirectoryHandle("tryst", { create });
  return top.getDirectoryHandle(room, { create });
}

// syncHandle opens a sync access handle, waiting a little while a handle
// of the page before a reload is still being released by the browser.
async function syncHandle(fh) {
  for (let i = 0; ; i++) {
    try {
      return await fh.createSyncAccessHandle();
    } catch (e) {
      if (i >= 40 || e.name !== "NoModificationAllowedError") throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const ops = {
  // open starts or resumes an incoming file. offset is how many bytes the
  // page knows were flushed (0 for a new transfer); the answer's offset is
  // what the file really holds up to that, the resume point.
  async open({ room, id, size, offset }) {
    const key = `${room}/${id}`;
    let f = open.get(key);
    if (f) return { offset: f.written };
    const dir = await roomDir(room);
    const fh = await dir.getFileHandle(`in-${id}`, { create: true });
    const handle = await syncHandle(fh);
    let have = Math.min(handle.getSize(), offset || 0, size);
    handle.truncate(have);
    const hash = await createSHA256();
    hash.init();
    const buf = new Uint8Array(Math.min(SLICE, Math.max(have, 1)));
    for (let at = 0; at < have;) {
      const n = handle.read(buf.subarray(0, Math.min(buf.length, have - at)), { at });
      if (n <= 0) { have = at; handle.truncate(have); break; }
      hash.update(buf.subarray(0, n));
      at += n;
    }
    f = { handle, hash, size, written: have, acked: have, failed: false };
    open.set(key, f);
    return { offset: have };
  },
  // write puts one chunk at the end of what was written: the page passes
  // only chunks whose offset it checked, in order.
  write({ room, id, offset, data }) {
    const f = open.get(`${room}/${id}`);
    if (!f || offset !== f.written) throw new Error("write out of order");
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    const n = f.handle.write(bytes, { at: offset });
    if (n !== bytes.length) throw new Error("short write");
    f.hash.update(bytes);
    f.written += n;
    return { written: f.written };
  },
  flush({ room, id }) {
    const f = open.get(`${room}/${id}`);
    if (!f) throw new Error("no such transfer");
    f.handle.flush();
    return { written: f.written };
  },
  // finish flushes and closes the file and gives its SHA-256.
  finish({ room, id }) {
    const key = `${room}/${id}`;
    const f = open.get(key);
    if (!f) throw new Error("no such transfer");
    f.handle.flush();
    f.handle.close();
    open.delete(key);
    return { written: f.written, sha256: f.hash.digest("hex") };
  },
  // close lets go of an open file (a connection ended; the part stays).
  close({ room, id }) {
    const key = `${room}/${id}`;
    const f = open.get(key);
    if (f) {
      try { f.handle.flush(); } finally { f.handle.close(); open.delete(key); }
    }
    return {};
  },
  async discard({ room, id }) {
    await ops.close({ room, id });
    const dir = await roomDir(room);
    await dir.removeEntry(`in-${id}`).catch(() => {});
    return {};
  },
  async forgetRoom({ room }) {
    for (const key of [...open.keys()]) {
      if (key.startsWith(room + "/")) ops.close({ room, id: key.slice(room.length + 1) });
    }
    const root = await navigator.storage.getDirectory();
    const top = await root.getDirectoryHandle("tryst", { create: true });
    await top.removeEntry(room, { recursive: true }).catch(() => {});
    return {};
  },
};

// The outgoing hashes, by the page's hash id.
const hashes = new Map();

const hashOps = {
  // hashStart begins the hash of an outgoing file whose sending starts at
  // upto: the bytes before it are read from the File here.
  async hashStart({ hid, file, upto }) {
    const hash = await hashPrefix(file, upto);
    // Only a complete prefix makes a hash: after a failed read, the
    // updates and the end fail too, rather than give a wrong SHA-256.
    hashes.set(hid, hash);
    return {};
  },
  // hashUpdate adds the next block the page sent.
  hashUpdate({ hid, data }) {
    const hash = hashes.get(hid);
    if (!hash) throw new Error("no such hash");
    hash.update(data instanceof Uint8Array ? data : new Uint8Array(data));
    return {};
  },
  hashEnd({ hid }) {
    const hash = hashes.get(hid);
    if (!hash) throw new Error("no such hash");
    hashes.delete(hid);
    return { sha256: hash.digest("hex") };
  },
  hashDrop({ hid }) {
    hashes.delete(hid);
    return {};
  },
};

// ---- the bulk channel, where the page could hand it over ----
//
// A connection's bulk data channel lives here when the page could transfer
// it (RTCDataChannel is transferable to dedicated workers in Chromium and
// WebKit). Then file data never touches the page's main thread: this worker
// reads the File, hashes it, seals and sends every chunk and file-done,
// and opens, checks and writes every chunk received, flushing before it
// tells the page to acknowledge. The page keeps the file handshake on the
// control channel and hears of the bulk channel only as events:
// {bulk: cid, ev: "open" | "close" | "fail" (reason) | "flushed" (id, at) |
// "writefail" (id, error) | "done" (payload: file-done's plaintext)}.
// The worker owns the bulk channel's frame sequences both ways.

const bulks = new Map(); // cid -> connection
const SEAL_AHEAD = 4; // chunks being sealed while earlier ones go out
const OPEN_AHEAD = 4; // frames being opened while earlier ones are written
// HASH_BEHIND is how many bytes a resumed file's sending may run ahead of
// the hash of what came before the resume offset.
const HASH_BEHIND = 16 << 20;

function bulkEvent(b, ev, extra = {}, transfer = []) {
  if (!b.detached) postMessage({ bulk: b.cid, ev, ...extra }, transfer);
}

// bulkFail ends a connection's bulk channel for good, saying why.
function bulkFail(b, reason) {
  if (b.closed) return;
  b.closed = true;
  b.inq.length = 0;
  b.wake();
  bulkEvent(b, "fail", { reason });
}

// bulkReceive opens the frames received, in order, OPEN_AHEAD at a time.
async function bulkReceive(b) {
  if (b.receiving) return;
  b.receiving = true;
  const opening = [];
  try {
    while ((b.inq.length || opening.length) && !b.closed) {
      while (b.inq.length && opening.length < OPEN_AHEAD) {
        const data = b.inq.shift();
        if (typeof data === "string" || data.byteLength > MAX_MESSAGE_SIZE) {
          bulkFail(b, "the other side sent a message that is not a frame");
          return;
        }
        if (!b.recvKey) {
          bulkFail(b, "file data before the connection was ready");
          return;
        }
        const frame = new Uint8Array(data);
        const seq = frameSeq(frame);
        if (seq !== b.recvSeq) {
          bulkFail(b, "a message failed verification; reconnecting with fresh keys");
          return;
        }
        b.recvSeq++;
        opening.push(openFrame(b.recvKey, BULK_CHANNEL, seq, frame).then((m) => ({ m }), (e) => ({ e })));
      }
      const r = await opening.shift();
      if (b.closed) return;
      if (r.e) {
        bulkFail(b, "a message failed verification; reconnecting with fresh keys");
        return;
      }
      if (r.m.type === MSG.FILE_CHUNK) bulkChunk(b, r.m.payload);
      else if (r.m.type === MSG.FILE_DONE) bulkEvent(b, "done", { payload: r.m.payload }, [r.m.payload.buffer]);
      // Anything else does not belong on bulk: ignored, as the page does.
    }
  } finally {
    b.receiving = false;
  }
}

// bulkChunk writes one chunk of a file the page accepted, if it is the
// next one; anything else (a chunk from before a resume, past the size, of
// a file not open) is ignored, as docs/PROTOCOL.md says.
function bulkChunk(b, payload) {
  const ch = decodeChunk(payload);
  if (!ch) return;
  const f = open.get(`${b.room}/${ch.id}`);
  if (!f || f.failed || ch.offset !== f.written || f.written + ch.data.length > f.size) return;
  try {
    const n = f.handle.write(ch.data, { at: ch.offset });
    if (n !== ch.data.length) throw new Error("short write");
    f.hash.update(ch.data);
    f.written += n;
    if (f.written - f.acked >= ACK_EVERY || f.written === f.size) {
      f.handle.flush();
      f.acked = f.written;
      bulkEvent(b, "flushed", { id: ch.id, at: f.written });
    }
  } catch (e) {
    f.failed = true;
    bulkEvent(b, "writefail", { id: ch.id, error: String(e && e.message || e) });
  }
}

const bulkOps = {
  bulkAttach({ cid, room, dc }) {
    const b = { cid, room, dc, sendKey: null, recvKey: null, sendSeq: 0n, recvSeq: 0n, waiters: [], inq: [],
      receiving: false, closed: false, detached: false };
    // wake lets every waiter (for open, for low water) look again.
    b.wake = () => { for (const w of b.waiters.splice(0)) w(); };
    bulks.set(cid, b);
    dc.binaryType = "arraybuffer";
    dc.bufferedAmountLowThreshold = LOW_WATER;
    dc.onbufferedamountlow = b.wake;
    dc.onopen = () => { b.wake(); bulkEvent(b, "open"); };
    dc.onclose = () => { b.closed = true; b.wake(); bulkEvent(b, "close"); };
    dc.onmessage = (e) => {
      if (b.closed) return;
      b.inq.push(e.data);
      bulkReceive(b);
    };
    return {};
  },
  bulkKeys({ cid, sendKey, recvKey }) {
    const b = bulks.get(cid);
    if (b) { b.sendKey = sendKey; b.recvKey = recvKey; bulkReceive(b); }
    return {};
  },
  bulkDetach({ cid }) {
    const b = bulks.get(cid);
    if (b) {
      b.closed = b.detached = true;
      b.inq.length = 0;
      b.wake();
      bulks.delete(cid);
    }
    return {};
  },
  // bulkSend sends file (id) from offset, hashing it as it goes, then
  // file-done with its SHA-256: {sent: true, sha256}. {sent: false} if the
  // channel closed first (the page offers the file again on the next
  // connection); {failed: sentence} if the File could not be read.
  async bulkSend({ cid, file, id, offset }) {
    const b = bulks.get(cid);
    if (!b || !b.sendKey) return { sent: false };
    const ready = async () => {
      while (!b.closed && (b.dc.readyState === "connecting" || b.dc.readyState === "open" && b.dc.bufferedAmount >= HIGH_WATER)) {
        await new Promise((r) => b.waiters.push(r));
      }
      return !b.closed && b.dc.readyState === "open";
    };
    // Two buffers serve every chunk: one for the plaintext (Web Crypto
    // copies it when called) and one where each frame is put together
    // (send copies it too), so that sending allocates only what Web Crypto
    // returns.
    const plain = new Uint8Array(CHUNK_HEADER + DEFAULT_CHUNK_DATA);
    const plainView = new DataView(plain.buffer);
    const frame = new Uint8Array(MAX_MESSAGE_SIZE);
    // sealChunk seals the chunk of n bytes at offset `at`, whose data the
    // caller put in plain after the header.
    const sealChunk = (at, n) => {
      plainView.setBigUint64(0, BigInt(id));
      plainView.setBigUint64(8, BigInt(at));
      return sealParts(b.sendKey, BULK_CHANNEL, b.sendSeq++, MSG.FILE_CHUNK, plain.subarray(0, CHUNK_HEADER + n));
    };
    const sealing = [];
    const drain = async (keep) => {
      while (sealing.length > keep) {
        const { hdr, ct } = await sealing.shift();
        if (!await ready()) return false;
        frame.set(hdr);
        frame.set(ct, hdr.length);
        b.dc.send(frame.subarray(0, hdr.length + ct.length));
      }
      return true;
    };
    // What came before a resume offset is hashed from the File beside the
    // sending; what is sent meanwhile waits for it (at most HASH_BEHIND).
    let hash = null, behind = [], behindBytes = 0;
    const prefix = hashPrefix(file, offset).then((h) => { hash = h; for (const v of behind) hash.update(v); behind = []; });
    prefix.catch(() => {}); // awaited below, where its failure fails the file
    // The File is read as a stream: a third of the cost of reading it in
    // slices (one read per slice is a round trip to the browser process;
    // docs/BENCHMARKS.md). Chunks are cut from what it yields.
    let at = offset, fill = 0;
    const emit = async () => {
      sealing.push(sealChunk(at, fill));
      at += fill;
      fill = 0;
      return drain(SEAL_AHEAD - 1);
    };
    try {
      const reader = file.slice(offset).stream().getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (hash) hash.update(value);
        else {
          behind.push(value);
          behindBytes += value.length;
          if (behindBytes > HASH_BEHIND) { await prefix; behindBytes = 0; }
        }
        for (let v = value; v.length;) {
          const n = Math.min(DEFAULT_CHUNK_DATA - fill, v.length);
          plain.set(v.subarray(0, n), CHUNK_HEADER + fill);
          fill += n;
          v = v.subarray(n);
          if (fill === DEFAULT_CHUNK_DATA && !await emit()) { reader.cancel().catch(() => {}); return { sent: false }; }
        }
      }
      if (fill > 0 && !await emit()) return { sent: false };
      if (at !== file.size) return { failed: "The file changed size while it was being sent." };
      await prefix;
    } catch (e) {
      return { failed: "This browser could not read the file any more: " + (e && e.message || e) };
    }
    const sha256 = hash.digest("hex");
    sealing.push(sealParts(b.sendKey, BULK_CHANNEL, b.sendSeq++, MSG.FILE_DONE, new TextEncoder().encode(JSON.stringify({ id, sha256 }))));
    return await drain(0) ? { sent: true, sha256 } : { sent: false };
  },
};

// hashPrefix hashes the first upto bytes of file, in slices.
async function hashPrefix(file, upto) {
  const hash = await createSHA256();
  hash.init();
  if (upto > 0) {
    const reader = file.slice(0, upto).stream().getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      hash.update(value);
    }
  }
  return hash;
}

// serial runs the requests given to it one at a time, in order, each with
// an operation of table.
function serial(table) {
  const queue = [];
  let busy = false;
  async function pump() {
    if (busy) return;
    busy = true;
    while (queue.length) {
      const req = queue.shift();
      try {
        const op = table[req.op];
        if (!op) throw new Error("unknown operation " + req.op);
        const res = await op(req);
        postMessage({ rid: req.rid, ok: true, ...res });
      } catch (e) {
        postMessage({ rid: req.rid, ok: false, error: String(e && e.message || e) });
      }
    }
    busy = false;
  }
  return (req) => { queue.push(req); pump(); };
}

const files = serial(ops);
const hashing = serial(hashOps);

self.onmessage = (ev) => {
  const req = ev.data;
  if (bulkOps[req.op]) {
    // The bulk channel's operations run beside the queues: a file being
    // sent must not hold up the writes of one being received.
    Promise.resolve().then(() => bulkOps[req.op](req)).then((res) => postMessage({ rid: req.rid, ok: true, ...res }),
      (e) => postMessage({ rid: req.rid, ok: false, error: String(e && e.message || e) }));
    return;
  }
  (hashOps[req.op] ? hashing : files)(req);
};
