// The clock check: TURN REST credentials carry their expiry, so a hub and a
// relay (or a client) with skewed clocks refuse each other's credentials.

package doctor

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxSkew is how far apart two clocks may be before the check fails.
const maxSkew = 30 * time.Second

func (c *checker) checkClock(context.Context) Result {
	user, _ := c.credential()
	return clockCheck(user, c.ice.TTL, c.iceLocal, c.iceDate)
}

// clockCheck compares the issue time of a TURN REST credential (its expiry
// minus the advertised ttl, both on the hub's clock) with the local clock
// and with the HTTP Date header of the same answer.
func clockCheck(username string, ttl int, local, date time.Time) Result {
	ts, _, _ := strings.Cut(username, ":")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || ts == "" {
		return fail("TURN REST usernames are \"<expiry-unix>:<id>\": check the relay's credential scheme",
			"username %q does not start with an expiry", username)
	}
	expiry := time.Unix(sec, 0)
	const ntp = "run NTP (chrony or systemd-timesyncd) on the hub, the relay and this machine: with skewed " +
		"clocks TURN credentials may look expired before they reach the relay"
	if !expiry.After(local) {
		return fail(ntp, "the credential expired %v ago by this machine's clock", local.Sub(expiry).Round(time.Second))
	}
	if ttl <= 0 {
		return pass("credential valid for %v by this machine's clock (no ttl to compare)", expiry.Sub(local).Round(time.Second))
	}
	issued := expiry.Add(-time.Duration(ttl) * time.Second)
	skew := issued.Sub(local) // positive: the hub is ahead
	if skew.Abs() > maxSkew {
		return fail(ntp, "the hub's clock is %s this machine's (credential issued at %s, local time %s)",
			aheadBehind(skew), issued.UTC().Format(time.RFC3339), local.UTC().Format(time.RFC3339))
	}
	detail := fmt.Sprintf("hub and local clocks agree within %v", skew.Abs().Round(time.Second)+time.Second)
	if !date.IsZero() {
		if ds := issued.Sub(date); ds.Abs() > maxSkew {
			return fail("the credential's expiry does not match ttl on the HTTP Date's clock: the credential "+
				"lifetime differs from the advertised ttl (check --turn-ttl), or a proxy with another clock "+
				"sets Date; "+ntp, "credential issued %s the HTTP Date (ttl %ds)", aheadBehind(ds), ttl)
		}
		detail += "; credential consistent with the HTTP Date"
	}
	return pass("%s; credential expires in %v", detail, expiry.Sub(local).Round(time.Second))
}

func aheadBehind(d time.Duration) string {
	if d >= 0 {
		return d.Round(time.Second).String() + " ahead of"
	}
	return (-d).Round(time.Second).String() + " behind"
}
