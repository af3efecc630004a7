package turnserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// TestDataPlaneDifferential drives the same random sequence of TURN
// operations through a server with the epoll data plane and through one on
// pion's portable path, records what every client and peer socket receives,
// and requires the two records to be the same. Both must also match a model
// of RFC 8656 as pion implements it, and between steps the data plane's
// mirror of pion's channels must match the model's.
//
// The data plane takes over part of pion's job (ChannelData on bindings it
// mirrors from pion's events, relay-to-relay delivery) and hands the rest to
// pion, so any mirror that goes stale or wrong shows up as a datagram
// delivered differently, or not at all, on one path only.
//
// Each step is made deterministic rather than timed: every datagram carries
// a unique sequence number, and a step that should deliver waits for that
// delivery. A datagram that should be dropped is not waited for; instead,
// before its receiver's allocation changes (so that a late datagram could
// meet different permissions), a fence proves it was handled: see fence.
//
// TRYST_DIFF_SEED reruns a seed (logged on failure), TRYST_DIFF_OPS sets the
// number of operations.
func TestDataPlaneDifferential(t *testing.T) {
	t.Parallel()
	seed := rand.Uint64()
	if v := os.Getenv("TRYST_DIFF_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("TRYST_DIFF_SEED: %v", err)
		}
	}
	ops := 1000
	if testing.Short() {
		ops = 300
	}
	if v := os.Getenv("TRYST_DIFF_OPS"); v != "" {
		var err error
		if ops, err = strconv.Atoi(v); err != nil {
			t.Fatalf("TRYST_DIFF_OPS: %v", err)
		}
	}
	t.Logf("seed %d, %d operations (rerun: TRYST_DIFF_SEED=%d)", seed, ops, seed)
	start := time.Now()
	fast, portable := newDiffWorld(t, "dataplane", false, seed), newDiffWorld(t, "portable", true, seed)
	var wg sync.WaitGroup
	for _, w := range []*diffWorld{fast, portable} {
		wg.Go(func() { w.run(ops) })
	}
	wg.Wait()
	t.Logf("ran in %v: %s; data plane: %d datagrams passed to pion, %d relayed relay to relay",
		time.Since(start).Round(time.Millisecond), fast.summary(), fast.s.dataPlane().Stats().ToPion, fast.s.dataPlane().Stats().Hairpins)
	// A world stops at its first error, the one that matters; comparing
	// it with the other then says little.
	for _, w := range []*diffWorld{fast, portable} {
		for _, e := range w.errs {
			t.Errorf("%s: %s", w.name, e)
		}
		if len(w.errs) > 0 {
			t.Logf("operations before the error (%s):\n%s", w.name, w.opsAround(w.step))
			return
		}
	}
	if step := compareDiffWorlds(t, fast, portable); step > 0 {
		t.Logf("operations before the first difference (%s):\n%s", fast.name, fast.opsAround(step))
	}
}

// diffWorld is one server with its clients and peers, and a model of what
// the server should do.
type diffWorld struct {
	t    *testing.T
	name string
	s    *Server
	rng  *rand.Rand
	rec  diffRecorder

	clients []*diffClient
	peers   []*diffPeer
	fencer  *diffPeer    // has a permission on every allocation, see fence
	marker  *net.UDPConn // ends the run: see finish
	socks   []*diffSock  // every client socket ever opened

	seq       uint64         // last sequence number used
	steps     map[uint64]int // sequence number -> step that sent it
	step      int            // current operation
	ops       []string       // what each step did, for the failure report
	resps     []string       // each request's outcome, in order
	respSteps []int          // the step of each
	want      map[diffKey]diffRecv
	drops     int // datagrams the model drops
	fences    int
	errs      []string

	mu    sync.Mutex
	names map[netip.AddrPort]string // peer and relay addresses -> logical names
}

// diffTarget is what a client can address: a peer, or an allocation's
// relayed address. An allocation's relay port may be given to a newer
// allocation once it is gone, in one run and not in the other, so the
// model refers to targets, not to addresses; see tainted.
type diffTarget struct {
	name  string
	addr  netip.AddrPort
	owner *diffClient // of a relayed address; nil for a peer
	dead  bool        // a relayed address whose allocation is gone
}

// diffClient is a logical client: a succession of sockets, each used for at
// most one allocation.
//
// Why not reallocate on the same socket after a Refresh with lifetime 0:
// pion's relay read loop, when it sees its closed socket, deletes the
// allocation of the same 5-tuple again; if the client was quick enough to
// allocate anew, that deletes the new allocation. Whether it happens is
// timing, the same on both paths, and would only make this test flaky.
type diffClient struct {
	idx  int
	sock *diffSock

	// The model of its current allocation.
	relay  *diffTarget // nil when none
	perms  map[netip.Addr]bool
	chans  map[uint16]*diffTarget
	byPeer map[*diffTarget]uint16
	dirty  bool               // a datagram to the relay was dropped since the last fence
	hairs  map[*diffSock]bool // clients whose dropped datagrams went relay to relay
}

