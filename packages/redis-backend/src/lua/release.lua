local lockKey = KEYS[1]
local token, publish = ARGV[1], ARGV[2]
-- Gives back what `token` holds and its queue place, if any. When that freed something, hands
-- the lock to the head of the queue (and those behind it, while they fit) if they asked for it
-- and renewed their place within the last half of its TTL, for the TTL each asked to be handed,
-- publishing 'granted <fence> <ttlMs> <afterMs> <attempt> <token>' for each; then tells every
-- waiter unless the handoffs took all there was. Returns 1 when `token` held permits, 0 when it held none (or its
-- lease had expired).

local holderField, placeField = '#' .. token, '?' .. token
local found = redis.call('HMGET', lockKey, holderField, placeField, 'queued')
if not found[1] and not found[2] then
  return 0
end
local nowMicros, now = serverTime()
local released = 0
-- A lease that ran out was no longer held: giving it back frees nothing and wakes nobody.
if found[1] then
  -- The lease end is the value's first number (readHolder without the table it builds).
  local space = string.find(found[1], ' ', 1, true)
  if tonumber(space and string.sub(found[1], 1, space - 1) or found[1]) > now then
    released = 1
  end
end
if released == 0 and not found[2] then
  redis.call('HDEL', lockKey, holderField)
  return 0
end
if not found[3] then
  if found[2] then
    redis.call('HDEL', lockKey, holderField, placeField)
  else
    redis.call('HDEL', lockKey, holderField)
  end
  notify(publish, lockKey, 'released')
  return released
end

-- Someone may queue: read the whole lock to see who is next, without this token's fields.
redis.call('HDEL', lockKey, holderField, placeField)
local readLock = readers()
local lock = readLock(lockKey, now)
local fence, used, gone = lock.fence, 0, lock.expired
for _, holder in ipairs(lock.holders) do
  used = used + holder.weight
end

local writes, grants, limit = {}, {}, nil
local latestEnd = 0
for _, place in ipairs(lock.places) do
  local renewedAt, ttlMs, weight, attempt = place[3], place[4], place[5], place[7]
  -- A waiter that stopped renewing its place may have died: it keeps its place until it runs out,
  -- but is not handed a lease it may never give back.
  if not renewedAt or now - renewedAt > (place[2] - renewedAt) / 2 or used + weight > place[6] then
    break
  end
  limit = place[6]
  used = used + weight
  fence = nextFence(fence, nowMicros)
  local leaseEnd = now + ttlMs
  latestEnd = math.max(latestEnd, leaseEnd)
  local waiter = string.sub(place.field, 2)
  writes[#writes + 1] = '#' .. waiter
  writes[#writes + 1] = holderValue(leaseEnd, weight, place.owner)
  gone[#gone + 1] = place.field
  -- Whole milliseconds on both sides: the lease began at least one less after the renewal.
  local afterMs = math.max(0, now - renewedAt - 1)
  grants[#grants + 1] = string.format('granted %.0f %.0f %.0f %d %s', fence, ttlMs, afterMs, attempt, waiter)
end

if #grants > 0 then
  writes[#writes + 1] = 'fence'
  writes[#writes + 1] = fence
  if #grants == #lock.places then
    gone[#gone + 1] = 'queued'
  end
  commit(lockKey, writes, gone, lock.kept, latestEnd)
  for _, grant in ipairs(grants) do
    notify(publish, lockKey, grant)
  end
else
  if #lock.places == 0 then
    gone[#gone + 1] = 'queued'
  end
  commit(lockKey, {}, gone, lock.kept, 0)
end
-- The others hear of it too unless the handoffs took all there was.
if not limit or used < limit then
  notify(publish, lockKey, 'released')
end
return released
