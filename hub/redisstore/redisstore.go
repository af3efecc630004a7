// Package redisstore is a hub.Store kept in Redis (or Valkey), so that
// several hub nodes behind a load balancer serve the same rooms: a host on
// one node and its guest on another pair, and a member whose node died
// resumes on another. Each step of hub.Store is one Lua script (scripts.go),
// and live deliveries go to the node that holds the connection over Redis
// pub/sub, one channel per node.
//
// What Redis holds is what the in-memory store holds: room codes, the
// members' token identities, the connections attached (node and number),
// offers and answers waiting (sealed by the clients: the hub cannot read
// them), creators' address keys for the per-address budget. No secret: the
// hub keys that sign resume tokens stay with the hubs.
//
// When Redis is unreachable every method fails (the hub answers "try
// again") and Ready reports it, so /readyz turns 503; established
// peer-to-peer connections do not need the hub. Commands reconnect by
// themselves, the node's subscription resubscribes, and the scripts are
// loaded again after a Redis restart; rooms Redis kept (persistence on)
// resume.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tryst-chat/tryst/hub"
)

// Options configure a Store.
type Options struct {
	// URL is redis://HOST:PORT/DB or rediss://… (TLS). It must not carry a
	// password: command lines are visible to every user of the machine.
	URL string
	// Username and Password authenticate (Redis ACL or requirepass); read
	// them from a file or the environment.
	Username, Password string
	// Prefix starts every key and channel (default "tryst:"): several
	// deployments may share one Redis with different prefixes.
	Prefix string
	// TTL is how long a room outlives its last attached member (default
	// 30 min); Limits.UnpairedTTL, a room no guest joined.
	TTL    time.Duration
	Limits hub.StoreLimits
	// Now is the clock of expiry times (default time.Now). Nodes sharing a
	// store need clocks within seconds of each other (NTP).
	Now func() time.Time
	// SweepEvery is how often the janitor removes expired rooms and renews
	// the rooms of this process's connections (default a quarter of the
	// shortest TTL, between 1 s and 1 min; negative: no janitor, the
	// caller calls Sweep and Renew).
	SweepEvery time.Duration
	Logger     *slog.Logger
}

// Store is a hub.Store in Redis. Its methods are safe for concurrent use.
type Store struct {
	rdb    *redis.Client
	prefix string
	ttl    time.Duration
	lim    hub.StoreLimits
	now    func() time.Time
	log    *slog.Logger

	expired  atomic.Uint64
	failures atomic.Uint64 // hub.StoreStats.DeliveryFailures

	mu     sync.Mutex
	nodes  map[string]*node
	closed bool

	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
}

// node is one registered hub: its subscription and the rooms its
// connections are attached to (for the lease).
type node struct {
	id    string
	local hub.Local
	sub   *redis.PubSub
	done  chan struct{}
	rooms map[string]int // room code -> connections of this node attached, guarded by Store.mu
	// live is set while the subscription is known to deliver: from
	// Register, and again once a message the node sent itself has come
	// back through it; cleared when Redis is seen failing (see Ready).
	live atomic.Bool
}

// hello is what Ready publishes to a node's own channel to learn that its
// subscription delivers again.
const hello = `{"k":"hello"}`

// ErrPasswordInURL refuses a URL with a password in it.
var ErrPasswordInURL = errors.New("redisstore: the URL carries a password; give it in a file or the environment instead")

