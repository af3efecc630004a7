package turnserver

import (
	"encoding/binary"

	"github.com/pion/stun/v3"
)

// Raw TURN helpers shared by the tests on every platform.

func channelNumber(n uint16) stun.Setter {
	return stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{byte(n >> 8), byte(n), 0, 0}}
}

func (c *rawClient) sendChannelData(num uint16, payload []byte) {
	c.t.Helper()
	b := binary.BigEndian.AppendUint16(nil, num)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	if _, err := c.conn.WriteToUDP(b, c.server); err != nil {
		c.t.Fatal(err)
	}
}
