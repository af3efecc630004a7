package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Supported reports whether this platform has the data plane.
const Supported = true

// batchSize is the number of datagrams one recvmmsg may return.
const batchSize = 32

// bufSize holds any datagram pion would accept (its MTU is 1600) plus the
// 4-byte ChannelData header the relay path prepends in place.
const bufSize = 2048

// queueLen is the number of datagrams queued to pion per socket; beyond it,
// datagrams are dropped as the kernel would drop them on a full buffer.
const queueLen = 256

// workerCount is the number of epoll loops: half the Ps, at least one.
// The other half stays with the rest of the process (hub, pion's control
// plane), and a worker only waits without releasing its P (see run) while
// another P is left. On the 2-CPU benchmark machine two workers under
// GOMAXPROCS=3 cost 40 % more CPU per packet than one under GOMAXPROCS=2:
// a single worker forwarding every datagram wakes less often than two
// sharing them.
func workerCount() int {
	return max(1, runtime.GOMAXPROCS(0)/2)
}

// Engine is the data plane: it owns the sockets it opened and the workers
// serving them, and a mirror of pion's UDP allocations and channels.
type Engine struct {
	cfg       Config
	own       map[netip.Addr]struct{} // Config.OwnAddrs
	workers   []*worker
	next      atomic.Uint32 // round-robin worker choice for new sockets
	ids       atomic.Uint64 // last socket id handed out, see newID
	wg        sync.WaitGroup
	closeOnce sync.Once
	slow      atomic.Int64 // datagrams passed on to pion, see Stats
	hairpins  atomic.Int64 // datagrams delivered relay to relay, see Stats

	// mu guards the mirror; workers hold it for reading while they route
	// a datagram. Measured against a lock-free, copy-on-write snapshot
	// (docs/BENCHMARKS.md): 7-13 ns of the 4-5 µs a datagram costs
	// (BenchmarkFastPath with and without -nosend), nothing visible in
	// `tryst bench turn`, while copying the client table on every
	// allocation event costs 1.35 ms at 10 000 allocations.
	mu        sync.RWMutex
	clients   map[netip.AddrPort]*route // UDP client transport address -> allocation
	relays    map[int]*socket           // relay port -> relay socket
	listeners []*socket                 // open listener sockets, in the order opened
}

// route mirrors one UDP allocation's channel bindings.
type route struct {
	client netip.AddrPort
	relay  *socket
	out    *socket                   // listener socket that answers the client
	chans  map[uint16]netip.AddrPort // guarded by Engine.mu
	peers  map[netip.AddrPort]uint16 // guarded by Engine.mu
}

type worker struct {
	eng   *Engine
	epfd  int
	evfd  int // written by close to end epoll_wait
	mu    sync.Mutex
	conns map[uint64]*socket

	// recvmmsg state, owned by the worker goroutine.
	hdrs  [batchSize]unix.Mmsghdr
	iovs  [batchSize]unix.Iovec
	names [batchSize]unix.RawSockaddrInet6
	bufs  [batchSize][]byte

	// Datagrams forwarded from the current recvmmsg batch, sent together by
	// flush; owned by the worker goroutine. They point into bufs, so they
	// are sent before the next recvmmsg.
	out    [batchSize]sendItem
	nout   int
	shdrs  [batchSize]unix.Mmsghdr
	siovs  [batchSize]unix.Iovec
	snams  [batchSize]unix.RawSockaddrInet6
	scount [batchSize]int // payload bytes of each prepared message
	sent   [batchSize]bool
}

// sendItem is one datagram the fast path forwards: b to `to` on socket c,
// carrying n bytes of relayed payload (for the counters).
type sendItem struct {
	c  *socket
	to netip.AddrPort
	b  []byte
	n  int
}

