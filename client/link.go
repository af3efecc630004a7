package client

import (
	"fmt"
	"sync"
	"time"

	"github.com/tryst-chat/tryst/client/e2e"
	"github.com/tryst-chat/tryst/proto"
)

// link is a connection to the other member as chat and file transfer see
// it: the session goroutine hands them the current one, tests an in-memory
// one. Only the session goroutine (or a test's loop standing in for it)
// calls its methods, and none of them blocks.
type link interface {
	// send sends one message; payload may be reused once it returns. An
	// error means the link is gone: the session learns it from the link's
	// transport and detaches it.
	send(typ byte, payload []byte) error
	// full reports whether the bulk channel holds as much file data as it
	// should now (see pacer); a bulk sender then waits for lowWater.
	full() bool
	// lowWater is signalled when the bulk channel's buffer drained to half
	// of what full allows, after having been above that; a bulk sender
	// waits for it.
	lowWater() <-chan struct{}
	// close ends the link, saying why.
	close(err error)
}

// transport carries the sealed frames of one connection on its two data
// channels, control and bulk (proto.ControlChannel, proto.BulkChannel): a
// WebRTC connection (peer) in production, a pipe in tests. Its own
// goroutines (pion's) only record what happened, in the channels below, and
// the session goroutine reads them: nothing flows from a transport into the
// client by a call.
type transport interface {
	// frames delivers the frames received on channel ch, in order, through
	// an inbox of its own: the session stops taking bulk frames while its
	// disk is behind without stopping control.
	frames(ch int) <-chan []byte
	// opened is closed once frames can be sent on both channels.
	opened() <-chan struct{}
	// lowWater: see link (the bulk channel's).
	lowWater() <-chan struct{}
	// done is closed when the transport failed or was closed; err then
	// says why.
	done() <-chan struct{}
	err() error
	// fail ends the transport; the first error is the one kept.
	fail(err error)
	// sendFrame sends one frame on channel ch; frame may be reused once it
	// returns.
	sendFrame(ch int, frame []byte) error
	// bufferedAmount reports the bytes sent on the bulk channel and not yet
	// acknowledged by the other side: what flow control paces file data by.
	bufferedAmount() uint64
	// setLowWater sets the buffered amount at or below which lowWater is
	// signalled.
	setLowWater(n uint64)
	// pathRTT is the path's smoothed round-trip time as SCTP measures it,
	// or 0 while unknown.
	pathRTT() time.Duration
	// path describes the network path: "direct (host)", "relay", …
	path() string
}

// channelOf is the data channel a message type travels on: file data
// (file-chunk, and file-done, which must come after the file's last chunk)
// on bulk, everything else on control, so that no chat message, ping or
// file handshake waits behind megabytes of file data.
func channelOf(typ byte) int {
	if typ == proto.MsgFileChunk || typ == proto.MsgFileDone {
		return proto.BulkChannel
	}
	return proto.ControlChannel
}

// Inbox sizes, in frames. Control frames are small (a chat message is at
// most proto.MaxChatText); the bulk inbox holds 8 MiB of default-size
// chunks, enough to ride out a moment of work on the session goroutine
// without stopping the data channel.
const (
	controlInboxSize = 64
	bulkInboxSize    = 32
)

// inbox is a bounded queue from a transport's goroutines to the session
// goroutine, one per channel.
//
// When it is full, push blocks: the data channel's reader stops, SCTP's
// receive window closes, and the other side's buffered amount rises until
// its flow control pauses it (backpressure). Nothing queues without bound,
// and nothing is dropped while the transport lives. Once it is done, a
// blocked push gives up and the session ignores what is left: the frames
// belong to a dead connection, on which no chat message was acknowledged
// (each is sent again on the next connection) and no file chunk past the
// last acknowledgement counts (the transfer resumes from it).
type inbox struct {
	ch   chan []byte
	done <-chan struct{}
}

func newInbox(done <-chan struct{}, size int) inbox {
	return inbox{ch: make(chan []byte, size), done: done}
}

// newInboxes returns a transport's control and bulk inboxes, indexed by
// channel number.
func newInboxes(done <-chan struct{}) [2]inbox {
	var in [2]inbox
	in[proto.ControlChannel] = newInbox(done, controlInboxSize)
	in[proto.BulkChannel] = newInbox(done, bulkInboxSize)
	return in
}

