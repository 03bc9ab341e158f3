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
local lock = readLock(lockKey, now)
local fence, gone = lock.fence, {}
-- A token that already holds is asking again because its earlier reply (or its handoff message)
-- was lost: its own grant does not count against it, and is replaced.
local used, earliestEnd, holdsAlready = 0, nil, false
for _, holder in ipairs(lock.holders) do
  if holder.field == holderField then
    holdsAlready = true
  else
    used = used + holder.weight
    if not earliestEnd or holder.leaseEnd < earliestEnd then
      earliestEnd = holder.leaseEnd
    end
  end
end
-- Expired holders and places whose waiter stopped renewing them (it died or gave up) leave
-- before any decision; an expired lease of this very token is about to be replaced.
for _, field in ipairs(lock.expired) do
  if field ~= holderField then
    gone[#gone + 1] = field
  end
end
local places = #lock.places
local headField = lock.places[1] and lock.places[1].field
local ownArrival
for _, place in ipairs(lock.places) do
  if place.field == placeField then
    ownArrival = place[1]
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
  if queueTtlMs > 0 then
    local placeEnd = now + queueTtlMs
    local place
    if handoff then
      place = string.format('%.0f %.0f %.0f %.0f %d %d', ownArrival, placeEnd, now, ttlMs, weight, limit)
    else
      place = string.format('%.0f %.0f', ownArrival, placeEnd)
    end
    local writes = { placeField, place }
    if not lock.queued then
      writes[#writes + 1] = 'queued'
      writes[#writes + 1] = 1
    end
    writeFields(lockKey, writes, lock.kept, placeEnd)
  end
  deleteFields(lockKey, gone)
  return { 0, earliestEnd and earliestEnd - now or -1 }
end

if ownArrival then
  gone[#gone + 1] = placeField
  places = places - 1
end
if places == 0 and lock.queued then
  gone[#gone + 1] = 'queued'
end
-- The next in line may fit in what is left: let it try now rather than at its next retry.
local wakeNext = used + weight < limit and places > 0
fence = nextFence(fence, nowMicros)
local leaseEnd = now + ttlMs
writeFields(lockKey, { holderField, holderValue(leaseEnd, weight), 'fence', fence }, lock.kept, leaseEnd)
-- Only after the write: removing the last other field first would delete the hash, expiry and all.
deleteFields(lockKey, gone)
if wakeNext then
  notify(publish, lockKey, 'queue')
end
return { 1, fence, ttlMs }
