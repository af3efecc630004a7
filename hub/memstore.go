package hub

import (
	"context"
	"hash/maphash"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tryst-chat/tryst/proto"
)

// MemStore is the Store of one process: rooms live in its memory, and the
// hubs of that process (usually one) may share it. Rooms are spread over
// shards by code, each under its own mutex; every method works on one room
// and is one critical section of that room's shard, which makes it the
// atomic step that Store names. One mutex for every room was the hub's
// point of contention (issue 15: pairings per CPU-second fell by a quarter
// from 2 to 8 cores, most of the wait on that mutex while a delivery was
// encoded under it). The node-wide budgets (rooms, mailbox bytes, idle
// rooms per address) are kept beside the shards: atomics, and a small
// mutex for the per-address counts that no other lock is taken under.
type MemStore struct {
	ttl time.Duration
	lim StoreLimits
	now func() time.Time

	seed   maphash.Seed
	shards [memShards]memShard

	nodesMu sync.Mutex                       // serialises the copies of nodes
	nodes   atomic.Pointer[map[string]Local] // copied on write: registering is rare

	rooms   atomic.Int64 // rooms held, for MaxRooms and Stats
	mailbox atomic.Int64 // bytes of data in mailboxes
	expired atomic.Uint64
	closed  atomic.Bool

	// idleMu guards idle; no other lock is taken while it is held.
	idleMu sync.Mutex
	idle   map[netip.Addr]int // rooms with nobody connected, by creator's address

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// memShards is the number of shards: enough that hubs on many cores rarely
// meet on one, few enough that a sweep visits them all cheaply.
const memShards = 64

type memShard struct {
	mu    sync.Mutex
	rooms map[string]*memRoom
	_     [48]byte // keeps two shards' mutexes off one cache line
}

type memRoom struct {
	code    string
	members [3]memMember // indexed by Role
	// mailbox holds, per recipient role, the offer or answer that arrived
	// while that member was absent.
	mailbox   [3]*Event
	joinedAt  time.Time
	paired    bool
	idleSince time.Time  // when the last member detached; zero while attached
	owner     netip.Addr // the creator's address (Attach.Addr)
	recreated bool       // recreated from a resume token
	idle      bool       // counted in MemStore.idle
	// joinedLate: the guest slot was taken by a join after the room was
	// recreated from a host token that did not know of a guest, so it
	// yields to a guest that joined earlier (see Store.Resume).
	joinedLate bool
}

// memMember is a member slot: free (a guest slot nobody joined), reserved
// (taken, holder unknown: recreated for the other member's token), or
// held by one membership.
type memMember struct {
	taken    bool
	known    bool   // holder is set
	holder   Member // the membership that holds the slot
	attached bool   // at names the connection attached for it
	at       Ref
}

// NewMemStore returns an in-memory store whose rooms expire once nobody has
// been attached to them for ttl. now may be nil (time.Now). It runs one
// janitor goroutine, stopped by Close.
func NewMemStore(ttl time.Duration, now func() time.Time) *MemStore {
	return NewMemStoreWithLimits(ttl, now, StoreLimits{})
}

// NewMemStoreWithLimits is NewMemStore with budgets (see StoreLimits).
func NewMemStoreWithLimits(ttl time.Duration, now func() time.Time, lim StoreLimits) *MemStore {
	if now == nil {
		now = time.Now
	}
	if lim.UnpairedTTL <= 0 || lim.UnpairedTTL > ttl {
		lim.UnpairedTTL = ttl
	}
	s := &MemStore{
		ttl:  ttl,
		lim:  lim,
		idle: make(map[netip.Addr]int),
		now:  now,
		seed: maphash.MakeSeed(),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for i := range s.shards {
		s.shards[i].rooms = make(map[string]*memRoom)
	}
	s.nodes.Store(&map[string]Local{})
	go s.janitor()
	return s
}

func (s *MemStore) janitor() {
	defer close(s.done)
	// Sweeping a few times per TTL bounds how long an expired room lingers
	// without costing anything noticeable.
	every := s.lim.UnpairedTTL / 4
	if every < time.Second {
		every = time.Second
	}
	if every > time.Minute {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// Sweep removes the rooms that have been idle for the TTL (the shorter
// UnpairedTTL for a room no guest ever joined). The janitor calls it
// periodically; it is exported for tests that drive the clock.
func (s *MemStore) Sweep() {
	now := s.now()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for code, r := range sh.rooms {
			if !r.idleSince.IsZero() && now.Sub(r.idleSince) >= s.ttlOf(r) {
				s.removeLocked(sh, code, r)
				s.expired.Add(1)
			}
		}
		sh.mu.Unlock()
	}
}

// shard is the shard that holds the room code.
func (s *MemStore) shard(code string) *memShard {
	return &s.shards[maphash.String(s.seed, code)%memShards]
}

// lock locks the shard of code and returns it with the room, if held.
func (s *MemStore) lock(code string) (*memShard, *memRoom) {
	sh := s.shard(code)
	sh.mu.Lock()
	return sh, sh.rooms[code]
}

func (s *MemStore) ttlOf(r *memRoom) time.Duration {
	if r.joinedAt.IsZero() {
		return s.lim.UnpairedTTL
	}
	return s.ttl
}

// addMailbox changes the bytes counted in mailboxes by n.
func (s *MemStore) addMailbox(n int) {
	if n != 0 {
		s.mailbox.Add(int64(n))
	}
}

// growMailbox counts n more bytes in mailboxes unless that would pass max
// (0: no budget). Two posts in different shards cannot both squeeze past
// the budget.
func (s *MemStore) growMailbox(n, max int) bool {
	if max <= 0 || n <= 0 {
		s.addMailbox(n)
		return true
	}
	for {
		cur := s.mailbox.Load()
		if cur+int64(n) > int64(max) {
			return false
		}
		if s.mailbox.CompareAndSwap(cur, cur+int64(n)) {
			return true
		}
	}
}

// reserveRoom counts one more room unless that would pass MaxRooms.
func (s *MemStore) reserveRoom() bool {
	max := int64(s.lim.MaxRooms)
	for {
		n := s.rooms.Load()
		if max > 0 && n >= max {
			return false
		}
		if s.rooms.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// TTL implements Store.
func (s *MemStore) TTL() time.Duration { return s.ttl }

// Stats implements Store.
func (s *MemStore) Stats(context.Context) (StoreStats, error) {
	return StoreStats{Rooms: int(s.rooms.Load()), MailboxBytes: int(s.mailbox.Load()), Expired: s.expired.Load()}, nil
}

// Ready implements Store: an in-memory store is ready until it is closed.
func (s *MemStore) Ready(context.Context) error {
	if s.closed.Load() {
		return ErrStoreClosed
	}
	return nil
}

// Register implements Store.
func (s *MemStore) Register(_ context.Context, node string, l Local) error {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	if s.closed.Load() {
		return ErrStoreClosed
	}
	nodes := maps.Clone(*s.nodes.Load())
	nodes[node] = l
	s.nodes.Store(&nodes)
	return nil
}

// Unregister implements Store.
func (s *MemStore) Unregister(node string) {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	nodes := maps.Clone(*s.nodes.Load())
	delete(nodes, node)
	s.nodes.Store(&nodes)
}

// local is the registered node that m's connection lives on, if any.
func (s *MemStore) local(m *memMember) Local {
	if !m.attached {
		return nil
	}
	return (*s.nodes.Load())[m.at.Node]
}

// deliverLocked hands ev to the connection attached in m, if any.
func (s *MemStore) deliverLocked(m *memMember, ev Event) bool {
	l := s.local(m)
	return l != nil && l.Deliver(m.at.Conn, ev)
}

// setIdle records whether anybody is connected to r, for the per-address
// count of idle rooms.
func (s *MemStore) setIdle(r *memRoom, idle bool) {
	if r.idle == idle {
		return
	}
	r.idle = idle
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if idle {
		s.idle[r.owner]++
		return
	}
	if s.idle[r.owner] <= 1 {
		delete(s.idle, r.owner)
	} else {
		s.idle[r.owner]--
	}
}

// Len reports the number of rooms.
func (s *MemStore) Len() int { return int(s.rooms.Load()) }

// removeLocked drops r, held by sh (locked).
func (s *MemStore) removeLocked(sh *memShard, code string, r *memRoom) {
	delete(sh.rooms, code)
	s.rooms.Add(-1)
	s.setIdle(r, false)
	for i, ev := range r.mailbox {
		if ev != nil {
			s.addMailbox(-len(ev.Data))
			r.mailbox[i] = nil
		}
	}
}

// Create implements Store.
func (s *MemStore) Create(_ context.Context, m Member, at Attach) error {
	code := m.Room
	sh, r := s.lock(code)
	defer sh.mu.Unlock()
	if s.closed.Load() {
		return ErrStoreClosed
	}
	if r != nil {
		return ErrCodeTaken
	}
	owner := at.Addr
	if max := s.lim.MaxIdleRoomsPerIP; max > 0 && s.idleRooms(owner) >= max {
		// One of them expires within UnpairedTTL at the latest, unless
		// somebody comes back to it.
		return &LimitError{Reason: LimitIdleRooms, RetryAfter: s.lim.UnpairedTTL}
	}
	if !s.reserveRoom() {
		return &LimitError{Reason: LimitRooms, RetryAfter: time.Minute}
	}
	r = &memRoom{code: code, owner: owner}
	r.members[Host] = memMember{taken: true, known: true, holder: m, attached: true, at: at.Ref}
	sh.rooms[code] = r
	return nil
}

// idleRooms is how many rooms created from addr have nobody connected.
func (s *MemStore) idleRooms(addr netip.Addr) int {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	return s.idle[addr]
}

// Join implements Store.
func (s *MemStore) Join(_ context.Context, m Member, at Attach) ([]Event, error) {
	sh, r := s.lock(m.Room)
	defer sh.mu.Unlock()
	if r == nil {
		return nil, ErrNoSuchRoom
	}
	if r.members[Guest].taken {
		return nil, ErrRoomFull
	}
	r.members[Guest] = memMember{taken: true, known: true, holder: m, attached: true, at: at.Ref}
	r.joinedLate = r.recreated
	r.joinedAt = s.now()
	r.idleSince = time.Time{}
	s.setIdle(r, false)
	s.deliverLocked(&r.members[Host], Event{Type: proto.TypePeerJoined})
	return s.takeLocked(r, Guest), nil
}

// takeLocked empties role's mailbox: the hub keeps an offer or answer only
// until it is delivered.
func (s *MemStore) takeLocked(r *memRoom, role Role) []Event {
	ev := r.mailbox[role]
	if ev == nil {
		return nil
	}
	r.mailbox[role] = nil
	s.addMailbox(-len(ev.Data))
	if role == Host && ev.Type == proto.TypeAnswer {
		ev.PairedAfter = s.pairing(r)
		r.paired = true
	}
	return []Event{*ev}
}

// Resume implements Store.
func (s *MemStore) Resume(_ context.Context, req ResumeRequest, at Attach) (ResumeInfo, error) {
	sh, r := s.lock(req.Room)
	defer sh.mu.Unlock()
	if r == nil {
		if !req.Recreate {
			return ResumeInfo{}, ErrNoSuchRoom
		}
		return s.recreateLocked(sh, req, at)
	}
	m := &r.members[req.Role]
	switch {
	case m.known && m.holder.sameHolder(req.Member):
	case !m.known:
		// A slot reserved at recreation, or a guest slot nobody has
		// joined since: the token proves this member held it before.
		if !m.taken {
			r.joinedAt = s.now()
			r.paired = true // paired before the hub lost the room
		}
	case req.Role == Guest && r.joinedLate && req.Since < m.holder.Since:
		// The slot was taken by a join the recreated room could not
		// refuse; the guest that joined first takes it back.
		r.joinedLate = false
	default:
		return ResumeInfo{}, ErrNoSuchRoom
	}
	if m.attached && m.at != at.Ref {
		if l := s.local(m); l != nil {
			l.Replaced(m.at.Conn)
		}
	}
	*m = memMember{taken: true, known: true, holder: req.Member, attached: true, at: at.Ref}
	r.idleSince = time.Time{}
	s.setIdle(r, false)
	pending := s.takeLocked(r, req.Role)
	other := &r.members[req.Role.other()]
	s.deliverLocked(other, Event{Type: proto.TypePeerBack})
	return ResumeInfo{
		Room: r.code, Role: req.Role, PeerPresent: other.attached, Pending: pending,
		Paired: r.members[Guest].taken,
	}, nil
}

// recreateLocked opens a room the store does not hold for req's member.
func (s *MemStore) recreateLocked(sh *memShard, req ResumeRequest, at Attach) (ResumeInfo, error) {
	if s.closed.Load() {
		return ResumeInfo{}, ErrStoreClosed
	}
	if !s.reserveRoom() {
		return ResumeInfo{}, &LimitError{Reason: LimitRooms, RetryAfter: time.Minute}
	}
	r := &memRoom{code: req.Room, owner: at.Addr, recreated: true}
	r.members[req.Role] = memMember{taken: true, known: true, holder: req.Member, attached: true, at: at.Ref}
	if req.Paired || req.Role == Guest {
		r.members[req.Role.other()] = memMember{taken: true}
		r.joinedAt = s.now()
		r.paired = true // the pairing was measured before the hub lost it
	}
	sh.rooms[req.Room] = r
	return ResumeInfo{Room: r.code, Role: req.Role, Paired: r.members[Guest].taken, Recreated: true}, nil
}

// pairing returns, for an answer about to reach r's host, the time since
// the guest joined if it is the first (else 0); the caller marks r paired
// once the answer is handed over.
func (s *MemStore) pairing(r *memRoom) time.Duration {
	if r.paired || r.joinedAt.IsZero() {
		return 0
	}
	return max(s.now().Sub(r.joinedAt), time.Nanosecond)
}

// Post implements Store.
func (s *MemStore) Post(_ context.Context, code string, from Role, ev Event) error {
	sh, r := s.lock(code)
	defer sh.mu.Unlock()
	if r == nil {
		return ErrNoSuchRoom
	}
	to := from.other()
	out := ev
	if ev.Type == proto.TypeAnswer && to == Host {
		out.PairedAfter = s.pairing(r)
	}
	if s.deliverLocked(&r.members[to], out) {
		if out.PairedAfter > 0 {
			r.paired = true
		}
		return nil
	}
	// The recipient is absent (or its connection is failing): keep an offer
	// or answer for when it comes back; candidates are never stored.
	if ev.Type == proto.TypeOffer || ev.Type == proto.TypeAnswer {
		grow := len(ev.Data)
		if old := r.mailbox[to]; old != nil {
			grow -= len(old.Data)
		}
		if !s.growMailbox(grow, s.lim.MaxMailboxBytes) {
			return &LimitError{Reason: LimitMailboxBytes, RetryAfter: time.Minute}
		}
		e := ev
		e.frame = nil // the mailbox counts Data only; hold nothing more
		r.mailbox[to] = &e
	}
	return nil
}

// Detach implements Store.
func (s *MemStore) Detach(_ context.Context, code string, role Role, at Ref) error {
	sh, r := s.lock(code)
	defer sh.mu.Unlock()
	if r == nil {
		return nil
	}
	m := &r.members[role]
	if !m.attached || m.at != at {
		return nil // stale: replaced by a resumed connection
	}
	m.attached, m.at = false, Ref{}
	other := &r.members[role.other()]
	if other.attached {
		s.deliverLocked(other, Event{Type: proto.TypePeerLeft, Reason: "disconnected"})
	} else {
		r.idleSince = s.now()
		s.setIdle(r, true)
	}
	return nil
}

// Leave implements Store.
func (s *MemStore) Leave(_ context.Context, code string, role Role, why LeaveReason) error {
	sh, r := s.lock(code)
	defer sh.mu.Unlock()
	if r == nil {
		return nil
	}
	s.removeLocked(sh, code, r)
	s.deliverLocked(&r.members[role.other()], ClosedEvent(role, why))
	return nil
}

// Close stops the janitor and drops every room. It is idempotent.
func (s *MemStore) Close() error {
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		s.closed.Store(true)
		for i := range s.shards {
			sh := &s.shards[i]
			sh.mu.Lock()
			for code, r := range sh.rooms {
				s.removeLocked(sh, code, r)
			}
			sh.mu.Unlock()
		}
		s.nodesMu.Lock()
		s.nodes.Store(&map[string]Local{})
		s.nodesMu.Unlock()
	})
	return nil
}
