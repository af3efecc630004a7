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

const { createSHA256 } = globalThis.hashwasm;

const SLICE = 4 << 20; // hashing reads the File 4 MiB at a time
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
    f = { handle, hash, size, written: have };
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
    const hash = await createSHA256();
    hash.init();
    for (let at = 0; at < upto; at += SLICE) {
      hash.update(new Uint8Array(await file.slice(at, Math.min(at + SLICE, upto)).arrayBuffer()));
    }
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
  (hashOps[req.op] ? hashing : files)(req);
};
