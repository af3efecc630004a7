// Reads the test vectors out of docs/PROTOCOL.md: the JavaScript twin of
// client/e2e/specvectors (see its doc for the format). Shared by the Node
// tests of client/e2e and web.
import { readFileSync } from "node:fs";

export function parseVectors(doc) {
  const out = new Map();
  let cur = null;
  doc.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    const n = i + 1;
    if (!cur) {
      if (!line.startsWith("```vector")) return;
      const name = line.slice("```vector".length).trim();
      if (!name || /[ \t]/.test(name)) throw new Error(`line ${n}: a vector block needs one name`);
      if (out.has(name)) throw new Error(`line ${n}: second vector named ${name}`);
      cur = new Vector(name, n);
      return;
    }
    if (line.startsWith("```")) { out.set(cur.name, cur); cur = null; return; }
    const at = line.indexOf(": ");
    const key = at < 0 ? "" : line.slice(0, at);
    if (!key || /[ \t]/.test(key)) throw new Error(`line ${n} (vector ${cur.name}): want "key: value", got ${JSON.stringify(line)}`);
    if (cur.vals.has(key)) throw new Error(`line ${n} (vector ${cur.name}): second key ${key}`);
    let val = line.slice(at + 2);
    if (val.startsWith('"')) val = JSON.parse(val);
    if (key.endsWith("_hex") && !/^([0-9a-f]{2})*$/.test(val)) throw new Error(`line ${n} (vector ${cur.name}): ${key} is not lowercase hex`);
    cur.vals.set(key, val);
  });
  if (cur) throw new Error(`line ${cur.line}: vector ${cur.name} is not closed`);
  return out;
}

export function loadVectors(path) { return parseVectors(readFileSync(path, "utf8")); }

export class Vector {
  constructor(name, line) { this.name = name; this.line = line; this.vals = new Map(); this.used = new Set(); }
  has(key) { return this.vals.has(key); }
  text(key) {
    if (!this.vals.has(key)) throw new Error(`vector ${this.name} (line ${this.line}) has no ${key}`);
    this.used.add(key);
    return this.vals.get(key);
  }
  bytes(key) {
    if (!key.endsWith("_hex")) throw new Error(`vector ${this.name}: ${key} does not hold hex`);
    return Uint8Array.from(Buffer.from(this.text(key), "hex"));
  }
  int(key) {
    const s = this.text(key);
    if (!/^[0-9]+$/.test(s)) throw new Error(`vector ${this.name}: ${key} is not an integer`);
    return BigInt(s);
  }
  role(key) {
    const r = this.text(key);
    if (r !== "H" && r !== "G") throw new Error(`vector ${this.name}: ${key} ${r} is neither H nor G`);
    return r;
  }
  // payload is "payload" as UTF-8 text, or "payload_hex".
  payload() { return this.has("payload") ? new TextEncoder().encode(this.text("payload")) : this.bytes("payload_hex"); }
  unused() { return [...this.vals.keys()].filter((k) => !this.used.has(k)); }
}

// check runs the checks and prints one "checked NAME" line per vector, then
// "ok"; any difference throws. Every key of every vector must have been read.
export async function check(vectors, checks) {
  const eq = (name, what, got, want) => {
    if (got !== want) throw new Error(`vector ${name}: ${what}: computed ${got}, the document ${want}`);
  };
  for (const [name, v] of vectors) {
    const f = checks[name] || (name.startsWith("frame-") && checks["frame-*"]);
    if (!f) throw new Error(`no check for vector ${name}`);
    await f(v, (what, got, want) => eq(name, what, got, want));
    const u = v.unused();
    if (u.length) throw new Error(`vector ${name}: keys ${u} are not checked`);
    console.log("checked", name);
  }
  console.log("ok");
}
