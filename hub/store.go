package hub

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/tryst-chat/tryst/proto"
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
// offer, answer or candidate, a peer-joined/left/back/room-closed notice,
// or a report from the other member, which the member's hub acts on and
// does not pass on (see Store.Post).
type Event struct {
	Type   string
	Data   string
	Reason string
	// Code is a room-closed notice's code: proto.ClosedGuessLimit, or
	// empty (see ClosedEvent).
	Code string
	// PairedAfter is set on the answer that pairs a room, the first to
	// reach its host: the time since the guest joined. The hub that
	// delivers it observes it (tryst_hub_pairing_seconds).
	PairedAfter time.Duration

	// frame is the event as encoded for the recipient, when the hub that
	// posts it has it already (it charged the sender's relay budget with
	// it): a store of this process hands it over as is, so no delivery is
	// encoded while the store holds a lock. A store keeping the event
	// (a mailbox) or sending it elsewhere drops it; the recipient's hub
	// encodes Type and Data then.
	frame []byte
}

// Ref names one connection for all time: the node it is on (an id each hub
// draws when it starts) and its number there. A store names the connection
// attached for a role by its Ref, so a store shared by several processes
// can hold it, and a Ref never comes back: a detach or a delivery that
// names a Ref the slot no longer holds (the member resumed on another
// connection meanwhile) is stale and does nothing. That is the fencing.
type Ref struct {
	Node string
	Conn uint64
}

// Attach is a connection asking to hold a role: its Ref and its address
// key for per-address budgets (an IPv4 address or an IPv6 /64): a room
// counts against its creator's.
type Attach struct {
	Ref
	Addr netip.Addr
}

