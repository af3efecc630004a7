package turnserver

import (
	"encoding/binary"
	"hash/crc32"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v3"

	"github.com/tryst-chat/tryst/metrics"
)

// The request pre-filter: every STUN message a client sends passes through
// inspect before pion sees it. It is where Tryst applies the parts of RFC 8489
// and RFC 8656 that pion/turn v4 gets wrong or leaves out, without forking
// pion: FINGERPRINT and attribute-order checks, unknown
// comprehension-required attributes, authentication with source-bound
// nonces and proper 401 answers, transport, address-family and reservation
// checks on Allocate, the peer policy and per-allocation caps on
// CreatePermission and ChannelBind, and 437 where pion stays silent.
// docs/TURN.md lists each behaviour with its RFC section.
//
// A request the pre-filter answers itself never reaches pion. A request it
// passes on may be shortened in place: attributes after MESSAGE-INTEGRITY are
// cut off (RFC 8489 section 14.5), and a request that fails authentication
// loses its MESSAGE-INTEGRITY, so that pion answers it the way it answers an
// unauthenticated request: 401 with REALM and a fresh NONCE.

const (
	attrErrorCode         = 0x0009
	attrChannelNumber     = 0x000C
	attrXORPeerAddress    = 0x0012
	attrRequestedFamily   = 0x0017
	attrEvenPort          = 0x0018
	attrRequestedTrans    = 0x0019
	attrReservationToken  = 0x0022
	attrFingerprint       = 0x8028
	fingerprintXOR        = 0x5354554e
	protoUDP              = 17
	familyIPv4            = 0x01
	channelMin            = 0x4000
	channelMax            = 0x7FFF // RFC 5766's range; RFC 8656 narrowed it to 0x4FFF, coturn's clients use all of it
	permissionLifetime    = 5 * time.Minute
	methodAllocate        = 0x003
	methodRefresh         = 0x004
	methodCreatePermssion = 0x008
	methodChannelBind     = 0x009
)

// knownAttrs are the comprehension-required attributes (type below 0x8000)
// the relay understands in a request; any other one gets 420. DONT-FRAGMENT
// is listed because pion answers it on Allocate with its own 420.
var knownAttrs = map[uint16]bool{
	0x0001: true, // MAPPED-ADDRESS
	0x0006: true, // USERNAME
	0x0008: true, // MESSAGE-INTEGRITY
	0x0009: true, // ERROR-CODE
	0x000A: true, // UNKNOWN-ATTRIBUTES
	0x000C: true, // CHANNEL-NUMBER
	0x000D: true, // LIFETIME
	0x0012: true, // XOR-PEER-ADDRESS
	0x0013: true, // DATA
	0x0014: true, // REALM
	0x0015: true, // NONCE
	0x0016: true, // XOR-RELAYED-ADDRESS
	0x0017: true, // REQUESTED-ADDRESS-FAMILY
	0x0018: true, // EVEN-PORT
	0x0019: true, // REQUESTED-TRANSPORT
	0x001A: true, // DONT-FRAGMENT
	0x0020: true, // XOR-MAPPED-ADDRESS
	0x0022: true, // RESERVATION-TOKEN
	0x0024: true, // PRIORITY (ICE)
	0x0025: true, // USE-CANDIDATE (ICE)
}

// stunAttrPos locates one attribute: its type, and where its value starts
// and ends in the message.
type stunAttrPos struct {
	typ        uint16
	start, end int // value bytes b[start:end]; the next attribute starts at end padded to 4
}

// parseAttrs lists the attributes of a STUN message already checked by
// stunHeader; ok=false if one overruns the message.
func parseAttrs(b []byte, dst []stunAttrPos) ([]stunAttrPos, bool) {
	end := stunHeaderLen + int(binary.BigEndian.Uint16(b[2:4]))
	for i := stunHeaderLen; i < end; {
		if i+4 > end {
			return dst, false
		}
		t := binary.BigEndian.Uint16(b[i : i+2])
		l := int(binary.BigEndian.Uint16(b[i+2 : i+4]))
		if i+4+l > end {
			return dst, false
		}
		dst = append(dst, stunAttrPos{typ: t, start: i + 4, end: i + 4 + l})
		i += 4 + (l+3)&^3
	}
	return dst, true
}