// New starts the workers of an engine. Close stops them.
func New(cfg Config) (*Engine, error) {
	if cfg.ToPeer == nil {
		cfg.ToPeer = func(int, int) {}
	}
	if cfg.ToClient == nil {
		cfg.ToClient = func(int, int) {}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, own: make(map[netip.Addr]struct{}),
		clients: make(map[netip.AddrPort]*route), relays: make(map[int]*socket)}
	for _, ip := range cfg.OwnAddrs {
		e.own[ip.Unmap()] = struct{}{}
	}
	for range workerCount() {
		w, err := newWorker(e)
		if err != nil {
			e.closeWorkers()
			return nil, err
		}
		e.workers = append(e.workers, w)
	}
	for _, w := range e.workers {
		e.wg.Add(1)
		go w.run()
	}
	return e, nil
}

func newWorker(e *Engine) (*worker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("dataplane: epoll: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("dataplane: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setEventID(&ev, stopID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(evfd)
		return nil, fmt.Errorf("dataplane: epoll add: %w", err)
	}
	w := &worker{eng: e, epfd: epfd, evfd: evfd, conns: make(map[uint64]*socket)}
	for i := range w.bufs {
		w.bufs[i] = make([]byte, bufSize)
		w.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&w.names[i]))
		w.hdrs[i].Hdr.Iov = &w.iovs[i]
		w.hdrs[i].Hdr.SetIovlen(1)
		w.shdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&w.snams[i]))
		w.shdrs[i].Hdr.Iov = &w.siovs[i]
		w.shdrs[i].Hdr.SetIovlen(1)
	}
	return w, nil
}

// Epoll data: the kernel hands back, with each event, the 64 bits of
// epoll_data registered with the file descriptor. A socket's data is its id,
// the eventfd's is stopID. Ids are 64-bit and never reused, so a socket
// closed while its event was already returned cannot be confused with a
// newer one, and no id can equal the sentinel (a 32-bit counter would wrap
// into both after 2^32 sockets: a relay socket per allocation, and a busy
// server opens millions a day).
const stopID = 0

// newID returns the id for a new socket: never stopID, even if the counter
// wrapped (it cannot, in practice: 2^64 sockets).
func (e *Engine) newID() uint64 {
	for {
		if id := e.ids.Add(1); id != stopID {
			return id
		}
	}
}

// x/sys/unix declares epoll_data as two int32 fields, Fd and Pad, on every
// Linux architecture (with padding in front where the kernel aligns it to 8
// bytes). These do not compile if that ever changes: Pad must follow Fd,
// and end the struct.
var (
	_ [0]struct{} = [unsafe.Offsetof(unix.EpollEvent{}.Pad) - unsafe.Offsetof(unix.EpollEvent{}.Fd) - 4]struct{}{}
	_ [0]struct{} = [unsafe.Sizeof(unix.EpollEvent{}) - unsafe.Offsetof(unix.EpollEvent{}.Pad) - 4]struct{}{}
)

// setEventID stores id in ev's epoll_data. The kernel does not interpret the
// value, so which half holds which bits needs to agree with eventID only.
func setEventID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

// eventID returns the id setEventID stored.
func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// Close stops the workers and waits for them; it is idempotent. The
// sockets' owners (pion and the relay's wrappers) close them first: a
// socket still open stays open, unserved. No socket may be opened once
// Close has begun.
func (e *Engine) Close() {
	e.closeOnce.Do(func() {
		for _, w := range e.workers {
			var one [8]byte
			binary.NativeEndian.PutUint64(one[:], 1)
			_, _ = unix.Write(w.evfd, one[:])
		}
		e.wg.Wait()
		e.closeWorkers()
	})
}

func (e *Engine) closeWorkers() {
	for _, w := range e.workers {
		_ = unix.Close(w.epfd)
		_ = unix.Close(w.evfd)
	}
	e.workers = nil
}

// socket is a raw UDP socket served by a worker. Its net.PacketConn methods
// are what pion sees: ReadFrom returns the datagrams the fast path passed
// on, WriteTo sends directly.
type socket struct {
	eng      *Engine
	w        *worker
	id       uint64
	fd       int
	family   int
	local    *net.UDPAddr
	addr     netip.AddrPort // local, unmapped
	listener bool
	allow    func(n int) bool // a relay socket's bandwidth check, see BindRelay

	route atomic.Pointer[route] // relay sockets of UDP allocations

	in     chan packet
	done   chan struct{}
	mu     sync.RWMutex // held for reading around fd use, for writing by Close
	closed bool
}

