"""The Lua scripts the Redis backend runs: every write, with its index maintenance, unique
checks, etag checks and TTL bookkeeping, happens inside one script call, so it is atomic.

Arguments of ``COMMIT`` (see ``Layout.commit_args``): the store's base name, ``1`` for an
all-or-nothing batch, the TTL in milliseconds (0 for none), the number of sorted-set indexes
(the key set first) and of unique indexes, their names, then per operation ``D key
expected`` or ``I|R|P key expected value shadow <one member per index> <one field per
unique index>`` (``P`` creates or replaces; ``shadow`` is what ``Layout.shadow_entry``
builds). It returns one code per operation: ``ok``, ``exists``, ``missing``, ``etag`` or
``unique:<n>`` (in an atomic batch that fails, operations after the failing one get ``""``).
"""

from __future__ import annotations

LIB = r"""
local base = ARGV[1]
local shadow = base .. ':s'
local now = nil
local function nowms()
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now
end
local function unpack_list(s)
  local t = {}
  local i = 1
  local n = #s
  while i <= n do
    local c = string.find(s, ':', i, true)
    local len = tonumber(string.sub(s, i, c - 1))
    t[#t + 1] = string.sub(s, c + 1, c + len)
    i = c + len + 1
  end
  return t
end
-- shadow list: etag, n, (index name, member) * n, m, (unique name, field) * m
local function unindex(key, sh, keep)
  local nm = tonumber(sh[2])
  local i = 3
  for _ = 1, nm do
    local id = sh[i] .. '\0' .. sh[i + 1]
    if not (keep and keep[id]) then
      redis.call('ZREM', base .. ':x:' .. sh[i], sh[i + 1])
    end
    i = i + 2
  end
  local nu = tonumber(sh[i])
  i = i + 1
  for _ = 1, nu do
    local h = base .. ':u:' .. sh[i]
    if redis.call('HGET', h, sh[i + 1]) == key then redis.call('HDEL', h, sh[i + 1]) end
    i = i + 2
  end
end
local function pack_list(t)
  local out = {}
  for i = 1, #t do out[i] = #t[i] .. ':' .. t[i] end
  return table.concat(out)
end
local function expire_due()
  local ez = base .. ':e'
  local due = redis.call('ZRANGEBYSCORE', ez, '-inf', nowms())
  for _, key in ipairs(due) do
    local s = redis.call('HGET', shadow, key)
    if s then
      unindex(key, unpack_list(s), nil)
      redis.call('HDEL', shadow, key)
    end
    redis.call('DEL', base .. ':i:' .. key)
    redis.call('ZREM', ez, key)
  end
  return #due
end
"""
"""The helpers every script starts with (the shadow hash, the clock, list packing,
expiry)."""