func attrIndex(attrs []stunAttrPos, typ uint16) int {
	for i, a := range attrs {
		if a.typ == typ {
			return i
		}
	}
	return -1
}

// fingerprintOK checks a FINGERPRINT attribute (RFC 8489 section 14.7): the
// CRC-32 of the message up to it, with the length field covering it, XOR
// 0x5354554e.
func fingerprintOK(b []byte, fp stunAttrPos) bool {
	if fp.end-fp.start != 4 {
		return false
	}
	head := fp.start - 4
	var hdr [4]byte
	copy(hdr[:], b[0:4])
	binary.BigEndian.PutUint16(hdr[2:4], uint16(fp.end-stunHeaderLen))
	crc := crc32.Update(crc32.ChecksumIEEE(hdr[:]), crc32.IEEETable, b[4:head])
	return crc^fingerprintXOR == binary.BigEndian.Uint32(b[fp.start:fp.end])
}

// inspect looks at a datagram or frame from a client before pion does. It
// returns how many bytes of b to pass on to pion, and pass=false to drop it:
// discarded, or answered through reply.
func (s *Server) inspect(b []byte, from net.Addr, reply func([]byte)) (n int, pass bool) {
	if isChannelData(b) {
		return len(b), true
	}
	method, class, ok := stunHeader(b)
	if !ok {
		return len(b), true // pion drops it
	}
	b = b[:stunHeaderLen+int(binary.BigEndian.Uint16(b[2:4]))] // bytes past the length are not part of it
	if class == classResponse || class == classErrorResponse {
		return len(b), true // pion drops it
	}
	var buf [16]stunAttrPos
	attrs, ok := parseAttrs(b, buf[:0])
	if !ok {
		return 0, false // not a well-formed STUN message: discard
	}
	// A FINGERPRINT must be last and correct, else the message is not STUN
	// (RFC 8489 sections 7.3 and 14.7): discard.
	fp := attrIndex(attrs, attrFingerprint)
	if fp >= 0 && (fp != len(attrs)-1 || !fingerprintOK(b, attrs[fp])) {
		return 0, false
	}
	// Attributes after MESSAGE-INTEGRITY are not covered by it and are
	// ignored (RFC 8489 section 14.5): cut them off, so pion cannot take a
	// USERNAME, REALM or NONCE from there. FINGERPRINT was checked above.
	mi := attrIndex(attrs, attrMessageIntegrity)
	if mi >= 0 && mi < len(attrs)-1 {
		end := attrs[mi].end
		binary.BigEndian.PutUint16(b[2:4], uint16(end-stunHeaderLen))
		b, attrs = b[:end], attrs[:mi+1]
	}
	if unknown := unknownRequired(attrs); len(unknown) > 0 {
		// RFC 8489 section 6.3.1.1: 420 for a request, an indication is
		// discarded.
		if class == classRequest && s.takeSource(from) {
			if r := s.errorResponse(b, method, stun.CodeUnknownAttribute, nil, fp >= 0, unknown); r != nil {
				reply(r)
			}
		}
		return 0, false
	}
	if class != classRequest {
		return len(b), true // Send indications: pion checks the permission
	}
	if method == methodBinding {
		// Binding needs no credentials (a MESSAGE-INTEGRITY on it is
		// ignored), so it always pays the per-source rate.
		s.m.STUNBindingRequests.Inc()
		return len(b), s.takeSource(from)
	}
	if mi < 0 {
		return len(b), s.takeSource(from) // pion answers 401 with a nonce
	}
	return s.inspectSigned(b, method, attrs[mi].start-4, fp >= 0, from, reply)
}

