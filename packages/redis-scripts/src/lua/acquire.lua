local lockKey = KEYS[1]
local token, ttlMs, limit, weight, queueTtlMs, publish = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3] or '1'), tonumber(ARGV[4] or '1'), tonumber(ARGV[5] or '0'), ARGV[6]
-- Takes `weight` of `limit` permits for `token` for `ttlMs` (a mutex sends only the first two
-- arguments). With `queueTtlMs` > 0 the request also takes (or renews) a place in the
-- arrival-order queue and is granted only at its head; without one it is refused while anyone
-- queues.
-- Returns { 1, fence, ttlMs } when granted, { 0, retryInMs } when refused (retryInMs -1: no hint).
-- Each request is judged by its own `limit`; nothing stores or compares the limits of holders, so
-- callers must use one limit per key (LockManager does: a semaphore or read-write lock owns its key).

local nowMicros, now = serverTime()
local holderField, placeField = '#' .. token, '?' .. token
local fence, kept = 0, 0
local used, earliestEnd = 0, nil
local ownArrival, headField, headArrival, places = nil, nil, nil, 0
local gone = {}

local fields = redis.call('HGETALL', lockKey)
for i = 1, #fields, 2 do
  local name, value = fields[i], fields[i + 1]
  local kind = string.sub(name, 1, 1)
  -- A token that already holds is asking again because its earlier reply was lost: its own grant
  -- does not count against it, and is replaced.
  if kind == '#' and name ~= holderField then
    local leaseEnd, held = splitPair(value, 1)
    if leaseEnd <= now then
      gone[#gone + 1] = name
    else
      used = used + held
      if not earliestEnd or leaseEnd < earliestEnd then
        earliestEnd = leaseEnd
      end
    end
  elseif kind == '?' then
    local arrival, placeEnd = splitPair(value)
    -- A place whose waiter stopped renewing it (it died or gave up) leaves before any decision.
    if placeEnd <= now then
      gone[#gone + 1] = name
    else
      places = places + 1
      if name == placeField then
        ownArrival = arrival
      end
      if not headArrival or arrival < headArrival or (arrival == headArrival and name < headField) then
        headField, headArrival = name, arrival
      end
    end
  elseif name == 'fence' then
    fence = tonumber(value)
  elseif name == 'kept' then
    kept = tonumber(value)
  end
end

if queueTtlMs > 0 and not ownArrival then
  -- A new place goes last: every place already there arrived before now.
  ownArrival = nowMicros
  places = places + 1
  headField = headField or placeField
end

if used + weight > limit or (headField and headField ~= placeField) then
  local newKept = nil
  if queueTtlMs > 0 then
    local placeEnd = now + queueTtlMs
    local place = string.format('%.0f %.0f', ownArrival, placeEnd)
    newKept = renewedKept(kept, placeEnd)
    if newKept then
      redis.call('HSET', lockKey, placeField, place, 'kept', newKept)
    else
      redis.call('HSET', lockKey, placeField, place)
    end
  end
  deleteFields(lockKey, gone)
  if newKept then
    redis.call('PEXPIREAT', lockKey, newKept)
  end
  return { 0, earliestEnd and earliestEnd - now or -1 }
end

if ownArrival then
  gone[#gone + 1] = placeField
  places = places - 1
end
-- The next in line may fit in what is left: let it try now rather than at its next retry.
local wakeNext = used + weight < limit and places > 0
-- Strictly above the last fence, and never below the server clock in microseconds. A bare
-- counter would restart at 1 when the server restarts empty or fails over to a replica that
-- missed the last write, and would force the hash to live forever; the time floor keeps fences
-- increasing in both cases (as long as the clock of the server that answers does not lag behind
-- the fences already granted). Microseconds since the epoch stay below 2^53, so fences are exact.
fence = math.max(fence + 1, nowMicros)
local leaseEnd = now + ttlMs
local newKept = renewedKept(kept, leaseEnd)
if newKept then
  redis.call('HSET', lockKey, holderField, holderValue(leaseEnd, weight), 'fence', fence, 'kept', newKept)
else
  redis.call('HSET', lockKey, holderField, holderValue(leaseEnd, weight), 'fence', fence)
end
-- Only after the write: removing the last other field first would delete the hash, expiry and all.
deleteFields(lockKey, gone)
if newKept then
  redis.call('PEXPIREAT', lockKey, newKept)
end
if wakeNext then
  notify(publish, lockKey, 'queue')
end
return { 1, fence, ttlMs }
