// The Redis engine's Lua scripts (redis.mjs): no other command runs while
// one does, so a commit's sessions and messages are stored, and its messages
// published, in one step (Redis does not undo a script that fails halfway,
// which only a Redis out of memory would make this one do). Keys are built from the prefix in ARGV[1] (a
// standalone Redis: the keys are not declared, so not for Redis Cluster).

// One commit: the changed sessions (skipped, with their messages, when
// another process has claimed them since: their generation is not the one
// stored), the expired ones deleted, each message appended to its room's
// stream with the offset Redis gives it and published on the room's channel.
// Each stream is trimmed from its oldest entry to the room limits: count,
// payload bytes (kept in the room's hash as 'bytes') and age (each entry's
// 't', the committing process's clock), so Redis holds what a mirror keeps.
// -> the ids fenced out.
export const COMMIT = `
local p, proc, ttl, maxlen, rttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local maxbytes, oldest = tonumber(ARGV[6]), tonumber(ARGV[7])
local nu, nd, na = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local i = 11
local fenced, out = {}, {}
for _ = 1, nu do
  local id, gen, owner, meta, blob = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4]
  i = i + 5
  local k = p .. 's:' .. id
  local cur = redis.call('HGET', k, 'gen')
  if cur and cur ~= gen then
    fenced[id] = true
    out[#out+1] = id
  else
    redis.call('HSET', k, 'gen', gen, 'proc', proc, 'owner', owner, 'meta', meta, 'blob', blob)
    redis.call('PEXPIRE', k, ttl)
  end
end
for _ = 1, nd do
  local k = p .. 's:' .. ARGV[i]
  if redis.call('HGET', k, 'gen') == ARGV[i+1] then redis.call('DEL', k) end
  i = i + 2
end
for _ = 1, na do
  local room, epoch, sid, data, size, at = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], tonumber(ARGV[i+4]), ARGV[i+5]
  i = i + 6
  if not fenced[sid] then
    local mk, lk = p .. 'r:' .. room, p .. 'l:' .. room
    local ep = redis.call('HGET', mk, 'epoch')
    if not ep then
      ep = epoch
      redis.call('DEL', lk)
      redis.call('HSET', mk, 'epoch', ep, 'next', 1)
    end
    local off = redis.call('HINCRBY', mk, 'next', 1) - 1
    redis.call('XADD', lk, off .. '-0', 'd', data, 't', at, 'n', size)
    local bytes, len = redis.call('HINCRBY', mk, 'bytes', size), redis.call('XLEN', lk)
    while len > 0 do
      local h = redis.call('XRANGE', lk, '-', '+', 'COUNT', 1)[1]
      if len <= maxlen and bytes <= maxbytes and (tonumber(h[2][4]) or 0) >= oldest then break end
      redis.call('XDEL', lk, h[1])
      bytes, len = redis.call('HINCRBY', mk, 'bytes', -(tonumber(h[2][6]) or 0)), len - 1
    end
    redis.call('PEXPIRE', mk, rttl)
    redis.call('PEXPIRE', lk, rttl)
    redis.call('PUBLISH', p .. 'c:' .. room, 'm' .. ep .. '\\n' .. off .. '\\n' .. data)
  end
end
return out`;

// A session another process (or none) has: claimed for this one (gen + 1),
// unless it belongs to another user, or this process has it still (its
// generation is the one stored: nobody claimed it since).
// -> false | 'forbidden' | 'mine' | {gen, meta, blob}
export const CLAIM = `
local p, id, proc, ttl, check, user, mine = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local k = p .. 's:' .. id
if redis.call('EXISTS', k) == 0 then return false end
if check == '1' and redis.call('HGET', k, 'owner') ~= user then return 'forbidden' end
if mine ~= '' and redis.call('HGET', k, 'gen') == mine and redis.call('HGET', k, 'proc') == proc then
  redis.call('PEXPIRE', k, ttl)
  return 'mine'
end
local gen = redis.call('HINCRBY', k, 'gen', 1)
redis.call('HSET', k, 'proc', proc)
redis.call('PEXPIRE', k, ttl)
redis.call('PUBLISH', p .. 'claims', id .. ' ' .. gen .. ' ' .. proc)
return {tostring(gen), redis.call('HGET', k, 'meta'), redis.call('HGET', k, 'blob')}`;

// Presence: join (ZADD + publish when new), leave (ZREM + publish when it
// was there), and the sweep of the expired (each removed once, by whoever
// removes it, and published as a leave).
export const JOIN = `
local z, c = ARGV[1] .. 'p:' .. ARGV[2], ARGV[1] .. 'c:' .. ARGV[2]
local new = redis.call('ZADD', z, ARGV[4], ARGV[3])
redis.call('PEXPIRE', z, ARGV[5])
if new == 1 then redis.call('PUBLISH', c, 'pJ' .. ARGV[3]) end
return new`;
export const LEAVE = `
local z, c = ARGV[1] .. 'p:' .. ARGV[2], ARGV[1] .. 'c:' .. ARGV[2]
if redis.call('ZREM', z, ARGV[3]) == 1 then redis.call('PUBLISH', c, 'pL' .. ARGV[3]) return 1 end
return 0`;
// This process's members of a room, refreshed; the ones Redis did not have
// (swept while this process could not refresh them) are joins again.
export const REFRESH = `
local z, c = ARGV[1] .. 'p:' .. ARGV[2], ARGV[1] .. 'c:' .. ARGV[2]
for i = 5, #ARGV do
  if redis.call('ZADD', z, ARGV[3], ARGV[i]) == 1 then redis.call('PUBLISH', c, 'pJ' .. ARGV[i]) end
end
redis.call('PEXPIRE', z, ARGV[4])
return 0`;
export const SWEEP = `
local z, c = ARGV[1] .. 'p:' .. ARGV[2], ARGV[1] .. 'c:' .. ARGV[2]
local gone = redis.call('ZRANGEBYSCORE', z, '-inf', ARGV[3])
for _, m in ipairs(gone) do
  if redis.call('ZREM', z, m) == 1 then redis.call('PUBLISH', c, 'pL' .. m) end
end
return #gone`;
