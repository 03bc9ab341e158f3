-- Shared by every deadbolt script; the loader puts it in front of each operation's file.
-- Time comes from the server only: client clocks never decide whether a lease has expired.
-- Holders expire at the server millisecond their lease ends: a lease of score `t` is gone at `t`.

-- Tells the key's waiters. Only the two commands the adapters choose between are ever called:
-- SPUBLISH (sharded pub/sub on a Redis 7 Cluster, which wakes only the owning shard) falls back to
-- PUBLISH on servers without it; anything else means PUBLISH.
local function notify(publish, channel, message)
  if publish == 'SPUBLISH' then
    local reply = redis.pcall('SPUBLISH', channel, message)
    if type(reply) ~= 'table' or not reply.err then
      return
    end
  end
  redis.call('PUBLISH', channel, message)
end

-- Fences are written with %.0f: Lua 5.1 would print large numbers in exponent form and lose digits.
local function formatInteger(value)
  return string.format('%.0f', value)
end

-- Server time as { microseconds, milliseconds } since the epoch.
local function serverTime()
  local time = redis.call('TIME')
  local micros = tonumber(time[1]) * 1000000 + tonumber(time[2])
  return micros, math.floor(micros / 1000)
end

-- Removes the members of `zset` scored at or below `now`, and the same members from `hash` when
-- given. Works in batches: unpack() of a long list would overflow Lua's stack.
local function removeExpired(zset, hash, now)
  while true do
    local expired = redis.call('ZRANGEBYSCORE', zset, '-inf', now, 'LIMIT', 0, 1000)
    if #expired == 0 then
      return
    end
    redis.call('ZREM', zset, unpack(expired))
    if hash then
      redis.call('HDEL', hash, unpack(expired))
    end
  end
end

-- Expired holders and queue places whose waiter stopped renewing them leave before any decision.
local function prune(holdersKey, weightsKey, queueKey, waitingKey, now)
  removeExpired(holdersKey, weightsKey, now)
  if queueKey then
    local gone = redis.call('ZRANGEBYSCORE', waitingKey, '-inf', now, 'LIMIT', 0, 1000)
    while #gone > 0 do
      redis.call('ZREM', queueKey, unpack(gone))
      redis.call('ZREM', waitingKey, unpack(gone))
      gone = redis.call('ZRANGEBYSCORE', waitingKey, '-inf', now, 'LIMIT', 0, 1000)
    end
  end
end

-- The fence outlives the holders by this long, so fences never repeat while anyone could still
-- present an old one; after that the time floor in nextFence keeps them increasing.
local FENCE_GRACE_MS = 3600000

-- Lets every key of the lock expire with its last lease, so idle locks leave nothing behind.
local function expireWithLeases(holdersKey, weightsKey, fenceKey, now)
  local last = redis.call('ZRANGE', holdersKey, -1, -1, 'WITHSCORES')
  local until_ = now
  if last[2] then
    until_ = tonumber(last[2])
    redis.call('PEXPIREAT', holdersKey, formatInteger(until_))
    redis.call('PEXPIREAT', weightsKey, formatInteger(until_))
  end
  if redis.call('EXISTS', fenceKey) == 1 then
    redis.call('PEXPIREAT', fenceKey, formatInteger(until_ + FENCE_GRACE_MS))
  end
end

-- The same for queue places: the queue lives as long as its latest place.
local function expireWithPlaces(queueKey, waitingKey)
  local last = redis.call('ZRANGE', waitingKey, -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIREAT', queueKey, last[2])
    redis.call('PEXPIREAT', waitingKey, last[2])
  end
end

-- Strictly above the last fence, and never below the server clock in microseconds. A bare INCR
-- would restart at 1 when the server restarts empty or fails over to a replica that missed the
-- last write, and would force the fence key to live forever; the time floor keeps fences
-- increasing in both cases (as long as the clock of the server that answers does not lag behind
-- the fences already granted), so the fence key may expire FENCE_GRACE_MS after the last lease.
-- Microseconds since the epoch stay below 2^53, so fences are exact in Lua and in JavaScript.
local function nextFence(fenceKey, nowMicros)
  local last = tonumber(redis.call('GET', fenceKey)) or 0
  local fence = math.max(last + 1, nowMicros)
  redis.call('SET', fenceKey, formatInteger(fence))
  return fence
end
