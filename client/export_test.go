package client

// Hooks for the package's external tests (package client_test), which drive
// a Client through its exported API and reach inside only here.

// Frame types the tamper tests forge.
const (
	MsgChat = msgChat
	MsgPing = msgPing
)

// NoticeNoRelay is the warning for ICE without a relay.
const NoticeNoRelay = noticeNoRelay

// FastKeys returns cfg with a PBKDF2 work factor that tests can afford; both
// members of a room need the same.
func FastKeys(cfg Config) Config {
	cfg.iterations = 1000
	return cfg
}

// DropPeer cuts the current WebRTC connection, as a network failure would.
func (c *Client) DropPeer() {
	c.mu.Lock()
	p := c.cur
	c.mu.Unlock()
	if p != nil {
		p.pc.Close()
	}
}

// SendRaw hands frames straight to the current data channel, bypassing the
// sealing order: tests use it to replay, reorder and tamper with frames.
// make gets the peer's session to seal with.
func (c *Client) SendRaw(t interface{ Fatal(...any) }, make func(seal func(typ byte, payload []byte) []byte) [][]byte) {
	c.mu.Lock()
	p := c.cur
	c.mu.Unlock()
	if p == nil {
		t.Fatal("not connected")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	frames := make(func(typ byte, payload []byte) []byte {
		return p.sess.Seal(typ, payload)
	})
	for _, f := range frames {
		if err := p.dc.Send(f); err != nil {
			t.Fatal(err)
		}
	}
}

// RenameLastQueued changes the name the last queued file is offered under,
// as a hostile peer could.
func (c *Client) RenameLastQueued(name string) {
	c.files.mu.Lock()
	defer c.files.mu.Unlock()
	c.files.out[len(c.files.out)-1].name = name
}
