local lockKey = KEYS[1]
local token, publish = ARGV[1], ARGV[2]
-- Gives back what `token` holds and its queue place, if any, and tells waiters when that freed
-- something. Returns 1 when `token` held permits, 0 when it held none (or its lease had expired).
-- Other holders, the fence and the expiry of the hash are left as they are: giving a lease back
-- shortens none of the others.

local holderField, placeField = '#' .. token, '?' .. token
local found = redis.call('HMGET', lockKey, holderField, placeField)
if not found[1] and not found[2] then
  return 0
end
local _, now = serverTime()
local released = 0
-- A lease that ran out was no longer held: giving it back frees nothing and wakes nobody.
if found[1] and splitPair(found[1], 1) > now then
  released = 1
end
redis.call('HDEL', lockKey, holderField, placeField)
if released == 1 or found[2] then
  notify(publish, lockKey, 'released')
end
return released