// tainted reports whether c has a channel bound to a relayed address that
// is gone. The server keeps that binding, by address, until c's allocation
// ends, and the address may now be a newer allocation's in this run only:
// so a tainted client binds no channel to a relayed address (pion would
// refuse one that reuses the old port) and no relay sends to it (it would
// arrive on the old channel). Both rules depend on the model alone, so both
// runs follow them alike.
func (c *diffClient) tainted() bool {
	for _, t := range c.chans {
		if t.dead {
			return true
		}
	}
	return false
}

// diffSock is one client socket; its reader records what arrives and hands
// STUN responses to the request waiting for them.
type diffSock struct {
	w            *diffWorld
	name         string
	conn         *net.UDPConn
	server       *net.UDPAddr
	username     string
	password     string
	realm, nonce string
	used         bool // has had an allocation: never allocate on it again
	done         chan struct{}

	mu      sync.Mutex
	pending map[[stun.TransactionIDSize]byte]chan *stun.Message
}

type diffPeer struct {
	*diffTarget
	conn *net.UDPConn
	done chan struct{}
}

// diffRecv is one datagram as a receiver saw it, in terms that do not
// depend on the ports of one run.
type diffRecv struct {
	to   string // receiving socket
	kind string // chan (ChannelData), data (Data indication), udp (peer), mark, junk
	ch   uint16
	from string // the peer a Data indication names, or a peer's UDP source
	seq  uint64
	data string
	size int // of the whole datagram: padding and headers must match too
}

func (r diffRecv) String() string {
	s := fmt.Sprintf("%s <- %s", r.to, r.kind)
	if r.kind == "chan" {
		s += fmt.Sprintf(" %#x", r.ch)
	}
	if r.from != "" {
		s += " from " + r.from
	}
	s += fmt.Sprintf(" seq %d (%d payload bytes", r.seq, len(r.data))
	if r.size >= 0 {
		s += fmt.Sprintf(", %d in all", r.size)
	}
	return s + ")"
}

type diffKey struct {
	to  string
	seq uint64
}

// diffRecorder collects the deliveries of one world.
type diffRecorder struct {
	mu   sync.Mutex
	got  []diffRecv
	seen map[diffKey]bool
	wake chan struct{} // closed and replaced at each delivery
}

func (r *diffRecorder) add(d diffRecv) {
	r.mu.Lock()
	r.got = append(r.got, d)
	r.seen[diffKey{d.to, d.seq}] = true
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
}

// wait reports whether datagram seq reached `to` within d.
func (r *diffRecorder) wait(to string, seq uint64, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		r.mu.Lock()
		ok, wake := r.seen[diffKey{to, seq}], r.wake
		r.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-wake:
		case <-timer.C:
			return false
		}
	}
}

// diffWait bounds the wait for something that should happen; it is only
// spent when the test fails.
const diffWait = 5 * time.Second

// diffClients is the number of logical clients.
const diffClients = 4

// Peer addresses: permissions are per IP, so peers share and do not share
// IPs, and 127.0.0.1 is also the relays' address. The fencer has its own.
var (
	diffPeerIPs = []string{"127.0.0.1", "127.0.0.2", "127.0.0.2", "127.0.0.3"}
	diffFenceIP = "127.0.0.9"
)

func newDiffWorld(t *testing.T, name string, portable bool, seed uint64) *diffWorld {
	s, _ := startServer(t, func(c *Config) {
		c.DisableDataPlane = portable
		c.SourceRate = -1 // every request is followed by an unauthenticated Binding
		c.UserQuota = -1
		c.AllocationsPerIP = -1
	})
	w := &diffWorld{t: t, name: name, s: s, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		rec:  diffRecorder{seen: make(map[diffKey]bool), wake: make(chan struct{})},
		want: make(map[diffKey]diffRecv), steps: make(map[uint64]int),
		names: make(map[netip.AddrPort]string)}
	for i, ip := range diffPeerIPs {
		w.peers = append(w.peers, w.newPeer(t, "P"+strconv.Itoa(i), ip))
	}
	w.fencer = w.newPeer(t, "F", diffFenceIP)
	m, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	w.marker = m
	t.Cleanup(func() { _ = m.Close() })
	for i := range diffClients {
		w.clients = append(w.clients, &diffClient{idx: i})
	}
	return w
}

