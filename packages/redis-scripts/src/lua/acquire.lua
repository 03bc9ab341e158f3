local holdersKey, weightsKey, fenceKey, queueKey, waitingKey, channel = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local token, ttlMs, limit, weight, queueTtlMs, publish = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
-- Takes `weight` of `limit` permits for `token` for `ttlMs`. With `queueTtlMs` > 0 the request
-- also takes (or renews) a place in the arrival-order queue and is granted only at its head;
-- without one it is refused while anyone queues.
-- Returns { 1, fence, ttlMs } when granted, { 0, retryInMs } when refused (retryInMs -1: no hint).
-- Each request is judged by its own `limit`; nothing stores or compares the limits of holders, so
-- callers must use one limit per key (LockManager does: a semaphore or read-write lock owns its key).

local nowMicros, now = serverTime()

-- Fast path: nobody holds (the holders key goes with its last lease) and nobody queues, so the
-- request fits whatever its weight: grant without pruning, reading weights or queueing.
if redis.call('EXISTS', holdersKey, queueKey) == 0 then
  local expiresAt = formatInteger(now + ttlMs)
  redis.call('ZADD', holdersKey, expiresAt, token)
  redis.call('HSET', weightsKey, token, weight)
  redis.call('PEXPIREAT', holdersKey, expiresAt)
  redis.call('PEXPIREAT', weightsKey, expiresAt)
  local fence = nextFence(fenceKey, nowMicros)
  redis.call('PEXPIREAT', fenceKey, formatInteger(now + ttlMs + FENCE_GRACE_MS))
  return { 1, fence, ttlMs }
end

prune(holdersKey, weightsKey, queueKey, waitingKey, now)

if queueTtlMs > 0 then
  redis.call('ZADD', queueKey, 'NX', formatInteger(nowMicros), token)
  redis.call('ZADD', waitingKey, formatInteger(now + queueTtlMs), token)
  expireWithPlaces(queueKey, waitingKey)
end

-- A token that already holds is asking again because its earlier reply was lost: its own grant
-- does not count against it, and is replaced.
local used = 0
local held = redis.call('HGETALL', weightsKey)
for i = 1, #held, 2 do
  if held[i] ~= token then
    used = used + tonumber(held[i + 1])
  end
end
local head = redis.call('ZRANGE', queueKey, 0, 0)[1]

if used + weight > limit or (head and head ~= token) then
  local retryInMs = -1
  local earliest = redis.call('ZRANGE', holdersKey, 0, 1, 'WITHSCORES')
  for i = 1, #earliest, 2 do
    if earliest[i] ~= token then
      retryInMs = math.max(1, tonumber(earliest[i + 1]) - now)
      break
    end
  end
  return { 0, retryInMs }
end

if head then
  redis.call('ZREM', queueKey, token)
  redis.call('ZREM', waitingKey, token)
end
redis.call('ZADD', holdersKey, formatInteger(now + ttlMs), token)
redis.call('HSET', weightsKey, token, weight)
local fence = nextFence(fenceKey, nowMicros)
expireWithLeases(holdersKey, weightsKey, fenceKey, now)

-- The next in line may fit in what is left: let it try now rather than at its next retry.
if used + weight < limit and redis.call('ZCARD', queueKey) > 0 then
  notify(publish, channel, 'queue')
end
return { 1, fence, ttlMs }
