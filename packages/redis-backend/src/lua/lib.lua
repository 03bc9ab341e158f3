-- Shared by every deadbolt script; the loader puts it in front of each operation's file.
--
-- A lock is one hash, the first key of every script, whose name is also the channel its releases
-- are published on:
--   fence        the last fence granted
--   kept         when the hash expires (server ms), as last set, so expiry is only renewed when due
--   #<token>     a holder: its lease end (server ms), then ' <weight>' when it holds more than 1
--                or gave an owner, then ' <owner>' (the rest of the value) when it gave one
--   ?<token>     a queue place: its order (its arrival in server µs, or the order the request
--                gave) and when it runs out (server ms), then for a waiter that asked to be handed
--                the lock, when it last renewed the place (server ms), the TTL, weight and limit to
--                grant it and the attempt that renewed it, then its owner if it gave one; numbers
--                separated by spaces
--   queued       present while queue places may exist, so a release looks for one only then
-- One key per lock keeps each operation to a handful of calls on one structure, and the hash goes
-- as a whole once the last lease is an hour past (see FENCE_GRACE_MS).
--
-- Time comes from the server only: client clocks never decide whether a lease has expired.
-- A lease whose end is `t` is gone at `t`.
-- Numbers are passed to redis.call as numbers: Redis prints them with %.17g, exact for integers
-- below 2^53, where Lua's own conversion (%.14g) would print microseconds in exponent form.

-- The hash outlives its last lease by this long, so fences never repeat while anyone could still
-- present an old one; after that the time floor of the fence keeps them increasing.
local FENCE_GRACE_MS = 3600000
-- Expiry is set this much further than needed, so a busy lock renews it only every few minutes.
local KEEP_SLACK_MS = 300000

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

-- Server time as microseconds and milliseconds since the epoch.
local function serverTime()
  local time = redis.call('TIME')
  local micros = time[1] * 1000000 + time[2]
  return micros, math.floor(micros / 1000)
end

-- The readers of a lock's fields, built on demand: `local readLock, readHolder = readers()`. Lua
-- builds a closure each time a `local function` statement runs, which in a script is on every call;
-- the common cases of acquire and release read only fixed fields and never need these.
local function readers()
  -- The first `count` space-separated numbers of a field value (those it has), and the rest of the
  -- value after them, or nil when nothing follows.
  local function readFields(value, count)
    local numbers, from = {}, 1
    while #numbers < count do
      local space = string.find(value, ' ', from, true)
      if not space then
        numbers[#numbers + 1] = tonumber(string.sub(value, from))
        return numbers, nil
      end
      numbers[#numbers + 1] = tonumber(string.sub(value, from, space - 1))
      from = space + 1
    end
    return numbers, string.sub(value, from)
  end

  -- A holder's lease end, weight (1 when the value has none) and owner (nil when it has none).
  local function readHolder(value)
    local numbers, owner = readFields(value, 2)
    return numbers[1], numbers[2] or 1, owner
  end

  -- A queue place's numbers, in order (see the layout above), with its owner as `owner`.
  local function readPlace(value)
    local numbers, owner = readFields(value, 7)
    numbers.owner = owner
    return numbers
  end

  -- The whole lock as of `now`: its last fence, `kept`, whether it is marked `queued`, the holders
  -- whose lease still runs ({ field, leaseEnd, weight, owner }), the queue places that have not run out
  -- (the numbers of readPlace, with `field`, in queue order), and the fields of the expired ones.
  -- `fields`, when given, is the lock's HGETALL reply, which the caller already has.
  local function readLock(lockKey, now, fields)
    local lock = { fence = 0, kept = 0, queued = false, holders = {}, places = {}, expired = {} }
    fields = fields or redis.call('HGETALL', lockKey)
    for i = 1, #fields, 2 do
      local name, value = fields[i], fields[i + 1]
      local kind = string.sub(name, 1, 1)
      if kind == '#' then
        local leaseEnd, weight, owner = readHolder(value)
        if leaseEnd <= now then
          lock.expired[#lock.expired + 1] = name
        else
          lock.holders[#lock.holders + 1] = { field = name, leaseEnd = leaseEnd, weight = weight, owner = owner }
        end
      elseif kind == '?' then
        local place = readPlace(value)
        if place[2] <= now then
          lock.expired[#lock.expired + 1] = name
        else
          place.field = name
          lock.places[#lock.places + 1] = place
        end
      elseif name == 'fence' then
        lock.fence = tonumber(value)
      elseif name == 'kept' then
        lock.kept = tonumber(value)
      elseif name == 'queued' then
        lock.queued = true
      end
    end
    if #lock.places > 1 then
      table.sort(lock.places, function(a, b)
        return a[1] < b[1] or (a[1] == b[1] and a.field < b.field)
      end)
    end
    return lock
  end

  return readLock, readHolder
end

-- A holder's field value: the lease end, then the weight when it is not 1 or an owner follows,
-- then the owner when there is one (an empty one counts as none).
local function holderValue(leaseEnd, weight, owner)
  if owner and owner ~= '' then
    return string.format('%.0f %d %s', leaseEnd, weight, owner)
  end
  if weight == 1 then
    return leaseEnd
  end
  return string.format('%.0f %d', leaseEnd, weight)
end

-- HSET of `writes` (name, value, ...) and HDEL of `gone` (names), keeping the hash until at least
-- `needed` + FENCE_GRACE_MS; `kept` is its current `kept`. A name in both is written, not deleted:
-- a field this operation just wrote (a lease handed to a waiter whose own earlier lease had
-- expired, a new place of a waiter whose old one ran out) must survive the clean-up of the expired
-- field it replaces. Writes go first: removing the last other field first would delete the hash,
-- expiry and all. The expiry is only renewed when due, and set after the write: on a hash that
-- does not exist yet PEXPIREAT would do nothing.
local function commit(lockKey, writes, gone, kept, needed)
  if #writes > 0 and #gone > 0 then
    local written = {}
    for i = 1, #writes, 2 do
      written[writes[i]] = true
    end
    local stale = {}
    for _, name in ipairs(gone) do
      if not written[name] then
        stale[#stale + 1] = name
      end
    end
    gone = stale
  end
  if #writes > 0 then
    if needed + FENCE_GRACE_MS > kept then
      local until_ = needed + FENCE_GRACE_MS + KEEP_SLACK_MS
      writes[#writes + 1] = 'kept'
      writes[#writes + 1] = until_
      redis.call('HSET', lockKey, unpack(writes))
      redis.call('PEXPIREAT', lockKey, until_)
    else
      redis.call('HSET', lockKey, unpack(writes))
    end
  end
  -- In batches: unpack() of a long list would overflow Lua's stack.
  for first = 1, #gone, 1000 do
    redis.call('HDEL', lockKey, unpack(gone, first, math.min(first + 999, #gone)))
  end
end

-- The fence of a new grant: strictly above the last one, and never below the server clock in
-- microseconds. A bare counter would restart at 1 when the server restarts empty or fails over to
-- a replica that missed the last write, and would force the hash to live forever; the time floor
-- keeps fences increasing in both cases (as long as the clock of the server that answers does not
-- lag behind the fences already granted). Microseconds since the epoch stay below 2^53, so fences
-- are exact.
local function nextFence(last, nowMicros)
  return math.max(last + 1, nowMicros)
end
