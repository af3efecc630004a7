package hub

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/tryst-chat/tryst/proto"
)

// MemStore is the Store of one process: rooms live in its memory, and the
// hubs of that process (usually one) may share it. Every method is one
// critical section under one mutex, which makes each the atomic step that
// Store names.
type MemStore struct {
	ttl time.Duration
	lim StoreLimits
	now func() time.Time

	mu      sync.Mutex
	rooms   map[string]*memRoom
	nodes   map[string]Local
	idle    map[netip.Addr]int // rooms with nobody connected, by creator's address
	mailbox int                // bytes of data in mailboxes
	expired uint64
	closed  bool

	stop chan struct{}
	done chan struct{}
	once sync.Once
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
		ttl:   ttl,
		lim:   lim,
		idle:  make(map[netip.Addr]int),
		now:   now,
		rooms: make(map[string]*memRoom),
		nodes: make(map[string]Local),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
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
	s.mu.Lock()
	defer s.mu.Unlock()
	for code, r := range s.rooms {
		if !r.idleSince.IsZero() && now.Sub(r.idleSince) >= s.ttlOf(r) {
			s.removeLocked(code, r)
			s.expired++
		}
	}
}

func (s *MemStore) ttlOf(r *memRoom) time.Duration {
	if r.joinedAt.IsZero() {
		return s.lim.UnpairedTTL
	}
	return s.ttl
}

// addMailbox changes the bytes counted in mailboxes by n.
func (s *MemStore) addMailbox(n int) {
	if n == 0 {
		return
	}
	s.mailbox += n
}

// TTL implements Store.
func (s *MemStore) TTL() time.Duration { return s.ttl }

// Stats implements Store.
func (s *MemStore) Stats(context.Context) (StoreStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StoreStats{Rooms: len(s.rooms), MailboxBytes: s.mailbox, Expired: s.expired}, nil
}

// Ready implements Store: an in-memory store is ready until it is closed.
func (s *MemStore) Ready(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	return nil
}

// Register implements Store.
func (s *MemStore) Register(_ context.Context, node string, l Local) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	s.nodes[node] = l
	return nil
}

// Unregister implements Store.
func (s *MemStore) Unregister(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.nodes, node)
}

// deliverLocked hands ev to the connection attached in m, if any.
func (s *MemStore) deliverLocked(m *memMember, ev Event) bool {
	if !m.attached {
		return false
	}
	l := s.nodes[m.at.Node]
	return l != nil && l.Deliver(m.at.Conn, ev)
}

// setIdle records whether anybody is connected to r, for the per-address
// count of idle rooms.
func (s *MemStore) setIdle(r *memRoom, idle bool) {
	if r.idle == idle {
		return
	}
	r.idle = idle
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
func (s *MemStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

func (s *MemStore) removeLocked(code string, r *memRoom) {
	delete(s.rooms, code)
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	if _, ok := s.rooms[code]; ok {
		return ErrCodeTaken
	}
	owner := at.Addr
	if max := s.lim.MaxIdleRoomsPerIP; max > 0 && s.idle[owner] >= max {
		// One of them expires within UnpairedTTL at the latest, unless
		// somebody comes back to it.
		return &LimitError{Reason: LimitIdleRooms, RetryAfter: s.lim.UnpairedTTL}
	}
	if max := s.lim.MaxRooms; max > 0 && len(s.rooms) >= max {
		return &LimitError{Reason: LimitRooms, RetryAfter: time.Minute}
	}
	r := &memRoom{code: code, owner: owner}
	r.members[Host] = memMember{taken: true, known: true, holder: m, attached: true, at: at.Ref}
	s.rooms[code] = r
	return nil
}

// Join implements Store.
func (s *MemStore) Join(_ context.Context, m Member, at Attach) ([]Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[m.Room]
	if !ok {
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
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[req.Room]
	if !ok {
		if !req.Recreate {
			return ResumeInfo{}, ErrNoSuchRoom
		}
		return s.recreateLocked(req, at)
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
		if l := s.nodes[m.at.Node]; l != nil {
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
func (s *MemStore) recreateLocked(req ResumeRequest, at Attach) (ResumeInfo, error) {
	if s.closed {
		return ResumeInfo{}, ErrStoreClosed
	}
	if max := s.lim.MaxRooms; max > 0 && len(s.rooms) >= max {
		return ResumeInfo{}, &LimitError{Reason: LimitRooms, RetryAfter: time.Minute}
	}
	r := &memRoom{code: req.Room, owner: at.Addr, recreated: true}
	r.members[req.Role] = memMember{taken: true, known: true, holder: req.Member, attached: true, at: at.Ref}
	if req.Paired || req.Role == Guest {
		r.members[req.Role.other()] = memMember{taken: true}
		r.joinedAt = s.now()
		r.paired = true // the pairing was measured before the hub lost it
	}
	s.rooms[req.Room] = r
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
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[code]
	if !ok {
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
		if max := s.lim.MaxMailboxBytes; max > 0 && grow > 0 && s.mailbox+grow > max {
			return &LimitError{Reason: LimitMailboxBytes, RetryAfter: time.Minute}
		}
		s.addMailbox(grow)
		e := ev
		r.mailbox[to] = &e
	}
	return nil
}

// Detach implements Store.
func (s *MemStore) Detach(_ context.Context, code string, role Role, at Ref) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[code]
	if !ok {
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
func (s *MemStore) Leave(_ context.Context, code string, role Role) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[code]
	if !ok {
		return nil
	}
	s.removeLocked(code, r)
	s.deliverLocked(&r.members[role.other()], Event{Type: proto.TypeRoomClosed, Reason: role.String() + " left"})
	return nil
}

// Close stops the janitor and drops every room. It is idempotent.
func (s *MemStore) Close() error {
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		s.mu.Lock()
		s.closed = true
		for code, r := range s.rooms {
			s.removeLocked(code, r)
		}
		clear(s.nodes)
		s.mu.Unlock()
	})
	return nil
}
