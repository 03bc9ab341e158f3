local lockKey = KEYS[1]
-- Tells whether this server may evict keys when memory runs out, which would delete a held lock.
-- Returns { maxmemory, maxmemory-policy } as INFO memory reports them ('' for one it does not
-- report), or { 'refused', error } when the server does not let INFO run (an ACL without
-- @dangerous, a renamed command). `lockKey`, when given, only routes the script to the server
-- that holds that lock. CONFIG GET would ask directly, but scripts may not call CONFIG.

local info = redis.pcall('INFO', 'memory')
if type(info) == 'table' and info.err then
  return { 'refused', info.err }
end
return {
  string.match(info, 'maxmemory:(%d+)') or '',
  string.match(info, 'maxmemory_policy:([%w-]+)') or '',
}
