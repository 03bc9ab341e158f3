local lockKey = KEYS[1]
-- Reads a lock without changing it (expired entries are only skipped, not removed).
-- Returns { lastFence, queued, token1, weight1, ttlMs1, owner1, token2, ... } for unexpired holders
-- (owner '' when the holder gave none).

local _, now = serverTime()
local readLock = readers()
local lock = readLock(lockKey, now)
local reply = { lock.fence, #lock.places }
for _, holder in ipairs(lock.holders) do
  reply[#reply + 1] = string.sub(holder.field, 2)
  reply[#reply + 1] = holder.weight
  reply[#reply + 1] = holder.leaseEnd - now
  reply[#reply + 1] = holder.owner or ''
end
return reply
