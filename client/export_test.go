package client

// dropPeer cuts the current WebRTC connection, as a network failure would.
func (c *Client) dropPeer() {
	c.mu.Lock()
	p := c.cur
	c.mu.Unlock()
	if p != nil {
		p.pc.Close()
	}
}

// sendRaw hands frames straight to the current data channel, bypassing the
// sealing order: tests use it to replay, reorder and tamper with frames.
// make gets the peer's session to seal with.
func (c *Client) sendRaw(t interface{ Fatal(...any) }, make func(seal func(typ byte, payload []byte) []byte) [][]byte) {
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
