// Package specvectors reads the test vectors out of docs/PROTOCOL.md, so
// that tests check the code against the document itself and neither can
// drift from the other.
//
// A vector is a fenced code block whose info string is "vector NAME":
//
//	```vector room-secret
//	password: correct horse battery staple
//	salt_hex: e97e…
//	```
//
// Each line inside is "key: value" (the value is everything after the first
// ": "). A key ending in "_hex" holds bytes in lowercase hex; any other
// holds text, written as it is, or as a JSON string literal when it begins
// with a double quote (for text with line breaks, such as an SDP). Names
// are unique in the document and keys unique in a block. The parser is
// repeated in JavaScript in client/e2e/testdata/specvectors.mjs.
package specvectors

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Vector is one vector block.
type Vector struct {
	Name string
	Line int      // of the opening fence, from 1
	Keys []string // in the order written
	vals map[string]string
	used map[string]bool
}

// Load reads and parses the document at path.
func Load(path string) ([]*Vector, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("specvectors: %w", err)
	}
	return Parse(b)
}

// Parse returns the vector blocks of a Markdown document, in order.
func Parse(doc []byte) ([]*Vector, error) {
	var (
		out   []*Vector
		cur   *Vector
		names = map[string]bool{}
	)
	for i, raw := range bytes.Split(doc, []byte("\n")) {
		line := strings.TrimSuffix(string(raw), "\r")
		n := i + 1
		if cur == nil {
			name, ok := strings.CutPrefix(line, "```vector")
			if !ok {
				continue
			}
			name = strings.TrimSpace(name)
			if name == "" || strings.ContainsAny(name, " \t") {
				return nil, fmt.Errorf("line %d: a vector block needs one name", n)
			}
			if names[name] {
				return nil, fmt.Errorf("line %d: second vector named %q", n, name)
			}
			names[name] = true
			cur = &Vector{Name: name, Line: n, vals: map[string]string{}, used: map[string]bool{}}
			continue
		}
		if strings.HasPrefix(line, "```") {
			out = append(out, cur)
			cur = nil
			continue
		}
		key, val, ok := strings.Cut(line, ": ")
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("line %d (vector %s): want \"key: value\", got %q", n, cur.Name, line)
		}
		if _, dup := cur.vals[key]; dup {
			return nil, fmt.Errorf("line %d (vector %s): second key %q", n, cur.Name, key)
		}
		if strings.HasPrefix(val, `"`) {
			var s string
			if err := json.Unmarshal([]byte(val), &s); err != nil {
				return nil, fmt.Errorf("line %d (vector %s): key %s: %w", n, cur.Name, key, err)
			}
			val = s
		}
		if strings.HasSuffix(key, "_hex") {
			if _, err := hex.DecodeString(val); err != nil || val != strings.ToLower(val) {
				return nil, fmt.Errorf("line %d (vector %s): key %s is not lowercase hex", n, cur.Name, key)
			}
		}
		cur.Keys = append(cur.Keys, key)
		cur.vals[key] = val
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: vector %s is not closed", cur.Line, cur.Name)
	}
	return out, nil
}

// Has reports whether the block has key.
func (v *Vector) Has(key string) bool {
	_, ok := v.vals[key]
	return ok
}

// Text returns the value of key as text and marks it used.
func (v *Vector) Text(key string) (string, error) {
	s, ok := v.vals[key]
	if !ok {
		return "", fmt.Errorf("vector %s (line %d) has no %s", v.Name, v.Line, key)
	}
	v.used[key] = true
	return s, nil
}

// Hex returns the bytes of key, which must end in "_hex", and marks it used.
func (v *Vector) Hex(key string) ([]byte, error) {
	if !strings.HasSuffix(key, "_hex") {
		return nil, fmt.Errorf("vector %s: key %s does not hold hex", v.Name, key)
	}
	s, err := v.Text(key)
	if err != nil {
		return nil, err
	}
	return hex.DecodeString(s)
}

// Unused lists the keys that no Text or Hex call read: a check that does
// not read a key does not check it.
func (v *Vector) Unused() []string {
	var u []string
	for _, k := range v.Keys {
		if !v.used[k] {
			u = append(u, k)
		}
	}
	return u
}
