// The STUN check, and the STUN client the TURN and round-trip checks share.

package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pion/stun/v3"
)

func (c *checker) checkSTUN(ctx context.Context) Result {
	server, err := resolveUDP4(ctx, c.stunURL)
	if err != nil {
		return fail("check the DNS record of the STUN host (--turn-host)", "resolve %s: %v", c.stunURL, err)
	}
	uc, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return fail("this machine cannot send UDP there", "udp %s: %v", server, err)
	}
	pc := &connectedPacketConn{UDPConn: uc}
	defer pc.Close()
	start := time.Now()
	mapped, err := stunBinding(ctx, pc, pc.RemoteAddr())
	if err != nil {
		return c.udpFailure(ctx, "STUN binding", server, err, pc.refused())
	}
	return pass("udp %s answered in %v: this machine is %s", server, roundDur(time.Since(start)), mapped)
}

// udpFailure explains a STUN or TURN exchange over UDP that got no answer.
func (c *checker) udpFailure(ctx context.Context, what string, server netip.AddrPort, err error, refused bool) Result {
	switch {
	case refused || errors.Is(err, syscall.ECONNREFUSED):
		return fail(hintUDPBlocked, "%s to udp %s: refused (ICMP port unreachable): nothing listens there", what, server)
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || isTimeout(err):
		return fail(hintUDPBlocked, "%s to udp %s: no answer in %v", what, server, c.cfg.Timeout)
	}
	return fail(hintUDPBlocked, "%s to udp %s: %v", what, server, err)
}

// resolveUDP4 resolves hostPort to its first IPv4 address: every check here
// runs over IPv4, the family of the relayed addresses tryst serve
// advertises (--public-ip).
func resolveUDP4(ctx context.Context, hostPort string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", hostPort)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("%s has no IPv4 address", host)
	}
	return netip.AddrPortFrom(addrs[0].Unmap(), uint16(p)), nil
}

// stunBinding sends Binding requests from pc to server, retransmitting with
// backoff, until a matching answer arrives or ctx ends, and returns the
// mapped address.
func stunBinding(ctx context.Context, pc net.PacketConn, server net.Addr) (netip.AddrPort, error) {
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return netip.AddrPort{}, err
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 1500)
	rto := 250 * time.Millisecond
	for {
		if _, err := pc.WriteTo(req.Raw, server); err != nil {
			return netip.AddrPort{}, err
		}
		_ = pc.SetReadDeadline(time.Now().Add(rto))
		if ctx.Err() != nil {
			return netip.AddrPort{}, ctx.Err()
		}
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				if ctx.Err() != nil {
					return netip.AddrPort{}, ctx.Err()
				}
				if isTimeout(err) {
					break // retransmit
				}
				return netip.AddrPort{}, err
			}
			res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if res.Decode() != nil || res.TransactionID != req.TransactionID {
				continue
			}
			return bindingMapped(res)
		}
		rto = min(2*rto, 2*time.Second)
	}
}

// bindingMapped returns the XOR-MAPPED-ADDRESS of a Binding success.
func bindingMapped(res *stun.Message) (netip.AddrPort, error) {
	if res.Type != stun.BindingSuccess {
		return netip.AddrPort{}, fmt.Errorf("answer %s", res.Type)
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(res); err != nil {
		return netip.AddrPort{}, err
	}
	a, ok := netip.AddrFromSlice(xor.IP)
	if !ok {
		return netip.AddrPort{}, errors.New("bad XOR-MAPPED-ADDRESS")
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(xor.Port)), nil
}

// connectedPacketConn is a connected UDP socket seen as a PacketConn, so
// that an ICMP port unreachable surfaces as "connection refused" instead of
// a silent timeout. It remembers whether that happened.
type connectedPacketConn struct {
	*net.UDPConn
	mu      sync.Mutex
	refuse  bool
	closeMu sync.Once
}

func (c *connectedPacketConn) note(err error) {
	if errors.Is(err, syscall.ECONNREFUSED) {
		c.mu.Lock()
		c.refuse = true
		c.mu.Unlock()
	}
}

func (c *connectedPacketConn) refused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refuse
}

func (c *connectedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, err := c.UDPConn.Read(p)
	c.note(err)
	return n, c.RemoteAddr(), err
}

func (c *connectedPacketConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	n, err := c.UDPConn.Write(p)
	c.note(err)
	return n, err
}

// Close may be called twice (by the TURN client and by its owner).
func (c *connectedPacketConn) Close() error {
	var err error
	c.closeMu.Do(func() { err = c.UDPConn.Close() })
	return err
}
