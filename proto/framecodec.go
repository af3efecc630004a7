package proto

// Hand-written encoding and decoding of Frame.
//
// Why: the hub decodes every frame a client sends and encodes every frame it
// sends back or forwards, and with reflection-based encoding/json that was
// about 13 % of the hub's CPU per pairing (json.Unmarshal 7.7 %, json.Marshal
// 5 %). The code below does the same work with no reflection and about one
// allocation per frame.
//
// The contract is that behaviour is exactly encoding/json's:
//
//   - appendFrame writes byte for byte what json.Marshal writes for a Frame:
//     the struct's field order, its omitempty rules, and json's default string
//     escaping (HTML characters, U+2028/U+2029, invalid UTF-8 as \ufffd).
//   - decodeFrameFast handles only what it is sure of: a flat object whose
//     keys are spelled exactly like Frame's fields (or are plainly unknown),
//     each at most once, with string, integer or boolean values of the right
//     kind. Anything else (a nested "ice", null, a number with a fraction or
//     an exponent, a key that only case-folds to a field, an escaped key, a
//     duplicate key, an unknown key holding an object or array, invalid JSON)
//     makes it give up, and DecodeFrame hands the frame to json.Unmarshal.
//
// The differential fuzz tests in fuzz_test.go (FuzzDecodeFrame against the
// former json.Unmarshal path, FuzzEncodeFrame against json.Marshal) are the
// guarantee; run them after any change here.

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ---------------------------------------------------------------------------
// Encoding

// appendFrame appends the JSON encoding of f, exactly as json.Marshal writes
// it, to b.
func appendFrame(b []byte, f *Frame) []byte {
	b = append(b, `{"type":`...)
	b = appendJSONString(b, f.Type)
	b = appendStringField(b, `,"room":`, f.Room)
	b = appendStringField(b, `,"token":`, f.Token)
	b = appendIntField(b, `,"version":`, f.Version)
	b = appendStringField(b, `,"auth":`, f.Auth)
	b = appendStringField(b, `,"data":`, f.Data)
	b = appendStringField(b, `,"role":`, f.Role)
	if f.Peer != nil {
		b = append(b, `,"peer":`...)
		b = strconv.AppendBool(b, *f.Peer)
	}
	if f.ICE != nil {
		b = append(b, `,"ice":`...)
		b = appendICEConfig(b, f.ICE)
	}
	b = appendIntField(b, `,"room_ttl":`, f.RoomTTL)
	b = appendStringField(b, `,"code":`, f.Code)
	b = appendStringField(b, `,"message":`, f.Message)
	b = appendStringField(b, `,"reason":`, f.Reason)
	b = appendIntField(b, `,"retry_after":`, f.RetryAfter)
	return append(b, '}')
}

func appendICEConfig(b []byte, c *ICEConfig) []byte {
	b = append(b, `{"iceServers":`...)
	if c.Servers == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range c.Servers {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendICEServer(b, &c.Servers[i])
		}
		b = append(b, ']')
	}
	b = append(b, `,"ttl":`...)
	b = strconv.AppendInt(b, int64(c.TTL), 10)
	if c.Limited {
		b = append(b, `,"limited":true`...)
	}
	b = appendIntField(b, `,"retry_after":`, c.RetryAfter)
	return append(b, '}')
}

func appendICEServer(b []byte, s *ICEServer) []byte {
	b = append(b, `{"urls":`...)
	if s.URLs == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, u := range s.URLs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, u)
		}
		b = append(b, ']')
	}
	b = appendStringField(b, `,"username":`, s.Username)
	b = appendStringField(b, `,"credential":`, s.Credential)
	return append(b, '}')
}

// appendStringField appends key and s unless s is empty (omitempty).
func appendStringField(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendJSONString(append(b, key...), s)
}

// appendIntField appends key and n unless n is 0 (omitempty).
func appendIntField(b []byte, key string, n int) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), int64(n), 10)
}