COMMIT = (
    LIB
    + r"""
local atomic = ARGV[2] == '1'
local ttl = tonumber(ARGV[3])  -- 1: the store's items expire (each op carries its instant)
local nix = tonumber(ARGV[4])
local nu = tonumber(ARGV[5])
local p = 6
local ixnames = {}
local ixkeys = {}
for i = 1, nix do ixnames[i] = ARGV[p]; ixkeys[i] = base .. ':x:' .. ARGV[p]; p = p + 1 end
local unames = {}
for i = 1, nu do unames[i] = ARGV[p]; p = p + 1 end
if ttl > 0 then expire_due() end

local ops = {}
while p <= #ARGV do
  local op = {kind = ARGV[p], key = ARGV[p + 1], expected = ARGV[p + 2]}
  p = p + 3
  if op.kind ~= 'D' then
    op.value = ARGV[p]
    op.shadow = ARGV[p + 1]
    p = p + 2
    op.members = {}
    for i = 1, nix do op.members[i] = ARGV[p]; p = p + 1 end
    op.fields = {}
    for i = 1, nu do op.fields[i] = ARGV[p]; p = p + 1 end
    if ttl > 0 then op.at = tonumber(ARGV[p]); p = p + 1 end
  end
  ops[#ops + 1] = op
end

local state = {}
local owners = {}
-- the shadow records of every key of the batch, in one HMGET per 1,000 keys
for a = 1, #ops, 1000 do
  local keys = {}
  for i = a, math.min(a + 999, #ops) do keys[#keys + 1] = ops[i].key end
  local found = redis.call('HMGET', shadow, unpack(keys))
  for i = 1, #keys do
    if state[keys[i]] == nil then state[keys[i]] = found[i] end
  end
end
local function current(key)
  local v = state[key]
  if v == nil then
    v = redis.call('HGET', shadow, key)
    state[key] = v
  end
  return v
end
local function owner(uname, field)
  local id = uname .. '\0' .. field
  local v = owners[id]
  if v == nil then
    v = redis.call('HGET', base .. ':u:' .. uname, field)
    owners[id] = v
  end
  return v
end
local function release(key, sh)
  local i = 3 + 2 * tonumber(sh[2])
  local n = tonumber(sh[i])
  i = i + 1
  for _ = 1, n do
    if owner(sh[i], sh[i + 1]) == key then owners[sh[i] .. '\0' .. sh[i + 1]] = false end
    i = i + 2
  end
end
local function etag_of(sh)
  local c = string.find(sh, ':', 1, true)
  return string.sub(sh, c + 1, c + tonumber(string.sub(sh, 1, c - 1)))
end

local function check(op)
  local cur = current(op.key)
  if op.kind == 'I' then
    if cur then return 'exists' end
  elseif op.kind ~= 'P' then  -- P: create or replace, whichever the key needs
    if not cur then return 'missing' end
    if op.expected ~= '' then
      local t = etag_of(cur)
      if t == '' then return 'unknown' end  -- a patch left it out: FILL, then again
      if t ~= op.expected then return 'etag' end
    end
  end
  if op.kind ~= 'D' then
    for i = 1, nu do
      local f = op.fields[i]
      if f ~= '' then
        local o = owner(unames[i], f)
        if o and o ~= op.key then return 'unique:' .. (i - 1) end
      end
    end
  end
  if cur then
    op.prev = unpack_list(cur)
    release(op.key, op.prev)
  end
  if op.kind == 'D' then
    state[op.key] = false
  else
    state[op.key] = op.shadow
    for i = 1, nu do
      local f = op.fields[i]
      if f ~= '' then owners[unames[i] .. '\0' .. f] = op.key end
    end
  end
  return 'ok'
end

-- writes of new values are collected and sent as one MSET / ZADD / HSET per kind; a key
-- written twice in one batch flushes them first, so every change lands in order
local pset, pshadow, pz, pu, touched = {}, {}, {}, {}, {}
for i = 1, nix do pz[i] = {} end
for i = 1, nu do pu[i] = {} end
local function send(cmd, key, list)
  for a = 1, #list, 2000 do
    if key then
      redis.call(cmd, key, unpack(list, a, math.min(a + 1999, #list)))
    else
      redis.call(cmd, unpack(list, a, math.min(a + 1999, #list)))
    end
  end
end
local function flush()
  if #pset > 0 then send('MSET', nil, pset); pset = {} end
  for i = 1, nix do
    if #pz[i] > 0 then send('ZADD', ixkeys[i], pz[i]); pz[i] = {} end
  end
  for i = 1, nu do
    if #pu[i] > 0 then send('HSET', base .. ':u:' .. unames[i], pu[i]); pu[i] = {} end
  end
  if #pshadow > 0 then send('HSET', shadow, pshadow); pshadow = {} end
  touched = {}
end

local function apply(op)
  if touched[op.key] then flush() end
  touched[op.key] = true
  local ikey = base .. ':i:' .. op.key
  local old = nil
  if op.prev then
    local sh = op.prev
    local keep = nil
    if op.kind ~= 'D' then
      keep = {}
      for i = 1, nix do keep[ixnames[i] .. '\0' .. op.members[i]] = true end
    end
    unindex(op.key, sh, keep)
    old = {}
    local nm = tonumber(sh[2])
    for i = 1, nm do old[sh[1 + 2 * i] .. '\0' .. sh[2 + 2 * i]] = true end
  end
  if op.kind == 'D' then
    redis.call('DEL', ikey)
    redis.call('HDEL', shadow, op.key)
    if ttl > 0 then redis.call('ZREM', base .. ':e', op.key) end
    return
  end
  if ttl > 0 then
    -- the item's own expiry instant (its Attr(expires=True) value), 0 for none
    if op.at > 0 then
      redis.call('SET', ikey, op.value, 'PXAT', op.at)
      redis.call('ZADD', base .. ':e', op.at, op.key)
    else
      redis.call('SET', ikey, op.value)
      redis.call('ZREM', base .. ':e', op.key)
    end
  else
    pset[#pset + 1] = ikey
    pset[#pset + 1] = op.value
  end
  for i = 1, nix do
    if not (old and old[ixnames[i] .. '\0' .. op.members[i]]) then
      local z = pz[i]
      z[#z + 1] = 0
      z[#z + 1] = op.members[i]
    end
  end
  for i = 1, nu do
    local f = op.fields[i]
    if f ~= '' then
      local u = pu[i]
      u[#u + 1] = f
      u[#u + 1] = op.key
    end
  end
  pshadow[#pshadow + 1] = op.key
  pshadow[#pshadow + 1] = op.shadow
end

local results = {}
if atomic then
  local failed = false
  for i, op in ipairs(ops) do
    if failed then
      results[i] = ''
    else
      results[i] = check(op)
      if results[i] ~= 'ok' then failed = true end
    end
  end
  if not failed then
    for _, op in ipairs(ops) do apply(op) end
  end
else
  for i, op in ipairs(ops) do
    results[i] = check(op)
    if results[i] == 'ok' then apply(op) end
  end
end
flush()
return results
"""
)

EXPIRE = (
    LIB
    + r"""
return expire_due()
"""
)

COUNT = (
    LIB
    + r"""
-- ARGV: base, zset, then pairs of lex bounds; with no pairs, ZCARD
if redis.call('EXISTS', base .. ':e') == 1 then expire_due() end
local zset = ARGV[2]
if #ARGV == 2 then return redis.call('ZCARD', zset) end
local total = 0
for i = 3, #ARGV, 2 do
  total = total + redis.call('ZLEXCOUNT', zset, ARGV[i], ARGV[i + 1])
end
return total
"""
)

FILL = (
    LIB
    + r"""
-- ARGV: base, then (key, document, etag) per item whose stored etag a patch left out: the
-- etag is written while the item is still that document
for i = 2, #ARGV, 3 do
  local key, doc, tag = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local ikey = base .. ':i:' .. key
  if redis.call('GET', ikey) == '|' .. doc then
    local s = redis.call('HGET', shadow, key)
    if s then
      local t = unpack_list(s)
      if t[1] == '' then
        t[1] = tag
        redis.call('HSET', shadow, key, pack_list(t))
        redis.call('SET', ikey, tag .. '|' .. doc, 'KEEPTTL')
      end
    end
  end
end
return 0
"""
)
