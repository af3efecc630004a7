package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/client/cpace"
	"github.com/tryst-chat/tryst/client/e2e/specvectors"
)

// specPath is the protocol document; its vector blocks are the test
// vectors, so the document cannot drift from the code.
const specPath = "../../docs/PROTOCOL.md"

// specVector wraps a vector block with the test that reads it.
type specVector struct {
	t testing.TB
	*specvectors.Vector
}

func (v specVector) text(key string) string {
	v.t.Helper()
	s, err := v.Text(key)
	if err != nil {
		v.t.Fatal(err)
	}
	return s
}

func (v specVector) hex(key string) []byte {
	v.t.Helper()
	b, err := v.Hex(key)
	if err != nil {
		v.t.Fatal(err)
	}
	return b
}

func (v specVector) int(key string) uint64 {
	v.t.Helper()
	n, err := strconv.ParseUint(v.text(key), 10, 64)
	if err != nil {
		v.t.Fatalf("vector %s: %s: %v", v.Name, key, err)
	}
	return n
}

// payload is the value of "payload" (text) or "payload_hex".
func (v specVector) payload() []byte {
	v.t.Helper()
	if v.Has("payload") {
		return []byte(v.text("payload"))
	}
	return v.hex("payload_hex")
}

func (v specVector) role(key string) Role {
	v.t.Helper()
	switch s := v.text(key); s {
	case "H":
		return Host
	case "G":
		return Guest
	default:
		v.t.Fatalf("vector %s: %s %q is neither H nor G", v.Name, key, s)
		return 0
	}
}

func (v specVector) eq(key string, got []byte) {
	v.t.Helper()
	if want := v.hex(key); !bytes.Equal(got, want) {
		v.t.Errorf("vector %s: %s: the code gives %x, the document %x", v.Name, key, got, want)
	}
}

func (v specVector) eqText(key, got string) {
	v.t.Helper()
	if want := v.text(key); got != want {
		v.t.Errorf("vector %s: %s: the code gives %q, the document %q", v.Name, key, got, want)
	}
}

// specNames are the vector blocks docs/PROTOCOL.md must hold, in order;
// each has a check in TestSpecVectors.
var specNames = []string{
	"pake", "signal-key", "seal-minimal", "seal-offer", "seal-answer", "seal-mismatch", "seal-restart",
	"seal-restart-relay", "fingerprint", "session", "frame-hello-0", "frame-hello-1", "frame-confirm-host", "frame-confirm-guest",
	"frame-chat", "frame-chat-ack", "frame-file-chunk", "frame-bye", "frame-bulk-chunk", "frame-bulk-done", "file-chunk",
}

func loadSpec(t testing.TB) map[string]specVector {
	t.Helper()
	vs, err := specvectors.Load(specPath)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	m := map[string]specVector{}
	for _, v := range vs {
		names = append(names, v.Name)
		m[v.Name] = specVector{t, v}
	}
	if !slices.Equal(names, specNames) {
		t.Fatalf("docs/PROTOCOL.md has the vector blocks\n\t%v\nwant\n\t%v\n(a new block needs a check here and in the Node tests)", names, specNames)
	}
	return m
}