type packet struct {
	b    []byte
	from netip.AddrPort
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// SysSocket and SysBind are the socket system calls the engine makes,
// replaced by tests (turnserver's too) to play a kernel without IPv6.
var (
	SysSocket = unix.Socket
	SysBind   = unix.Bind
)

// errNoDualStack: an IPv6 wildcard socket could not be made to accept IPv4.
var errNoDualStack = errors.New("cannot clear IPV6_V6ONLY")

// openSocket creates a bound, non-blocking UDP socket. An IPv6 wildcard
// socket is dual-stack.
func openSocket(ap netip.AddrPort, reusePort bool, buf int) (int, int, error) {
	family := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	if ap.Addr().Is4() {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	fd, err := SysSocket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, 0, err
	}
	if family == unix.AF_INET6 {
		// A wildcard listener serves IPv4 clients too, as
		// net.ListenPacket("udp", ":port") does, whatever the
		// net.ipv6.bindv6only default; other IPv6 addresses only IPv6.
		dual := ap.Addr().IsUnspecified()
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, b2i(!dual)); err != nil && dual {
			_ = unix.Close(fd)
			return -1, 0, fmt.Errorf("%w: %w", errNoDualStack, err)
		}
	}
	if reusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			_ = unix.Close(fd)
			return -1, 0, err
		}
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, buf)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, buf)
	if err := SysBind(fd, sa); err != nil {
		_ = unix.Close(fd)
		return -1, 0, err
	}
	return fd, family, nil
}

// noIPv6 reports whether err, from opening an IPv6 wildcard socket, means
// that this host cannot serve IPv6 (as opposed to a taken port, say).
func noIPv6(err error) bool {
	return errors.Is(err, errNoDualStack) ||
		errors.Is(err, unix.EAFNOSUPPORT) || // socket(2): kernel booted with ipv6.disable=1, or a seccomp policy
		errors.Is(err, unix.EPROTONOSUPPORT) ||
		errors.Is(err, unix.EADDRNOTAVAIL) // bind(2) of ::
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ListenUDP opens one SO_REUSEPORT listener socket on addr. A wildcard
// (":port", "[::]:port") is one dual-stack IPv6 socket, as on the portable
// path, or an IPv4 one where the host has no IPv6: `tryst serve` with the
// default ":3478" must start on a kernel booted with ipv6.disable=1, where
// socket(AF_INET6) fails. (Go's net package, which opens the TCP listener
// and the portable path's sockets, falls back the same way.)
func (e *Engine) ListenUDP(addr string) (net.PacketConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	ip, _ := netip.AddrFromSlice(ua.IP)
	if !ip.IsValid() {
		ip = netip.IPv6Unspecified()
	}
	ap := netip.AddrPortFrom(ip.Unmap(), uint16(ua.Port))
	fd, family, err := openSocket(ap, true, e.cfg.ListenBuffer)
	if err != nil && ap.Addr() == netip.IPv6Unspecified() && noIPv6(err) {
		// The caller opens the other sockets on the address the first one
		// got (turnserver's listenOnce does), so this is tried, and logged,
		// once.
		e.cfg.Logger.Info("turn UDP listener is IPv4 only: no IPv6 on this host", "addr", addr, "err", err)
		err6 := err
		fd, family, err = openSocket(netip.AddrPortFrom(netip.IPv4Unspecified(), ap.Port()), true, e.cfg.ListenBuffer)
		if err != nil {
			err = fmt.Errorf("%w (IPv6: %v)", err, err6)
		}
	}
	if err != nil {
		return nil, err
	}
	return e.register(fd, family, true, nil)
}

// BindRelay opens a relay socket on ip:port; errors come from bind(2).
// allow is asked, for every datagram the engine relays through the socket
// in either direction (relay to relay: through either socket), whether its
// n bytes of payload fit the allocation's bandwidth; nil allows all.
func (e *Engine) BindRelay(ip netip.Addr, port int, allow func(n int) bool) (net.PacketConn, error) {
	fd, family, err := openSocket(netip.AddrPortFrom(ip, uint16(port)), false, e.cfg.RelayBuffer)
	if err != nil {
		return nil, err
	}
	if allow == nil {
		allow = func(int) bool { return true }
	}
	return e.register(fd, family, false, allow)
}

func (e *Engine) register(fd, family int, listener bool, allow func(int) bool) (net.PacketConn, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	local := &net.UDPAddr{}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		local.IP, local.Port = net.IP(a.Addr[:]), a.Port
	case *unix.SockaddrInet6:
		local.IP, local.Port = net.IP(a.Addr[:]), a.Port
	}
	w := e.workers[int(e.next.Add(1))%len(e.workers)]
	ap := local.AddrPort()
	c := &socket{eng: e, w: w, id: e.newID(), fd: fd, family: family, local: local,
		addr:     netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()),
		listener: listener, allow: allow, in: make(chan packet, queueLen), done: make(chan struct{})}
	w.mu.Lock()
	w.conns[c.id] = c
	w.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setEventID(&ev, c.id)
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		w.mu.Lock()
		delete(w.conns, c.id)
		w.mu.Unlock()
		_ = unix.Close(fd)
		return nil, fmt.Errorf("dataplane: epoll add: %w", err)
	}
	e.mu.Lock()
	if listener {
		e.listeners = append(e.listeners, c)
	} else {
		e.relays[local.Port] = c
	}
	e.mu.Unlock()
	return c, nil
}

