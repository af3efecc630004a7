package turnserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tryst-chat/tryst/metrics"
)

// TestRelayHairpin sends ChannelData from allocation A to allocation B's
// relayed address on the same server. B's client must get it as ChannelData
// on B's channel, as a Data indication with only a permission, and not at
// all without one; the counters must show both hops. The fast path delivers
// it relay to relay, the portable path through the kernel: both must look
// the same to the clients and the metrics.
func TestRelayHairpin(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"fast", "portable"} {
		for _, b := range []string{"channel", "permission", "none"} {
			t.Run(path+"/"+b, func(t *testing.T) {
				t.Parallel()
				testHairpin(t, path == "portable", b)
			})
		}
	}
}

func testHairpin(t *testing.T, portable bool, bSide string) {
	s, m := startServer(t, func(c *Config) { c.DisableDataPlane = portable })
	a, relA := rawAllocate(t, s, "alice")
	b, relB := rawAllocate(t, s, "bob")
	const chA, chB = 0x4000, 0x4001
	switch bSide {
	case "channel":
		resp, err := b.do(stun.MethodChannelBind, xorPeer(relA.IP, relA.Port), channelNumber(chB))
		wantSuccess(t, "B ChannelBind", resp, err)
	case "permission":
		resp, err := b.do(stun.MethodCreatePermission, xorPeer(relA.IP, relA.Port))
		wantSuccess(t, "B CreatePermission", resp, err)
	}
	resp, err := a.do(stun.MethodChannelBind, xorPeer(relB.IP, relB.Port), channelNumber(chA))
	wantSuccess(t, "A ChannelBind", resp, err)

	const packets, size = 20, 101 // odd, so the ChannelData needs padding
	payload := bytes.Repeat([]byte("h"), size)
	// All at once, so that one recvmmsg batch carries several and the fast
	// path sends them with one sendmmsg.
	for i := range packets {
		payload[0] = byte(i)
		a.sendChannelData(chA, payload)
	}
	for i := range packets {
		if bSide == "none" {
			break
		}
		payload[0] = byte(i)
		got := b.read()
		if got == nil {
			t.Fatalf("datagram %d not delivered", i)
		}
		var data []byte
		if bSide == "channel" {
			if num := binary.BigEndian.Uint16(got); num != chB || len(got)%4 != 0 {
				t.Fatalf("channel %#x, %d bytes; want %#x, padded", num, len(got), chB)
			}
			data = got[4 : 4+int(binary.BigEndian.Uint16(got[2:]))]
		} else {
			data = dataIndication(t, got, relA)
		}
		if !bytes.Equal(data, payload) {
			t.Fatalf("datagram %d: got %q, want %q", i, data, payload)
		}
	}
	wantP2C := float64(packets)
	if bSide == "none" {
		if got := b.read(); got != nil {
			t.Fatalf("delivered without a permission: %q", got)
		}
		// A permission now lets the next datagram through, and only it.
		resp, err := b.do(stun.MethodCreatePermission, xorPeer(relA.IP, relA.Port))
		wantSuccess(t, "B CreatePermission", resp, err)
		a.sendChannelData(chA, payload)
		got := b.read()
		if got == nil {
			t.Fatal("not delivered after CreatePermission")
		}
		if data := dataIndication(t, got, relA); !bytes.Equal(data, payload) {
			t.Fatalf("got %q, want %q", data, payload)
		}
		wantP2C = 1
	}
	wantC2P := float64(packets)
	if bSide == "none" {
		wantC2P++
	}
	if !portable {
		if got := s.dataPlane().Stats().Hairpins; float64(got) != wantC2P {
			t.Errorf("%d datagrams hairpinned, want %v", got, wantC2P)
		}
	}
	for dir, want := range map[string]float64{
		metrics.DirectionClientToPeer: wantC2P, metrics.DirectionPeerToClient: wantP2C,
	} {
		if got := settled(m.RelayPackets.WithLabelValues(dir), want); got != want {
			t.Errorf("packets %s = %v, want %v", dir, got, want)
		}
		if got := settled(m.RelayBytes.WithLabelValues(dir), want*size); got != want*size {
			t.Errorf("bytes %s = %v, want %v", dir, got, want*size)
		}
	}
}

// TestRelayHairpinFiltered checks that the default peer filter still refuses
// the server's own relay addresses as peers.
func TestRelayHairpinFiltered(t *testing.T) {
	t.Parallel()
	s, _ := startServer(t, func(c *Config) { c.AllowLoopbackPeers = false })
	a, _ := rawAllocate(t, s, "alice")
	_, relB := rawAllocate(t, s, "bob")
	resp, err := a.do(stun.MethodChannelBind, xorPeer(relB.IP, relB.Port), channelNumber(0x4000))
	wantRefused(t, "ChannelBind to own relay", resp, err)
	resp, err = a.do(stun.MethodCreatePermission, xorPeer(relB.IP, relB.Port))
	wantRefused(t, "CreatePermission to own relay", resp, err)
}

// settled returns the counter's value once it equals want, or after a
// second. Why wait: a sender counts a datagram after the send returns, so
// the client may read it before the counter moves.
func settled(c prometheus.Counter, want float64) float64 {
	deadline := time.Now().Add(time.Second)
	for {
		got := testutil.ToFloat64(c)
		if got == want || time.Now().After(deadline) {
			return got
		}
		runtime.Gosched()
	}
}

func rawAllocate(t *testing.T, s *Server, user string) (*rawClient, *net.UDPAddr) {
	t.Helper()
	u, p := MintCredential(testSecret, user, time.Minute, time.Now())
	c := newRawClient(t, s, u, p)
	resp, err := c.do(stun.MethodAllocate, requestedTransportUDP())
	wantSuccess(t, "Allocate", resp, err)
	var relayed stun.XORMappedAddress
	if err := relayed.GetFromAs(resp, stun.AttrXORRelayedAddress); err != nil {
		t.Fatal(err)
	}
	return c, &net.UDPAddr{IP: relayed.IP, Port: relayed.Port}
}

// read returns the next datagram from the server, nil if none comes within
// 300 ms.
func (c *rawClient) read() []byte {
	c.t.Helper()
	buf := make([]byte, 2048)
	if err := c.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		c.t.Fatal(err)
	}
	n, _, err := c.conn.ReadFromUDP(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return buf[:n]
}

// dataIndication returns the DATA of a Data indication from peer.
func dataIndication(t *testing.T, raw []byte, peer *net.UDPAddr) []byte {
	t.Helper()
	msg := &stun.Message{Raw: raw}
	if err := msg.Decode(); err != nil {
		t.Fatalf("not STUN: %v", err)
	}
	if msg.Type != stun.NewType(stun.MethodData, stun.ClassIndication) {
		t.Fatalf("got %v, want a Data indication", msg.Type)
	}
	var from stun.XORMappedAddress
	if err := from.GetFromAs(msg, stun.AttrXORPeerAddress); err != nil {
		t.Fatal(err)
	}
	if !from.IP.Equal(peer.IP) || from.Port != peer.Port {
		t.Fatalf("Data indication from %v, want %v", from, peer)
	}
	data, err := msg.Get(stun.AttrData)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