func (w *diffWorld) newPeer(t *testing.T, name, ip string) *diffPeer {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	p := &diffPeer{diffTarget: &diffTarget{name: name, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort()},
		conn: conn, done: make(chan struct{})}
	w.mu.Lock()
	w.names[p.addr] = name
	w.mu.Unlock()
	go func() {
		defer close(p.done)
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			d := diffRecv{to: name, kind: "udp", from: w.nameOf(from), size: n}
			d.seq, d.data = diffPayload(buf[:n])
			if w.isMarker(from) {
				d.kind, d.from = "mark", ""
			}
			w.rec.add(d)
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		<-p.done
	})
	return p
}

func (w *diffWorld) nameOf(a netip.AddrPort) string {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	w.mu.Lock()
	defer w.mu.Unlock()
	if n, ok := w.names[a]; ok {
		return n
	}
	return "unknown " + a.String() // differs between runs: shows up in the comparison
}

func (w *diffWorld) isMarker(a netip.AddrPort) bool {
	return a == w.marker.LocalAddr().(*net.UDPAddr).AddrPort()
}

// diffPayload splits a payload into its sequence number and the rest.
func diffPayload(b []byte) (uint64, string) {
	if len(b) < 8 {
		return 0, string(b)
	}
	return binary.BigEndian.Uint64(b), string(b)
}

// newSock opens client c's next socket.
func (w *diffWorld) newSock(c *diffClient) bool {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		w.errorf("client socket: %v", err)
		return false
	}
	gen := 0
	if c.sock != nil {
		gen, _ = strconv.Atoi(c.sock.name[strings.IndexByte(c.sock.name, '.')+1:])
		gen++
	}
	name := fmt.Sprintf("C%d.%d", c.idx, gen)
	// One credential per socket: the user quota is not under test.
	u, p := MintCredential(testSecret, "diff-"+name, time.Hour, time.Now())
	sk := &diffSock{w: w, name: name, conn: conn, server: w.s.UDPAddr().(*net.UDPAddr), username: u, password: p,
		done: make(chan struct{}), pending: make(map[[stun.TransactionIDSize]byte]chan *stun.Message)}
	go sk.read()
	w.t.Cleanup(func() {
		_ = conn.Close()
		<-sk.done
	})
	w.socks = append(w.socks, sk)
	c.sock = sk
	return true
}

func (sk *diffSock) read() {
	defer close(sk.done)
	w := sk.w
	buf := make([]byte, 2048)
	for {
		n, from, err := sk.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		d := diffRecv{to: sk.name, kind: "junk", size: n}
		switch {
		case w.isMarker(from):
			d.kind = "mark"
			d.seq, d.data = diffPayload(b)
		case n >= 4 && b[0]&0xc0 == 0x40:
			d.kind, d.ch = "chan", binary.BigEndian.Uint16(b)
			if l := int(binary.BigEndian.Uint16(b[2:])); 4+l <= n {
				d.seq, d.data = diffPayload(b[4 : 4+l])
			}
		case stun.IsMessage(b):
			m := &stun.Message{Raw: append([]byte(nil), b...)}
			if m.Decode() != nil {
				break
			}
			if m.Type.Class == stun.ClassSuccessResponse || m.Type.Class == stun.ClassErrorResponse {
				sk.mu.Lock()
				ch := sk.pending[m.TransactionID]
				delete(sk.pending, m.TransactionID)
				sk.mu.Unlock()
				if ch != nil {
					ch <- m
					continue
				}
				d.kind = "stray " + m.Type.String()
				break
			}
			if m.Type == stun.NewType(stun.MethodData, stun.ClassIndication) {
				var peer stun.XORMappedAddress
				data, err := m.Get(stun.AttrData)
				if peer.GetFromAs(m, stun.AttrXORPeerAddress) != nil || err != nil {
					break
				}
				ip, _ := netip.AddrFromSlice(peer.IP)
				d.kind, d.from = "data", w.nameOf(netip.AddrPortFrom(ip, uint16(peer.Port)))
				d.seq, d.data = diffPayload(data)
			}
		}
		w.rec.add(d)
	}
}

