package hub_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tryst-chat/tryst/hub"
)

// rawConn is a WebSocket client written against RFC 6455 by hand, over a
// plain TCP socket: it sends what no library would (a frame whose payload
// hides another frame, control frames by the thousand) and sees every frame
// the hub writes, pongs and close frames included.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// rawFrame is one frame from the hub.
type rawFrame struct {
	opcode  byte
	payload []byte
}

const (
	opCont  = 0x0
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// rawDial opens th's WebSocket with a hand-written handshake.
func rawDial(t *testing.T, th *testHub) *rawConn {
	t.Helper()
	return rawDialWith(t, th, nil)
}

// rawDialWith is rawDial with early: bytes sent in the same write as the
// HTTP request, before the 101 comes.
func rawDialWith(t *testing.T, th *testHub, early []byte) *rawConn {
	t.Helper()
	addr := strings.TrimPrefix(th.srv.URL, "http://")
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// A generous deadline for the whole test: a hang fails, it never waits.
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	req := "GET /v1/ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write(append([]byte(req), early...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
	}
	return &rawConn{t: t, c: c, br: br}
}

// frame encodes one client frame, masked with the all-zero key so that the
// payload goes on the wire as given.
func frame(opcode byte, payload []byte) []byte {
	return hub.ClientFrameForTest(opcode, true, payload, false)
}

func (r *rawConn) write(b []byte) error {
	_, err := r.c.Write(b)
	return err
}

// read returns the hub's next frame.
func (r *rawConn) read() (rawFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return rawFrame{}, err
	}
	if h[1]&0x80 != 0 {
		return rawFrame{}, errors.New("the hub sent a masked frame")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(r.br, l[:]); err != nil {
			return rawFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(r.br, l[:]); err != nil {
			return rawFrame{}, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 1<<20 {
		return rawFrame{}, fmt.Errorf("frame of %d bytes", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r.br, p); err != nil {
		return rawFrame{}, err
	}
	return rawFrame{opcode: h[0] & 0x0f, payload: p}, nil
}

// untilClose reads frames up to the hub's close frame, answers it as a
// client must, and returns the frames before it and the close code (0 when
// the connection ended without one).
func (r *rawConn) untilClose() (frames []rawFrame, code int) {
	r.t.Helper()
	for {
		f, err := r.read()
		if err != nil {
			return frames, 0
		}
		if f.opcode == opClose {
			if len(f.payload) >= 2 {
				code = int(binary.BigEndian.Uint16(f.payload))
			}
			_ = r.write(frame(opClose, f.payload[:min(2, len(f.payload))]))
			return frames, code
		}
		frames = append(frames, f)
	}
}
