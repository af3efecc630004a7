// Package turnserver runs Tryst's embedded STUN/TURN relay on top of
// github.com/pion/turn/v4.
//
// It adds what a relay reachable from the Internet needs and pion leaves to
// its caller:
//
//   - ephemeral credentials in the TURN REST API scheme used by coturn's
//     use-auth-secret (username "<expiry-unix>:<id>", password
//     base64(HMAC-SHA1(secret, username))), with several secrets at once so
//     they can be rotated without dropping live allocations;
//   - a peer filter that refuses, by default, to relay to loopback, private,
//     link-local, metadata, multicast and reserved addresses, including their
//     IPv4-mapped, 6to4, NAT64 and IPv4-compatible IPv6 spellings;
//   - quotas: allocations per user and per server, a per-source-IP token
//     bucket on unauthenticated and failed requests, and byte-rate caps per
//     allocation and in total;
//   - live Prometheus metrics (see metrics.TURN);
//   - several SO_REUSEPORT UDP sockets so the kernel spreads clients over
//     cores;
//   - on Linux, an epoll data plane that forwards ChannelData itself, with
//     recvmmsg and without pion's goroutine per allocation, and hands
//     everything else to pion (internal/dataplane explains why; the Server
//     reaches it through the engine interface in engine.go).
//
// New opens every socket and starts serving; Close stops it and waits for its
// goroutines. See docs/TURN.md for the operator's view.
package turnserver