// request sends a request and then a Binding, and returns the response to
// the request, nil when there was none. One pion read loop handles both in
// order and answers on one socket, so a response that has not come before
// the Binding's never comes: pion ignores some requests (a CreatePermission
// without an allocation) and this tells so without waiting for a timeout.
func (sk *diffSock) request(method stun.Method, attrs ...stun.Setter) (*stun.Message, error) {
	for range 3 {
		setters := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
		setters = append(setters, attrs...)
		if sk.nonce != "" {
			setters = append(setters, stun.NewUsername(sk.username), stun.NewRealm(sk.realm),
				stun.NewNonce(sk.nonce), stun.NewLongTermIntegrity(sk.username, sk.realm, sk.password))
		}
		req, err := stun.Build(append(setters, stun.Fingerprint)...)
		if err != nil {
			return nil, err
		}
		got := sk.expect(req)
		if err := sk.send(req.Raw); err != nil {
			return nil, err
		}
		if err := sk.binding(); err != nil {
			return nil, err
		}
		var resp *stun.Message
		select {
		case resp = <-got:
		default:
			sk.forget(req)
			return nil, nil
		}
		var code stun.ErrorCodeAttribute
		if resp.Type.Class == stun.ClassErrorResponse && code.GetFrom(resp) == nil &&
			(code.Code == stun.CodeUnauthorized || code.Code == stun.CodeStaleNonce) {
			var nonce stun.Nonce
			var realm stun.Realm
			if nonce.GetFrom(resp) == nil && realm.GetFrom(resp) == nil && sk.nonce != nonce.String() {
				sk.nonce, sk.realm = nonce.String(), realm.String()
				continue
			}
		}
		return resp, nil
	}
	return nil, errors.New("nonce exchange did not converge")
}

// binding runs a STUN Binding; its answer means that the server has handled
// whatever this socket sent before.
func (sk *diffSock) binding() error {
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	got := sk.expect(req)
	if err := sk.send(req.Raw); err != nil {
		return err
	}
	select {
	case <-got:
		return nil
	case <-time.After(diffWait):
		sk.forget(req)
		return fmt.Errorf("%s: no answer to a Binding", sk.name)
	}
}

func (sk *diffSock) expect(m *stun.Message) chan *stun.Message {
	ch := make(chan *stun.Message, 1)
	sk.mu.Lock()
	sk.pending[m.TransactionID] = ch
	sk.mu.Unlock()
	return ch
}

func (sk *diffSock) forget(m *stun.Message) {
	sk.mu.Lock()
	delete(sk.pending, m.TransactionID)
	sk.mu.Unlock()
}

func (sk *diffSock) send(b []byte) error {
	_, err := sk.conn.WriteToUDP(b, sk.server)
	return err
}

func (w *diffWorld) errorf(format string, a ...any) {
	w.errs = append(w.errs, fmt.Sprintf("step %d: ", w.step)+fmt.Sprintf(format, a...))
}

func (w *diffWorld) logf(format string, a ...any) {
	w.ops = append(w.ops, fmt.Sprintf("%4d ", w.step)+fmt.Sprintf(format, a...))
}

// run performs n random operations, then collects what is still on its way.
func (w *diffWorld) run(n int) {
	for w.step = 1; w.step <= n && len(w.errs) == 0; w.step++ {
		w.op()
		w.checkMirror()
	}
	w.finish()
}

func (w *diffWorld) allocated() []*diffClient {
	var cs []*diffClient
	for _, c := range w.clients {
		if c.relay != nil {
			cs = append(cs, c)
		}
	}
	return cs
}

func (w *diffWorld) pick(cs []*diffClient) *diffClient { return cs[w.rng.IntN(len(cs))] }

// op performs one random operation. Choices depend only on the model, so
// both worlds make the same ones as long as their servers agree.
func (w *diffWorld) op() {
	live := w.allocated()
	r := w.rng.IntN(100)
	switch {
	case len(live) == 0 || r < 8:
		c := w.clients[w.rng.IntN(len(w.clients))]
		for _, d := range w.clients {
			if d.relay == nil && w.rng.IntN(4) != 0 {
				c = d // mostly a client without an allocation; else a 437
				break
			}
		}
		w.allocate(c)
	case r < 13:
		w.deallocate(w.clients[w.rng.IntN(len(w.clients))])
	case r < 15:
		w.refresh(w.clients[w.rng.IntN(len(w.clients))])
	case r < 25:
		w.createPermission(w.pick(live))
	case r < 37:
		w.channelBind(w.pick(live))
	case r < 62:
		c := w.pick(live)
		if w.rng.IntN(20) == 0 {
			c = w.clients[w.rng.IntN(len(w.clients))] // maybe without an allocation
		}
		w.clientChannelData(c)
	case r < 75:
		c := w.pick(live)
		if w.rng.IntN(20) == 0 {
			c = w.clients[w.rng.IntN(len(w.clients))]
		}
		w.clientSend(c)
	default:
		w.peerSend(w.peers[w.rng.IntN(len(w.peers))], w.pick(live))
	}
}

