local lockKey = KEYS[1]
local token, ttlMs, limit, weight, queueTtlMs, publish, handoff = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3] or '1'), tonumber(ARGV[4] or '1'), tonumber(ARGV[5] or '0'), ARGV[6], ARGV[7] == '1'
-- Takes `weight` of `limit` permits for `token` for `ttlMs` (a mutex sends only the first two
-- arguments). With `queueTtlMs` > 0 the request also takes (or renews) a place in the
-- arrival-order queue and is granted only at its head; without one it is refused while anyone
-- queues. With `handoff`, the place asks release.lua to grant it the lock when it frees up.
-- Returns { 1, fence, ttlMs } when granted, { 0, retryInMs } when refused (retryInMs -1: no hint).
-- Each request is judged by its own `limit`; nothing stores or compares the limits of holders, so
-- callers must use one limit per key (LockManager does: a semaphore or read-write lock owns its key).

local nowMicros, now = serverTime()
local holderField, placeField = '#' .. token, '?' .. token
local fence, kept, queuedMark = 0, 0, false
local used, earliestEnd = 0, nil
local ownArrival, headField, headArrival, places = nil, nil, nil, 0
local holdsAlready = false
local gone = {}

local fields = redis.call('HGETALL', lockKey)
for i = 1, #fields, 2 do
  local name, value = fields[i], fields[i + 1]
  local kind = string.sub(name, 1, 1)
  -- A token that already holds is asking again because its earlier reply was lost: its own grant
  -- does not count against it, and is replaced.
  if name == holderField then
    holdsAlready = splitPair(value, 1) > now
  elseif kind == '#' then
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
    local place = readPlace(value)
    local arrival = place[1]
    -- A place whose waiter stopped renewing it (it died or gave up) leaves before any decision.
    if place[2] <= now then
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
  elseif name == 'queued' then
    queuedMark = true
  end
end

if queueTtlMs > 0 and not ownArrival then
  -- A new place goes last: every place already there arrived before now.
  ownArrival = nowMicros
  places = places + 1
  headField = headField or placeField
end

-- A holder asking again (its reply or its handoff message was lost) has already passed the queue.
if used + weight > limit or (headField and headField ~= placeField and not holdsAlready) then
  local newKept = nil
  if queueTtlMs > 0 then
    local placeEnd = now + queueTtlMs
    local place
    if handoff then
      place = string.format('%.0f %.0f %.0f %.0f %d %d', ownArrival, placeEnd, now, ttlMs, weight, limit)
    else
      place = string.format('%.0f %.0f', ownArrival, placeEnd)
    end
    local writes = { placeField, place }
    if not queuedMark then
      writes[#writes + 1] = 'queued'
      writes[#writes + 1] = 1
    end
    newKept = renewedKept(kept, placeEnd)
    if newKept then
      writes[#writes + 1] = 'kept'
      writes[#writes + 1] = newKept
    end
    redis.call('HSET', lockKey, unpack(writes))
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
if places == 0 and queuedMark then
  gone[#gone + 1] = 'queued'
end
-- The next in line may fit in what is left: let it try now rather than at its next retry.
local wakeNext = used + weight < limit and places > 0
fence = nextFence(fence, nowMicros)
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