// New connects to Redis, checks that it answers, and returns the store.
func New(ctx context.Context, o Options) (*Store, error) {
	if o.URL == "" {
		return nil, errors.New("redisstore: no URL")
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redisstore: URL: %w", err)
	}
	if _, ok := u.User.Password(); ok {
		return nil, ErrPasswordInURL
	}
	opt, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redisstore: URL: %w", err)
	}
	if o.Username != "" {
		opt.Username = o.Username
	}
	opt.Password = o.Password
	// A hub serves while Redis restarts: fail fast and let the client
	// retry rather than queue behind a dead connection.
	opt.DialTimeout = 2 * time.Second
	opt.ReadTimeout = 2 * time.Second
	opt.WriteTimeout = 2 * time.Second
	opt.MaxRetries = 1
	if o.Prefix == "" {
		o.Prefix = "tryst:"
	}
	if o.TTL <= 0 {
		o.TTL = 30 * time.Minute
	}
	if o.Limits.UnpairedTTL <= 0 || o.Limits.UnpairedTTL > o.TTL {
		o.Limits.UnpairedTTL = o.TTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		rdb: redis.NewClient(opt), prefix: o.Prefix, ttl: o.TTL, lim: o.Limits, now: o.Now, log: o.Logger,
		nodes: make(map[string]*node), stop: make(chan struct{}),
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		_ = s.rdb.Close()
		return nil, fmt.Errorf("redisstore: %s: %w", redactURL(u), err)
	}
	every := o.SweepEvery
	if every == 0 {
		every = min(max(o.Limits.UnpairedTTL/4, time.Second), time.Minute)
	}
	if every > 0 {
		s.done.Go(func() { s.janitor(every) })
	}
	return s, nil
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

func (s *Store) roomKey(code string) string { return s.prefix + "room:" + code }

func (s *Store) args(extra ...any) []any {
	return append([]any{s.prefix, s.now().UnixMilli()}, extra...)
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// unavailable wraps a Redis failure in a sentence for the log, and notes
// that the nodes' subscriptions may have dropped with it (see Ready).
func (s *Store) unavailable(op string, err error) error {
	s.mu.Lock()
	for _, n := range s.nodes {
		n.live.Store(false)
	}
	s.mu.Unlock()
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

func limitError(reply string) error {
	reason, ok := strings.CutPrefix(reply, "limit:")
	if !ok {
		return nil
	}
	wait := time.Minute
	return &hub.LimitError{Reason: reason, RetryAfter: wait}
}

func role(r hub.Role) string {
	if r == hub.Host {
		return "h"
	}
	return "g"
}

// Register implements hub.Store: it subscribes to the node's channel and
// delivers what arrives there to l.
func (s *Store) Register(ctx context.Context, id string, l hub.Local) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return hub.ErrStoreClosed
	}
	if _, ok := s.nodes[id]; ok {
		s.mu.Unlock()
		return fmt.Errorf("redisstore: node %s registered twice", id)
	}
	n := &node{id: id, local: l, done: make(chan struct{}), rooms: make(map[string]int)}
	s.nodes[id] = n
	s.mu.Unlock()
	n.sub = s.rdb.Subscribe(ctx, s.prefix+"node:"+id)
	// Deliveries start once the subscription is in place: a room attached
	// from here on cannot miss its events.
	if _, err := n.sub.Receive(ctx); err != nil {
		_ = n.sub.Close()
		s.mu.Lock()
		delete(s.nodes, id)
		s.mu.Unlock()
		return s.unavailable("subscribe", err)
	}
	n.live.Store(true)
	go s.dispatch(n)
	return nil
}

// Unregister implements hub.Store.
func (s *Store) Unregister(id string) {
	s.mu.Lock()
	n := s.nodes[id]
	delete(s.nodes, id)
	s.mu.Unlock()
	if n != nil {
		_ = n.sub.Close()
		<-n.done
	}
}

// message is what the scripts publish to a node (see scripts.go).
type message struct {
	Kind   string `json:"k"`
	Conn   string `json:"c"`
	Type   string `json:"t"`
	Data   string `json:"d"`
	Reason string `json:"r"`
	Code   string `json:"co"`
	Room   string `json:"room"`
	Role   string `json:"role"`
}