// target picks a peer or, half the time, a live relayed address: one a
// relay may send to if toRelay, any if not.
func (w *diffWorld) target(toRelay bool) *diffTarget {
	var relays []*diffTarget
	for _, c := range w.allocated() {
		if !toRelay || !c.tainted() {
			relays = append(relays, c.relay)
		}
	}
	if len(relays) > 0 && w.rng.IntN(2) == 0 {
		return relays[w.rng.IntN(len(relays))]
	}
	return w.peers[w.rng.IntN(len(w.peers))].diffTarget
}

// sendable reports whether a relay may send to t: a peer, or the relayed
// address of a live allocation whose client is not tainted.
func sendable(t *diffTarget) bool {
	return t.owner == nil || (!t.dead && !t.owner.tainted())
}

func (w *diffWorld) checkResp(c *diffClient, what string, resp *stun.Message, err error, want string) bool {
	got := "no answer"
	switch {
	case err != nil:
		got = "error: " + err.Error()
	case resp != nil:
		got = resp.Type.Class.String()
		var code stun.ErrorCodeAttribute
		if code.GetFrom(resp) == nil {
			got += " " + strconv.Itoa(int(code.Code))
		}
	}
	line := fmt.Sprintf("%s %s: %s", c.sock.name, what, got)
	w.logf("%s", line)
	w.resps = append(w.resps, fmt.Sprintf("step %d %s", w.step, line))
	w.respSteps = append(w.respSteps, w.step)
	if !strings.HasPrefix(got, want) {
		w.errorf("%s: got %s, model says %s", what, got, want)
	}
	return resp != nil && resp.Type.Class == stun.ClassSuccessResponse
}

func (w *diffWorld) allocate(c *diffClient) {
	w.fence(c)
	if (c.sock == nil || (c.sock.used && c.relay == nil)) && !w.newSock(c) {
		return
	}
	want := "success"
	if c.relay != nil {
		want = "error response 437" // allocation mismatch
	}
	resp, err := c.sock.request(stun.MethodAllocate, requestedTransportUDP())
	if !w.checkResp(c, "Allocate", resp, err, want) || c.relay != nil {
		return
	}
	var relayed stun.XORMappedAddress
	if err := relayed.GetFromAs(resp, stun.AttrXORRelayedAddress); err != nil {
		w.errorf("Allocate: %v", err)
		return
	}
	ip, _ := netip.AddrFromSlice(relayed.IP)
	c.relay = &diffTarget{name: "R" + c.sock.name[1:], addr: netip.AddrPortFrom(ip.Unmap(), uint16(relayed.Port)), owner: c}
	c.sock.used = true
	c.perms = make(map[netip.Addr]bool)
	c.chans = make(map[uint16]*diffTarget)
	c.byPeer = make(map[*diffTarget]uint16)
	c.hairs = make(map[*diffSock]bool)
	w.mu.Lock()
	w.names[c.relay.addr] = c.relay.name
	w.mu.Unlock()
	// The fencer's permission, which fence relies on.
	resp, err = c.sock.request(stun.MethodCreatePermission, xorPeer(w.fencer.addr.Addr().AsSlice(), 0))
	if w.checkResp(c, "CreatePermission fencer", resp, err, "success") {
		c.perms[w.fencer.addr.Addr()] = true
	}
}

func (w *diffWorld) deallocate(c *diffClient) {
	if c.sock == nil {
		w.allocate(c)
		return
	}
	w.fence(c)
	resp, err := c.sock.request(stun.MethodRefresh, lifetime(0))
	// Without an allocation the pre-filter answers 437, which a client
	// takes as a successful delete (RFC 8656 section 7.3).
	want := "success"
	if c.relay == nil {
		want = "error response 437"
	}
	if w.checkResp(c, "Refresh lifetime 0", resp, err, want) && c.relay != nil {
		w.mu.Lock()
		delete(w.names, c.relay.addr)
		w.mu.Unlock()
		c.relay.dead = true
		c.relay, c.perms, c.chans, c.byPeer = nil, nil, nil, nil
	}
}

func (w *diffWorld) refresh(c *diffClient) {
	if c.sock == nil {
		w.allocate(c)
		return
	}
	w.fence(c)
	want := "success"
	if c.relay == nil {
		want = "error response 437" // answered by the pre-filter; pion alone is silent
	}
	resp, err := c.sock.request(stun.MethodRefresh, lifetime(600))
	w.checkResp(c, "Refresh lifetime 600", resp, err, want)
}

func (w *diffWorld) createPermission(c *diffClient) {
	w.fence(c)
	peer := w.target(false)
	resp, err := c.sock.request(stun.MethodCreatePermission, xorPeer(peer.addr.Addr().AsSlice(), int(peer.addr.Port())))
	if w.checkResp(c, "CreatePermission "+peer.name, resp, err, "success") {
		c.perms[peer.addr.Addr()] = true
	}
}

