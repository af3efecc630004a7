package web

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// noOfflineTest checks, after a chat, that nothing b's page keeps lets
// anyone test a password guess offline (docs/PROTOCOL.md, "Epochs and
// reconnects": the epoch may be kept, nothing derived from the password
// alone may). The page computes what an attacker who reads its storage can
// compute from the password and what is public or kept (the room code, the
// epoch's sid): the password's UTF-8 bytes, their SHA-256 and SHA-512,
// CPace's generator string for the kept sid, its hash and the generator
// itself, and version 2's PBKDF2 room secret and signaling key. None of
// them, in hex or base64 of either kind, is in what the page keeps; none
// is the epoch's master or sid, nor gives the master through the PAKE's
// HKDF; and no kept value opens as AES-GCM (iv ‖ ciphertext, as the page
// seals) under any of them or their SHA-256 as the key. Every CryptoKey
// kept is non-extractable.
func noOfflineTest(t *testing.T, b *browser, password, room string) {
	t.Helper()
	var got struct {
		Error      string            `json:"error"`
		Candidates map[string]string `json:"candidates"`
		Master     string            `json:"master"`
		SID        string            `json:"sid"`
		FromHKDF   []string          `json:"fromHKDF"`
		Opened     []string          `json:"opened"`
		Tried      int               `json:"tried"`
	}
	b.eval(`(async (pw, room) => {
		const enc = new TextEncoder(), subtle = crypto.subtle;
		const hex = (u) => Array.from(u, (x) => x.toString(16).padStart(2, "0")).join("");
		const digest = async (alg, b) => new Uint8Array(await subtle.digest(alg, b));
		const cp = await import("/cpace.js"), st = await import("/storage.js"), c = await import("/crypto.js");
		const epoch = await st.loadEpoch(room);
		if (!epoch) return { error: "the page keeps no epoch for " + room };
		const prs = enc.encode(pw), ci = enc.encode("tryst/v3/cpace|" + room);
		const gs = cp._internals.generatorString(prs, ci, epoch.sid);
		const pbkdf2 = new Uint8Array(await subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", iterations: 600000,
			salt: await digest("SHA-256", enc.encode("tryst/v1/salt\x00" + room)) },
			await subtle.importKey("raw", prs, "PBKDF2", false, ["deriveBits"]), 256));
		const hkdf = async (ikm, info, n) => new Uint8Array(await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(), info: enc.encode(info) },
			await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]), n * 8));
		const cands = {
			password: prs, sha256: await digest("SHA-256", prs), sha512: await digest("SHA-512", prs),
			generator_string: gs, generator_hash: await digest("SHA-512", gs), generator: cp._internals.generator(prs, ci, epoch.sid),
			pbkdf2_v2: pbkdf2, signal_key_v2: await hkdf(pbkdf2, "tryst/v1/signal", 32),
		};
		const fromHKDF = [];
		for (const [name, v] of Object.entries(cands)) {
			if (hex(await hkdf(v, "tryst/v3/master", 32)) === hex(epoch.master)) fromHKDF.push(name);
		}
		// Every value kept: sessionStorage and localStorage strings (the
		// wrapped epoch is base64url in JSON), IndexedDB's binary values.
		const blobs = [];
		const walk = (where, v) => {
			if (v instanceof ArrayBuffer) blobs.push([where, new Uint8Array(v)]);
			else if (ArrayBuffer.isView(v)) blobs.push([where, new Uint8Array(v.buffer, v.byteOffset, v.byteLength)]);
			else if (typeof v === "string") {
				for (const m of v.match(/[A-Za-z0-9_-]{38,}/g) || []) { try { blobs.push([where, c.unb64url(m)]); } catch { /* not base64 */ } }
				try { walk(where, JSON.parse(v)); } catch { /* not JSON */ }
			} else if (v && typeof v === "object" && !(v instanceof CryptoKey)) for (const [k, x] of Object.entries(v)) walk(where + "." + k, x);
		};
		for (const s of [sessionStorage, localStorage]) for (let i = 0; i < s.length; i++) walk(s.key(i), s.getItem(s.key(i)));
		for (const info of await indexedDB.databases()) {
			const db = await new Promise((res, rej) => { const r = indexedDB.open(info.name); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
			for (const store of db.objectStoreNames) {
				const vals = await new Promise((res, rej) => { const r = db.transaction(store).objectStore(store).getAll(); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
				vals.forEach((v, i) => walk(info.name + "/" + store + "/" + i, v));
			}
			db.close();
		}
		const keys = [];
		for (const [name, v] of Object.entries(cands)) {
			for (const raw of [v, await digest("SHA-256", v)]) {
				if (![16, 32].includes(raw.length)) continue;
				keys.push([name, await subtle.importKey("raw", raw, "AES-GCM", false, ["decrypt"])]);
			}
		}
		const opened = [];
		let tried = 0;
		for (const [where, raw] of blobs) {
			if (raw.length < 28) continue;
			for (const [name, k] of keys) {
				tried++;
				try {
					await subtle.decrypt({ name: "AES-GCM", iv: raw.slice(0, 12) }, k, raw.slice(12));
					opened.push(where + " under " + name);
				} catch { /* as it should */ }
			}
		}
		return { candidates: Object.fromEntries(Object.entries(cands).map(([k, v]) => [k, hex(v)])),
			master: hex(epoch.master), sid: hex(epoch.sid), fromHKDF, opened, tried };
	})(`+jsString(password)+`, `+jsString(room)+`)`, &got)
	if got.Error != "" {
		t.Fatalf("%s: %s", b.name, got.Error)
	}
	kept := b.storedText()
	if strings.Contains(kept, password) {
		t.Errorf("%s keeps the password as text", b.name)
	}
	if strings.Contains(kept, "extractable=true") {
		t.Errorf("%s keeps an extractable key", b.name)
	}
	for name, h := range got.Candidates {
		raw, err := hex.DecodeString(h)
		if err != nil || len(raw) == 0 {
			t.Fatalf("candidate %s: %q", name, h)
		}
		for _, form := range []string{h, base64.RawURLEncoding.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw)} {
			if strings.Contains(kept, form) {
				t.Errorf("%s keeps the %s of the password (%s)", b.name, name, form)
			}
		}
		if h == got.Master || h == got.SID {
			t.Errorf("%s's epoch is the %s of the password", b.name, name)
		}
	}
	if len(got.FromHKDF) > 0 {
		t.Errorf("%s's master derives from %v of the password", b.name, got.FromHKDF)
	}
	if len(got.Opened) > 0 {
		t.Errorf("%s keeps values that open under keys from the password alone: %v", b.name, got.Opened)
	}
	if got.Tried == 0 {
		t.Errorf("%s: no kept value was tried (the wrapped epoch at least should be)", b.name)
	}
}

// roomOf is the room code of a share link.
func roomOf(link string) string { return link[strings.Index(link, "#")+1:] }
