package turnserver

import "encoding/binary"

// Minimal, allocation-free STUN/ChannelData inspection used on the listener
// sockets; pion does the real parsing.

const (
	stunHeaderLen   = 20
	stunMagicCookie = 0x2112A442

	attrUsername         = 0x0006
	attrMessageIntegrity = 0x0008
	attrData             = 0x0013
	attrRealm            = 0x0014
	attrNonce            = 0x0015

	methodBinding = 0x001
	methodData    = 0x007

	classRequest       = 0
	classIndication    = 1
	classResponse      = 2
	classErrorResponse = 3
)

// isChannelData reports whether b starts like a ChannelData message
// (channel numbers 0x4000-0x7FFF).
func isChannelData(b []byte) bool {
	return len(b) >= 4 && b[0]&0xC0 == 0x40
}

// stunHeader returns the method and class of a STUN message, ok=false if b
// does not start with a STUN header whose length fits in b.
func stunHeader(b []byte) (method, class uint16, ok bool) {
	if len(b) < stunHeaderLen || b[0]&0xC0 != 0 ||
		binary.BigEndian.Uint32(b[4:8]) != stunMagicCookie {
		return 0, 0, false
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n%4 != 0 || stunHeaderLen+n > len(b) {
		return 0, 0, false
	}
	t := binary.BigEndian.Uint16(b[0:2])
	method = t&0x000F | (t&0x00E0)>>1 | (t&0x3E00)>>2
	class = (t&0x0010)>>4 | (t&0x0100)>>7
	return method, class, true
}

// stunAttr returns the value of the first attribute of type typ in the STUN
// message b (already checked by stunHeader).
func stunAttr(b []byte, typ uint16) ([]byte, bool) {
	end := stunHeaderLen + int(binary.BigEndian.Uint16(b[2:4]))
	for i := stunHeaderLen; i+4 <= end; {
		t := binary.BigEndian.Uint16(b[i : i+2])
		l := int(binary.BigEndian.Uint16(b[i+2 : i+4]))
		if i+4+l > end {
			return nil, false
		}
		if t == typ {
			return b[i+4 : i+4+l], true
		}
		i += 4 + (l+3)&^3
	}
	return nil, false
}

// relayedPayload returns the application payload length of a message the
// server sends to a client if it is relayed data (ChannelData or a Data
// indication), else ok=false.
func relayedPayload(b []byte) (n int, ok bool) {
	if isChannelData(b) {
		return int(binary.BigEndian.Uint16(b[2:4])), true
	}
	if m, c, ok := stunHeader(b); ok && m == methodData && c == classIndication {
		if d, ok := stunAttr(b, attrData); ok {
			return len(d), true
		}
	}
	return 0, false
}

// channelFrameLen returns the length of the TURN-over-TCP frame that starts
// with the 4-byte prefix hdr: a STUN message, or ChannelData padded to a
// multiple of 4 (RFC 8656 section 12.5). ok=false if it is neither.
func channelFrameLen(hdr []byte) (n int, ok bool) {
	switch {
	case hdr[0]&0xC0 == 0x40:
		l := int(binary.BigEndian.Uint16(hdr[2:4]))
		return 4 + (l+3)&^3, true
	case hdr[0]&0xC0 == 0:
		return stunHeaderLen + int(binary.BigEndian.Uint16(hdr[2:4])), true
	}
	return 0, false
}