// channelNum picks a channel number, mostly from a few so that bindings
// collide.
func (w *diffWorld) channelNum() uint16 {
	if w.rng.IntN(5) == 0 {
		return 0x4000 + uint16(w.rng.IntN(0x1000)) // RFC 8656's range
	}
	return []uint16{0x4000, 0x4001, 0x4002, 0x4fff}[w.rng.IntN(4)]
}

func (w *diffWorld) channelBind(c *diffClient) {
	w.fence(c)
	peer, num := w.target(false), w.channelNum()
	if c.tainted() {
		peer = w.peers[w.rng.IntN(len(w.peers))].diffTarget
	}
	// Refresh (or contradict) an existing binding, to a peer or a live
	// relayed address.
	var nums []uint16
	for num, t := range c.chans {
		if !t.dead {
			nums = append(nums, num)
		}
	}
	if w.rng.IntN(3) == 0 && len(nums) > 0 {
		slices.Sort(nums)
		num = nums[w.rng.IntN(len(nums))]
		if w.rng.IntN(2) == 0 {
			peer = c.chans[num]
		}
	}
	// pion: the number must be free and the peer without a channel, or
	// both must be this binding already.
	bound, hasNum := c.chans[num]
	_, hasPeer := c.byPeer[peer]
	want := "success"
	if (hasNum || hasPeer) && bound != peer {
		want = "error response 400"
	}
	resp, err := c.sock.request(stun.MethodChannelBind, xorPeer(peer.addr.Addr().AsSlice(), int(peer.addr.Port())), channelNumber(num))
	if w.checkResp(c, fmt.Sprintf("ChannelBind %#x %s", num, peer.name), resp, err, want) {
		c.chans[num], c.byPeer[peer] = peer, num
		c.perms[peer.addr.Addr()] = true
	}
}

// payload returns the next datagram's payload: its sequence number and a
// filler of random length, odd ones included (ChannelData padding).
func (w *diffWorld) payload() []byte {
	w.seq++
	w.steps[w.seq] = w.step
	n := w.rng.IntN(60)
	if w.rng.IntN(10) == 0 {
		n = w.rng.IntN(1200)
	}
	b := binary.BigEndian.AppendUint64(nil, w.seq)
	for i := range n {
		b = append(b, byte(w.seq)+byte(i))
	}
	return b
}

func (w *diffWorld) clientChannelData(c *diffClient) {
	if c.sock == nil {
		w.allocate(c)
		return
	}
	var usable []uint16
	for num, t := range c.chans {
		if sendable(t) {
			usable = append(usable, num)
		}
	}
	slices.Sort(usable)
	num := w.channelNum()
	if len(usable) > 0 && w.rng.IntN(6) != 0 {
		num = usable[w.rng.IntN(len(usable))]
	}
	peer, bound := c.chans[num]
	if bound && !sendable(peer) {
		return
	}
	p := w.payload()
	b := binary.BigEndian.AppendUint16(nil, num)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	b = append(b, p...)
	padded := w.rng.IntN(2) == 0 // padding is optional over UDP
	for padded && len(b)%4 != 0 {
		b = append(b, 0)
	}
	to := "nothing"
	if bound {
		to = peer.name
	}
	w.logf("%s ChannelData %#x (bound to %s) seq %d", c.sock.name, num, to, w.seq)
	if err := c.sock.send(b); err != nil {
		w.errorf("send: %v", err)
	}
	if c.relay != nil && bound {
		w.fromRelay(c, peer, p)
	}
}

func (w *diffWorld) clientSend(c *diffClient) {
	if c.sock == nil {
		w.allocate(c)
		return
	}
	peer := w.target(true)
	p := w.payload()
	m := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
		xorPeer(peer.addr.Addr().AsSlice(), int(peer.addr.Port())), stun.RawAttribute{Type: stun.AttrData, Value: p})
	w.logf("%s Send indication to %s seq %d", c.sock.name, peer.name, w.seq)
	if err := c.sock.send(m.Raw); err != nil {
		w.errorf("send: %v", err)
	}
	if c.relay != nil && c.perms[peer.addr.Addr()] {
		w.fromRelay(c, peer, p)
	}
}

func (w *diffWorld) peerSend(p *diffPeer, c *diffClient) {
	b := w.payload()
	w.logf("%s to %s seq %d", p.name, c.relay.name, w.seq)
	if _, err := p.conn.WriteToUDPAddrPort(b, c.relay.addr); err != nil {
		w.errorf("send: %v", err)
	}
	w.toRelay(c, p.diffTarget, b, nil)
}