// dispatch hands what arrives on the node's channel to its connections,
// in order.
func (s *Store) dispatch(n *node) {
	defer close(n.done)
	// ChannelWithSubscriptions would also report reconnects; the plain
	// channel resubscribes by itself after a Redis restart.
	for m := range n.sub.Channel(redis.WithChannelSize(1024)) {
		var msg message
		if err := json.Unmarshal([]byte(m.Payload), &msg); err != nil {
			s.failures.Add(1)
			s.log.Warn("redisstore: undecodable node message", "err", err)
			continue
		}
		if msg.Kind == "hello" {
			n.live.Store(true)
			continue
		}
		conn, err := strconv.ParseUint(msg.Conn, 10, 64)
		if err != nil {
			s.failures.Add(1)
			continue
		}
		switch msg.Kind {
		case "ev":
			n.local.Deliver(conn, hub.Event{Type: msg.Type, Data: msg.Data, Reason: msg.Reason, Code: msg.Code})
		case "rep":
			n.local.Replaced(conn)
		case "take":
			s.collect(n, conn, msg.Room, msg.Role)
		}
	}
}

// collect takes the mailbox entry a post announced and hands it to the
// connection, or puts it back when the connection could not take it.
func (s *Store) collect(n *node, conn uint64, code, r string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := takeScript.Run(ctx, s.rdb, []string{s.roomKey(code)}, s.args(r, n.id, strconv.FormatUint(conn, 10))...).Slice()
	if err != nil {
		// It stays in the mailbox: the member gets it when it resumes.
		s.failures.Add(1)
		s.log.Warn("redisstore: collect an offer or answer", "err", err)
		return
	}
	if len(res) < 2 {
		return // stale: the member resumed elsewhere, or it was taken
	}
	entry, _ := res[0].(string)
	ev, ok := decodeEntry(entry)
	if !ok {
		return
	}
	if p, _ := res[1].(int64); p > 0 {
		ev.PairedAfter = time.Duration(p) * time.Millisecond
	}
	if n.local.Deliver(conn, ev) {
		return
	}
	if err := restoreScript.Run(ctx, s.rdb, []string{s.roomKey(code)}, s.args(r, entry)...).Err(); err != nil {
		s.failures.Add(1)
		s.log.Warn("redisstore: put back an offer or answer", "err", err)
	}
}

func decodeEntry(v string) (hub.Event, bool) {
	typ, data, ok := strings.Cut(v, "\n")
	if !ok {
		return hub.Event{}, false
	}
	return hub.Event{Type: typ, Data: data}, true
}

// attached counts one more connection of node id in room code.
func (s *Store) attached(id, code string, delta int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[id]
	if n == nil {
		return
	}
	if n.rooms[code] += delta; n.rooms[code] <= 0 {
		delete(n.rooms, code)
	}
}

// Create implements hub.Store.
func (s *Store) Create(ctx context.Context, m hub.Member, at hub.Attach) error {
	res, err := createScript.Run(ctx, s.rdb, []string{s.roomKey(m.Room)}, s.args(
		m.Room, m.Since, strconv.FormatUint(m.Nonce, 10), at.Node, strconv.FormatUint(at.Conn, 10), at.Addr.String(),
		s.lim.MaxIdleRoomsPerIP, s.lim.MaxRooms, ms(s.ttl), ms(s.lim.UnpairedTTL))...).Text()
	if err != nil {
		return s.unavailable("create", err)
	}
	switch {
	case res == "taken":
		return hub.ErrCodeTaken
	case res != "ok":
		return limitError(res)
	}
	s.attached(at.Node, m.Room, 1)
	return nil
}

// Join implements hub.Store.
func (s *Store) Join(ctx context.Context, m hub.Member, at hub.Attach) ([]hub.Event, error) {
	res, err := joinScript.Run(ctx, s.rdb, []string{s.roomKey(m.Room)}, s.args(
		m.Room, m.Since, strconv.FormatUint(m.Nonce, 10), at.Node, strconv.FormatUint(at.Conn, 10),
		ms(s.ttl), ms(s.lim.UnpairedTTL))...).Slice()
	if err != nil {
		return nil, s.unavailable("join", err)
	}
	switch res[0] {
	case "none":
		return nil, hub.ErrNoSuchRoom
	case "full":
		return nil, hub.ErrRoomFull
	}
	s.attached(at.Node, m.Room, 1)
	return pending(res[1], 0), nil
}

