package redisstore

import "github.com/redis/go-redis/v9"

// The atomic steps of hub.Store, one Lua script each: Redis runs a script
// with nothing else in between, which is what makes each step atomic
// across nodes. A room is one hash at PREFIX room:CODE:
//
//	h_taken, g_taken   "1": the slot is taken (held or reserved)
//	h_known, g_known   "1": the holder below is set
//	h_since, h_nonce   the membership holding the slot (hub.Member)
//	h_node, h_conn     the connection attached for it (hub.Ref); absent while away
//	mb_h, mb_g         the offer or answer waiting for that member: TYPE "\n" DATA
//	joined_at          ms when a guest joined (or the room was recreated paired)
//	paired             "1" once an answer reached the host
//	owner              the creator's address key (per-address budget)
//	recreated, late    recreated from a token; the guest slot was taken by a join since
//	idle               "1": nobody attached, counted in PREFIX idle:OWNER
//
// PREFIX rooms is a sorted set of the room codes by when each expires (ms):
// the room's TTL after the last change, pushed forward while anybody is
// attached by the node that holds the connection (the lease, renewed by
// the janitor). PREFIX mailbox is the bytes waiting in mailboxes. Every
// node subscribes to PREFIX node:ID, where the scripts publish what its
// connections must be told (JSON: k "ev" with c, t, d, r, co; k "rep", replaced;
// k "take" with c, room, role: a mailbox entry to collect).
//
// Keys other than the room's are derived in the scripts from the prefix,
// so the store needs one Redis (or Valkey) primary, not a Cluster.

// common is prepended to every script. ARGV[1] is the prefix and ARGV[2]
// the time (ms), in every script.
const common = `
local P = ARGV[1]
local now = tonumber(ARGV[2])
local room = KEYS[1]
-- R is the room's hash, read once (HGETALL) and kept in step with what the
-- script writes: one round of reads per script instead of one per field.
local R = {}
do
  local kv = redis.call('HGETALL', room)
  for i = 1, #kv, 2 do R[kv[i]] = kv[i + 1] end
end
local function exists() return next(R) ~= nil end
local function hset(...)
  local a = {...}
  for i = 1, #a, 2 do R[a[i]] = a[i + 1] end
  redis.call('HSET', room, ...)
end
local function hdel(...)
  local n = 0
  for _, f in ipairs({...}) do if R[f] ~= nil then R[f] = nil; n = n + 1 end end
  if n > 0 then redis.call('HDEL', room, ...) end
  return n
end
local function other(r) if r == 'h' then return 'g' end return 'h' end
local function publish(node, msg) redis.call('PUBLISH', P .. 'node:' .. node, cjson.encode(msg)) end
local function tell(r, t, reason, code)
  local node = R[r .. '_node']
  if not node then return false end
  publish(node, {k = 'ev', c = R[r .. '_conn'], t = t, r = reason or '', co = code or ''})
  return true
end
local function touch(code, ttlms, unpairedms)
  local t = unpairedms
  if R['joined_at'] then t = ttlms end
  redis.call('ZADD', P .. 'rooms', now + t, code)
  -- A safety net: the janitor removes the room long before.
  redis.call('PEXPIRE', room, 3 * ttlms + 3600000)
end
local function setidle(code, yes)
  local owner = R['owner'] or ''
  if yes then
    hset('idle', '1')
    redis.call('SADD', P .. 'idle:' .. owner, code)
  elseif hdel('idle') == 1 then
    redis.call('SREM', P .. 'idle:' .. owner, code)
  end
end
local function mbdata(v) local i = string.find(v, '\n', 1, true); return string.sub(v, i + 1) end
-- take returns role r's waiting entry (TYPE "\n" DATA) and deletes it,
-- and the pairing time in ms when it is the first answer to reach the host.
local function take(r)
  local v = R['mb_' .. r]
  if not v then return false, 0 end
  hdel('mb_' .. r)
  redis.call('DECRBY', P .. 'mailbox', #mbdata(v))
  local paired = 0
  if r == 'h' and string.sub(v, 1, 7) == 'answer\n' and R['paired'] ~= '1' then
    local j = R['joined_at']
    if j then paired = math.max(now - tonumber(j), 1) end
    hset('paired', '1')
  end
  return v, paired
end
local function remove(code)
  local freed = 0
  for _, r in ipairs({'h', 'g'}) do
    local v = R['mb_' .. r]
    if v then freed = freed + #mbdata(v) end
  end
  if freed > 0 then redis.call('DECRBY', P .. 'mailbox', freed) end
  setidle(code, false)
  redis.call('ZREM', P .. 'rooms', code)
  redis.call('DEL', room)
  R = {}
end
`

