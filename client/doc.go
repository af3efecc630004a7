// Package client is Tryst's Go client: it meets a peer through a hub, opens
// an end-to-end encrypted WebRTC connection (direct, or relayed through
// TURN) with two data channels, control for chat, keepalive and the file
// handshake, bulk for file data, and carries chat messages and files over
// them, surviving reconnects.
//
// Work flows one way. pion's callbacks only record what happened: a frame
// goes into its channel's bounded inbox (a full inbox stops that channel's
// reader, so a slow side slows the other down instead of queueing without
// bound), everything else into level signals. One session goroutine
// owns the conversation: it opens frames, keeps the keepalive, and drives
// chat and the file-transfer state machines, which answer through a link.
// The hub loop (Run's goroutine) owns the hub session and each connection's
// lifecycle and hands connections to the session goroutine; disk I/O runs on
// a goroutine per transfer and direction, so neither the session nor the
// keepalive ever waits for the disk.
//
// The wire protocol and the cryptography are specified in docs/PROTOCOL.md;
// the cryptographic primitives live in package e2e.
package client
