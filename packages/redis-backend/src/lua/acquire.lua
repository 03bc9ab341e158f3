local lockKey = KEYS[1]
local token, ttlMs, owner, limit, weight, placeTtlMs, publish, handoffTtlMs, attempt, order = ARGV[1], tonumber(ARGV[2]), ARGV[3] or '', tonumber(ARGV[4] or '1'), tonumber(ARGV[5] or '1'), tonumber(ARGV[6] or '0'), ARGV[7], tonumber(ARGV[8] or '0'), tonumber(ARGV[9] or '0'), tonumber(ARGV[10] or '0')
-- Takes `weight` of `limit` permits for `token` for `ttlMs`, noting `owner` ('' for none) with the
-- lease (a mutex sends only the first three arguments). With `placeTtlMs` > 0 the request also
-- takes (or renews) a place in the queue and is granted only at its head; without one it is
-- refused while anyone queues. A new place goes last, or where `order` (> 0) puts it. With
-- `handoffTtlMs` > 0, the place asks release.lua to grant it the lock for that long when it frees
-- up, naming `attempt` in the grant.
-- Returns { 1, fence, ttlMs } when granted, { 0, retryInMs } when refused (retryInMs -1: no hint).
-- Each request is judged by its own `limit`; nothing stores or compares the limits of holders, so
-- callers must use one limit per key (LockManager does: a semaphore or read-write lock owns its key).

local nowMicros, now = serverTime()
local holderField = '#' .. token
local fields = redis.call('HGETALL', lockKey)
-- Most requests find nobody holding or queueing: a hash with at most its fence and `kept` (a
-- released lock), or none. Such a request is granted at once, with no place stored and nobody to
-- wake, whatever else it asked for; this grants it without reading the lock into tables.
if #fields <= 4 and weight <= limit then
  local lastFence, kept, idle = 0, 0, true
  for i = 1, #fields, 2 do
    local name = fields[i]
    if name == 'fence' then
      lastFence = tonumber(fields[i + 1])
    elseif name == 'kept' then
      kept = tonumber(fields[i + 1])
    else
      idle = false
    end
  end
  if idle then
    local fence = nextFence(lastFence, nowMicros)
    local leaseEnd = now + ttlMs
    commit(lockKey, { holderField, holderValue(leaseEnd, weight, owner), 'fence', fence }, {}, kept, leaseEnd)
    return { 1, fence, ttlMs }
  end
end

local placeField = '?' .. token
local readLock = readers()
local lock = readLock(lockKey, now, fields)
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
-- Expired holders and places whose waiter stopped renewing them (it died or gave up) leave with
-- this request's write (commit keeps what the write puts back).
local gone = lock.expired
local places = #lock.places
local head = lock.places[1]
local ownOrder, hasPlace = nil, false
for _, place in ipairs(lock.places) do
  if place.field == placeField then
    ownOrder, hasPlace = place[1], true
  end
end
local atHead = head ~= nil and head.field == placeField
if placeTtlMs > 0 and not ownOrder then
  -- A new place: last (every place there arrived before now), unless the request gave an order.
  ownOrder = order > 0 and order or nowMicros
  places = places + 1
  atHead = not head or ownOrder < head[1] or (ownOrder == head[1] and placeField < head.field)
end

-- A holder asking again (its reply or its handoff message was lost) has already passed the queue.
if used + weight > limit or (head and not atHead and not holdsAlready) then
  local writes = {}
  if placeTtlMs > 0 then
    local placeEnd = now + placeTtlMs
    local place
    if handoffTtlMs > 0 then
      place = string.format('%.0f %.0f %.0f %.0f %d %d %d', ownOrder, placeEnd, now, handoffTtlMs, weight, limit, attempt)
      if owner ~= '' then
        place = place .. ' ' .. owner
      end
    else
      place = string.format('%.0f %.0f', ownOrder, placeEnd)
    end
    writes = { placeField, place }
    if not lock.queued then
      writes[#writes + 1] = 'queued'
      writes[#writes + 1] = 1
    end
    commit(lockKey, writes, gone, lock.kept, placeEnd)
  else
    commit(lockKey, writes, gone, lock.kept, 0)
  end
  return { 0, earliestEnd and earliestEnd - now or -1 }
end

if ownOrder then
  -- Only a place stored before this request needs deleting: a grant at once stores none (and
  -- an HDEL of a field that is not there would still cost a call on every uncontended acquire).
  if hasPlace then
    gone[#gone + 1] = placeField
  end
  places = places - 1
end
if places == 0 and lock.queued then
  gone[#gone + 1] = 'queued'
end
-- The next in line may fit in what is left: let it try now rather than at its next retry.
local wakeNext = used + weight < limit and places > 0
local fence = nextFence(lock.fence, nowMicros)
local leaseEnd = now + ttlMs
commit(lockKey, { holderField, holderValue(leaseEnd, weight, owner), 'fence', fence }, gone, lock.kept, leaseEnd)
if wakeNext then
  notify(publish, lockKey, 'queue')
end
return { 1, fence, ttlMs }