// create: ARGV 3.. code, since, nonce, node, conn, owner, maxIdle,
// maxRooms, ttl ms, unpaired ms. Returns "ok", "taken" or
// "limit:REASON".
var createScript = redis.NewScript(common + `
local code = ARGV[3]
if exists() then return 'taken' end
local maxIdle, maxRooms = tonumber(ARGV[9]), tonumber(ARGV[10])
if maxIdle > 0 and redis.call('SCARD', P .. 'idle:' .. ARGV[8]) >= maxIdle then return 'limit:idle_rooms' end
if maxRooms > 0 and redis.call('ZCARD', P .. 'rooms') >= maxRooms then return 'limit:rooms_total' end
hset('h_taken', '1', 'h_known', '1', 'h_since', ARGV[4], 'h_nonce', ARGV[5],
  'h_node', ARGV[6], 'h_conn', ARGV[7], 'owner', ARGV[8])
touch(code, tonumber(ARGV[11]), tonumber(ARGV[12]))
return 'ok'
`)

// join: ARGV 3.. code, since, nonce, node, conn, ttl ms, unpaired ms.
// Returns {"none"}, {"full"} or {"ok", waiting entry or ""}.
var joinScript = redis.NewScript(common + `
local code = ARGV[3]
if not exists() then return {'none'} end
if R['g_taken'] == '1' then return {'full'} end
hset('g_taken', '1', 'g_known', '1', 'g_since', ARGV[4], 'g_nonce', ARGV[5],
  'g_node', ARGV[6], 'g_conn', ARGV[7], 'joined_at', now)
if R['recreated'] == '1' then hset('late', '1') else hdel('late') end
setidle(code, false)
tell('h', 'peer-joined')
local v = take('g')
touch(code, tonumber(ARGV[8]), tonumber(ARGV[9]))
return {'ok', v or ''}
`)

// resume: ARGV 3.. code, role (h/g), since, nonce, node, conn, owner,
// recreate, paired, maxRooms, ttl ms, unpaired ms. Returns {"none"},
// {"limit:rooms_total"}, {"recreated", guest taken} or {"ok", other
// present, guest taken, waiting entry or "", pairing ms}.
var resumeScript = redis.NewScript(common + `
local code, r, since, nonce, node, conn = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local ttlms, unpairedms = tonumber(ARGV[13]), tonumber(ARGV[14])
local o = other(r)
if not exists() then
  if ARGV[10] ~= '1' then return {'none'} end
  local maxRooms = tonumber(ARGV[12])
  if maxRooms > 0 and redis.call('ZCARD', P .. 'rooms') >= maxRooms then return {'limit:rooms_total'} end
  hset(r .. '_taken', '1', r .. '_known', '1', r .. '_since', since, r .. '_nonce', nonce,
    r .. '_node', node, r .. '_conn', conn, 'owner', ARGV[9], 'recreated', '1')
  if ARGV[11] == '1' or r == 'g' then
    hset(o .. '_taken', '1', 'joined_at', now, 'paired', '1')
  end
  touch(code, ttlms, unpairedms)
  return {'recreated', R['g_taken'] == '1' and 1 or 0}
end
local known = R[r .. '_known'] == '1'
local hsince, hnonce = R[r .. '_since'], R[r .. '_nonce']
if known and hsince == since and hnonce == nonce then
  -- the holder itself
elseif not known then
  -- reserved at recreation, or a guest slot nobody joined since: the
  -- token proves this member held it before
  if R[r .. '_taken'] ~= '1' then
    hset('joined_at', now, 'paired', '1')
  end
elseif r == 'g' and R['late'] == '1' and tonumber(since) < tonumber(hsince) then
  hdel('late')
else
  return {'none'}
end
local oldnode, oldconn = R[r .. '_node'], R[r .. '_conn']
if oldnode and (oldnode ~= node or oldconn ~= conn) then publish(oldnode, {k = 'rep', c = oldconn}) end
hset(r .. '_taken', '1', r .. '_known', '1', r .. '_since', since, r .. '_nonce', nonce,
  r .. '_node', node, r .. '_conn', conn)
setidle(code, false)
local v, paired = take(r)
local present = tell(o, 'peer-back') and 1 or 0
touch(code, ttlms, unpairedms)
return {'ok', present, R['g_taken'] == '1' and 1 or 0, v or '', paired}
`)

