package cpace

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tryst-chat/tryst/client/internal/ristretto255"
)

// FuzzFinish feeds arbitrary bytes to Finish as the peer's share: it never
// panics, and it succeeds exactly for the 32-byte canonical encodings of
// elements other than the identity.
func FuzzFinish(f *testing.F) {
	sid, ya := unhex(f, vecSID), unhex(f, vecYaShare)
	f.Add(unhex(f, vecYbShare))
	f.Add(unhex(f, vecG))
	for _, share := range badShares {
		f.Add(unhex(f, share))
	}
	f.Fuzz(func(t *testing.T, peer []byte) {
		// The draft's party A, a fresh state each time since Finish spends
		// it; built directly, as start's hash to the group would dominate.
		st := &State{y: scalar(t, vecYa), share: ya, ad: vecADa, sid: sid}
		isk, err := st.Finish(peer, vecADb, Initiator)

		e, decErr := new(ristretto255.Element).SetCanonicalBytes(peer)
		valid := len(peer) == ShareSize && decErr == nil && !bytes.Equal(peer, make([]byte, ShareSize))
		switch {
		case valid && err != nil:
			t.Fatalf("valid share %x rejected: %v", peer, err)
		case !valid && !errors.Is(err, ErrInvalidShare):
			t.Fatalf("invalid share %x: Finish = %x, %v; want ErrInvalidShare", peer, isk, err)
		case valid && len(isk) != ISKSize:
			t.Fatalf("ISK of %d bytes", len(isk))
		case valid && !bytes.Equal(e.Bytes(), peer):
			t.Fatalf("accepted %x, which re-encodes as %x", peer, e.Bytes())
		}
	})
}