// fromRelay models payload p sent from c's relay to peer.
func (w *diffWorld) fromRelay(c *diffClient, peer *diffTarget, p []byte) {
	if d := peer.owner; d != nil {
		// Relay to relay: the kernel (or the data plane) delivers it from
		// the relayed address the peer was given.
		w.toRelay(d, c.relay, p, c.sock)
		return
	}
	w.expect(diffRecv{to: peer.name, kind: "udp", from: c.relay.name, seq: w.seq, data: string(p), size: len(p)})
}

// toRelay models payload p arriving at d's relay from `from`; hairpin is
// the client whose relay sent it, nil for a peer.
func (w *diffWorld) toRelay(d *diffClient, from *diffTarget, p []byte, hairpin *diffSock) {
	if num, ok := d.byPeer[from]; ok {
		size := 4 + len(p)
		size += (4 - size%4) % 4 // both paths pad
		w.expect(diffRecv{to: d.sock.name, kind: "chan", ch: num, seq: w.seq, data: string(p), size: size})
		return
	}
	if d.perms[from.addr.Addr()] {
		w.expect(diffRecv{to: d.sock.name, kind: "data", from: from.name, seq: w.seq, data: string(p), size: -1})
		return
	}
	w.drops++
	d.dirty = true
	if hairpin != nil {
		d.hairs[hairpin] = true
	}
}

// expect records a delivery the model predicts and waits for it.
func (w *diffWorld) expect(d diffRecv) {
	w.want[diffKey{d.to, d.seq}] = d
	if !w.rec.wait(d.to, d.seq, diffWait) {
		w.errorf("missing: %v", d)
	}
}

// checkMirror compares the data plane's mirror of pion's allocations and
// channels with the model. pion reports each change before it answers the
// request that made it, so between steps they must agree: no route for a
// deleted allocation, no channel pion does not have.
func (w *diffWorld) checkMirror() {
	dp := w.s.dataPlane()
	if dp == nil {
		return
	}
	want := make(map[netip.AddrPort]*diffClient)
	for _, c := range w.allocated() {
		want[c.sock.conn.LocalAddr().(*net.UDPAddr).AddrPort()] = c
	}
	routes, relays := dp.Mirror()
	if len(routes) != len(want) || relays != len(want) {
		w.errorf("data plane mirrors %d allocations and %d relay sockets, model has %d",
			len(routes), relays, len(want))
	}
	for addr, rt := range routes {
		c := want[addr]
		if c == nil {
			w.errorf("data plane has a route for %v, which has no allocation", addr)
			continue
		}
		if rt.RelayPort != int(c.relay.addr.Port()) || !rt.Linked {
			w.errorf("%s: data plane route on relay port %d, model %v", c.sock.name, rt.RelayPort, c.relay.addr)
		}
		chans, peers := make(map[uint16]netip.AddrPort), make(map[netip.AddrPort]uint16)
		for num, t := range c.chans {
			chans[num], peers[t.addr] = t.addr, num
		}
		if !maps.Equal(rt.Chans, chans) || !maps.Equal(rt.Peers, peers) {
			w.errorf("%s: data plane channels %v / %v, model %v / %v", c.sock.name, rt.Chans, rt.Peers, chans, peers)
		}
	}
}

// fence makes sure that the datagrams dropped on the way to c's relay were
// handled before c's allocation changes, so that none meets the new
// permissions: first a Binding from each client whose relay sent one (its
// answer means the server read the datagram and, on the data plane, queued
// it to c's relay socket), then a datagram from the fencer, which has a
// permission but no channel. It takes the same way through the same relay
// socket as the dropped ones (pion's relay read loop, also on the data
// plane, which passes datagrams without a channel on to pion in order), so
// its Data indication comes after they were dropped.
func (w *diffWorld) fence(c *diffClient) {
	if !c.dirty {
		return
	}
	for _, sk := range slices.SortedFunc(maps.Keys(c.hairs), func(a, b *diffSock) int { return strings.Compare(a.name, b.name) }) {
		if err := sk.binding(); err != nil {
			w.errorf("fence: %v", err)
		}
	}
	w.fences++
	p := w.payload()
	w.logf("fence %s seq %d", c.relay.name, w.seq)
	if _, err := w.fencer.conn.WriteToUDPAddrPort(p, c.relay.addr); err != nil {
		w.errorf("fence: %v", err)
	}
	w.toRelay(c, w.fencer.diffTarget, p, nil)
	c.dirty = false
	clear(c.hairs)
}