// Local is a node's side of a store: how the store reaches the connections
// attached on that node (see Store.Register). Its methods must not block
// and must not call the store.
type Local interface {
	// Deliver queues ev on connection conn. It reports false when conn is
	// gone or cannot take it (too slow to keep up).
	Deliver(conn uint64, ev Event) bool
	// Replaced tells connection conn that its member resumed on another
	// connection (on this node or another); it must close.
	Replaced(conn uint64)
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

// Store keeps rooms and routes events between their two members, who may
// be attached on different nodes (hubs) sharing the store. The hub owns
// this interface; MemStore serves the hubs of one process, and a shared
// implementation (the Redis store) serves several. Implementations must be
// safe for concurrent use and must never block on a Local.
//
// Each method that changes a room is one atomic step on that room: no
// other method's change to the same room is seen half done. The steps are
// named per method below; a shared store implements each as one
// transaction (a Redis script).
//
// The mailbox: an offer or answer for a member that is absent, or whose
// connection did not take it, waits in the room (a newer one of the same
// recipient replaces an older one) and is handed over exactly once, on the
// recipient's next Join or Resume, or when a later Post finds it attached:
// then it is deleted. Candidates and notices are never stored.
//
// A store keeps no secret: members are named by Member, and the hub checks
// the signed resume tokens that carry them.
type Store interface {
	// Register makes l the delivery of node's connections until
	// Unregister or Close. A hub registers once, before it serves.
	Register(ctx context.Context, node string, l Local) error
	// Unregister stops deliveries to node. Its attachments stay in the
	// rooms until their members resume elsewhere or the rooms expire.
	Unregister(node string)
	// Create opens room host.Room with at attached as its host, in one
	// step: check the code is free and the budgets, then store the room.
	// ErrCodeTaken means the caller should draw another code; a
	// *LimitError, that a budget is spent (rooms in all, or rooms of
	// at.Addr with nobody connected).
	Create(ctx context.Context, host Member, at Attach) error
	// Join attaches at as room guest.Room's guest and returns the stored
	// offer, if any, in one step that also deletes that offer and tells
	// the host (peer-joined). A room whose guest slot is taken, or
	// reserved for a guest that joined before the store lost the room, is
	// ErrRoomFull.
	Join(ctx context.Context, guest Member, at Attach) (pending []Event, err error)
	// Resume re-attaches req's member on at, in one step: replace the
	// connection attached for it (which is told Replaced), take the events
	// waiting for it (deleted as they are returned) and tell the other
	// member (peer-back). The role's slot accepts the membership that holds
	// it; a slot reserved at recreation accepts the first member of that
	// role; a guest slot taken by a join after recreation yields to a guest
	// that joined earlier (its Since is smaller). A room the store does not
	// hold is ErrNoSuchRoom, or, with req.Recreate, is recreated with this
	// member attached: the other slot is reserved for the other member's
	// token when req.Paired, and left open for a join otherwise. Recreating
	// may be refused with a *LimitError (rooms in all).
	Resume(ctx context.Context, req ResumeRequest, at Attach) (ResumeInfo, error)
	// Post routes ev from a member to the other one. A candidate, or a
	// report (proto.TypeReport: the hub's own notice about the recipient,
	// never shown to it), goes to the other member's connection, or
	// nowhere when it is absent. An offer or answer goes through the
	// mailbox (see above): stored in one step, and handed to the
	// connection attached when it is stored, if any, in a step that
	// deletes it. A *LimitError says the mailboxes' byte budget is spent:
	// nothing was stored.
	Post(ctx context.Context, code string, from Role, ev Event) error
	// Detach marks member role of room code absent if at is still the
	// connection attached for it, and tells the other member (peer-left),
	// in one step; the room lives on for resumption.
	Detach(ctx context.Context, code string, role Role, at Ref) error
	// Leave removes room code for good and tells the other member
	// ClosedEvent(role, why), in one step.
	Leave(ctx context.Context, code string, role Role, why LeaveReason) error
	// TTL is how long a room outlives its last attached member: the hub
	// tells clients.
	TTL() time.Duration
	// Stats reports the store's counts.
	Stats(ctx context.Context) (StoreStats, error)
	// Ready reports whether the store can serve (nil), for /readyz.
	Ready(ctx context.Context) error
	// Close releases the store's resources. It is idempotent.
	Close() error
}

// LeaveReason is why a member left its room, as the other member is told.
type LeaveReason uint8

const (
	// LeftRoom: the member left (a leave with no reason the hub knows).
	LeftRoom LeaveReason = iota
	// LeftGuessLimit: the member's client closed the room after too many
	// failed password attempts (leave with proto.ClosedGuessLimit).
	LeftGuessLimit
)

// ClosedEvent is the room-closed notice that the member of the other role
// gets when role leaves for why: every Store delivers this from Leave, so
// that what clients read does not depend on the store.
func ClosedEvent(role Role, why LeaveReason) Event {
	if why == LeftGuessLimit {
		return Event{Type: proto.TypeRoomClosed, Code: proto.ClosedGuessLimit,
			Reason: "the other side closed the room after too many failed password attempts"}
	}
	return Event{Type: proto.TypeRoomClosed, Reason: role.String() + " left"}
}

// StoreStats are a store's counts, as its metrics report them.
type StoreStats struct {
	// Rooms and MailboxBytes (offer and answer bytes waiting) are the
	// whole store's: every node that shares it reports the same.
	Rooms        int
	MailboxBytes int
	// Expired counts the rooms this store value removed because they
	// outlived their TTL (a shared store: those this node swept).
	Expired uint64
	// DeliveryFailures counts what a shared store could not hand over
	// between nodes (see the store's documentation); 0 for MemStore.
	DeliveryFailures uint64
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
	// creator's address (Attach.Addr).
	MaxIdleRoomsPerIP int
	// MaxRooms caps the rooms in the store.
	MaxRooms int
	// MaxMailboxBytes caps the bytes of data waiting in mailboxes.
	MaxMailboxBytes int
}

// ErrStoreClosed is returned by a Store after Close.
var ErrStoreClosed = errors.New("store closed")