// unknownRequired lists comprehension-required attributes the relay does not
// understand.
func unknownRequired(attrs []stunAttrPos) stun.UnknownAttributes {
	var out stun.UnknownAttributes
	for _, a := range attrs {
		if a.typ < 0x8000 && !knownAttrs[a.typ] {
			out = append(out, stun.AttrType(a.typ))
		}
	}
	return out
}

// takeSource charges one unauthenticated request to the source's token
// bucket and reports whether it may be answered.
func (s *Server) takeSource(from net.Addr) bool {
	if s.sources.take(from) {
		return true
	}
	s.m.QuotaRejections.WithLabelValues(metrics.QuotaSourceRate).Inc()
	return false
}

// inspectSigned handles a request with MESSAGE-INTEGRITY at offset miOff:
// it checks the nonce and the credentials, then the method's own rules, and
// answers refusals itself with a response signed with the request's key.
func (s *Server) inspectSigned(b []byte, method uint16, miOff int, fp bool, from net.Addr, reply func([]byte)) (int, bool) {
	msg := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := msg.Decode(); err != nil {
		return 0, false
	}
	var user stun.Username
	var realm stun.Realm
	var nonce stun.Nonce
	if user.GetFrom(msg) != nil || realm.GetFrom(msg) != nil || nonce.GetFrom(msg) != nil {
		return len(b), true // pion answers 400 Bad Request
	}
	k := srcKey(from)
	now := s.now()
	// unauthenticated passes the request on without its MESSAGE-INTEGRITY:
	// pion answers 401 with REALM and a fresh NONCE (RFC 8489 section
	// 9.2.4), which outgoing records as issued to this source, or 438 when
	// the nonce was the problem.
	unauthenticated := func(stale bool) (int, bool) {
		if !s.takeSource(from) {
			return 0, false
		}
		if stale {
			s.nonces.markStale(msg.TransactionID, now)
		}
		binary.BigEndian.PutUint16(b[2:4], uint16(miOff-stunHeaderLen))
		return miOff, true
	}
	if !s.nonces.valid(nonce.String(), k, now) {
		s.m.AuthFailures.WithLabelValues(metrics.AuthStaleNonce).Inc()
		return unauthenticated(true)
	}
	keys, live, reason := s.keysFor(user.String(), realm.String(), from, now)
	if reason == metrics.AuthRateLimited {
		s.authFail(reason, from, false)
		return 0, false
	}
	var key []byte
	for _, c := range keys {
		if stun.MessageIntegrity(c).Check(msg) == nil {
			key = c
			break
		}
	}
	if key == nil && reason == "" {
		reason = metrics.AuthBadMAC
	}
	if reason != "" {
		s.authFail(reason, from, false)
		return unauthenticated(false)
	}
	if code, extra := s.checkRequest(method, msg, k, now); code != 0 {
		var extras []stun.Setter
		if extra != nil {
			extras = append(extras, extra)
		}
		if r := s.errorResponse(b, method, code, key, fp, extras...); r != nil {
			reply(r)
		}
		return 0, false
	}
	s.stashKey(k, user.String(), key, live)
	return len(b), true
}