// finish waits for whatever may still be on its way: fences for the relays,
// a Binding on every client socket (the server has read all they sent, and
// sent what it relays), then a marker sent straight to every receiving
// socket, behind anything the server sent it.
func (w *diffWorld) finish() {
	w.step++
	for _, c := range w.clients {
		w.fence(c)
	}
	for _, sk := range w.socks {
		if err := sk.binding(); err != nil {
			w.errorf("%v", err)
		}
	}
	var to []string
	var addrs []*net.UDPAddr
	for _, p := range w.peers {
		to, addrs = append(to, p.name), append(addrs, net.UDPAddrFromAddrPort(p.addr))
	}
	for _, sk := range w.socks {
		to, addrs = append(to, sk.name), append(addrs, sk.conn.LocalAddr().(*net.UDPAddr))
	}
	for i := range to {
		w.seq++
		if _, err := w.marker.WriteToUDP(binary.BigEndian.AppendUint64(nil, w.seq), addrs[i]); err != nil {
			w.errorf("marker: %v", err)
		}
		if !w.rec.wait(to[i], w.seq, diffWait) {
			w.errorf("marker to %s lost", to[i])
		}
	}
	// Everything delivered must have been predicted.
	w.rec.mu.Lock()
	defer w.rec.mu.Unlock()
	for _, d := range w.rec.got {
		if d.kind == "mark" {
			continue
		}
		want, ok := w.want[diffKey{d.to, d.seq}]
		if want.size == -1 {
			want.size = d.size // the Data indication's size is pion's business
		}
		if !ok || want != d {
			w.errorf("delivered %v; model: %v", d, want)
		}
	}
}

// summary counts what the run did, to show that it tested something.
func (w *diffWorld) summary() string {
	kinds := make(map[string]int)
	w.rec.mu.Lock()
	for _, d := range w.rec.got {
		kinds[d.kind]++
	}
	w.rec.mu.Unlock()
	answers := make(map[string]int)
	for _, r := range w.resps {
		answers[r[strings.LastIndex(r, ": ")+2:]]++
	}
	return fmt.Sprintf("%d requests %v, received %v, %d datagrams dropped as predicted, %d fences",
		len(w.resps), answers, kinds, w.drops, w.fences)
}

// opsAround returns the log of the operations up to step and a few after.
func (w *diffWorld) opsAround(step int) string {
	var lines []string
	for _, l := range w.ops {
		n, _ := strconv.Atoi(strings.TrimSpace(l[:4]))
		if n > step-50 && n <= step+3 {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// compareDiffWorlds reports where the two worlds' records differ: the
// answers to requests in order, and per receiver the multiset of datagrams.
// It returns the first step that made a difference, 0 if none did.
func compareDiffWorlds(t *testing.T, a, b *diffWorld) int {
	t.Helper()
	first := 0
	at := func(step int) {
		if first == 0 || step < first {
			first = step
		}
	}
	for i := range max(len(a.resps), len(b.resps)) {
		var x, y string
		if i < len(a.resps) {
			x = a.resps[i]
		}
		if i < len(b.resps) {
			y = b.resps[i]
		}
		if x != y {
			t.Errorf("first different answer:\n  %s: %s\n  %s: %s", a.name, x, b.name, y)
			if i < len(a.respSteps) {
				at(a.respSteps[i])
			} else {
				at(b.respSteps[i])
			}
			break
		}
	}
	seqStep := make(map[string]int)
	records := func(w *diffWorld) []string {
		w.rec.mu.Lock()
		defer w.rec.mu.Unlock()
		var s []string
		for _, d := range w.rec.got {
			s = append(s, fmt.Sprintf("%v, payload crc %08x", d, crc32.ChecksumIEEE([]byte(d.data))))
			if d.kind != "mark" {
				seqStep[s[len(s)-1]] = w.steps[d.seq]
			}
		}
		slices.Sort(s)
		return s
	}
	ra, rb := records(a), records(b)
	var onlyA, onlyB []string
	for i, j := 0, 0; i < len(ra) || j < len(rb); {
		switch {
		case j == len(rb) || (i < len(ra) && ra[i] < rb[j]):
			onlyA = append(onlyA, ra[i])
			i++
		case i == len(ra) || rb[j] < ra[i]:
			onlyB = append(onlyB, rb[j])
			j++
		default:
			i++
			j++
		}
	}
	for _, x := range []struct {
		w    *diffWorld
		only []string
	}{{a, onlyA}, {b, onlyB}} {
		for k, s := range x.only {
			at(seqStep[s])
			switch {
			case k == 10:
				t.Errorf("... %d more only on %s", len(x.only)-k, x.w.name)
			case k < 10:
				t.Errorf("only on %s: %s", x.w.name, s)
			}
		}
	}
	return first
}