func pending(v any, paired int64) []hub.Event {
	entry, _ := v.(string)
	ev, ok := decodeEntry(entry)
	if !ok {
		return nil
	}
	if paired > 0 {
		ev.PairedAfter = time.Duration(paired) * time.Millisecond
	}
	return []hub.Event{ev}
}

// Resume implements hub.Store.
func (s *Store) Resume(ctx context.Context, req hub.ResumeRequest, at hub.Attach) (hub.ResumeInfo, error) {
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	res, err := resumeScript.Run(ctx, s.rdb, []string{s.roomKey(req.Room)}, s.args(
		req.Room, role(req.Role), req.Since, strconv.FormatUint(req.Nonce, 10), at.Node, strconv.FormatUint(at.Conn, 10),
		at.Addr.String(), flag(req.Recreate), flag(req.Paired), s.lim.MaxRooms, ms(s.ttl), ms(s.lim.UnpairedTTL))...).Slice()
	if err != nil {
		return hub.ResumeInfo{}, s.unavailable("resume", err)
	}
	kind, _ := res[0].(string)
	switch {
	case kind == "none":
		return hub.ResumeInfo{}, hub.ErrNoSuchRoom
	case strings.HasPrefix(kind, "limit:"):
		return hub.ResumeInfo{}, limitError(kind)
	}
	s.attached(at.Node, req.Room, 1)
	info := hub.ResumeInfo{Room: req.Room, Role: req.Role}
	if kind == "recreated" {
		info.Recreated = true
		info.Paired = res[1] == int64(1)
		return info, nil
	}
	info.PeerPresent = res[1] == int64(1)
	info.Paired = res[2] == int64(1)
	paired, _ := res[4].(int64)
	info.Pending = pending(res[3], paired)
	return info, nil
}

// Post implements hub.Store.
func (s *Store) Post(ctx context.Context, code string, from hub.Role, ev hub.Event) error {
	res, err := postScript.Run(ctx, s.rdb, []string{s.roomKey(code)}, s.args(
		code, role(from), ev.Type, ev.Data, s.lim.MaxMailboxBytes)...).Text()
	if err != nil {
		return s.unavailable("post", err)
	}
	switch res {
	case "ok":
		return nil
	case "none":
		return hub.ErrNoSuchRoom
	}
	return limitError(res)
}

// Detach implements hub.Store.
func (s *Store) Detach(ctx context.Context, code string, r hub.Role, at hub.Ref) error {
	s.attached(at.Node, code, -1)
	err := detachScript.Run(ctx, s.rdb, []string{s.roomKey(code)}, s.args(
		code, role(r), at.Node, strconv.FormatUint(at.Conn, 10), ms(s.ttl), ms(s.lim.UnpairedTTL))...).Err()
	if err != nil {
		return s.unavailable("detach", err)
	}
	return nil
}

// Leave implements hub.Store. The notice is made here (hub.ClosedEvent)
// and only carried by the script, so that both stores tell clients the
// same.
func (s *Store) Leave(ctx context.Context, code string, r hub.Role, why hub.LeaveReason) error {
	s.mu.Lock()
	for _, n := range s.nodes {
		delete(n.rooms, code)
	}
	s.mu.Unlock()
	ev := hub.ClosedEvent(r, why)
	if err := leaveScript.Run(ctx, s.rdb, []string{s.roomKey(code)}, s.args(code, role(r), ev.Code, ev.Reason)...).Err(); err != nil {
		return s.unavailable("leave", err)
	}
	return nil
}

// TTL implements hub.Store.
func (s *Store) TTL() time.Duration { return s.ttl }