// keysFor returns the candidate long-term keys for a request: the key of the
// live allocation this source created with the same username (so neither
// credential expiry nor secret rotation cuts a call short; only MaxLifetime
// does), else one per configured secret for a credential that passes the
// realm, syntax, expiry and maximum-TTL checks. reason names the refusal.
func (s *Server) keysFor(username, realm string, from net.Addr, now time.Time) (keys [][]byte, live bool, reason string) {
	k := srcKey(from)
	s.mu.Lock()
	for _, a := range s.live[k] {
		if a.username == username && realm == s.cfg.Realm {
			key, created := a.key, a.created
			s.mu.Unlock()
			if now.Sub(created) > s.cfg.MaxLifetime {
				return nil, false, metrics.AuthMaxLifetime
			}
			return [][]byte{key}, true, ""
		}
	}
	s.mu.Unlock()
	if s.sources.exhausted(from) {
		return nil, false, metrics.AuthRateLimited
	}
	if realm != s.cfg.Realm {
		return nil, false, metrics.AuthBadRealm
	}
	expiry, _, err := parseUsername(username)
	if err != nil {
		return nil, false, metrics.AuthBadUsername
	}
	if !now.Before(expiry) {
		return nil, false, metrics.AuthExpired
	}
	if expiry.Sub(now) > s.cfg.MaxCredentialTTL {
		return nil, false, metrics.AuthTTLTooLong
	}
	for _, secret := range *s.secrets.Load() {
		keys = append(keys, longTermKey(username, realm, restPassword(secret, username)))
	}
	return keys, false, ""
}

// checkRequest applies the method's rules to an authenticated request and
// returns the error code to answer with, 0 to let pion handle it.
func (s *Server) checkRequest(method uint16, msg *stun.Message, k string, now time.Time) (stun.ErrorCode, stun.Setter) {
	switch method {
	case methodAllocate:
		return s.checkAllocate(msg, k, now)
	case methodRefresh:
		if !s.hasAllocation(k) {
			return stun.CodeAllocMismatch, nil // pion sends nothing
		}
	case methodCreatePermssion, methodChannelBind:
		return s.checkPeers(method, msg, k, now)
	}
	return 0, nil
}

// checkAllocate follows RFC 8656 section 7.2 where pion does not.
func (s *Server) checkAllocate(msg *stun.Message, k string, now time.Time) (stun.ErrorCode, stun.Setter) {
	if s.hasAllocation(k) {
		return 0, nil // pion: 437, or the cached answer to a retransmission
	}
	// Step 3: only UDP relays (no RFC 6062).
	if v, err := msg.Get(attrRequestedTrans); err == nil && len(v) == 4 && v[0] != protoUDP {
		return stun.CodeUnsupportedTransProto, nil
	}
	// Step 5: a RESERVATION-TOKEN goes alone, and must be one this relay
	// handed out (pion accepts any), once, within its lifetime.
	token, errToken := msg.Get(attrReservationToken)
	_, errEven := msg.Get(attrEvenPort)
	family, errFamily := msg.Get(attrRequestedFamily)
	if errToken == nil {
		if errEven == nil || errFamily == nil {
			return stun.CodeBadRequest, nil
		}
		if !s.tokens.take(string(token), now) {
			s.m.QuotaRejections.WithLabelValues(metrics.QuotaReservation).Inc()
			return stun.CodeInsufficientCapacity, nil
		}
		return 0, nil
	}
	// Step 7: relays are IPv4; IPv6 or an unknown family gets 440.
	if errFamily == nil && (len(family) != 4 || family[0] != familyIPv4) {
		return stun.CodeAddrFamilyNotSupported, nil
	}
	return 0, nil
}

// tokenBook holds the RESERVATION-TOKENs pion handed out in answers to
// Allocate with EVEN-PORT (seen by outgoing), so that only those are
// accepted, once each, within reservationTTL.
//
// pion v4 reserves no port for them: the allocation made with a token gets
// any free port of the range, not the one after the even port. WebRTC never
// asks for reservations (RTP and RTCP share a port); coturn's
// turnutils_uclient does without -c, and works.
type tokenBook struct {
	mu sync.Mutex
	m  map[string]time.Time // token -> when issued
}

// reservationTTL is pion's reservation lifetime (RFC 8656 section 7.2
// suggests about 30 seconds).
const reservationTTL = 30 * time.Second

func (t *tokenBook) add(token string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]time.Time)
	}
	t.m[token] = now
}

func (t *tokenBook) take(token string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.m[token]
	delete(t.m, token)
	return ok && now.Sub(at) < reservationTTL
}