// ReadFrom returns the next datagram the fast path passed on to pion.
func (c *socket) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case pk := <-c.in:
		n := copy(p, pk.b)
		b := pk.b[:cap(pk.b)]
		bufPool.Put(&b)
		return n, net.UDPAddrFromAddrPort(pk.from), nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	}
}

// WriteTo sends p to addr. A full socket buffer drops the datagram, as a
// congested link would.
func (c *socket) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("dataplane: write to %T: %w", addr, net.UnknownNetworkError("udp"))
	}
	if err := c.send(p, ua.AddrPort()); err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.local, Addr: addr, Err: err}
	}
	return len(p), nil
}

func (c *socket) send(p []byte, to netip.AddrPort) error {
	var sa unix.RawSockaddrInet6 // large enough for either family
	salen := c.sockaddr(&sa, to)
	if salen == 0 {
		return unix.EAFNOSUPPORT
	}
	var base unsafe.Pointer
	if len(p) > 0 {
		base = unsafe.Pointer(&p[0])
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return net.ErrClosed
	}
	// Non-blocking socket: RawSyscall skips the scheduler bookkeeping.
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(c.fd), uintptr(base), uintptr(len(p)),
		0, uintptr(unsafe.Pointer(&sa)), uintptr(salen))
	if e != 0 {
		return e
	}
	return nil
}

// sockaddr fills sa for a datagram to `to` and returns its length, 0 if the
// socket's family cannot reach it.
func (c *socket) sockaddr(sa *unix.RawSockaddrInet6, to netip.AddrPort) uintptr {
	ip := to.Addr().Unmap()
	port := to.Port()
	if c.family == unix.AF_INET {
		if !ip.Is4() {
			return 0
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], port)
		sa4.Addr = ip.As4()
		return unix.SizeofSockaddrInet4
	}
	sa.Family = unix.AF_INET6
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], port)
	sa.Addr = ip.As16() // IPv4 becomes ::ffff:a.b.c.d
	return unix.SizeofSockaddrInet6
}