// frameSizeHint is a generous estimate of the length of f's encoding, so that
// appendFrame rarely has to grow its buffer: the field names and punctuation,
// plus the strings with an eighth more for escapes (SDP's line breaks and
// quotes are a few percent of it).
func frameSizeHint(f *Frame) int {
	n := len(f.Type) + len(f.Room) + len(f.Token) + len(f.Auth) + len(f.Data) +
		len(f.Role) + len(f.Code) + len(f.Message) + len(f.Reason)
	if f.ICE != nil {
		n += 64
		for i := range f.ICE.Servers {
			s := &f.ICE.Servers[i]
			n += 48 + len(s.Username) + len(s.Credential)
			for _, u := range s.URLs {
				n += 3 + len(u)
			}
		}
	}
	// 160 covers every key, quote and integer of a frame with many fields.
	return 160 + n + n/8
}

const hexDigits = "0123456789abcdef"

// htmlSafe reports, for each byte, whether json.Marshal copies it as is
// into a string: ASCII but for control characters, '"', '\\', and the
// HTML-sensitive '<', '>' and '&'. (It copies most bytes of multi-byte UTF-8
// too, but they take a closer look.)
var htmlSafe = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// appendJSONString appends s as a JSON string, escaped exactly like
// encoding/json's default (HTML-escaping) encoder does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0 // s[start:i] is still to be copied
	for i := 0; ; {
		if i = skipHTMLSafe(s, i); i == len(s) {
			break
		}
		if c := s[i]; c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				// Other control characters, and < > &.
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON but not valid JavaScript (JSONP).
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// skipHTMLSafe returns the index of the first byte of s[i:] that is not
// htmlSafe, or len(s). Strings are mostly such bytes, so it looks at eight
// at a time while it can.
func skipHTMLSafe(s string, i int) int {
	for ; len(s)-i >= 8; i += 8 {
		x := load64(s[i : i+8])
		if hasLess(x, ' ')|hasByte(x, '"')|hasByte(x, '\\')|
			hasByte(x, '<')|hasByte(x, '>')|hasByte(x, '&')|x&msbs != 0 {
			break
		}
	}
	for i < len(s) && htmlSafe[s[i]] {
		i++
	}
	return i
}

// Eight bytes at a time, in a uint64 (SWAR): whether any byte is less than n
// (n <= 128), or equals c. Exact as a yes or no; which byte, they may not say.
const (
	lsbs = 0x0101010101010101
	msbs = 0x8080808080808080
)

func hasLess(x uint64, n byte) uint64 { return (x - lsbs*uint64(n)) &^ x & msbs }
func hasByte(x uint64, c byte) uint64 { return hasLess(x^(lsbs*uint64(c)), 1) }

// load64 reads the 8 bytes of s little-endian (the compiler makes one load
// of it).
func load64[T string | []byte](s T) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// ---------------------------------------------------------------------------
// Decoding

// Frame's fields, as decodeFrameFast knows them: bit positions in its set of
// fields already seen.
const (
	fieldUnknown  = iota // a key that is no field of Frame: its value is skipped
	fieldFallback        // a key that json.Unmarshal may match to a field: give up
	fieldType
	fieldRoom
	fieldToken
	fieldVersion
	fieldAuth
	fieldData
	fieldRole
	fieldPeer
	fieldRoomTTL
	fieldCode
	fieldMessage
	fieldReason
	fieldRetryAfter
)

// frameFieldNames are the JSON names of Frame's fields; "ice" is among them
// only so that a key folding to it sends the frame to json.Unmarshal.
var frameFieldNames = [...]string{
	"type", "room", "token", "version", "auth", "data", "role", "peer", "ice",
	"room_ttl", "code", "message", "reason", "retry_after",
}

// frameField says which field key, a key without escapes, sets.
func frameField(key []byte) int {
	switch string(key) {
	case "type":
		return fieldType
	case "room":
		return fieldRoom
	case "token":
		return fieldToken
	case "version":
		return fieldVersion
	case "auth":
		return fieldAuth
	case "data":
		return fieldData
	case "role":
		return fieldRole
	case "peer":
		return fieldPeer
	case "room_ttl":
		return fieldRoomTTL
	case "code":
		return fieldCode
	case "message":
		return fieldMessage
	case "reason":
		return fieldReason
	case "retry_after":
		return fieldRetryAfter
	case "ice":
		return fieldFallback
	}
	// json.Unmarshal matches a key to a field case-insensitively, with
	// Unicode folding (the Kelvin sign folds to 'k', the long s to 's'). A
	// key that is all ASCII matches a field when it equals the field's name
	// but for ASCII case; anything not ASCII is left to json.Unmarshal.
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return fieldFallback
		}
	}
	for _, name := range frameFieldNames {
		if strings.EqualFold(name, string(key)) {
			return fieldFallback
		}
	}
	return fieldUnknown
}

