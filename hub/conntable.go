package hub

import "sync"

// connTable is the hub's live connections by number (Ref.Conn), in shards:
// every connection is added and removed, and every delivery looks its
// connection up, from whichever core runs it.
type connTable struct {
	shards [connShards]connShard
}

const connShards = 16

type connShard struct {
	mu sync.RWMutex
	m  map[uint64]*conn
	_  [32]byte // keeps two shards' mutexes off one cache line
}

func newConnTable() *connTable {
	t := &connTable{}
	for i := range t.shards {
		t.shards[i].m = make(map[uint64]*conn)
	}
	return t
}

// Connection numbers are handed out in sequence, so they spread evenly.
func (t *connTable) shard(id uint64) *connShard { return &t.shards[id%connShards] }

func (t *connTable) put(c *conn) {
	sh := t.shard(c.id)
	sh.mu.Lock()
	sh.m[c.id] = c
	sh.mu.Unlock()
}

func (t *connTable) del(id uint64) {
	sh := t.shard(id)
	sh.mu.Lock()
	delete(sh.m, id)
	sh.mu.Unlock()
}

func (t *connTable) get(id uint64) *conn {
	sh := t.shard(id)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.m[id]
}

// all lists the connections held at the time of the call.
func (t *connTable) all() []*conn {
	var out []*conn
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		for _, c := range sh.m {
			out = append(out, c)
		}
		sh.mu.RUnlock()
	}
	return out
}