// Close is idempotent: it takes the socket out of its worker's epoll set,
// closes it and ends ReadFrom.
func (c *socket) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	_ = unix.EpollCtl(c.w.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	err := unix.Close(c.fd)
	c.mu.Unlock()
	c.w.mu.Lock()
	delete(c.w.conns, c.id)
	c.w.mu.Unlock()
	e := c.eng
	e.mu.Lock()
	if c.listener {
		e.listeners = slices.DeleteFunc(e.listeners, func(l *socket) bool { return l == c })
	} else if e.relays[c.local.Port] == c {
		delete(e.relays, c.local.Port)
	}
	e.mu.Unlock()
	close(c.done)
	return err
}

func (c *socket) LocalAddr() net.Addr { return c.local }

// Deadlines are not used by pion's server and not supported here.
func (c *socket) SetDeadline(time.Time) error      { return errors.ErrUnsupported }
func (c *socket) SetReadDeadline(time.Time) error  { return errors.ErrUnsupported }
func (c *socket) SetWriteDeadline(time.Time) error { return errors.ErrUnsupported }

// toPion queues a datagram for pion's reader, dropping it when the queue is
// full or the socket closed.
func (c *socket) toPion(b []byte, from netip.AddrPort) {
	c.eng.slow.Add(1)
	bp := bufPool.Get().(*[]byte)
	buf := append((*bp)[:0], b...)
	select {
	case c.in <- packet{b: buf, from: from}:
	default:
		bufPool.Put(bp)
	}
}

// Worker waiting: while traffic flows a worker waits with a raw epoll_wait
// that the scheduler does not see, for at most rawWait; after rawWait without
// a datagram it waits with an ordinary (runtime-aware) epoll_wait until the
// next one.
//
// Why: a goroutine that enters a blocking system call releases its P, and
// after a few milliseconds of that sysmon hands the P to another thread and
// goes to deep sleep once every P is idle; each return from epoll_wait then
// has to find a P and wake sysmon again (futex), and sysmon restarts polling
// every 20 µs (nanosleep). Measured at 10 000 packets/s that was more system
// calls than the relaying itself. Keeping the P across short raw waits
// avoids it. The worker yields every yieldEvery so it never looks like a
// runaway goroutine to sysmon (which would interrupt it with a signal), and
// it only waits raw when another P is left for the rest of the process.
const (
	rawWait    = 2 // milliseconds
	yieldEvery = 4 * time.Millisecond
)

func (w *worker) run() {
	defer w.eng.wg.Done()
	var events [64]unix.EpollEvent
	lastYield := time.Now()
	busy, raw := false, false
	for {
		var n int
		if busy && raw {
			r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(w.epfd),
				uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), rawWait, 0, 0)
			switch {
			case e == unix.EINTR:
				// Most likely a preemption signal (GC): the runtime-aware
				// wait below lets the scheduler stop this goroutine at once.
				busy = false
				continue
			case e != 0:
				w.eng.cfg.Logger.Error("turn data plane: epoll_wait failed", "err", e)
				return
			}
			n = int(r)
			if n == 0 {
				busy = false
				continue
			}
		} else {
			var err error
			n, err = unix.EpollWait(w.epfd, events[:], -1)
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				w.eng.cfg.Logger.Error("turn data plane: epoll_wait failed", "err", err)
				return
			}
			busy = true
			// GOMAXPROCS can change at run time (cgroup limits).
			raw = runtime.GOMAXPROCS(0) > len(w.eng.workers)
		}
		for i := range events[:n] {
			id := eventID(&events[i])
			if id == stopID {
				return // close
			}
			w.mu.Lock()
			c := w.conns[id]
			w.mu.Unlock()
			if c != nil {
				w.drain(c)
			}
		}
		if raw {
			if now := time.Now(); now.Sub(lastYield) >= yieldEvery {
				lastYield = now
				runtime.Gosched()
			}
		}
	}
}

