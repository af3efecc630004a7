// The hub's /v1/ice: the ICE servers and TURN credentials that the later
// checks use.

package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/tryst-chat/tryst/proto"
)

func (c *checker) checkICE(ctx context.Context) Result {
	u := c.base.JoinPath("/v1/ice").String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail("", "GET %s: %v", u, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	start := c.now()
	resp, err := c.httpc.Do(req)
	if err != nil {
		return c.dialFailure(ctx, "GET "+u, err)
	}
	defer resp.Body.Close()
	// The clock check compares the credential with local time as of the
	// moment the hub most likely minted it.
	c.iceLocal = start.Add(c.now().Sub(start) / 2)
	if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		c.iceDate = t
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return c.dialFailure(ctx, "GET "+u, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		if c.token == "" {
			return fail("access control is on (--token-secret-file): give --token-file with an access token "+
				"(see docs/PROTOCOL.md, Access tokens)", "GET %s: 401 unauthorized", u)
		}
		return fail("the access token in --token-file is expired or signed with a secret the hub does not hold",
			"GET %s: 401, the access token was refused: %s", u, strings.TrimSpace(string(body)))
	case http.StatusTooManyRequests:
		return fail("this address asked for ICE servers too often (1/s, burst 20): retry in a minute",
			"GET %s: 429 rate limited", u)
	case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return fail("give --hub the URL it redirects to (clients do not follow redirects for the WebSocket)",
			"GET %s: HTTP %d to %s", u, resp.StatusCode, resp.Header.Get("Location"))
	default:
		return fail("is this a Tryst hub? A reverse proxy must forward /v1/ice", "GET %s: HTTP %d", u, resp.StatusCode)
	}
	var ice proto.ICEConfig
	if err := json.Unmarshal(body, &ice); err != nil {
		return fail("is this a Tryst hub? /v1/ice must answer JSON", "GET %s: %v", u, err)
	}
	var kinds []string
	for _, s := range ice.Servers {
		for _, raw := range s.URLs {
			iu, err := parseICEURL(raw)
			if err != nil {
				return fail("check --turn-host", "%v", err)
			}
			switch iu.scheme {
			case "stun":
				if c.stunURL == "" {
					c.stunURL = iu.hostPort
				}
			case "turn", "turns":
				if s.Username == "" || s.Credential == "" {
					return fail("the hub must hand out TURN credentials with every TURN URL", "%s has no username/credential", raw)
				}
				if c.ice == nil {
					c.ice = &proto.ICEConfig{TTL: ice.TTL, Servers: []proto.ICEServer{s}}
				}
				// Only the URLs of the first credential: every TURN
				// check then uses the same one.
				if s.Username == c.ice.Servers[0].Username {
					c.turnURLs = append(c.turnURLs, iu)
					kinds = append(kinds, iu.name())
				}
			}
		}
	}
	switch {
	case c.stunURL == "" && c.ice == nil:
		return fail("the hub has no ICE servers configured (is it tryst serve?)", "no STUN or TURN URL in %s", u)
	case c.stunURL == "":
		return fail("the hub must list a stun: URL", "no STUN URL in %s", u)
	case c.ice == nil:
		return fail("the hub must list turn: URLs with credentials", "no TURN URL in %s", u)
	}
	return pass("stun %s; turn over %s as %s; ttl %ds", c.stunURL, strings.Join(kinds, ", "),
		c.ice.Servers[0].Username, c.ice.TTL)
}

// credential is the TURN credential checkICE kept.
func (c *checker) credential() (user, pass string) {
	return c.ice.Servers[0].Username, c.ice.Servers[0].Credential
}

// iceURL is a parsed stun:, turn: or turns: URL.
type iceURL struct {
	scheme    string // stun, turn, turns
	transport string // udp, tcp
	hostPort  string
}

// name is the transport as the checks name it: udp, tcp or tls.
func (u iceURL) name() string {
	switch {
	case u.scheme == "turns":
		return "tls"
	case u.transport == "tcp":
		return "tcp"
	}
	return "udp"
}

// parseICEURL parses RFC 7064/7065 URLs: stun:host[:port], turn:host[:port][?transport=udp|tcp], turns:...
func parseICEURL(s string) (iceURL, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return iceURL{}, fmt.Errorf("%q is not an ICE server URL", s)
	}
	u := iceURL{scheme: strings.ToLower(scheme), transport: "udp"}
	rest, query, _ := strings.Cut(rest, "?")
	port := "3478"
	switch u.scheme {
	case "stun", "turn":
	case "stuns", "turns":
		port, u.transport = "5349", "tcp"
	default:
		return iceURL{}, fmt.Errorf("%q: unknown scheme %q", s, scheme)
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return iceURL{}, fmt.Errorf("%q: %w", s, err)
		}
		if t := q.Get("transport"); t != "" {
			u.transport = strings.ToLower(t)
		}
	}
	if host, p, err := net.SplitHostPort(rest); err == nil {
		u.hostPort = net.JoinHostPort(host, p)
	} else {
		u.hostPort = net.JoinHostPort(strings.Trim(rest, "[]"), port)
	}
	if rest == "" || (u.transport != "udp" && u.transport != "tcp") {
		return iceURL{}, fmt.Errorf("%q is not a usable ICE server URL", s)
	}
	return u, nil
}