// post: ARGV 3.. code, from (h/g), type, data, maxMailbox. Returns
// "none", "limit:mailbox_bytes" or "ok".
var postScript = redis.NewScript(common + `
local code, from, typ, data = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if not exists() then return 'none' end
local to = other(from)
if typ ~= 'offer' and typ ~= 'answer' then
  local node = R[to .. '_node']
  if node then publish(node, {k = 'ev', c = R[to .. '_conn'], t = typ, d = data}) end
  return 'ok'
end
local grow = #data
local old = R['mb_' .. to]
if old then grow = grow - #mbdata(old) end
local max = tonumber(ARGV[7])
if max > 0 and grow > 0 and tonumber(redis.call('GET', P .. 'mailbox') or '0') + grow > max then
  return 'limit:mailbox_bytes'
end
hset('mb_' .. to, typ .. '\n' .. data)
if grow ~= 0 then redis.call('INCRBY', P .. 'mailbox', grow) end
local node = R[to .. '_node']
if node then publish(node, {k = 'take', c = R[to .. '_conn'], room = code, role = to}) end
return 'ok'
`)

// take: ARGV 3.. role, node, conn: the node collects role's waiting entry
// for its connection, if that is still the one attached. Returns {} or
// {entry, pairing ms}.
var takeScript = redis.NewScript(common + `
local r = ARGV[3]
if R[r .. '_node'] ~= ARGV[4] or R[r .. '_conn'] ~= ARGV[5] then return {} end
local v, paired = take(r)
if not v then return {} end
return {v, paired}
`)

// restore: ARGV 3.. role, entry: puts back an entry a node took but could
// not hand over (its connection was closing), unless a newer one came.
var restoreScript = redis.NewScript(common + `
if not exists() then return 0 end
if redis.call('HSETNX', room, 'mb_' .. ARGV[3], ARGV[4]) == 1 then
  redis.call('INCRBY', P .. 'mailbox', #mbdata(ARGV[4]))
end
return 1
`)

// detach: ARGV 3.. code, role, node, conn, ttl ms, unpaired ms.
var detachScript = redis.NewScript(common + `
local code, r = ARGV[3], ARGV[4]
if R[r .. '_node'] ~= ARGV[5] or R[r .. '_conn'] ~= ARGV[6] then return 0 end
hdel(r .. '_node', r .. '_conn')
if not tell(other(r), 'peer-left', 'disconnected') then setidle(code, true) end
touch(code, tonumber(ARGV[7]), tonumber(ARGV[8]))
return 1
`)

// leave: ARGV 3.. code, role, the room-closed notice's code and reason
// (hub.ClosedEvent).
var leaveScript = redis.NewScript(common + `
local code, r = ARGV[3], ARGV[4]
if not exists() then return 0 end
tell(other(r), 'room-closed', ARGV[6], ARGV[5])
remove(code)
return 1
`)

// sweep: ARGV 3 code: removes the room if it is past its expiry. Returns 1
// if it did.
var sweepScript = redis.NewScript(common + `
local code = ARGV[3]
local at = redis.call('ZSCORE', P .. 'rooms', code)
if not at or tonumber(at) > now then return 0 end
remove(code)
return 1
`)

// renew: ARGV 3.. node, ttl ms, unpaired ms; KEYS: rooms whose members
// are attached on node. Pushes their expiry forward (the lease).
var renewScript = redis.NewScript(`
local P, now, node = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local n = 0
for _, room in ipairs(KEYS) do
  local f = redis.call('HMGET', room, 'h_node', 'g_node', 'joined_at')
  if f[1] == node or f[2] == node then
    local t = tonumber(ARGV[5])
    if f[3] then t = tonumber(ARGV[4]) end
    redis.call('ZADD', P .. 'rooms', 'XX', now + t, string.sub(room, #P + 6))
    redis.call('PEXPIRE', room, 3 * tonumber(ARGV[4]) + 3600000)
    n = n + 1
  end
end
return n
`)