// drain reads what one recvmmsg returns from c and handles each datagram.
// Level-triggered epoll reports c again if more is queued, so there is no
// extra read ending in EAGAIN.
func (w *worker) drain(c *socket) {
	off := 0
	if !c.listener {
		off = 4 // room for the ChannelData header in front of a peer's payload
	}
	for i := range w.hdrs {
		w.iovs[i].Base = &w.bufs[i][off]
		w.iovs[i].SetLen(bufSize - off)
		w.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		w.hdrs[i].Hdr.Flags = 0
	}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return
	}
	r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&w.hdrs[0])),
		batchSize, unix.MSG_DONTWAIT, 0, 0)
	c.mu.RUnlock()
	if e != 0 {
		return // EAGAIN, or an ICMP error reported on the socket: nothing to relay
	}
	for i := range int(r) {
		h := &w.hdrs[i]
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			continue // larger than any datagram pion accepts
		}
		from, ok := addrPort(&w.names[i])
		if !ok {
			continue
		}
		b := w.bufs[i][:off+int(h.Len)]
		if c.listener {
			w.fromClient(c, b, from)
		} else {
			w.fromPeer(c, b, from)
		}
	}
	w.flush()
}

func addrPort(sa *unix.RawSockaddrInet6) (netip.AddrPort, bool) {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port), true
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port), true
	}
	return netip.AddrPort{}, false
}

// fromClient forwards ChannelData on a mirrored binding to its peer, or
// straight to the peer's client when the peer is another allocation's relay
// address on this server, and passes anything else to pion.
func (w *worker) fromClient(c *socket, b []byte, from netip.AddrPort) {
	if isChannelData(b) {
		num := binary.BigEndian.Uint16(b[0:2])
		l := int(binary.BigEndian.Uint16(b[2:4]))
		e := w.eng
		e.mu.RLock()
		rt := e.clients[from]
		var peer netip.AddrPort
		var bound bool
		if rt != nil {
			peer, bound = rt.chans[num]
		}
		var hp hairpin
		if bound && 4+l <= len(b) {
			hp = e.hairpinLocked(rt.relay, peer)
		}
		e.mu.RUnlock()
		if bound && 4+l <= len(b) {
			if !rt.relay.allow(l) {
				return
			}
			if hp.to == nil {
				w.queue(rt.relay, peer, b[4:4+l], l)
				return
			}
			// The datagram would reach our own socket through the kernel
			// and succeed there: count A's side now, as sendto would.
			e.hairpins.Add(1)
			e.cfg.ToPeer(1, l)
			if hp.route == nil {
				// B has no channel to A: pion checks B's permission and sends a
				// Data indication, exactly as for a datagram read from the socket.
				hp.to.toPion(b[4:4+l], hp.from)
				return
			}
			if !hp.to.allow(l) {
				return
			}
			binary.BigEndian.PutUint16(b[0:2], hp.num)
			w.queue(hp.route.out, hp.route.client, pad4(b[:4+l]), l)
			return
		}
	}
	c.toPion(b, from)
}

// hairpin is where a datagram from one relay socket to another of this
// server's relay sockets ends up: socket `to`, seen as coming from `from`,
// and when a channel is bound to `from`, the route and channel number to its
// client.
type hairpin struct {
	to    *socket
	from  netip.AddrPort
	route *route
	num   uint16
}

// hairpinLocked reports whether a datagram sent from relay socket src to
// peer would arrive at one of this server's own relay sockets, and from
// which address it would appear there. e.mu is held.
//
// Why: with both parties of a call relay-only on the same server, every
// datagram otherwise crosses the kernel twice more (sendto on A's relay
// socket, recvmmsg on B's) for nothing. The relay's peer filter has
// already decided whether A may have a permission for B's relayed address
// (by default it refuses the server's own addresses), so a hairpin only
// happens where the operator allowed one; B's permissions and channels then
// apply as they would to the datagram read from B's socket.
func (e *Engine) hairpinLocked(src *socket, peer netip.AddrPort) hairpin {
	dst := e.relays[int(peer.Port())]
	if dst == nil || dst == src {
		return hairpin{}
	}
	ip, pub := peer.Addr(), e.cfg.PublicIP
	// Where the kernel would deliver it: the relayed address the clients
	// were given, the address the socket is bound to, or, for a wildcard
	// bind, any address of this host.
	if ip != pub && ip != dst.addr.Addr() {
		if !dst.addr.Addr().IsUnspecified() {
			return hairpin{}
		}
		if _, own := e.own[ip]; !own {
			return hairpin{}
		}
	}
	// The source address B's client knows A by: the public address if that
	// is what A aimed at, else the address the kernel would pick for a local
	// destination (A's bound address, or the destination itself).
	fromIP := src.addr.Addr()
	if ip == pub || fromIP.IsUnspecified() {
		fromIP = ip
	}
	hp := hairpin{to: dst, from: netip.AddrPortFrom(fromIP, src.addr.Port())}
	if rt := dst.route.Load(); rt != nil {
		if num, ok := rt.peers[hp.from]; ok {
			hp.route, hp.num = rt, num
		}
	}
	return hp
}

