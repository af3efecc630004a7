package doctor

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// TestDoctorPermissionRefused: both ways a relay refuses a peer by policy
// (403, or an error response without an error code) are explained; a
// refused public peer is a failure, a refused local one a skip.
func TestDoctorPermissionRefused(t *testing.T) {
	forbidden := &stun.TurnError{StunMessageType: stun.NewType(stun.MethodCreatePermission, stun.ClassErrorResponse),
		ErrorCodeAttr: stun.ErrorCodeAttribute{Code: stun.CodeForbidden}}
	noCode := fmt.Errorf("%s", stun.NewType(stun.MethodCreatePermission, stun.ClassErrorResponse))
	public := netip.MustParseAddrPort("203.0.113.7:40000")
	publicRelay := netip.MustParseAddrPort("198.51.100.1:50000")
	loopback := netip.MustParseAddrPort("127.0.0.1:40000")
	for _, tc := range []struct {
		name          string
		relayed, peer netip.AddrPort
		err           error
		want          Status
		detail, hint  string
	}{
		{"403, public", publicRelay, public, forbidden, Fail, "forbidden by the relay's peer policy (403)", "--turn-deny-peer"},
		{"no code, public", publicRelay, public, noCode, Fail, "without an error code", "--turn-allow-peer"},
		{"403, loopback", loopback, loopback, forbidden, Skip, "forbidden by the relay's peer policy", ""},
		{"no code, loopback", loopback, loopback, noCode, Skip, "refuses loopback peers by policy", ""},
		{"403, loopback relay", loopback, public, forbidden, Skip, "--allow-loopback-peers", ""},
		{"other error", publicRelay, public, errors.New("transaction timed out"), Fail, "timed out", "relay's log"},
	} {
		r := permissionRefused(tc.relayed, tc.peer, tc.err)
		if r.Status != tc.want || !strings.Contains(r.Detail, tc.detail) || !strings.Contains(r.Hint, tc.hint) {
			t.Errorf("%s: %+v", tc.name, r)
		}
	}
}

func TestDoctorClock(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	user := strconv.FormatInt(now.Add(600*time.Second).Unix(), 10) + ":x"
	cases := []struct {
		name        string
		local, date time.Time
		ttl         int
		want        Status
		mention     string
	}{
		{"in sync", now, now, 600, Pass, "consistent"},
		{"local clock behind", now.Add(-2 * time.Minute), now, 600, Fail, "2m0s ahead of"},
		{"local clock ahead, credential expired", now.Add(11 * time.Minute), now, 600, Fail, "expired"},
		{"Date from another clock", now, now.Add(-10 * time.Minute), 600, Fail, "HTTP Date"},
		{"no Date header", now.Add(time.Second), time.Time{}, 600, Pass, "agree"},
	}
	for _, tc := range cases {
		r := clockCheck(user, tc.ttl, tc.local, tc.date)
		if r.Status != tc.want || !strings.Contains(r.Detail, tc.mention) {
			t.Errorf("%s: %+v", tc.name, r)
		}
		if r.Status == Fail && !strings.Contains(r.Hint, "NTP") {
			t.Errorf("%s: hint %q", tc.name, r.Hint)
		}
	}
}

// TestDoctorPublicAddr pins the classifier's difference from turnserver's
// peer filter: the documentation networks count as public here.
func TestDoctorPublicAddr(t *testing.T) {
	for s, want := range map[string]bool{
		"203.0.113.7": true, "198.51.100.1": true, "8.8.8.8": true, "2001:db8::1": true, "::ffff:203.0.113.7": true,
		"127.0.0.1": false, "10.9.8.7": false, "192.168.1.1": false, "100.64.0.1": false, "169.254.169.254": false,
		"0.0.0.0": false, "fd00::1": false, "fe80::1": false, "::1": false,
	} {
		if got := isPublicAddr(netip.MustParseAddr(s)); got != want {
			t.Errorf("isPublicAddr(%s) = %v, want %v", s, got, want)
		}
	}
}

// TestDoctorDefaultTimeout: a zero Timeout is DefaultTimeout.
func TestDoctorDefaultTimeout(t *testing.T) {
	c, err := newChecker(Config{Hub: "127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if c.cfg.Timeout != DefaultTimeout || c.httpc.Timeout != DefaultTimeout || c.report.Hub != "http://127.0.0.1:8080" {
		t.Errorf("timeout %v, http %v, hub %q", c.cfg.Timeout, c.httpc.Timeout, c.report.Hub)
	}
}
