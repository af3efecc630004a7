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
