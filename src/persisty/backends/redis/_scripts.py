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

_LIB = r"""
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

COMMIT = (
    _LIB
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
    _LIB
    + r"""
return expire_due()
"""
)

COUNT = (
    _LIB
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
    _LIB
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

PATCH = (
    _LIB
    + r"""
-- ARGV: base, key, the number of changed fields, per field its JSON name (quoted), '=' and
-- its new JSON value or '+' and the integer to add; then per index the change moves: its
-- name, its number of components and the number replaced, (position, the number of the
-- incremented field whose new value it encodes or 0, new component) each.
-- The fields are spliced into the stored (canonical, compact) JSON, so the document stays
-- what StoreMeta.encode gives for the new item; the etag is left empty (the content hash,
-- computed by readers). Returns {'ok', document}, {'missing'} or {'fallback'} (a value the
-- script does not change itself: the caller takes the read path).
local key = ARGV[2]
local ikey = base .. ':i:' .. key
local shraw = redis.call('HGET', shadow, key)
if not shraw then return {'missing'} end
local stored = redis.call('GET', ikey)
if not stored then return {'missing'} end
local doc = string.sub(stored, string.find(stored, '|', 1, true) + 1)

local nf = tonumber(ARGV[3])
local want, modes, values = {}, {}, {}
local p = 4
for f = 1, nf do
  want[ARGV[p]] = f
  modes[f] = ARGV[p + 1]
  values[f] = ARGV[p + 2]
  p = p + 3
end

local function skip_string(s, i)
  local j = i + 1
  while true do
    local k = string.find(s, '["\\]', j)
    if string.byte(s, k) == 92 then j = k + 2 else return k + 1 end
  end
end
local function skip_value(s, i)
  local c = string.byte(s, i)
  if c == 34 then return skip_string(s, i) end
  if c == 123 or c == 91 then
    local depth = 0
    local j = i
    while true do
      local k = string.find(s, '[%[%]{}"]', j)
      local b = string.byte(s, k)
      if b == 34 then
        j = skip_string(s, k)
      elseif b == 123 or b == 91 then
        depth = depth + 1
        j = k + 1
      else
        depth = depth - 1
        j = k + 1
        if depth == 0 then return j end
      end
    end
  end
  return string.find(s, '[,}%]]', i)
end

-- where each changed field's value is in the top-level object
local spans = {}
local found = 0
local i = 2
while found < nf and string.byte(doc, i) == 34 do
  local kend = skip_string(doc, i)
  local ve = skip_value(doc, kend + 1)
  local f = want[string.sub(doc, i, kend - 1)]
  if f and not spans[f] then
    spans[f] = {kend + 1, ve}
    found = found + 1
  end
  i = ve + 1
end
if found < nf then return {'fallback'} end

local order = {}
for f = 1, nf do order[f] = f end
table.sort(order, function(a, b) return spans[a][1] < spans[b][1] end)
local parts = {}
local sums = {}
local at = 1
for _, f in ipairs(order) do
  local vs, ve = spans[f][1], spans[f][2]
  parts[#parts + 1] = string.sub(doc, at, vs - 1)
  local v = values[f]
  if modes[f] == '+' then
    -- integers of up to 15 digits: exact in a double, and so is their sum
    local cur = string.sub(doc, vs, ve - 1)
    local n = 0
    if cur ~= 'null' then
      if #cur > 15 or not string.find(cur, '^%-?%d+$') then return {'fallback'} end
      n = tonumber(cur)
    end
    sums[f] = n + tonumber(v)
    v = string.format('%d', sums[f])
  end
  parts[#parts + 1] = v
  at = ve
end
parts[#parts + 1] = string.sub(doc, at)
doc = table.concat(parts)

-- the index entries the change moves: components replaced in the member of each index
local sh = unpack_list(shraw)
local function comp_end(m, j)
  local tag = string.byte(m, j)
  if tag == 48 or tag == 49 then  -- str, bytes: up to an unescaped \0
    local k = j + 1
    while true do
      local z = string.find(m, '\0', k, true)
      if string.byte(m, z + 1) == 255 then k = z + 2 else return z + 1 end
    end
  end
  if tag == 35 then return string.find(m, '\0', j + 5, true) + 1 end  -- positive number
  if tag == 33 then return string.find(m, '~', j + 5, true) + 1 end  -- negative number
  if tag == 64 then return j + 9 end  -- datetime
  if tag == 65 then return j + 5 end  -- date
  if tag == 66 then return j + 17 end  -- uuid
  return j + 1
end
-- the component of an integer (persisty.backends.redis._encoding._int)
local function int_comp(x)
  if x == 0 then return '\34' end
  local text = string.format('%d', math.abs(x))
  local digits = (string.gsub(text, '0+$', ''))
  local adj = #text - 1
  local v = 2147483648 + adj
  if x < 0 then
    v = 2147483648 - adj
    digits = (string.gsub(digits, '%d', function(d) return string.char(105 - string.byte(d)) end))
  end
  local b4 = string.char(math.floor(v / 16777216) % 256, math.floor(v / 65536) % 256,
    math.floor(v / 256) % 256, v % 256)
  if x < 0 then return '\33' .. b4 .. digits .. '~' end
  return '\35' .. b4 .. digits .. '\0'
end
local nix = tonumber(ARGV[p])
p = p + 1
for _ = 1, nix do
  local name, ncomp, nrep = ARGV[p], tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2])
  p = p + 3
  local rep = {}
  for _ = 1, nrep do
    local f = tonumber(ARGV[p + 1])
    rep[tonumber(ARGV[p])] = f > 0 and int_comp(sums[f]) or ARGV[p + 2]
    p = p + 3
  end
  local nm = tonumber(sh[2])
  for e = 1, nm do
    if sh[1 + 2 * e] == name then
      local old = sh[2 + 2 * e]
      local comps = {}
      local j = 1
      for c = 1, ncomp do
        local k = comp_end(old, j)
        comps[c] = rep[c] or string.sub(old, j, k - 1)
        j = k
      end
      comps[ncomp + 1] = string.sub(old, j)
      local new = table.concat(comps)
      if new ~= old then
        local z = base .. ':x:' .. name
        redis.call('ZREM', z, old)
        redis.call('ZADD', z, 0, new)
        sh[2 + 2 * e] = new
      end
      break
    end
  end
end
sh[1] = ''
redis.call('SET', ikey, '|' .. doc)
redis.call('HSET', shadow, key, pack_list(sh))
return {'ok', doc}
"""
)
