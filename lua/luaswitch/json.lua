--- luaswitch.json: read JSON text (RFC 8259) into Lua values, for FDB snapshots and other
-- files a lab keeps. Writing is `require("luaswitch.console").json(v)`.
--
--    local json = require "luaswitch.json"
--    local v, err = json.decode('{"a": [1, 2.5, "x", true, null]}')
--    --> { a = { 1, 2.5, "x", true, json.null } }
--
-- Objects become tables with string keys, arrays become lists (a JSON `null` inside an
-- array or object is `json.null`, so lists keep their length). Numbers without a fraction
-- or exponent become integers when they fit. Errors give the byte position.
-- @module luaswitch.json

local M = {}

--- The value JSON's `null` decodes to inside arrays and objects.
M.null = setmetatable({}, { __tostring = function() return "null" end, __name = "json.null" })

local byte, sub, find = string.byte, string.sub, string.find

local function fail(s, i, what)
  local line = select(2, sub(s, 1, i):gsub("\n", "")) + 1
  error({ json = ("%s at byte %d (line %d)"):format(what, i, line) }, 0)
end

local function skip(s, i)
  local _, e = find(s, "^[ \t\r\n]*", i)
  return e + 1
end

local function utf8_of(cp)
  return utf8.char(cp)
end

local decode_value

local function decode_string(s, i)
  -- i is at the opening quote
  local out, j = {}, i + 1
  while true do
    local a, b = find(s, '^[^"\\%c]*', j)
    if b >= a then out[#out + 1] = sub(s, a, b) end
    j = b + 1
    local c = byte(s, j)
    if c == nil then fail(s, j, "unterminated string") end
    if c == 34 then return table.concat(out), j + 1 end
    if c < 32 then fail(s, j, "control character in string") end
    -- backslash
    local e = byte(s, j + 1)
    local simple = { [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n",
      [114] = "\r", [116] = "\t" }
    if simple[e] then
      out[#out + 1] = simple[e]
      j = j + 2
    elseif e == 117 then -- \uXXXX, with surrogate pairs
      local hex = sub(s, j + 2, j + 5)
      if not hex:match("^%x%x%x%x$") then fail(s, j, "bad \\u escape") end
      local cp = tonumber(hex, 16)
      j = j + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local lo = sub(s, j, j + 5):match("^\\u(%x%x%x%x)$")
        local lv = lo and tonumber(lo, 16)
        if not lv or lv < 0xDC00 or lv > 0xDFFF then fail(s, j, "lone surrogate in \\u escape") end
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lv - 0xDC00)
        j = j + 6
      elseif cp >= 0xDC00 and cp <= 0xDFFF then
        fail(s, j - 6, "lone surrogate in \\u escape")
      end
      out[#out + 1] = utf8_of(cp)
    else
      fail(s, j, "bad escape")
    end
  end
end

local function decode_number(s, i)
  local a, b = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", i)
  if not a then fail(s, i, "unexpected character") end
  local text = sub(s, a, b)
  if not text:match("^-?0$") and not text:match("^-?[1-9]%d*$") and
    not text:match("^-?0[.eE]") and not text:match("^-?[1-9]%d*[.eE]") then
    fail(s, i, "malformed number")
  end
  if text:match("%.$") or text:match("[eE][-+]?$") or text:match("%.[eE]") then fail(s, i, "malformed number") end
  local v = math.tointeger(tonumber(text)) or tonumber(text)
  if text:find("[.eE]") then v = tonumber(text) + 0.0 end
  if v == nil then fail(s, i, "malformed number") end
  return v, b + 1
end

function decode_value(s, i, depth)
  if depth > 200 then fail(s, i, "nesting too deep") end
  i = skip(s, i)
  local c = byte(s, i)
  if c == nil then fail(s, i, "unexpected end") end
  if c == 123 then -- {
    local t = {}
    i = skip(s, i + 1)
    if byte(s, i) == 125 then return t, i + 1 end
    while true do
      i = skip(s, i)
      if byte(s, i) ~= 34 then fail(s, i, "object key expected") end
      local k
      k, i = decode_string(s, i)
      i = skip(s, i)
      if byte(s, i) ~= 58 then fail(s, i, "':' expected") end
      local v
      v, i = decode_value(s, i + 1, depth + 1)
      t[k] = v
      i = skip(s, i)
      local d = byte(s, i)
      if d == 125 then return t, i + 1 end
      if d ~= 44 then fail(s, i, "',' or '}' expected") end
      i = i + 1
    end
  elseif c == 91 then -- [
    local t, n = {}, 0
    i = skip(s, i + 1)
    if byte(s, i) == 93 then return t, i + 1 end
    while true do
      local v
      v, i = decode_value(s, i, depth + 1)
      n = n + 1
      t[n] = v
      i = skip(s, i)
      local d = byte(s, i)
      if d == 93 then return t, i + 1 end
      if d ~= 44 then fail(s, i, "',' or ']' expected") end
      i = i + 1
    end
  elseif c == 34 then
    return decode_string(s, i)
  elseif sub(s, i, i + 3) == "true" then
    return true, i + 4
  elseif sub(s, i, i + 4) == "false" then
    return false, i + 5
  elseif sub(s, i, i + 3) == "null" then
    return M.null, i + 4
  end
  return decode_number(s, i)
end

--- Decode JSON text.
-- @tparam string s
-- @return the value (`json.null` for the text `null`), or nil and "what at byte N (line L)"
function M.decode(s)
  if type(s) ~= "string" then
    error(("bad argument #1 to 'decode' (string expected, got %s)"):format(type(s)), 2)
  end
  local ok, v, i = pcall(decode_value, s, 1, 0)
  if not ok then
    if type(v) == "table" and v.json then return nil, v.json end
    error(v, 0)
  end
  i = skip(s, i)
  if i <= #s then return nil, ("trailing characters at byte %d"):format(i) end
  return v
end

return M
