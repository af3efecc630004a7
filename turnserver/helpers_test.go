package turnserver

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"

	"github.com/tryst-chat/tryst/metrics"
)

var testSecret = []byte("correct horse battery staple")

// startServer runs a relay on 127.0.0.1:0 with loopback peers allowed unless
// mod says otherwise. It is closed at the end of the test.
func startServer(t *testing.T, mod func(*Config)) (*Server, *metrics.TURN) {
	t.Helper()
	m := metrics.UnregisteredTURN()
	cfg := Config{
		ListenAddr:         "127.0.0.1:0",
		Secrets:            [][]byte{testSecret},
		AllowLoopbackPeers: true,
		Sockets:            2,
		Metrics:            m,
		RelayPortMin:       40000,
		RelayPortMax:       40999,
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, m
}

// echoPeer is a UDP peer that sends every datagram back to its sender.
func echoPeer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDP(buf[:n], from)
		}
	}()
	t.Cleanup(func() {
		_ = c.Close()
		<-done
	})
	return c
}

// pionClient is pion's TURN client on its own socket.
type pionClient struct {
	*turn.Client
	conn net.PacketConn
}

func newPionClient(t *testing.T, s *Server, username, password string) *pionClient {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: s.UDPAddr().String(),
		TURNServerAddr: s.UDPAddr().String(),
		Conn:           conn,
		Username:       username,
		Password:       password,
		Realm:          s.Realm(),
		RTO:            200 * time.Millisecond,
		LoggerFactory:  lf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	pc := &pionClient{Client: c, conn: conn}
	t.Cleanup(pc.close)
	return pc
}

// allocate makes a TURN allocation on s for user with fresh credentials;
// the relayed connection closes when the test ends.
func allocate(t *testing.T, s *Server, user string) (*pionClient, net.PacketConn) {
	t.Helper()
	u, p := MintCredential(testSecret, user, time.Minute, time.Now())
	c := newPionClient(t, s, u, p)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	return c, relay
}

func (c *pionClient) close() {
	c.Client.Close()
	_ = c.conn.Close()
}

// roundTrip sends payload through relay to peer and waits for the echo.
func roundTrip(t *testing.T, relay net.PacketConn, peer net.Addr, payload []byte) {
	t.Helper()
	if _, err := relay.WriteTo(payload, peer); err != nil {
		t.Fatalf("relay write: %v", err)
	}
	buf := make([]byte, 2048)
	if err := relay.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, from, err := relay.ReadFrom(buf)
	if err != nil {
		t.Fatalf("relay read: %v", err)
	}
	if string(buf[:n]) != string(payload) || from.String() != peer.String() {
		t.Fatalf("got %q from %v, want %q from %v", buf[:n], from, payload, peer)
	}
}

// rawClient speaks just enough TURN over UDP to drive the server request by
// request with chosen credentials.
type rawClient struct {
	t                *testing.T
	conn             *net.UDPConn
	server           *net.UDPAddr
	username, passwd string
	realm, nonce     string
}

func newRawClient(t *testing.T, s *Server, username, password string) *rawClient {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawClient{t: t, conn: conn, server: s.UDPAddr().(*net.UDPAddr), username: username, passwd: password}
}

var errNoResponse = errors.New("no response")

// do sends a request and returns the response, handling the nonce exchange.
func (c *rawClient) do(method stun.Method, attrs ...stun.Setter) (*stun.Message, error) {
	for attempt := 0; attempt < 3; attempt++ {
		setters := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
		setters = append(setters, attrs...)
		if c.nonce != "" {
			setters = append(setters, stun.NewUsername(c.username), stun.NewRealm(c.realm),
				stun.NewNonce(c.nonce), stun.NewLongTermIntegrity(c.username, c.realm, c.passwd))
		}
		setters = append(setters, stun.Fingerprint)
		req, err := stun.Build(setters...)
		if err != nil {
			return nil, err
		}
		resp, err := c.exchange(req)
		if err != nil {
			return nil, err
		}
		var code stun.ErrorCodeAttribute
		if resp.Type.Class == stun.ClassErrorResponse && code.GetFrom(resp) == nil &&
			(code.Code == stun.CodeUnauthorized || code.Code == stun.CodeStaleNonce) {
			var nonce stun.Nonce
			var realm stun.Realm
			// 401 to a request without credentials, or 438 (the relay's
			// nonce expired, or was issued to another address): sign with
			// the new nonce. A 401 to signed request is the answer.
			signed := c.nonce != ""
			if nonce.GetFrom(resp) == nil && realm.GetFrom(resp) == nil && (!signed || code.Code == stun.CodeStaleNonce) {
				c.nonce, c.realm = nonce.String(), realm.String()
				continue
			}
		}
		return resp, nil
	}
	return nil, errors.New("nonce exchange did not converge")
}

func (c *rawClient) exchange(req *stun.Message) (*stun.Message, error) {
	if _, err := c.conn.WriteToUDP(req.Raw, c.server); err != nil {
		return nil, err
	}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(2 * time.Second)
	for {
		if err := c.conn.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		n, _, err := c.conn.ReadFromUDP(buf)
		if err != nil {
			return nil, errNoResponse
		}
		resp := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if resp.Decode() == nil && resp.TransactionID == req.TransactionID {
			return resp, nil
		}
	}
}

func requestedTransportUDP() stun.Setter {
	return stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}
}

func lifetime(sec uint32) stun.Setter {
	return stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{byte(sec >> 24), byte(sec >> 16), byte(sec >> 8), byte(sec)}}
}

type peerAddr struct{ stun.XORMappedAddress }

func (p peerAddr) AddTo(m *stun.Message) error { return p.AddToAs(m, stun.AttrXORPeerAddress) }

func xorPeer(ip net.IP, port int) stun.Setter {
	return peerAddr{stun.XORMappedAddress{IP: ip, Port: port}}
}

func wantSuccess(t *testing.T, what string, resp *stun.Message, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if resp.Type.Class != stun.ClassSuccessResponse {
		var code stun.ErrorCodeAttribute
		_ = code.GetFrom(resp)
		t.Fatalf("%s: %v %v", what, resp.Type, code)
	}
}

// wantRefused accepts an error response or no response at all (pion stays
// silent on some refusals, e.g. a Refresh without an allocation).
func wantRefused(t *testing.T, what string, resp *stun.Message, err error) {
	t.Helper()
	if err == nil && resp.Type.Class == stun.ClassSuccessResponse {
		t.Fatalf("%s: succeeded, want refusal", what)
	}
}

func newPionStreamClient(t *testing.T, s *Server, conn net.Conn, username, password string) *pionClient {
	t.Helper()
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	pc := turn.NewSTUNConn(conn)
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: s.TCPAddr().String(),
		TURNServerAddr: s.TCPAddr().String(),
		Conn:           pc,
		Username:       username,
		Password:       password,
		Realm:          s.Realm(),
		LoggerFactory:  lf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	cl := &pionClient{Client: c, conn: pc}
	t.Cleanup(cl.close)
	return cl
}