// TestSpecVectors recomputes every test vector of docs/PROTOCOL.md with
// this package and checks that the document's worked example hangs
// together. Editing any value in a vector block fails it.
func TestSpecVectors(t *testing.T) {
	t.Parallel()
	vs := loadSpec(t)

	pk := vs["pake"]
	room, password := pk.text("room"), pk.text("password")
	pk.eqText("ci", string(channelID(room)))
	sid, ya, yb := pk.hex("sid_hex"), pk.hex("ya_hex"), pk.hex("yb_hex")
	// ya and yb are the scalars the draft's sample_scalar gives from these
	// 32 bytes: they are read as the random source.
	h, msgShare, err := startHost(password, room, sid, bytes.NewReader(ya))
	if err != nil {
		t.Fatal(err)
	}
	pk.eqText("msg_share", msgShare)
	share, err := DecodePAKE(msgShare)
	if err != nil {
		t.Fatal(err)
	}
	pk.eq("share_host_hex", share.Share)
	guestEpoch, msgReply, err := respond(password, room, share, bytes.NewReader(yb))
	if err != nil {
		t.Fatal(err)
	}
	pk.eqText("msg_reply", msgReply)
	reply, err := DecodePAKE(msgReply)
	if err != nil {
		t.Fatal(err)
	}
	pk.eq("share_guest_hex", reply.Share)
	pk.eq("confirm_guest_hex", reply.Confirm)
	hostEpoch, err := h.Finish(reply)
	if err != nil {
		t.Fatalf("pake: the host refuses the guest's reply: %v", err)
	}
	st, _, err := cpace.Start([]byte(password), channelID(room), sid, adHost, bytes.NewReader(ya))
	if err != nil {
		t.Fatal(err)
	}
	isk, err := st.Finish(reply.Share, adGuest, cpace.Initiator)
	if err != nil {
		t.Fatal(err)
	}
	pk.eq("isk_hex", isk)
	master := hostEpoch.Master
	pk.eq("master_hex", master)
	if !bytes.Equal(guestEpoch.Master, master) || !bytes.Equal(guestEpoch.SID, sid) || !bytes.Equal(hostEpoch.SID, sid) {
		t.Error("pake: the two sides' epochs differ")
	}
	pk.eqText("msg_failed", FailedMessage(sid))
	pk.eqText("msg_need", NeedMessage(sid))
	pk.eqText("msg_need_any", NeedMessage(nil))
	for _, k := range []string{"msg_share", "msg_reply", "msg_failed", "msg_need", "msg_need_any"} {
		m, err := DecodePAKE(pk.text(k))
		if err != nil || m.Encode() != pk.text(k) {
			t.Errorf("pake: %s does not decode and re-encode: %v", k, err)
		}
	}
	epoch := &Epoch{SID: sid, Master: master}

	sk := vs["signal-key"]
	sk.eq("master_hex", master)
	sk.eqText("info", signalInfo)
	k, err := signalKey(master)
	if err != nil {
		t.Fatal(err)
	}
	sk.eq("key_hex", k)

	// The session's inputs, which the offer and answer must carry.
	ss := vs["session"]
	nonceHost, nonceGuest := ss.hex("nonce_host_hex"), ss.hex("nonce_guest_hex")
	fpHost, fpGuest := ss.text("fp_host"), ss.text("fp_guest")

	plain := map[string][]byte{}
	for _, name := range []string{"seal-minimal", "seal-offer", "seal-answer", "seal-mismatch", "seal-restart", "seal-restart-relay"} {
		v := vs[name]
		v.eq("master_hex", master)
		v.eq("sid_hex", sid)
		v.eqText("room", room)
		kind, from := v.text("kind"), v.role("sender")
		sig, err := NewSignaler(epoch, room)
		if err != nil {
			t.Fatal(err)
		}
		pt := []byte(v.text("plaintext"))
		plain[name] = pt
		v.eqText("aad", string(sig.signalAAD(kind, from)))
		blob := sig.sealWithNonce(kind, from, pt, v.hex("nonce_hex"))
		v.eqText("blob", blob)
		if got, err := sig.Open(kind, from, v.text("blob")); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%s: the document's blob does not open to its plaintext: %v", name, err)
		}
		if _, err := sig.Open(kind, from.Other(), v.text("blob")); !errors.Is(err, ErrMismatch) {
			t.Errorf("%s: opened as sent by the other role: %v", name, err)
		}
		if got, err := BlobSID(v.text("blob")); err != nil || !bytes.Equal(got, sid) {
			t.Errorf("%s: the blob names epoch %x (%v), want the pake vector's sid", name, got, err)
		}
		other, _ := NewSignaler(&Epoch{SID: make([]byte, SIDSize), Master: master}, room)
		if _, err := other.Open(kind, from, v.text("blob")); !errors.Is(err, ErrOtherEpoch) {
			t.Errorf("%s: opened under another epoch: %v", name, err)
		}
	}
	for name, want := range map[string][2]string{
		"seal-offer": {"offer", "H"}, "seal-answer": {"answer", "G"},
		"seal-mismatch": {"answer", "G"}, "seal-restart": {"candidate", "G"}, "seal-restart-relay": {"candidate", "G"},
	} {
		if v := vs[name]; v.text("kind") != want[0] || v.text("sender") != want[1] {
			t.Errorf("%s: kind %s sender %s, want %s %s", name, v.text("kind"), v.text("sender"), want[0], want[1])
		}
	}

	// The offer and the answer: their members, standard base64 nonces,
	// and the session's nonces and fingerprints.
	offer := members(t, "seal-offer", plain["seal-offer"], "sdp", "nonce", "version")
	checkNonce(t, "seal-offer nonce", offer["nonce"], nonceHost)
	if fp, err := Fingerprint(offer["sdp"].(string)); err != nil || fp != NormalizeFingerprint(fpHost) {
		t.Errorf("seal-offer: SDP fingerprint %q (%v), the session's fp_host %q", fp, err, fpHost)
	}
	answer := members(t, "seal-answer", plain["seal-answer"], "sdp", "nonce", "offer_nonce", "version")
	// Both speak protocol version 3.
	if offer["version"] != float64(3) || answer["version"] != float64(3) {
		t.Errorf("the offer's version is %v, the answer's %v, want 3", offer["version"], answer["version"])
	}
	checkNonce(t, "seal-answer nonce", answer["nonce"], nonceGuest)
	checkNonce(t, "seal-answer offer_nonce", answer["offer_nonce"], nonceHost)
	if answer["offer_nonce"] != offer["nonce"] {
		t.Errorf("seal-answer: offer_nonce %v is not the offer's nonce %v", answer["offer_nonce"], offer["nonce"])
	}
	if fp, err := Fingerprint(answer["sdp"].(string)); err != nil || fp != NormalizeFingerprint(fpGuest) {
		t.Errorf("seal-answer: SDP fingerprint %q (%v), the session's fp_guest %q", fp, err, fpGuest)
	}
	if m := members(t, "seal-mismatch", plain["seal-mismatch"], "mismatch"); m["mismatch"] != true {
		t.Errorf("seal-mismatch: mismatch is %v", m["mismatch"])
	}
	if m := members(t, "seal-restart", plain["seal-restart"], "restart"); m["restart"] != true {
		t.Errorf("seal-restart: restart is %v", m["restart"])
	}
	if m := members(t, "seal-restart-relay", plain["seal-restart-relay"], "restart", "relay"); m["restart"] != true || m["relay"] != true {
		t.Errorf("seal-restart-relay: restart %v, relay %v", m["restart"], m["relay"])
	}

	fv := vs["fingerprint"]
	sdp := fv.text("sdp")
	fp, err := Fingerprint(sdp)
	if err != nil {
		t.Fatal(err)
	}
	fv.eqText("fingerprint", fp)
	if _, err := Fingerprint(strings.ReplaceAll(sdp, "a=fingerprint:", "a=x-fingerprint:")); !errors.Is(err, ErrNoFingerprint) {
		t.Errorf("an SDP without a=fingerprint: %v", err)
	}

	ss.eq("master_hex", master)
	ss.eqText("info", sessionInfo(fpHost, fpGuest))
	okm, err := sessionKeys(master, nonceHost, nonceGuest, fpHost, fpGuest)
	if err != nil {
		t.Fatal(err)
	}
	ss.eq("okm_hex", okm)
	session := func(r Role) *Session {
		s, err := NewSession(master, r, nonceHost, nonceGuest, fpHost, fpGuest)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	host, guest := session(Host), session(Guest)
	ss.eq("confirm_host_hex", host.Confirmation(Host))
	ss.eq("confirm_guest_hex", host.Confirmation(Guest))
	if guest.CheckConfirmation(ss.hex("confirm_host_hex")) != nil || host.CheckConfirmation(ss.hex("confirm_guest_hex")) != nil {
		t.Error("session: a side refuses the other's confirmation")
	}

	for _, name := range specNames {
		if !strings.HasPrefix(name, "frame-") {
			continue
		}
		v := vs[name]
		from, ch, seq, typ, payload := v.role("from"), v.int("channel"), v.int("sequence"), byte(v.int("type")), v.payload()
		if ch > 1 {
			t.Fatalf("%s: channel %d is neither control (0) nor bulk (1)", name, ch)
		}
		s := session(from).Channel(uint32(ch))
		s.sendSeq = seq
		v.eq("frame_hex", s.Seal(typ, payload))
		frame := v.hex("frame_hex")
		if len(frame) != Overhead+len(payload) || frame[0] != 1 || frame[1] != typ || binary.BigEndian.Uint64(frame[2:10]) != seq {
			t.Errorf("%s: header %x is not version 1, type %d, sequence %d", name, frame[:min(len(frame), 10)], typ, seq)
		}
		r := session(from.Other()).Channel(uint32(ch))
		r.recvSeq = seq
		if gotTyp, got, err := r.Open(frame); err != nil || gotTyp != typ || !bytes.Equal(got, payload) {
			t.Errorf("%s: the other side opens type %d %q (%v)", name, gotTyp, got, err)
		}
		// The channel is part of the nonce: the frame does not open as
		// the other channel's at the same sequence.
		other := session(from.Other()).Channel(uint32(1 - ch))
		other.recvSeq = seq
		if _, _, err := other.Open(frame); !errors.Is(err, ErrMismatch) {
			t.Errorf("%s: opens on channel %d too (%v)", name, 1-ch, err)
		}
	}
	// Version 2's bulk channel carries file-chunk (8) and file-done (10),
	// the host's first two bulk frames; frame-file-chunk is the chunk as
	// version 1 sent it, on its one channel.
	for name, want := range map[string][3]uint64{"frame-bulk-chunk": {1, 0, 8}, "frame-bulk-done": {1, 1, 10}, "frame-file-chunk": {0, 2, 8}} {
		v := vs[name]
		if got := [3]uint64{v.int("channel"), v.int("sequence"), v.int("type")}; got != want || v.role("from") != Host {
			t.Errorf("%s: channel, sequence, type %v from %s, want %v from H", name, got, v.text("from"), want)
		}
	}
	for _, name := range specNames {
		if v := vs[name]; strings.HasPrefix(name, "frame-") && !strings.HasPrefix(name, "frame-bulk-") && name != "frame-file-chunk" && v.int("channel") != 0 {
			t.Errorf("%s: a control message on channel %d", name, v.int("channel"))
		}
	}
	if m := members(t, "frame-bulk-done", vs["frame-bulk-done"].payload(), "id"); m["id"] != float64(vs["file-chunk"].int("id")) {
		t.Errorf("frame-bulk-done: id %v is not the file-chunk vector's", m["id"])
	}
	if p := vs["frame-confirm-host"].payload(); !bytes.Equal(p, ss.hex("confirm_host_hex")) {
		t.Error("frame-confirm-host does not carry the session's confirm_host")
	}
	if p := vs["frame-confirm-guest"].payload(); !bytes.Equal(p, ss.hex("confirm_guest_hex")) {
		t.Error("frame-confirm-guest does not carry the session's confirm_guest")
	}

	// The file chunk's layout (the Go client's encoder is package client's,
	// checked there by its own tests; here the layout of the document).
	fc := vs["file-chunk"]
	chunk := binary.BigEndian.AppendUint64(nil, fc.int("id"))
	chunk = binary.BigEndian.AppendUint64(chunk, fc.int("offset"))
	chunk = append(chunk, fc.hex("data_hex")...)
	fc.eq("payload_hex", chunk)
	for _, name := range []string{"frame-file-chunk", "frame-bulk-chunk"} {
		if !bytes.Equal(vs[name].payload(), chunk) {
			t.Errorf("%s does not carry the file-chunk vector's payload", name)
		}
	}
	if id := fc.int("id"); id >= 1<<53 {
		t.Errorf("file-chunk: id %d is not below 2^53", id)
	}

	for _, name := range specNames {
		if u := vs[name].Unused(); len(u) > 0 {
			t.Errorf("vector %s: keys %v are not checked", name, u)
		}
	}
}