// pad4 pads ChannelData to a multiple of 4 bytes. Over UDP the padding is
// optional (RFC 8656 section 12.5); pion adds it, so do the same for
// identical bytes.
func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// fromPeer sends a peer's datagram to the client as ChannelData when a
// channel is bound to the peer; pion handles the rest (Data indications,
// permission checks, allocations over TCP). b has 4 free bytes in front.
func (w *worker) fromPeer(c *socket, b []byte, from netip.AddrPort) {
	if rt := c.route.Load(); rt != nil {
		e := w.eng
		e.mu.RLock()
		num, bound := rt.peers[from]
		e.mu.RUnlock()
		if bound {
			n := len(b) - 4
			if !c.allow(n) {
				return
			}
			binary.BigEndian.PutUint16(b[0:2], num)
			binary.BigEndian.PutUint16(b[2:4], uint16(n))
			w.queue(rt.out, rt.client, pad4(b), n)
			return
		}
	}
	c.toPion(b[4:], from)
}

// queue adds a datagram to the ones flush sends.
func (w *worker) queue(c *socket, to netip.AddrPort, b []byte, n int) {
	w.out[w.nout] = sendItem{c: c, to: to, b: b, n: n}
	w.nout++
}

// flush sends the queued datagrams, those for the same socket with one
// sendmmsg, and counts what was sent: payload sent on a relay socket went to
// a peer, on a listener socket to a client.
//
// Why: a recvmmsg batch from a client or a peer mostly goes to one socket,
// and one system call for all of it costs less than one sendto each.
func (w *worker) flush() {
	n := w.nout
	w.nout = 0
	for i := range n {
		w.sent[i] = false
	}
	for i := range n {
		if w.sent[i] {
			continue
		}
		c := w.out[i].c
		// Gather this socket's datagrams in order.
		k := 0
		for j := i; j < n; j++ {
			d := &w.out[j]
			if w.sent[j] || d.c != c {
				continue
			}
			w.sent[j] = true
			salen := c.sockaddr(&w.snams[k], d.to)
			if salen == 0 {
				continue // unreachable from this socket's family
			}
			w.shdrs[k].Hdr.Namelen = uint32(salen)
			w.siovs[k].Base = nil // an empty payload is a valid datagram
			if len(d.b) > 0 {
				w.siovs[k].Base = &d.b[0]
			}
			w.siovs[k].SetLen(len(d.b))
			w.scount[k] = d.n
			k++
		}
		w.sendBatch(c, k)
	}
	clear(w.out[:n]) // drop references to sockets and buffers
}

// sendBatch sends the first k prepared messages on c. A datagram the kernel
// refuses (full buffer) is dropped and the rest still tried, as one sendto
// each would do.
func (w *worker) sendBatch(c *socket, k int) {
	packets, bytes := 0, 0
	c.mu.RLock()
	for off := 0; off < k && !c.closed; {
		var r uintptr
		var e unix.Errno
		if k-off == 1 {
			// Most batches in a paced stream hold one datagram, and sendto
			// is the cheaper call for one.
			h := &w.shdrs[off].Hdr
			_, _, e = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(c.fd), uintptr(unsafe.Pointer(h.Iov.Base)),
				uintptr(h.Iov.Len), unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(h.Name)), uintptr(h.Namelen))
			r = 1
		} else {
			r, _, e = unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&w.shdrs[off])),
				uintptr(k-off), unix.MSG_DONTWAIT, 0, 0)
		}
		if e != 0 {
			off++ // the first datagram failed: drop it
			continue
		}
		for _, m := range w.scount[off : off+int(r)] {
			packets++
			bytes += m
		}
		off += int(r)
	}
	c.mu.RUnlock()
	if packets == 0 {
		return
	}
	if c.listener {
		w.eng.cfg.ToClient(packets, bytes)
	} else {
		w.eng.cfg.ToPeer(packets, bytes)
	}
}

