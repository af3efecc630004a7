// Package proto is the hub protocol v1 in Go: the JSON frames exchanged on
// the hub's WebSocket, their type and error-code constants, the ICE servers
// the hub hands out, the room-code alphabet and its normalisation, and how a
// hub URL a person typed becomes the WebSocket URL.
//
// Both ends import it: the hub (package hub) and every client (package
// client, the doctor (internal/doctor) and the benchmarks, the tests). It depends on
// the standard library only, so a client never links the server; a test
// holds both to that. The connection that carries these frames over a
// WebSocket, which needs a WebSocket library, is the sub-package hubconn.
//
// The protocol itself is specified in docs/PROTOCOL.md.
package proto
