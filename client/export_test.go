package client

import (
	"context"
	"errors"
)

// Hooks for the package's external tests (package client_test), which drive
// a Client through its exported API and reach inside only here.

// NoticeNoRelay is the warning for ICE without a relay.
const NoticeNoRelay = noticeNoRelay

// NoticeOldPeer is the warning about a peer that speaks an older protocol version.
const NoticeOldPeer = noticeOldPeer

// DropPeer cuts the current WebRTC connection, as a network failure would.
func (c *Client) DropPeer() {
	if _, t, _, _, _ := c.status.get(); t != nil {
		_ = t.(*peer).pc.Close()
	}
}

// RawFrame is a sealed frame and the data channel it goes on
// (proto.ControlChannel, proto.BulkChannel).
type RawFrame struct {
	Channel int
	Frame   []byte
}

// SendRaw hands frames straight to the current data channels, bypassing
// the sealing order and the choice of channel: tests use it to replay,
// reorder and tamper with frames, and to send them on the wrong channel.
// make gets the connection's keys to seal with: seal(ch, …) seals the next
// frame of channel ch and addresses it to ch. It runs on the session
// goroutine, which owns the keys.
func (c *Client) SendRaw(t interface{ Fatal(...any) }, make func(seal func(ch int, typ byte, payload []byte) RawFrame) []RawFrame) {
	var err error
	if cerr := c.sess.call(context.Background(), func() {
		cur := c.sess.cur
		if cur == nil || !cur.confirmed {
			err = errors.New("not connected")
			return
		}
		frames := make(func(ch int, typ byte, payload []byte) RawFrame {
			return RawFrame{Channel: ch, Frame: cur.chans[ch].Seal(typ, payload)}
		})
		for _, f := range frames {
			if err = cur.t.sendFrame(f.Channel, f.Frame); err != nil {
				return
			}
		}
	}); cerr != nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// RenameLastQueued changes the name the last queued file is offered under,
// as a hostile peer could.
func (c *Client) RenameLastQueued(name string) {
	c.files.mu.Lock()
	defer c.files.mu.Unlock()
	c.files.files[len(c.files.files)-1].name = name
}