// Mirror of pion's allocation and channel state, fed by its event hooks.

// unmap gives IPv4 clients and peers of a dual-stack socket the form
// recvmmsg's addresses get (see addrPort).
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// AllocationCreated starts mirroring the allocation of the UDP client at
// client, whose relay socket is the engine's socket on relayPort (one
// BindRelay opened); other allocations are left to pion.
func (e *Engine) AllocationCreated(client netip.AddrPort, relayPort int) {
	client = unmap(client)
	e.mu.Lock()
	defer e.mu.Unlock()
	rc := e.relays[relayPort]
	if rc == nil || len(e.listeners) == 0 {
		return
	}
	// Any listener socket answers: they share one address.
	out := e.listeners[int(client.Port())%len(e.listeners)]
	rt := &route{client: client, relay: rc, out: out,
		chans: make(map[uint16]netip.AddrPort), peers: make(map[netip.AddrPort]uint16)}
	e.clients[client] = rt
	rc.route.Store(rt)
}

// AllocationDeleted stops mirroring the allocation of client.
func (e *Engine) AllocationDeleted(client netip.AddrPort) {
	client = unmap(client)
	e.mu.Lock()
	defer e.mu.Unlock()
	if rt := e.clients[client]; rt != nil {
		rt.relay.route.Store(nil)
		delete(e.clients, client)
	}
}

// ChannelCreated mirrors channel number of client's allocation, bound to
// peer.
func (e *Engine) ChannelCreated(client netip.AddrPort, number uint16, peer netip.AddrPort) {
	e.onChannel(client, peer, func(rt *route, p netip.AddrPort) {
		rt.chans[number] = p
		rt.peers[p] = number
	})
}

// ChannelDeleted drops the mirror of channel number of client's allocation.
func (e *Engine) ChannelDeleted(client netip.AddrPort, number uint16, peer netip.AddrPort) {
	e.onChannel(client, peer, func(rt *route, p netip.AddrPort) {
		if rt.chans[number] == p {
			delete(rt.chans, number)
		}
		if rt.peers[p] == number {
			delete(rt.peers, p)
		}
	})
}

// onChannel applies f, under e.mu, to the route of client and to the
// peer's address.
func (e *Engine) onChannel(client, peer netip.AddrPort, f func(rt *route, p netip.AddrPort)) {
	client = unmap(client)
	e.mu.Lock()
	defer e.mu.Unlock()
	if rt := e.clients[client]; rt != nil {
		f(rt, unmap(peer))
	}
}

// Stats returns the engine's counts of datagrams it did not relay itself.
func (e *Engine) Stats() Stats {
	return Stats{ToPion: e.slow.Load(), Hairpins: e.hairpins.Load()}
}

// Mirror returns a copy of the mirrored allocations, by client address, and
// the number of open relay sockets.
func (e *Engine) Mirror() (map[netip.AddrPort]Route, int) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	routes := make(map[netip.AddrPort]Route, len(e.clients))
	for client, rt := range e.clients {
		routes[client] = Route{RelayPort: rt.relay.local.Port, Chans: maps.Clone(rt.chans),
			Peers: maps.Clone(rt.peers), Linked: rt.relay.route.Load() == rt}
	}
	return routes, len(e.relays)
}

// isChannelData reports whether b starts like a ChannelData message
// (channel numbers 0x4000-0x7FFF).
func isChannelData(b []byte) bool {
	return len(b) >= 4 && b[0]&0xC0 == 0x40
}
