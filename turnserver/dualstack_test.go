package turnserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// TestWildcardListenerDualStack: the default listen address is a wildcard
// (":3478"), and one socket must then serve IPv4 and IPv6 clients alike, on
// the data plane and on the portable path, over UDP and TCP. An IPv6 client
// gets an IPv4 relayed address like everyone else (relays are IPv4).
func TestWildcardListenerDualStack(t *testing.T) {
	t.Parallel()
	clients := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	if hasIPv6Loopback(t) {
		clients = append(clients, netip.IPv6Loopback())
	}
	for _, portable := range []bool{false, true} {
		name := "dataplane"
		if portable {
			name = "portable"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, _ := startServer(t, func(c *Config) {
				c.ListenAddr = ":0"
				c.DisableDataPlane = portable
			})
			if ip := s.UDPAddr().(*net.UDPAddr).IP; !ip.IsUnspecified() {
				t.Fatalf("UDP listener on %v, want a wildcard", s.UDPAddr())
			}
			peer := echoPeer(t)
			for i, ip := range clients {
				t.Run(ip.String(), func(t *testing.T) {
					user := "dual" + strconv.Itoa(i)
					checkUDPClient(t, s, ip, user, peer.LocalAddr().(*net.UDPAddr))
					checkTCPClient(t, s, ip, user, peer.LocalAddr())
				})
			}
		})
	}
}

// hasIPv6Loopback reports whether ::1 can be bound here. Hosts without it
// exist (containers with IPv6 off) but CI is not one of them: there the
// IPv6 half of a test must not disappear silently.
func hasIPv6Loopback(t *testing.T) bool {
	t.Helper()
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no IPv6 loopback in CI: %v", err)
		}
		t.Logf("no IPv6 loopback (%v): IPv6 clients not tested", err)
		return false
	}
	_ = c.Close()
	return true
}

// checkUDPClient runs a STUN Binding, a TURN allocation and a ChannelData
// round trip through the relay to peer, from a client on ip to the
// server's port on the same address family.
func checkUDPClient(t *testing.T, s *Server, ip netip.Addr, user string, peer *net.UDPAddr) {
	t.Helper()
	network := "udp4"
	if ip.Is6() {
		network = "udp6"
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	server := net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(s.UDPAddr().(*net.UDPAddr).Port)))
	c := &rawClient{t: t, conn: conn, server: server}

	resp, err := c.do(stun.MethodBinding)
	wantSuccess(t, "Binding", resp, err)
	var mapped stun.XORMappedAddress
	if err := mapped.GetFrom(resp); err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().(*net.UDPAddr)
	if !mapped.IP.Equal(local.IP) || mapped.Port != local.Port {
		t.Errorf("Binding: mapped %v, want %v", mapped, local)
	}

	c.username, c.passwd = MintCredential(testSecret, user, time.Minute, time.Now())
	resp, err = c.do(stun.MethodAllocate, requestedTransportUDP())
	wantSuccess(t, "Allocate", resp, err)
	var relayed stun.XORMappedAddress
	if err := relayed.GetFromAs(resp, stun.AttrXORRelayedAddress); err != nil {
		t.Fatal(err)
	}
	if relayed.IP.To4() == nil {
		t.Errorf("relayed address %v, want IPv4", relayed)
	}
	const ch = 0x4000
	resp, err = c.do(stun.MethodChannelBind, xorPeer(peer.IP, peer.Port), channelNumber(ch))
	wantSuccess(t, "ChannelBind", resp, err)
	if s.dataPlane() != nil && !mirroredChannel(s, netip.AddrPortFrom(ip, uint16(local.Port)), ch) {
		t.Errorf("data plane has no route for channel %#x of %v", ch, local)
	}
	payload := []byte("dual-stack " + ip.String())
	c.sendChannelData(ch, payload)
	got := readDatagram(t, conn, 5*time.Second)
	if len(got) < 4 || binary.BigEndian.Uint16(got) != ch ||
		!bytes.Equal(got[4:min(len(got), 4+int(binary.BigEndian.Uint16(got[2:])))], payload) {
		t.Errorf("echo through the relay: got %q, want ChannelData %#x %q", got, ch, payload)
	}
}

// checkTCPClient does the same over TCP, with pion's client.
func checkTCPClient(t *testing.T, s *Server, ip netip.Addr, user string, peer net.Addr) {
	t.Helper()
	port := uint16(s.TCPAddr().(*net.TCPAddr).Port)
	conn, err := net.Dial("tcp", netip.AddrPortFrom(ip, port).String())
	if err != nil {
		t.Fatal(err)
	}
	u, p := MintCredential(testSecret, user+"tcp", time.Minute, time.Now())
	c := newPionStreamClient(t, s, conn, u, p)
	mapped, err := c.SendBindingRequest()
	if err != nil {
		t.Fatalf("Binding over TCP: %v", err)
	}
	local := conn.LocalAddr().(*net.TCPAddr)
	if m, ok := mapped.(*net.UDPAddr); !ok || !m.IP.Equal(local.IP) || m.Port != local.Port {
		t.Errorf("Binding over TCP: mapped %v, want %v", mapped, local)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate over TCP: %v", err)
	}
	defer relay.Close()
	roundTrip(t, relay, peer, []byte("over tcp from "+ip.String()))
}

// readDatagram returns the next datagram on conn, failing the test if none
// comes within d.
func readDatagram(t *testing.T, conn *net.UDPConn, d time.Duration) []byte {
	t.Helper()
	buf := make([]byte, 2048)
	if err := conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	n, _, err := conn.ReadFromUDP(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("nothing received within %v", d)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}
