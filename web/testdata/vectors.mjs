// Checks web/static/crypto.js against docs/PROTOCOL.md's test vectors with
// Node's Web Crypto; prints "ok" or throws. Run by web's Go tests.
import * as c from "../static/crypto.js";
const hexOf = c.hex;
const eq = (name, got, want) => { if (got !== want) throw new Error(`${name}: got ${got}, want ${want}`); };
const room = "K7Q-MX2-P9R-TVW-4HN-C8D";
const fpHost = "sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9";
const fpGuest = "sha-256 F9:E8:D7:C6:B5:A4:93:82:71:60:5F:4E:3D:2C:1B:0A:F9:E8:D7:C6:B5:A4:93:82:71:60:5F:4E:3D:2C:1B:0A";
const v = JSON.parse(process.argv[2]);
eq("salt", hexOf(await c.roomSalt(room)), v.salt);
const master = await c.deriveMaster("correct horse battery staple", room);
eq("master", hexOf(master), v.master);
const sig = await c.Signaler.create(master, room);
const blob = await sig.seal("offer", "H", new TextEncoder().encode('{"sdp":"v=0"}'), Uint8Array.from([0,1,2,3,4,5,6,7,8,9,10,11]));
eq("signal", blob, v.signal);
eq("signal open", new TextDecoder().decode(await sig.open("offer", "H", blob)), '{"sdp":"v=0"}');
let threw = false;
try { await sig.open("answer", "H", blob); } catch (e) { threw = e instanceof c.MismatchError; }
if (!threw) throw new Error("blob opened as another kind");
const host = await c.Session.create(master, "H", new Uint8Array(32).fill(0x11), new Uint8Array(32).fill(0x22), fpHost, fpGuest);
const guest = await c.Session.create(master, "G", new Uint8Array(32).fill(0x11), new Uint8Array(32).fill(0x22), fpHost, fpGuest);
eq("confirm H", hexOf(await host.confirmation("H")), v.confirm_host);
eq("confirm G", hexOf(await host.confirmation("G")), v.confirm_guest);
await guest.checkConfirmation(await host.confirmation("H"));
const f0 = await host.seal(2, new TextEncoder().encode("hello"));
const f1 = await host.seal(2, new TextEncoder().encode("hello"));
eq("frame0", hexOf(f0), v.frame0);
eq("frame1", hexOf(f1), v.frame1);
// Replay and reorder are refused; in-order frames open.
threw = false;
try { await guest.open(f1); } catch (e) { threw = e instanceof c.ReplayError; }
if (!threw) throw new Error("reordered frame accepted");
const m0 = await guest.open(f0);
eq("open0", new TextDecoder().decode(m0.payload), "hello");
threw = false;
try { await guest.open(f0); } catch (e) { threw = e instanceof c.ReplayError; }
if (!threw) throw new Error("replayed frame accepted");
// A frame sealed by Go (frame1, from the vectors) opens here too.
eq("open1", new TextDecoder().decode((await guest.open(f1)).payload), "hello");
console.log("ok");
