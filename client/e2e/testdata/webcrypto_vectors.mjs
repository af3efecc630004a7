// Recomputes docs/PROTOCOL.md's test vectors with Web Crypto (as a browser
// would), printing one "name value" line each. Run by webcrypto_test.go.
const { subtle } = globalThis.crypto;
const enc = new TextEncoder();
const hex = (b) => Buffer.from(b).toString("hex");
const cat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) { out.set(new Uint8Array(p), o); o += p.byteLength; }
  return out;
};
const room = "K7Q-MX2-P9R-TVW-4HN-C8D";
const password = "correct horse battery staple";
const fpHost = "sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9";
const fpGuest = "sha-256 F9:E8:D7:C6:B5:A4:93:82:71:60:5F:4E:3D:2C:1B:0A:F9:E8:D7:C6:B5:A4:93:82:71:60:5F:4E:3D:2C:1B:0A";

const salt = await subtle.digest("SHA-256", enc.encode("tryst/v1/salt\x00" + room));
const pwKey = await subtle.importKey("raw", enc.encode(password), "PBKDF2", false, ["deriveBits"]);
const master = await subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations: 600000 }, pwKey, 256);
const hk = await subtle.importKey("raw", master, "HKDF", false, ["deriveBits"]);

const kSignal = await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(), info: enc.encode("tryst/v1/signal") }, hk, 256);
const sigKey = await subtle.importKey("raw", kSignal, "AES-GCM", false, ["encrypt"]);
const iv = Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
const sealed = await subtle.encrypt({ name: "AES-GCM", iv, additionalData: enc.encode(`tryst/v1/signal|${room}|offer|H`) }, sigKey, enc.encode('{"sdp":"v=0"}'));

const okm = new Uint8Array(await subtle.deriveBits({
  name: "HKDF", hash: "SHA-256",
  salt: cat(new Uint8Array(32).fill(0x11), new Uint8Array(32).fill(0x22)),
  info: enc.encode(`tryst/v1/session|${fpHost}|${fpGuest}`),
}, hk, 768));
const conf = await subtle.importKey("raw", okm.slice(64, 96), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
const h2g = await subtle.importKey("raw", okm.slice(0, 32), "AES-GCM", false, ["encrypt"]);
async function frame(seq, type, payload) {
  const hdr = new Uint8Array(10);
  hdr[0] = 1; hdr[1] = type;
  new DataView(hdr.buffer).setBigUint64(2, BigInt(seq));
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, BigInt(seq));
  return cat(hdr, await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: hdr }, h2g, payload));
}

console.log("salt", hex(salt));
console.log("master", hex(master));
console.log("signal", "v1." + Buffer.from(cat(iv, sealed)).toString("base64url"));
console.log("confirm_host", hex(await subtle.sign("HMAC", conf, enc.encode("tryst/v1/confirm|H"))));
console.log("confirm_guest", hex(await subtle.sign("HMAC", conf, enc.encode("tryst/v1/confirm|G"))));
console.log("frame0", hex(await frame(0, 2, enc.encode("hello"))));
console.log("frame1", hex(await frame(1, 2, enc.encode("hello"))));