// push queues frame, waiting while the inbox is full; it reports false if
// the transport ended first.
func (q inbox) push(frame []byte) bool {
	select {
	case q.ch <- frame:
		return true
	case <-q.done:
		return false
	}
}

// notify records a level-triggered event (the buffered amount went low, a
// file was queued) in a channel of one: one already pending says all that
// a second would, so a full channel drops the duplicate.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// latch keeps the first error that ends something (a transport, the whole
// session) and closes a channel for whoever waits on it.
type latch struct {
	once sync.Once
	ch   chan struct{}
	err  error
}

func newLatch() *latch { return &latch{ch: make(chan struct{})} }

func (l *latch) set(err error) {
	l.once.Do(func() {
		l.err = err
		close(l.ch)
	})
}

func (l *latch) done() <-chan struct{} { return l.ch }

// get returns the error, or nil while none was set.
func (l *latch) get() error {
	select {
	case <-l.ch:
		return l.err
	default:
		return nil
	}
}

// conn is one connection as the session goroutine uses it: a transport,
// the connection's keys (docs/PROTOCOL.md, "Per-connection keys"), a
// sealer and opener per channel, and key confirmation. It is a link. Only
// the session goroutine uses it, so it has no lock.
type conn struct {
	t     transport
	keys  *e2e.Session
	chans [2]*e2e.Channel // indexed by channel number
	role  e2e.Role

	confirmSent bool // this side's confirmation went out as control frame 0
	confirmed   bool // the other side's confirmation checked out
	pace        *pacer
	lowSet      uint64 // the low-water mark last set on the transport
	// sealBuf is reused for every frame: a transport copies a frame before
	// sendFrame returns (pion's SCTP into its own chunks), so one buffer
	// per connection saves allocating a whole chunk per frame.
	sealBuf []byte
}

func newConn(t transport, keys *e2e.Session, role e2e.Role) *conn {
	c := &conn{t: t, keys: keys, role: role, pace: newPacer()}
	for _, ch := range []int{proto.ControlChannel, proto.BulkChannel} {
		c.chans[ch] = keys.Channel(uint32(ch))
	}
	return c
}

// send seals and sends one message on its channel, after this side's
// confirmation.
func (c *conn) send(typ byte, payload []byte) error {
	if err := c.confirm(); err != nil {
		return err
	}
	return c.seal(channelOf(typ), typ, payload)
}

// confirm sends this side's key confirmation, once, as the first frame on
// control. The session calls it when the transport opens, and send calls it
// first: pion reports the opening on a goroutine of its own, so the other
// side's confirmation, and with it this side's first message, can come
// before the session hears of the opening.
func (c *conn) confirm() error {
	if c.confirmSent {
		return nil
	}
	c.confirmSent = true
	return c.seal(proto.ControlChannel, proto.MsgConfirm, c.keys.Confirmation(c.role))
}

// seal sends one sealed frame on channel ch. A frame that failed to go out
// still used up its sequence number, so nothing sealed after it would open
// at the other side: a failed send fails the transport, and a reconnect
// follows.
func (c *conn) seal(ch int, typ byte, payload []byte) error {
	c.sealBuf = c.chans[ch].SealTo(c.sealBuf[:0], typ, payload)
	if err := c.t.sendFrame(ch, c.sealBuf); err != nil {
		err = fmt.Errorf("send: %w", err)
		c.t.fail(err)
		return err
	}
	if ch == proto.BulkChannel {
		c.pace.sentBytes(len(c.sealBuf))
	}
	return nil
}

// full asks the pacer for the bulk channel's limit now, and moves the
// transport's low-water mark to half of it, so that a waiting sender
// resumes with half a limit still buffered and the path never idles.
func (c *conn) full() bool {
	buffered := c.t.bufferedAmount()
	limit := c.pace.observe(time.Now(), buffered, c.t.pathRTT)
	if low := limit / 2; low != c.lowSet {
		c.lowSet = low
		c.t.setLowWater(low)
	}
	return buffered > limit
}

func (c *conn) lowWater() <-chan struct{} { return c.t.lowWater() }
func (c *conn) close(err error)           { c.t.fail(err) }
