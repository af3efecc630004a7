package hub

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Role is a member's place in a room.
type Role uint8

// The two roles of a room.
const (
	Host Role = iota + 1
	Guest
)

func (r Role) String() string {
	switch r {
	case Host:
		return "host"
	case Guest:
		return "guest"
	}
	return "none"
}

func (r Role) other() Role {
	if r == Host {
		return Guest
	}
	return Host
}

// Event is something a store delivers to an attached member: a relayed
// offer, answer or candidate, or a peer-joined/left/back/room-closed notice.
type Event struct {
	Type   string
	Data   string
	Reason string
}

// Peer is a member's live connection as a Store sees it.
type Peer interface {
	// Deliver queues ev without blocking. It reports false when the
	// connection cannot take it (closed, or too slow to keep up).
	Deliver(ev Event) bool
	// Replaced tells a connection that its member has resumed on another
	// connection; it must close.
	Replaced()
	// Addr is the key of the connection's address for per-address limits
	// (an IPv4 address or an IPv6 /64): a room counts against its
	// creator's.
	Addr() netip.Addr
}

// Member names one membership of a room: its code, its role, and who holds
// the role. Resume tokens carry it, signed with the hub key, so that a
// store that lost a room (a hub restart) can recreate it from the tokens
// its members bring back.
type Member struct {
	Room string // canonical room code
	Role Role
	// Since (Unix milliseconds) and Nonce name the membership: set when
	// the host created the room or the guest joined it, and kept by every
	// token re-issued to it. Two guests of one room can exist only when a
	// room recreated from a host token that predates the pairing let a
	// second one join; the earlier keeps the slot (see Store.Resume).
	Since int64
	Nonce uint64
}

// sameHolder reports whether m and o are the same membership.
func (m Member) sameHolder(o Member) bool { return m.Since == o.Since && m.Nonce == o.Nonce }

// ResumeRequest is a resume as the hub read it from a valid token.
type ResumeRequest struct {
	Member
	// Paired says a guest had joined the room when the token was issued
	// (always true for a guest).
	Paired bool
	// Recreate lets the store recreate the room when it does not hold it:
	// the hub sets it for a token it may have issued before a restart and
	// that is young enough (Config.ResumeTokenMaxAge).
	Recreate bool
}

// Store keeps rooms and routes events between their two members. The hub
// owns this interface; the in-memory store serves one node, and a shared
// implementation can route between nodes. Implementations must be safe for
// concurrent use and must never block on a Peer.
//
// A store keeps no secret: members are named by Member, and the hub checks
// the signed resume tokens that carry them.
type Store interface {
	// Create opens room host.Room with host attached as its host.
	// ErrCodeTaken means the caller should draw another code; a
	// *LimitError, that a budget is spent (rooms in all, or rooms of
	// host's address with nobody connected).
	Create(ctx context.Context, host Member, p Peer) error
	// Join attaches guest to room guest.Room and returns the stored offer,
	// if any, which is deleted from the room as it is returned. A room
	// whose guest slot is taken, or reserved for a guest that joined
	// before the store lost the room, is ErrRoomFull.
	Join(ctx context.Context, guest Member, p Peer) (pending []Event, err error)
	// Resume re-attaches req's member, replacing any connection still
	// attached for it, and returns the events waiting for it (deleted as
	// they are returned). The role's slot accepts the membership that holds
	// it; a slot reserved at recreation accepts the first member of that
	// role; a guest slot taken by a join after recreation yields to a guest
	// that joined earlier (its Since is smaller). A room the store does not
	// hold is ErrNoSuchRoom, or, with req.Recreate, is recreated with this
	// member attached: the other slot is reserved for the other member's
	// token when req.Paired, and left open for a join otherwise. Recreating
	// may be refused with a *LimitError (rooms in all).
	Resume(ctx context.Context, req ResumeRequest, p Peer) (ResumeInfo, error)
	// Post routes ev from a member to the other one. Offers and answers for
	// an absent member wait in the room's mailbox (a newer one replaces an
	// older one); candidates for an absent member are dropped. A
	// *LimitError says the mailboxes' byte budget is spent: nothing was
	// stored.
	Post(ctx context.Context, code string, from Role, ev Event) error
	// Detach marks member role of room code absent if p is still the
	// connection attached for it; the room lives on for resumption.
	Detach(ctx context.Context, code string, role Role, p Peer) error
	// Leave removes room code for good and tells the other member.
	Leave(ctx context.Context, code string, role Role) error
	// Close releases the store's resources.
	Close() error
}

// ResumeInfo describes a resumed membership.
type ResumeInfo struct {
	Room        string
	Role        Role
	PeerPresent bool
	Pending     []Event
	// Paired: the room has a guest (joined, or reserved at recreation).
	Paired bool
	// Recreated: the store did not hold the room and recreated it.
	Recreated bool
}

// Store errors that the protocol layer turns into error frames.
var (
	// ErrNoSuchRoom is returned for unknown and expired rooms and for
	// refused resumes alike, so that nothing can be learnt from it.
	ErrNoSuchRoom = errors.New("no such room")
	ErrRoomFull   = errors.New("room is full")
	ErrCodeTaken  = errors.New("room code already in use")
)

// StoreHooks lets a Store report what the hub measures.
type StoreHooks struct {
	// Paired is called when a guest's answer reaches the host, with the time
	// since the guest joined.
	Paired func(d time.Duration)
	// RoomOpened and RoomClosed track the number of rooms; expired tells an
	// idle-TTL expiry from a member leaving.
	RoomOpened func()
	RoomClosed func(expired bool)
	// RoomRecreated is called instead of RoomOpened for a room recreated
	// from a resume token.
	RoomRecreated func()
	// MailboxBytes reports the bytes waiting in mailboxes after a change.
	MailboxBytes func(n int)
}

// The reasons of a LimitError, which are also its tryst_hub_rejections_total
// labels.
const (
	// LimitIdleRooms: the creator's address has too many rooms with nobody
	// connected (StoreLimits.MaxIdleRoomsPerIP).
	LimitIdleRooms = "idle_rooms"
	// LimitRooms: the store holds StoreLimits.MaxRooms rooms.
	LimitRooms = "rooms_total"
	// LimitMailboxBytes: the mailboxes hold StoreLimits.MaxMailboxBytes.
	LimitMailboxBytes = "mailbox_bytes"
)

// LimitError is a Store's refusal because a budget is spent. RetryAfter is
// when trying again may succeed.
type LimitError struct {
	Reason     string // LimitIdleRooms, LimitRooms or LimitMailboxBytes
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("room store: %s budget spent; retry in %v", e.Reason, e.RetryAfter)
}

// StoreLimits bound what rooms may hold. A zero field is unlimited, except
// UnpairedTTL, which then defaults to the room TTL.
type StoreLimits struct {
	// UnpairedTTL is how long a room that no guest ever joined outlives
	// its host's connection, when shorter than the room TTL: such a room
	// holds at most an offer nobody read, and is what a loop of
	// create-offer-close leaves behind.
	UnpairedTTL time.Duration
	// MaxIdleRoomsPerIP caps the rooms with nobody connected per
	// creator's address (Peer.Addr).
	MaxIdleRoomsPerIP int
	// MaxRooms caps the rooms in the store.
	MaxRooms int
	// MaxMailboxBytes caps the bytes of data waiting in mailboxes.
	MaxMailboxBytes int
}

// ErrStoreClosed is returned by a Store after Close.
var ErrStoreClosed = errors.New("store closed")
