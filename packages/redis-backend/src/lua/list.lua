local pattern, cursor, count = ARGV[1], ARGV[2], ARGV[3]
-- One SCAN step (`SCAN cursor MATCH pattern COUNT count`) on this server, keeping the lock
-- hashes that have an unexpired holder or queue place: a hash outlives its last lease by an hour,
-- so most names SCAN finds may belong to locks nobody holds. Keys it reads are those SCAN found
-- here, so on a Cluster node they are local whatever their slots.
-- Returns { nextCursor, name1, name2, ... } ('0' once this server's scan is complete).

local _, now = serverTime()
local readLock = readers()
local found = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', count)
local reply = { found[1] }
for _, name in ipairs(found[2]) do
  -- Anything else under the prefix is not a lock (HGETALL would fail on it).
  if redis.call('TYPE', name).ok == 'hash' then
    local lock = readLock(name, now)
    if #lock.holders > 0 or #lock.places > 0 then
      reply[#reply + 1] = name
    end
  end
end
return reply