// stringField returns the string field that field names, or nil.
func (f *Frame) stringField(field int) *string {
	switch field {
	case fieldType:
		return &f.Type
	case fieldRoom:
		return &f.Room
	case fieldToken:
		return &f.Token
	case fieldAuth:
		return &f.Auth
	case fieldData:
		return &f.Data
	case fieldRole:
		return &f.Role
	case fieldCode:
		return &f.Code
	case fieldMessage:
		return &f.Message
	case fieldReason:
		return &f.Reason
	}
	return nil
}

// intField returns the int field that field names, or nil.
func (f *Frame) intField(field int) *int {
	switch field {
	case fieldVersion:
		return &f.Version
	case fieldRoomTTL:
		return &f.RoomTTL
	case fieldRetryAfter:
		return &f.RetryAfter
	}
	return nil
}

// decodeFrameFast decodes b, a trimmed, valid UTF-8 frame starting with '{',
// when it is sure to get what json.Unmarshal would; ok is false otherwise,
// and f is then garbage. The strings in f never alias b.
func decodeFrameFast(b []byte) (f Frame, ok bool) {
	i := skipSpace(b, 1)
	if i < len(b) && b[i] == '}' {
		return f, skipSpace(b, i+1) == len(b)
	}
	var seen uint32
	for {
		// The key.
		if i >= len(b) || b[i] != '"' {
			return f, false
		}
		end, escaped, ok := scanString(b, i)
		if !ok || escaped {
			return f, false // an escaped key may spell a field: json.Unmarshal knows
		}
		field := frameField(b[i+1 : end-1])
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return f, false
		}
		i = skipSpace(b, i+1)

		// The value.
		if field == fieldFallback {
			return f, false
		}
		if field == fieldUnknown {
			if i, ok = skipSimpleValue(b, i); !ok {
				return f, false
			}
		} else {
			// json.Unmarshal lets the last of duplicate keys win, or
			// partly merges them; rare enough to leave to it.
			if seen&(1<<field) != 0 {
				return f, false
			}
			seen |= 1 << field
			if p := f.stringField(field); p != nil {
				if i, ok = decodeString(b, i, p, field); !ok {
					return f, false
				}
			} else if p := f.intField(field); p != nil {
				if i, ok = decodeInt(b, i, p); !ok {
					return f, false
				}
			} else { // fieldPeer
				var v bool
				switch {
				case hasLiteral(b, i, "true"):
					v, i = true, i+4
				case hasLiteral(b, i, "false"):
					i += 5
				default:
					return f, false
				}
				f.Peer = &v
			}
		}

		// A comma and the next key, or the end.
		i = skipSpace(b, i)
		if i >= len(b) {
			return f, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return f, skipSpace(b, i+1) == len(b)
		default:
			return f, false
		}
	}
}

// skipSpace returns the index of the first byte of b[i:] that is not JSON
// whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// stringStop marks the bytes that end a run of plain characters in a JSON
// string: the closing quote, a backslash, and control characters (invalid).
var stringStop = func() (t [256]bool) {
	for c := range ' ' {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

// scanString validates the JSON string starting with the quote at b[i] and
// returns the index just past its closing quote, and whether it holds
// escapes. ok is false when it is not a valid JSON string.
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	for i++; ; {
		// Skip plain characters, eight at a time while it can.
		for ; len(b)-i >= 8; i += 8 {
			x := load64(b[i : i+8])
			if hasLess(x, ' ')|hasByte(x, '"')|hasByte(x, '\\') != 0 {
				break
			}
		}
		for i < len(b) && !stringStop[b[i]] {
			i++
		}
		if i == len(b) {
			return 0, false, false
		}
		switch b[i] {
		case '"':
			return i + 1, escaped, true
		case '\\':
			escaped = true
			if i+1 >= len(b) {
				return 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hex4(b, i+2); !ok {
					return 0, false, false
				}
				i += 6
			default:
				return 0, false, false
			}
		default: // a control character
			return 0, false, false
		}
	}
}

// hex4 decodes the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if len(b)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// decodeString decodes the JSON string at b[i] into *p, as a copy, and
// returns the index past it. ok is false when b[i:] does not start with a
// valid JSON string.
func decodeString(b []byte, i int, p *string, field int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false // null, a number, ...: json.Unmarshal decides
	}
	end, escaped, ok := scanString(b, i)
	if !ok {
		return i, false
	}
	raw := b[i+1 : end-1]
	if !escaped {
		*p = internString(raw, field)
	} else {
		*p = unescape(raw)
	}
	return end, true
}

