// Package hub is Tryst's WebSocket rendezvous hub.
//
// A host opens a room and gets a room code; a guest joins with the code. The
// two exchange WebRTC offers, answers and ICE candidates through the hub, which
// treats them as opaque blobs (clients seal them end to end), keeps an offer or
// answer only until it is delivered, and never stores candidates. Chat and file
// data never pass through the hub.
//
// The wire protocol (JSON text frames on /v1/ws) is specified in
// docs/PROTOCOL.md; its frames and constants are package proto, which the
// clients share. Room state and routing sit behind the Store interface:
// MemStore serves the hubs of one process, and hub/redisstore lets several
// hub nodes share rooms, each node receiving its connections' deliveries
// through the Local it registers; hub/storetest is the suite both pass.
package hub
