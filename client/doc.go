// Package client is Tryst's Go client: it meets a peer through a hub, opens
// an end-to-end encrypted WebRTC data channel (direct, or relayed through
// TURN), and carries chat messages and files over it, surviving reconnects.
//
// The wire protocol and the cryptography are specified in docs/PROTOCOL.md;
// the cryptographic primitives live in package e2e.
package client
