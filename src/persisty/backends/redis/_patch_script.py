"""The Lua script of a patch without a read on the Redis backend: the changed fields
written into the stored document, the indexes they feed moved, in one script call.
"""

from __future__ import annotations

from persisty.backends.redis._scripts import LIB

PATCH = (
    LIB
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