// Stats implements hub.Store.
func (s *Store) Stats(ctx context.Context) (hub.StoreStats, error) {
	pipe := s.rdb.Pipeline()
	rooms := pipe.ZCard(ctx, s.prefix+"rooms")
	mailbox := pipe.Get(ctx, s.prefix+"mailbox")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return hub.StoreStats{}, s.unavailable("stats", err)
	}
	mb, _ := mailbox.Int()
	return hub.StoreStats{Rooms: int(rooms.Val()), MailboxBytes: mb, Expired: s.expired.Load(), DeliveryFailures: s.failures.Load()}, nil
}

// Ready implements hub.Store: Redis answers a PING, and every node's
// subscription delivers. After Redis has been down, commands work again a
// little before the subscriptions have reconnected and resubscribed (by
// themselves), and what the scripts publish in between is lost: a member
// resuming then was never told to its partner (peer-back). So once Redis
// has been seen failing, a node is ready again only when a message it
// publishes to itself has come back through its subscription.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return s.unavailable("ping", err)
	}
	s.mu.Lock()
	var waiting []string
	for id, n := range s.nodes {
		if !n.live.Load() {
			waiting = append(waiting, id)
		}
	}
	s.mu.Unlock()
	for _, id := range waiting {
		if err := s.rdb.Publish(ctx, s.prefix+"node:"+id, hello).Err(); err != nil {
			return s.unavailable("publish", err)
		}
	}
	if len(waiting) > 0 {
		return fmt.Errorf("redisstore: waiting for the subscription of node %s to deliver again", waiting[0])
	}
	return nil
}

// janitor sweeps and renews every so often.
func (s *Store) janitor(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		if err := s.Renew(ctx); err != nil {
			s.log.Warn("redisstore: renew", "err", err)
		}
		if _, err := s.Sweep(ctx); err != nil {
			s.log.Warn("redisstore: sweep", "err", err)
		}
		cancel()
	}
}

// Sweep removes the rooms past their expiry and returns how many. Any
// node may sweep any room: the script removes a room only if it is still
// expired, so two sweeping at once remove it once.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	now := s.now().UnixMilli()
	removed := 0
	for {
		codes, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
			Key: s.prefix + "rooms", ByScore: true, Start: "-inf", Stop: strconv.FormatInt(now, 10), Count: 256,
		}).Result()
		if err != nil {
			return removed, s.unavailable("sweep", err)
		}
		n := 0
		for _, code := range codes {
			ok, err := sweepScript.Run(ctx, s.rdb, []string{s.roomKey(code)}, s.prefix, now, code).Int()
			if err != nil {
				return removed, s.unavailable("sweep", err)
			}
			n += ok
		}
		removed += n
		s.expired.Add(uint64(n))
		if len(codes) < 256 || n == 0 {
			return removed, nil
		}
	}
}

// Renew pushes forward the expiry of the rooms this process's
// connections are attached to: their lease. A room whose node died is no
// longer renewed and expires a TTL later, unless its members resume
// elsewhere.
func (s *Store) Renew(ctx context.Context) error {
	s.mu.Lock()
	batches := map[string][]string{}
	for id, n := range s.nodes {
		for code := range n.rooms {
			batches[id] = append(batches[id], s.roomKey(code))
		}
	}
	s.mu.Unlock()
	for id, keys := range batches {
		for len(keys) > 0 {
			k := keys[:min(len(keys), 500)]
			keys = keys[len(k):]
			if err := renewScript.Run(ctx, s.rdb, k, s.prefix, s.now().UnixMilli(), id, ms(s.ttl), ms(s.lim.UnpairedTTL)).Err(); err != nil {
				return s.unavailable("renew", err)
			}
		}
	}
	return nil
}

// Close implements hub.Store: it stops the janitor, ends the nodes'
// subscriptions and closes the connections to Redis. It leaves the rooms in
// Redis: other nodes serve them.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.done.Wait()
		s.mu.Lock()
		s.closed = true
		nodes := s.nodes
		s.nodes = map[string]*node{}
		s.mu.Unlock()
		for _, n := range nodes {
			_ = n.sub.Close()
			<-n.done
		}
		_ = s.rdb.Close()
	})
	return nil
}

var _ hub.Store = (*Store)(nil)