// internString returns raw as a string, using the constant for the values
// that the hub and clients send all the time so that they cost nothing.
func internString(raw []byte, field int) string {
	switch field {
	case fieldType:
		switch string(raw) {
		case TypeCreate:
			return TypeCreate
		case TypeJoin:
			return TypeJoin
		case TypeResume:
			return TypeResume
		case TypeOffer:
			return TypeOffer
		case TypeAnswer:
			return TypeAnswer
		case TypeCandidate:
			return TypeCandidate
		case TypeLeave:
			return TypeLeave
		case TypeReport:
			return TypeReport
		case TypeCreated:
			return TypeCreated
		case TypeJoined:
			return TypeJoined
		case TypeResumed:
			return TypeResumed
		case TypePeerJoined:
			return TypePeerJoined
		case TypePeerLeft:
			return TypePeerLeft
		case TypePeerBack:
			return TypePeerBack
		case TypeRoomClosed:
			return TypeRoomClosed
		case TypeError:
			return TypeError
		}
	case fieldRole:
		switch string(raw) {
		case "host":
			return "host"
		case "guest":
			return "guest"
		}
	case fieldReason:
		// What clients put in report and leave.
		switch string(raw) {
		case ReportFailedConfirmation:
			return ReportFailedConfirmation
		case ClosedGuessLimit:
			return ClosedGuessLimit
		}
	}
	return string(raw)
}

// unescape decodes the contents of a JSON string that scanString validated,
// as json.Unmarshal does: a \u escape of a lone or mismatched UTF-16
// surrogate becomes U+FFFD.
func unescape(raw []byte) string {
	var sb strings.Builder
	sb.Grow(len(raw)) // the decoded string is never longer
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			j := bytes.IndexByte(raw[i:], '\\')
			if j < 0 {
				j = len(raw) - i
			}
			sb.Write(raw[i : i+j])
			i += j
			continue
		}
		c := raw[i+1]
		i += 2
		switch c {
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			r, _ := hex4(raw, i)
			i += 4
			if utf16.IsSurrogate(r) {
				// A pair only when another \u escape follows at once.
				r2 := rune(-1)
				if len(raw)-i >= 6 && raw[i] == '\\' && raw[i+1] == 'u' {
					r2, _ = hex4(raw, i+2)
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			sb.WriteRune(r)
		default: // '"', '\\', '/'
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

// decodeInt decodes the JSON integer at b[i] into *p and returns the index
// past it. ok is false for anything json.Unmarshal might not decode the same
// way, or might refuse: not a number, a fraction, an exponent, a leading
// zero, a value that overflows int.
func decodeInt(b []byte, i int, p *int) (int, bool) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	var n int64
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	digits := i - start
	// 18 digits cannot overflow an int64; more go to json.Unmarshal.
	if digits == 0 || digits > 18 || (b[start] == '0' && digits > 1) {
		return i, false
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return i, false
	}
	if neg {
		n = -n
	}
	if int64(int(n)) != n { // 32-bit int
		return i, false
	}
	*p = int(n)
	return i, true
}

// skipSimpleValue validates and skips the JSON string, number, true, false
// or null at b[i], the value of an unknown key, which json.Unmarshal
// ignores. ok is false for an object or array, or invalid JSON.
func skipSimpleValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case c == '-' || '0' <= c && c <= '9':
		return skipNumber(b, i)
	case hasLiteral(b, i, "true"), hasLiteral(b, i, "null"):
		return i + 4, true
	case hasLiteral(b, i, "false"):
		return i + 5, true
	}
	return i, false
}

// skipNumber validates and skips the JSON number at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return i, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return i, false
		}
		i = j
	}
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