func (t *tokenBook) sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for tok, at := range t.m {
		if now.Sub(at) >= reservationTTL {
			delete(t.m, tok)
		}
	}
}

// checkPeers applies the peer policy and the per-allocation caps to
// CreatePermission and ChannelBind (RFC 8656 sections 9.2 and 11.2).
func (s *Server) checkPeers(method uint16, msg *stun.Message, k string, now time.Time) (stun.ErrorCode, stun.Setter) {
	if !s.hasAllocation(k) {
		return stun.CodeAllocMismatch, nil // pion sends nothing
	}
	channel := -1
	if method == methodChannelBind {
		v, err := msg.Get(attrChannelNumber)
		if err != nil || len(v) != 4 {
			return stun.CodeBadRequest, nil
		}
		channel = int(binary.BigEndian.Uint16(v))
		if channel < channelMin || channel > channelMax {
			return stun.CodeBadRequest, nil
		}
	}
	var peers []netip.Addr
	for _, a := range msg.Attributes {
		if a.Type != attrXORPeerAddress {
			continue
		}
		ip, ok := xorPeerIP(a.Value, msg.TransactionID)
		if !ok {
			return stun.CodeBadRequest, nil
		}
		peers = append(peers, ip)
	}
	if len(peers) == 0 || (channel >= 0 && len(peers) != 1) {
		return stun.CodeBadRequest, nil
	}
	for _, p := range peers {
		if class := s.filter.check(p); class != classPublic {
			s.m.PermissionDenied.Inc()
			s.log.Debug("turn peer refused", "client", k, "peer", p, "class", class)
			return stun.CodeForbidden, nil
		}
	}
	// After the policy, so that a refused address is counted as one
	// whatever its family.
	for _, p := range peers {
		if !p.Is4() {
			return stun.CodePeerAddrFamilyMismatch, nil // relays are IPv4
		}
	}
	if kind := s.admitPeers(k, peers, channel, now); kind != "" {
		s.m.QuotaRejections.WithLabelValues(kind).Inc()
		return stun.CodeInsufficientCapacity, nil
	}
	return 0, nil
}

// xorPeerIP decodes the address of an XOR-PEER-ADDRESS value (RFC 8489
// section 14.2).
func xorPeerIP(v []byte, tid [stun.TransactionIDSize]byte) (netip.Addr, bool) {
	if len(v) < 4 {
		return netip.Addr{}, false
	}
	var key [16]byte
	binary.BigEndian.PutUint32(key[0:4], stunMagicCookie)
	copy(key[4:], tid[:])
	switch {
	case v[1] == 0x01 && len(v) == 8:
		var ip [4]byte
		for i := range ip {
			ip[i] = v[4+i] ^ key[i]
		}
		return netip.AddrFrom4(ip), true
	case v[1] == 0x02 && len(v) == 20:
		var ip [16]byte
		for i := range ip {
			ip[i] = v[4+i] ^ key[i]
		}
		return netip.AddrFrom16(ip).Unmap(), true
	}
	return netip.Addr{}, false
}

// errorResponse builds an error response to the request b, signed with key
// when it is not nil, with a FINGERPRINT when the request had one.
func (s *Server) errorResponse(b []byte, method uint16, code stun.ErrorCode, key []byte, fp bool, extra ...stun.Setter) []byte {
	var tid [stun.TransactionIDSize]byte
	copy(tid[:], b[8:stunHeaderLen])
	setters := []stun.Setter{
		&stun.Message{TransactionID: tid},
		stun.NewType(stun.Method(method), stun.ClassErrorResponse),
		code,
	}
	setters = append(setters, extra...)
	if key != nil {
		setters = append(setters, stun.MessageIntegrity(key))
	}
	if fp {
		setters = append(setters, stun.Fingerprint)
	}
	m, err := stun.Build(setters...)
	if err != nil {
		return nil
	}
	return m.Raw
}