// members decodes a sealed JSON payload and checks it has exactly the
// members named.
func members(t *testing.T, name string, b []byte, keys ...string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: plaintext is not a JSON object: %v", name, err)
	}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(keys))
	if !slices.Equal(got, want) {
		t.Errorf("%s: members %v, want %v", name, got, want)
	}
	return m
}

// checkNonce checks that a JSON member is want in standard base64 with
// padding, the form Go's encoding/json gives []byte.
func checkNonce(t *testing.T, name string, v any, want []byte) {
	t.Helper()
	s, _ := v.(string)
	if s != base64.StdEncoding.EncodeToString(want) {
		t.Errorf("%s: %q is not %x in standard base64 with padding", name, s, want)
	}
	var b []byte
	if err := json.Unmarshal([]byte(strconv.Quote(s)), &b); err != nil || !bytes.Equal(b, want) {
		t.Errorf("%s: encoding/json decodes %q to %x (%v)", name, s, b, err)
	}
}

func TestSpecVectorsParse(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"unclosed":      "```vector a\nk: v\n",
		"no name":       "```vector\nk: v\n```\n",
		"duplicate":     "```vector a\n```\n```vector a\n```\n",
		"duplicate key": "```vector a\nk: v\nk: w\n```\n",
		"no colon":      "```vector a\nk v\n```\n",
		"bad hex":       "```vector a\nk_hex: 0g\n```\n",
		"upper hex":     "```vector a\nk_hex: AB\n```\n",
		"bad JSON":      "```vector a\nk: \"\\q\"\n```\n",
	} {
		if _, err := specvectors.Parse([]byte(doc)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	vs, err := specvectors.Parse([]byte("text\n```vector a\r\nk: v: w\r\ns: \"x\\r\\n\"\r\nb_hex: 00ff\r\n```\r\n```go\nk: v\n```\n"))
	if err != nil || len(vs) != 1 {
		t.Fatalf("%v %v", vs, err)
	}
	v := specVector{t, vs[0]}
	if v.text("k") != "v: w" || v.text("s") != "x\r\n" || hex.EncodeToString(v.hex("b_hex")) != "00ff" || len(v.Unused()) != 0 {
		t.Errorf("parsed %+v", vs[0])
	}
}
