// Package hubconn is a client's WebSocket connection to a Tryst hub: it dials
// the hub's /v1/ws, sends proto frames, and reads the hub's frames on a
// goroutine of its own, so that the hub's pings are answered while the caller
// is busy elsewhere and a context that ends a wait does not end the
// connection.
//
// The Go client, tryst doctor, the hub benchmark and the tests use it; it is
// apart from package proto only because it needs a WebSocket library.
package hubconn
