package cpace

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/tryst-chat/tryst/client/internal/ristretto255"
)

// The test vectors below are copied from draft-irtf-cfrg-cpace-21,
// appendix A (string utilities) and appendix B.3 (CPACE-RISTR255-SHA512),
// line breaks kept as in the draft.

// Appendix B.3.1: inputs.
var (
	vecPRS = []byte("Password")
	vecCI  = []byte("\x0bA_initiator\x0bB_responder")
	vecSID = "7e4b4791d6a8ef019b936c79fb7f2c57"
	vecADa = []byte("ADa")
	vecADb = []byte("ADb")
)

// Appendix B.3.1 to B.3.7: outputs.
const (
	vecGeneratorString = "" +
		"11435061636552697374726574746f3235350850617373776f726464" +
		"00000000000000000000000000000000000000000000000000000000" +
		"00000000000000000000000000000000000000000000000000000000" +
		"00000000000000000000000000000000000000000000000000000000" +
		"00000000000000000000000000000000180b415f696e69746961746f" +
		"720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f" +
		"2c57"
	vecGeneratorHash = "" +
		"da6d3ddc8802fca9058755ffd3ebde08a9c2c74945901a258482a288" +
		"b6663af06bf645c93cd1c51512307199c80e84908916d983b34af772" +
		"05f90851a657ee27"
	vecG = "" +
		"222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5" +
		"698c7e56"
	vecYa = "" + // ya, little endian
		"da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4f" +
		"f0976d08"
	vecYaShare = "" + // Ya
		"d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec" +
		"482b9157"
	vecYb = "" + // yb, little endian
		"d2316b454718c35362d83d69df6320f38578ed5984651435e2949762" +
		"d900b80d"
	vecYbShare = "" + // Yb
		"3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7" +
		"433f7258"
	vecK = "" +
		"80b69a8a76457ab6a4d7f887a4bf6b55a2f80ac19c333f917a05fc98" +
		"87c8b40f"
	vecTranscriptIR = "" +
		"20d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0e" +
		"ec482b915703414461203ea7e0b19560d7c0b0f5734f63b955286dfa" +
		"8232b5ebe63324e2d9e7433f725803414462"
	vecHashInputIR = "" + // lv_cat(DSI,sid,K)||transcript_ir(Ya,ADa,Yb,ADb)
		"15435061636552697374726574746f3235355f49534b107e4b4791d6" +
		"a8ef019b936c79fb7f2c572080b69a8a76457ab6a4d7f887a4bf6b55" +
		"a2f80ac19c333f917a05fc9887c8b40f20d6bac480f2c386c394efc7" +
		"c47adb9925dcd2630b64f240c50f8d0eec482b915703414461203ea7" +
		"e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f" +
		"725803414462"
	vecISKIR = "" +
		"b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dc" +
		"ae7b35cd2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c" +
		"3fa2068af7900447"
	vecTranscriptOC = "" +
		"6f6320d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f" +
		"8d0eec482b915703414461203ea7e0b19560d7c0b0f5734f63b95528" +
		"6dfa8232b5ebe63324e2d9e7433f725803414462"
	vecHashInputOC = "" + // lv_cat(DSI,sid,K)||transcript_oc(Ya,ADa,Yb,ADb)
		"15435061636552697374726574746f3235355f49534b107e4b4791d6" +
		"a8ef019b936c79fb7f2c572080b69a8a76457ab6a4d7f887a4bf6b55" +
		"a2f80ac19c333f917a05fc9887c8b40f6f6320d6bac480f2c386c394" +
		"efc7c47adb9925dcd2630b64f240c50f8d0eec482b91570341446120" +
		"3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7" +
		"433f725803414462"
	vecISKSY = "" +
		"544199d71f62f8d9a1fee55727e24fe4a45844593c2b6013c4fa3969" +
		"d0e5debb2244675c0b43397cbb68d342b01fc0f98fc961469a25134d" +
		"e9f0f813c1a57476"
	vecSidOutputIR = "" +
		"bb1c449b35f0ea79a65c209f329a693d475e0ce2387bed9fe4b78f60" +
		"b2a27c219813fb2cfe175ef40d2222d9261e66da7d78f7c55a303b1b" +
		"8611dcdfab880c47"
	vecSidOutputOC = "" +
		"10d5941d4933497fe31b9188d690b84465e2a2d158332a7267284a07" +
		"1a8d0876fc5c8c329dc735d59a9f8ef6623ee23924704a2f929dd631" +
		"ca981227ee82fff2"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

func scalar(t testing.TB, s string) *ristretto255.Scalar {
	t.Helper()
	y, err := ristretto255.NewScalar().SetCanonicalBytes(unhex(t, s))
	if err != nil {
		t.Fatalf("scalar %s: %v", s, err)
	}
	return y
}

func checkHex(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if g := hex.EncodeToString(got); g != want {
		t.Errorf("%s:\n got %s\nwant %s", what, g, want)
	}
}

// Appendix A.1.2 and A.1.4.
func TestPrependLenAndLvCatVectors(t *testing.T) {
	r127 := make([]byte, 127)
	r128 := make([]byte, 128)
	for i := range r128 {
		r128[i] = byte(i)
	}
	copy(r127, r128)
	for _, tc := range []struct {
		in   []byte
		want string // the length prefix; the data follows it unchanged
	}{
		{nil, "00"},
		{[]byte("1234"), "04"},
		{r127, "7f"},
		{r128, "8001"},
	} {
		got := lvCat(tc.in)
		want := append(unhex(t, tc.want), tc.in...)
		if !bytes.Equal(got, want) {
			t.Errorf("prepend_len(%d bytes) = %x, want %x", len(tc.in), got, want)
		}
		if n := prependLenSize(tc.in); n != len(want) {
			t.Errorf("prependLenSize(%d bytes) = %d, want %d", len(tc.in), n, len(want))
		}
	}
	checkHex(t, "lv_cat", lvCat([]byte("1234"), []byte("5"), nil, []byte("678")), "043132333401350003363738")
}

// Appendix A.3.3, A.3.5 and A.3.7.
func TestOrderedConcatenationAndTranscriptVectors(t *testing.T) {
	// lexiographically_larger(a, b): o_cat puts the larger first.
	for _, tc := range []struct {
		a, b        string
		aIsGreater  bool
		description string
	}{
		{"\x00", "\x00\x00", false, `b"\0", b"\0\0"`},
		{"\x01", "\x00\x00", true, `b"\1", b"\0\0"`},
		{"\x00\x00", "\x00", true, `b"\0\0", b"\0"`},
		{"\x00\x00", "\x01", false, `b"\0\0", b"\1"`},
		{"\x00\x01", "\x01", false, `b"\0\1", b"\1"`},
		{"ABCD", "BCD", false, `b"ABCD", b"BCD"`},
	} {
		want := "oc" + tc.b + tc.a
		if tc.aIsGreater {
			want = "oc" + tc.a + tc.b
		}
		if got := string(oCat([]byte(tc.a), []byte(tc.b))); got != want {
			t.Errorf("o_cat(%s) = %q, want %q", tc.description, got, want)
		}
	}
	checkHex(t, `o_cat(b"ABCD",b"BCD")`, oCat([]byte("ABCD"), []byte("BCD")), "6f6342434441424344")
	checkHex(t, `o_cat(b"BCD",b"ABCDE")`, oCat([]byte("BCD"), []byte("ABCDE")), "6f634243444142434445")

	pa, pb := []byte("PartyA"), []byte("PartyB")
	checkHex(t, "transcript_ir 1", transcriptIR([]byte("123"), pa, []byte("234"), pb),
		"03313233065061727479410332333406506172747942")
	checkHex(t, "transcript_ir 2", transcriptIR([]byte("3456"), pa, []byte("2345"), pb),
		"043334353606506172747941043233343506506172747942")
	checkHex(t, "transcript_oc 1", transcriptOC([]byte("123"), pa, []byte("234"), pb),
		"6f6303323334065061727479420331323306506172747941")
	checkHex(t, "transcript_oc 2", transcriptOC([]byte("3456"), pa, []byte("2345"), pb),
		"6f63043334353606506172747941043233343506506172747942")
}

// Appendix B.3.1.
func TestGeneratorVector(t *testing.T) {
	sid := unhex(t, vecSID)
	gs := generatorString([]byte(dsi), vecPRS, vecCI, sid, sInBytes)
	checkHex(t, "generator_string", gs, vecGeneratorString)
	if zpad := len(gs) - len(lvCat([]byte(dsi), vecPRS, nil, vecCI, sid)); zpad != 100 {
		t.Errorf("ZPAD length %d, want 100", zpad)
	}
	h := sha512.Sum512(gs)
	checkHex(t, "hash result", h[:], vecGeneratorHash)
	g, err := calculateGenerator(vecPRS, vecCI, sid)
	if err != nil {
		t.Fatal(err)
	}
	checkHex(t, "encoded generator g", g.Bytes(), vecG)
}

// Appendix B.3.2 to B.3.7, through the API a caller uses.
func TestExchangeVectors(t *testing.T) {
	sid := unhex(t, vecSID)
	ya, yb := unhex(t, vecYaShare), unhex(t, vecYbShare)

	// B.3.2, B.3.3: the messages.
	_, gotYa, _ := start(vecPRS, vecCI, sid, vecADa, scalar(t, vecYa))
	checkHex(t, "Ya", gotYa, vecYaShare)
	_, gotYb, _ := start(vecPRS, vecCI, sid, vecADb, scalar(t, vecYb))
	checkHex(t, "Yb", gotYb, vecYbShare)

	// B.3.4: K from both sides.
	for _, tc := range []struct {
		name   string
		secret string
		peer   []byte
	}{
		{"scalar_mult_vfy(ya,Yb)", vecYa, yb},
		{"scalar_mult_vfy(yb,Ya)", vecYb, ya},
	} {
		k, err := scalarMultVfy(scalar(t, tc.secret), tc.peer)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		checkHex(t, tc.name, k, vecK)
	}

	// B.3.5, B.3.6: transcripts and the hash input.
	k := unhex(t, vecK)
	dsiISK := lvCat([]byte(dsi+"_ISK"), sid, k)
	checkHex(t, "transcript_ir", transcriptIR(ya, vecADa, yb, vecADb), vecTranscriptIR)
	checkHex(t, "hash input ir", append(dsiISK, transcriptIR(ya, vecADa, yb, vecADb)...), vecHashInputIR)
	checkHex(t, "transcript_oc", transcriptOC(ya, vecADa, yb, vecADb), vecTranscriptOC)
	checkHex(t, "hash input oc", append(dsiISK, transcriptOC(ya, vecADa, yb, vecADb)...), vecHashInputOC)

	// B.3.5, B.3.6: ISK as Finish gives it to each side in each setting.
	for _, tc := range []struct {
		name         string
		secret       string
		ownAD        []byte
		peer, peerAD []byte
		role         Role
		want         string
	}{
		{"ISK_IR for A", vecYa, vecADa, yb, vecADb, Initiator, vecISKIR},
		{"ISK_IR for B", vecYb, vecADb, ya, vecADa, Responder, vecISKIR},
		{"ISK_SY for A", vecYa, vecADa, yb, vecADb, Symmetric, vecISKSY},
		{"ISK_SY for B", vecYb, vecADb, ya, vecADa, Symmetric, vecISKSY},
	} {
		st, _, _ := start(vecPRS, vecCI, sid, tc.ownAD, scalar(t, tc.secret))
		isk, err := st.Finish(tc.peer, tc.peerAD, tc.role)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		checkHex(t, tc.name, isk, tc.want)
	}

	// B.3.7: the optional sid output, which the package does not offer
	// (callers supply sid); checked here against its transcripts.
	sidIR := sha512.Sum512(append([]byte("CPaceSidOutput"), transcriptIR(ya, vecADa, yb, vecADb)...))
	checkHex(t, "sid_output_ir", sidIR[:], vecSidOutputIR)
	sidOC := sha512.Sum512(append([]byte("CPaceSidOutput"), transcriptOC(ya, vecADa, yb, vecADb)...))
	checkHex(t, "sid_output_oc", sidOC[:], vecSidOutputOC)
}

// Appendix B.3.10 and B.3.11.
func TestScalarMultVfyVectors(t *testing.T) {
	s := scalar(t, "7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88cf538a05")
	got, err := scalarMultVfy(s, unhex(t, "2c3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c"))
	if err != nil {
		t.Fatalf("valid X: %v", err)
	}
	checkHex(t, "G.scalar_mult_vfy(s,X)", got, "7c13645fe790a468f62c39beb7388e541d8405d1ade69d1778c5fe3e7f6b600e")

	for _, bad := range []string{
		"2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c", // Y_i1: not an encoding
		"0000000000000000000000000000000000000000000000000000000000000000", // Y_i2 == G.I
	} {
		if k, err := scalarMultVfy(s, unhex(t, bad)); !errors.Is(err, ErrInvalidShare) {
			t.Errorf("scalar_mult_vfy(s, %s) = %x, %v; want ErrInvalidShare", bad, k, err)
		}
	}
}
