--- luaswitch.console: what the REPL (`luaswitch -i`), the control socket (`--control`),
-- `luaswitch attach` and `luaswitch ctl` share: evaluating a line the way lua5.4 does,
-- pretty-printing results (nested tables, objects, the FDB as aligned columns), JSON,
-- completion of names and methods, `stats()`, and the control protocol itself.
--
-- The executable does the I/O (terminal, sockets, signals) in C and calls this module for
-- everything that touches Lua values. It can be used from any Lua state too:
--
--    local console = require "luaswitch.console"
--    print(console.pretty(sw:fdb()))
--    print(console.json(console.stats()))
--    print(console.request([[\eval "sw:config()"]]))   -- one control-socket request
--
-- Chunks typed at the REPL or sent over the control socket run in `console.env`: reads
-- fall through to the globals (`_G`), then to the helpers `stats` and `luaswitch`;
-- assignments go to `_G`. A script therefore exposes its objects to the REPL and to remote
-- clients by making them globals (`sw = luaswitch.switch "lab"`).
-- @module luaswitch.console

local luaswitch = require "luaswitch"
local core = luaswitch.core

local M = {}

local type, pairs, ipairs, tostring, getmetatable, rawget, pcall, select =
  type, pairs, ipairs, tostring, getmetatable, rawget, pcall, select
local concat, sort, format = table.concat, table.sort, string.format
local mtype = math.type

--- Longest request line the control socket takes, in bytes (the newline excluded). A
-- longer one gets an error reply and the connection is closed. Fixed by the executable.
M.MAX_LINE = 65536

--- Seconds a control-socket request may run before it is interrupted (default 10).
M.timeout = 10

--- Pretty-printing limits: nesting `depth`, `items` shown per table, `rows` of a table
-- printed as columns, and the `width` under which a table is printed on one line.
M.limits = { depth = 6, items = 200, rows = 1000, width = 80 }

-- ---- stats() ------------------------------------------------------------------------------

--- Every switch's and every port's counters, in one table:
-- `{ switches = { [name] = { id =, stats = sw:stats(), ports = { [name] = { id =, kind =,
--   state =, rx_frames =, ..., drops = {...} } } } }, runtime = luaswitch.info(),
--   lua = luaswitch.stats }` (a port's entry is its `p:stats()` with `id`, `kind`, `state`). A switch whose name is taken by
-- an earlier one is listed as `name#id`.
-- @treturn table
function M.stats()
  local out = { switches = {}, runtime = luaswitch.info(), lua = {} }
  for k, v in pairs(luaswitch.stats) do out.lua[k] = v end
  for _, sw in ipairs(luaswitch.switches()) do
    local key = sw.name
    if out.switches[key] ~= nil then key = key .. "#" .. sw.id end
    local ports = {}
    for _, p in ipairs(sw:ports()) do
      local ps = p:stats() or {}
      ps.id, ps.kind, ps.state = p.id, p.kind, (p:state())
      ports[p.name] = ps
    end
    out.switches[key] = { id = sw.id, stats = sw:stats(), ports = ports }
  end
  return out
end

-- ---- Prometheus text exposition -------------------------------------------------------------

local function label(v)
  return '"' .. tostring(v):gsub('[\\"\n]', { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }) .. '"'
end

local function labels(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  sort(keys)
  if #keys == 0 then return "" end
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = k .. "=" .. label(t[k]) end
  return "{" .. concat(parts, ",") .. "}"
end

-- Counters and gauges: which fields of which table, as what.
local SWITCH_COUNTERS = { unicast = "frames forwarded to one port",
  flooded = "frames flooded", group_src = "frames with a group source address",
  zero_src = "frames with an all-zero source address" }
local FDB_GAUGES = { entries = "entries in the MAC table", dynamic = "learned entries",
  static = "static entries", max = "cap on learned entries", memory = "bytes used by the MAC table",
  pinned = "sticky entries" }
local FDB_COUNTERS = { learned = "MACs learned", moved = "MAC moves", aged = "entries aged out",
  evicted = "entries evicted at the cap", refused = "MACs refused at the cap",
  deleted = "entries deleted" }
local PORT_COUNTERS = { rx_frames = "frames received", rx_bytes = "bytes received",
  rx_forwarded = "received frames forwarded", rx_control = "control frames consumed",
  tx_queued = "frames queued for sending", tx_frames = "frames sent", tx_bytes = "bytes sent",
  hangups = "peer hangups", stalls = "times the peer was declared stalled" }
local RUNTIME_COUNTERS = { wakeups = "data-plane wake-ups", batches = "receive batches",
  commands = "commands applied", events_lost = "events dropped because the ring was full" }
local RUNTIME_GAUGES = { buffers_live = "frame buffers in use",
  buffers_allocated = "frame buffers allocated" }
local LUA_COUNTERS = { dispatched = "events dispatched to Lua", handler_errors = "handler calls that failed",
  handler_overruns = "handler calls interrupted for their budget" }

--- Every counter of `stats()` in the Prometheus text exposition format (version 0.0.4):
-- `luaswitch_port_rx_frames_total{switch="lab",port="a"} 12`, `luaswitch_port_drops_total`
-- with a `reason` label, `luaswitch_port_up`, `luaswitch_switch_*_total`, `luaswitch_fdb_*`,
-- `luaswitch_runtime_*`, `luaswitch_lua_*_total`. What `luaswitch --metrics` serves.
-- @treturn string
function M.metrics()
  local st = M.stats()
  local families, order = {}, {}
  local function add(name, kind, help, lbl, value)
    if type(value) == "boolean" then value = value and 1 or 0 end
    if type(value) ~= "number" then return end
    local f = families[name]
    if not f then
      f = { kind = kind, help = help, samples = {} }
      families[name] = f
      order[#order + 1] = name
    end
    f.samples[#f.samples + 1] = "luaswitch_" .. name .. labels(lbl) .. " " ..
      (mtype(value) == "integer" and format("%d", value) or format("%.17g", value))
  end
  local function each(fields, t, prefix, kind, lbl)
    local names = {}
    for k in pairs(fields) do names[#names + 1] = k end
    sort(names)
    for _, k in ipairs(names) do
      add(prefix .. k .. (kind == "counter" and "_total" or ""), kind, fields[k], lbl, t[k])
    end
  end
  local snames = {}
  for k in pairs(st.switches) do snames[#snames + 1] = k end
  sort(snames)
  for _, sname in ipairs(snames) do
    local s = st.switches[sname]
    local sl = { switch = sname }
    each(SWITCH_COUNTERS, s.stats, "switch_", "counter", sl)
    add("switch_ports", "gauge", "ports of the switch", sl, s.stats.ports)
    each(FDB_GAUGES, s.stats.fdb or {}, "fdb_", "gauge", sl)
    each(FDB_COUNTERS, s.stats.fdb or {}, "fdb_", "counter", sl)
    local pnames = {}
    for k in pairs(s.ports) do pnames[#pnames + 1] = k end
    sort(pnames)
    for _, pname in ipairs(pnames) do
      local p = s.ports[pname]
      local pl = { switch = sname, port = pname }
      each(PORT_COUNTERS, p, "port_", "counter", pl)
      add("port_up", "gauge", "1 when the port forwards (admin and link up)", pl, p.state == "up")
      local reasons = {}
      for k in pairs(p.drops or {}) do reasons[#reasons + 1] = k end
      sort(reasons)
      for _, r in ipairs(reasons) do
        add("port_drops_total", "counter", "frames dropped, by reason",
          { switch = sname, port = pname, reason = r }, p.drops[r])
      end
    end
  end
  each(RUNTIME_COUNTERS, st.runtime, "runtime_", "counter", {})
  each(RUNTIME_GAUGES, st.runtime, "runtime_", "gauge", {})
  each(LUA_COUNTERS, st.lua, "lua_", "counter", {})
  local out = {}
  for _, name in ipairs(order) do
    local f = families[name]
    out[#out + 1] = ("# HELP luaswitch_%s %s\n# TYPE luaswitch_%s %s\n"):format(name, f.help, name, f.kind)
    out[#out + 1] = concat(f.samples, "\n") .. "\n"
  end
  return concat(out)
end

-- ---- the environment chunks run in --------------------------------------------------------

--- Names that chunks see when no global has them.
M.helpers = { stats = M.stats, luaswitch = luaswitch }

local capture -- list of strings while a control request runs: its print() output

local function capture_print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  capture[#capture + 1] = concat(parts, "\t") .. "\n"
end

local function make_env(remote)
  return setmetatable({}, {
    __index = function(_, k)
      if remote and k == "print" and capture then return capture_print end
      local v = _G[k]
      if v ~= nil then return v end
      return M.helpers[k]
    end,
    __newindex = _G,
    __name = "luaswitch.console.env",
  })
end

--- Environment of chunks typed at the REPL: the globals, then the helpers.
M.env = make_env(false)
--- Environment of control-socket requests: as `env`, but `print` is captured and sent back
-- in the reply's `output`.
M.remote_env = make_env(true)

-- ---- compiling a line -----------------------------------------------------------------------

--- Compile a line (or several, for a multi-line statement) as lua5.4 does: first as an
-- expression whose values are printed (`1 + 1`, `= x`, `sw:fdb()`), then as a statement.
-- @tparam string src
-- @tparam[opt] string name chunk name (default "=stdin")
-- @tparam[opt] table env (default `console.env`)
-- @return function, or nil, message, incomplete (true when the source is an unfinished
--   statement: more lines may complete it)
function M.compile(src, name, env)
  name, env = name or "=stdin", env or M.env
  if src:sub(1, 1) == "=" then src = "return " .. src:sub(2) end
  local fn = load("return " .. src .. ";", name, "t", env)
  if fn then return fn end
  local err
  fn, err = load(src, name, "t", env)
  if fn then return fn end
  return nil, err, err:sub(-5) == "<eof>"
end

-- ---- pretty-printing ------------------------------------------------------------------------

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do KEYWORDS[w] = true end

local function is_ident(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil and not KEYWORDS[k]
end

local ESC = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t", ["\\"] = "\\\\", ['"'] = '\\"',
  ["\a"] = "\\a", ["\b"] = "\\b", ["\f"] = "\\f", ["\v"] = "\\v" }

--- A string as a Lua literal that fits on one line (control bytes and bytes that are not
-- UTF-8 escaped).
function M.quote(s)
  local valid = utf8.len(s) ~= nil
  return '"' .. s:gsub(valid and '[%c"\\]' or '[%c"\\\128-\255]', function(c)
    return ESC[c] or format("\\x%02x", c:byte())
  end) .. '"'
end

local function has_tostring(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "__tostring") ~= nil
end

local function scalar(v)
  local t = type(v)
  if t == "string" then return M.quote(v) end
  if t == "number" then
    if mtype(v) == "float" and v == math.floor(v) and v > -1e15 and v < 1e15 then
      return format("%.1f", v)
    end
    return tostring(v)
  end
  if t == "table" and not has_tostring(v) then return nil end
  local ok, s = pcall(tostring, v)
  return ok and s or ("<" .. t .. ">")
end

local TYPE_ORDER = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ta, tb = TYPE_ORDER[type(a)] or 4, TYPE_ORDER[type(b)] or 4
  if ta ~= tb then return ta < tb end
  if ta == 1 or ta == 2 then return a < b end
  return tostring(a) < tostring(b)
end

-- The keys of t: the array part 1..n, then the others sorted. Returns keys, n.
local function sorted_keys(t)
  local n = 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  local keys, rest = {}, {}
  for i = 1, n do keys[i] = i end
  for k in pairs(t) do
    if not (mtype(k) == "integer" and k >= 1 and k <= n) then rest[#rest + 1] = k end
  end
  sort(rest, key_less)
  for _, k in ipairs(rest) do keys[#keys + 1] = k end
  return keys, n
end

-- Column order of tables printed as columns (FDB entries first).
local COLUMN_ORDER = { mac = 1, vlan = 2, port = 3, remote = 4, age = 5, hits = 6, static = 7,
  sticky = 8, name = 0 }

-- A list of records (tables of scalar fields, at least one, all alike enough) printed as
-- aligned columns: the FDB, a vxlan table, anything shaped like them. Nil if t is not one.
local function columns(t, indent, limits)
  local n = #t
  if n == 0 or rawget(t, n + 1) ~= nil then return nil end
  local cols, seen = {}, {}
  for k in pairs(t) do
    if mtype(k) ~= "integer" or k < 1 or k > n then return nil end
  end
  for i = 1, n do
    local r = t[i]
    if type(r) ~= "table" or getmetatable(r) ~= nil then return nil end
    local any = false
    for k, v in pairs(r) do
      if type(k) ~= "string" or (type(v) == "table" and not has_tostring(v)) then return nil end
      any = true
      if not seen[k] then
        seen[k] = true
        cols[#cols + 1] = k
      end
    end
    if not any or #cols > 12 then return nil end
  end
  sort(cols, function(a, b)
    local oa, ob = COLUMN_ORDER[a] or 100, COLUMN_ORDER[b] or 100
    if oa ~= ob then return oa < ob end
    return a < b
  end)
  local shown = n < limits.rows and n or limits.rows
  local cells, width, right = {}, {}, {}
  for c, k in ipairs(cols) do
    width[c] = #k
    right[c] = true
  end
  for i = 1, shown do
    local row = {}
    for c, k in ipairs(cols) do
      local v = t[i][k]
      local s
      if v == nil then
        s = ""
      elseif type(v) == "string" then
        s = utf8.len(v) and not v:find("%c") and v or M.quote(v)
      elseif mtype(v) == "float" then
        s = format("%.1f", v)
      elseif type(v) == "userdata" and (getmetatable(v) == core.metatables.port or
          getmetatable(v) == core.metatables.switch) then
        s = v.name
      else
        s = scalar(v)
      end
      if type(v) ~= "number" and v ~= nil then right[c] = false end
      row[c] = s
      local w = utf8.len(s) or #s
      if w > width[c] then width[c] = w end
    end
    cells[i] = row
  end
  local function pad(s, c, last)
    local fill = width[c] - (utf8.len(s) or #s)
    if right[c] then return (" "):rep(fill) .. s end
    return last and s or s .. (" "):rep(fill)
  end
  local lines = {}
  local head = {}
  for c, k in ipairs(cols) do head[c] = pad(k, c, c == #cols) end
  lines[1] = indent .. concat(head, "  ")
  for i = 1, shown do
    local row = {}
    for c = 1, #cols do row[c] = pad(cells[i][c], c, c == #cols) end
    lines[#lines + 1] = indent .. concat(row, "  ")
  end
  if shown < n then
    lines[#lines + 1] = indent .. format("(%d entries, %d shown)", n, shown)
  else
    lines[#lines + 1] = indent .. format("(%d entr%s)", n, n == 1 and "y" or "ies")
  end
  return concat(lines, "\n")
end

local function pretty(v, indent, depth, seen, limits)
  local s = scalar(v)
  if s then return s end
  -- a plain table
  if seen[v] then return "<cycle>" end
  if next(v) == nil then return "{}" end
  if depth >= limits.depth then return "{...}" end
  seen[v] = true
  local cols = columns(v, indent .. "  ", limits)
  if cols then
    seen[v] = nil
    return "{\n" .. cols .. "\n" .. indent .. "}"
  end
  local keys, n = sorted_keys(v)
  local items, multiline, len = {}, false, 0
  local inner = indent .. "  "
  for i, k in ipairs(keys) do
    if i > limits.items then
      items[#items + 1] = format("... (%d more)", #keys - limits.items)
      break
    end
    local val = pretty(v[k], inner, depth + 1, seen, limits)
    local item
    if mtype(k) == "integer" and k >= 1 and k <= n then
      item = val
    elseif is_ident(k) then
      item = k .. " = " .. val
    else
      item = "[" .. (scalar(k) or tostring(k)) .. "] = " .. val
    end
    if item:find("\n", 1, true) then multiline = true end
    len = len + #item + 2
    items[#items + 1] = item
  end
  seen[v] = nil
  if not multiline and len + #indent + 4 <= limits.width then
    return "{ " .. concat(items, ", ") .. " }"
  end
  return "{\n" .. inner .. concat(items, ",\n" .. inner) .. ",\n" .. indent .. "}"
end

--- A value as the REPL prints it: tables nested with indentation (bounded by
-- `console.limits`), cycles marked, objects through their `__tostring`, lists of records
-- such as `sw:fdb()` as aligned columns; strings quoted.
-- @param v
-- @tparam[opt] table limits overrides of `console.limits`
-- @treturn string
function M.pretty(v, limits)
  local l = setmetatable(limits or {}, { __index = M.limits })
  if type(v) == "table" and not has_tostring(v) then
    local cols = columns(v, "", l) -- at the top, a list of records is just its columns
    if cols then return cols end
  end
  return pretty(v, "", 0, {}, l)
end

--- The text the REPL prints for the values of a line: each value pretty-printed (a
-- string at the top as it is, like lua5.4), separated by tabs, or by newlines when one of
-- them spans several lines. Nil when there are no values.
-- @tparam table r values packed with `table.pack`
function M.show(r)
  if r.n == 0 then return nil end
  local parts, multi = {}, false
  for i = 1, r.n do
    local v = r[i]
    parts[i] = type(v) == "string" and v or M.pretty(v)
    if parts[i]:find("\n", 1, true) then multi = true end
  end
  return concat(parts, multi and "\n" or "\t")
end

-- ---- JSON -----------------------------------------------------------------------------------

local JESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
  ["\r"] = "\\r", ["\t"] = "\\t" }

local function json_escape_valid(s)
  return (s:gsub('[%c"\\]', function(c) return JESC[c] or format("\\u%04x", c:byte()) end))
end

-- A JSON string literal for bytes s: valid UTF-8 is kept, every byte of an invalid
-- sequence becomes \u00XX (its Latin-1 reading), so the output is always valid JSON text.
local function json_string(s)
  if utf8.len(s) then return '"' .. json_escape_valid(s) .. '"' end
  local out, i, n = {}, 1, #s
  while i <= n do
    local b = s:byte(i)
    local len = b < 0x80 and 1 or b >= 0xC2 and b <= 0xDF and 2 or b >= 0xE0 and b <= 0xEF and 3
      or b >= 0xF0 and b <= 0xF4 and 4 or 0
    local piece = len > 0 and s:sub(i, i + len - 1)
    if piece and #piece == len and utf8.len(piece) then
      out[#out + 1] = json_escape_valid(piece)
      i = i + len
    else
      out[#out + 1] = format("\\u%04x", b)
      i = i + 1
    end
  end
  return '"' .. concat(out) .. '"'
end

local function object_json(v)
  local mt = getmetatable(v)
  if mt == core.metatables.switch then
    return format('{"type":"switch","name":%s,"id":%d%s}', json_string(v.name), v.id,
      v.closed and ',"closed":true' or "")
  elseif mt == core.metatables.port then
    local sw = v.switch
    return format('{"type":"port","name":%s,"id":%d,"kind":%s,"switch":%s%s}', json_string(v.name),
      v.id, json_string(v.kind), sw and json_string(sw.name) or "null",
      v.closed and ',"closed":true' or "")
  end
  local ok, s = pcall(tostring, v)
  return json_string(ok and s or "<" .. type(v) .. ">")
end

local function json(v, out, depth, seen)
  local t = type(v)
  if v == nil then
    out[#out + 1] = "null"
  elseif t == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif t == "number" then
    if mtype(v) == "integer" then
      out[#out + 1] = format("%d", v)
    elseif v ~= v or v == math.huge or v == -math.huge then
      out[#out + 1] = "null"
    else
      local f = format("%.14g", v)
      if tonumber(f) ~= v then f = format("%.17g", v) end
      out[#out + 1] = f:find("^-?%d+$") and f .. ".0" or f
    end
  elseif t == "string" then
    out[#out + 1] = json_string(v)
  elseif t ~= "table" or has_tostring(v) then
    out[#out + 1] = object_json(v)
  elseif seen[v] then
    out[#out + 1] = '"<cycle>"'
  elseif depth >= 32 then
    out[#out + 1] = '"<too deep>"'
  else
    seen[v] = true
    local keys, n = sorted_keys(v)
    if #keys == n then
      out[#out + 1] = "["
      for i = 1, n do
        if i > 1 then out[#out + 1] = "," end
        json(v[i], out, depth + 1, seen)
      end
      out[#out + 1] = "]"
    else
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = json_string(type(k) == "string" and k or (scalar(k) or tostring(k)))
        out[#out + 1] = ":"
        json(v[k], out, depth + 1, seen)
      end
      out[#out + 1] = "}"
    end
    seen[v] = nil
  end
end

--- A Lua value as compact JSON text (one line). Tables with keys 1..n only are arrays (an
-- empty table is `[]`), other tables objects with their keys as strings (sorted); nil,
-- NaN and infinities are null; integers stay integers, floats print with 17 digits; a
-- switch is `{"type":"switch","name":..,"id":..}`, a port
-- `{"type":"port","name":..,"id":..,"kind":..,"switch":..}`; other userdata, functions
-- and objects with `__tostring` are their tostring; strings that are not UTF-8 have each
-- bad byte as `\u00XX`; cycles are `"<cycle>"` and nesting stops at 32 (`"<too deep>"`).
-- @treturn string
function M.json(v)
  local out = {}
  json(v, out, 0, {})
  return concat(out)
end

-- Decode a JSON string literal (the argument of a \command). Returns the string, or nil
-- and a message.
local function json_unquote(s)
  if not s:match('^".*"$') or #s < 2 then return nil, "a JSON string expected" end
  local body, out, i = s:sub(2, -2), {}, 1
  local simple = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r",
    t = "\t" }
  while i <= #body do
    local j = body:find('[\\"]', i)
    if not j then
      out[#out + 1] = body:sub(i)
      break
    end
    out[#out + 1] = body:sub(i, j - 1)
    if body:sub(j, j) == '"' then return nil, "unescaped quote in a JSON string" end
    local e = body:sub(j + 1, j + 1)
    if simple[e] then
      out[#out + 1] = simple[e]
      i = j + 2
    elseif e == "u" then
      local hex = body:match("^%x%x%x%x", j + 2)
      if not hex then return nil, "bad \\u escape in a JSON string" end
      local cp = tonumber(hex, 16)
      i = j + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local lo = body:match("^\\u(%x%x%x%x)", i)
        lo = lo and tonumber(lo, 16)
        if not lo or lo < 0xDC00 or lo > 0xDFFF then return nil, "bad surrogate pair in a JSON string" end
        cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
        i = i + 6
      end
      out[#out + 1] = utf8.char(cp)
    else
      return nil, "bad escape in a JSON string"
    end
  end
  return concat(out)
end
M.json_unquote = json_unquote

-- ---- completion ----------------------------------------------------------------------------

local function safe_index(v, k)
  local t = type(v)
  if t == "table" then
    local r = rawget(v, k)
    if r ~= nil or getmetatable(v) == nil then return r end
  elseif t ~= "userdata" and t ~= "string" then
    return nil
  end
  local ok, r = pcall(function() return v[k] end)
  return ok and r or nil
end

local OBJECT_FIELDS = {
  switch = { "name", "id", "closed" },
  port = { "name", "id", "kind", "switch", "closed" },
}

-- Names (strings) reachable with v.name or v:name; methods only when `methods`.
local function fields_of(v, methods, out)
  local visited = {}
  local function add_table(t, level)
    if visited[t] or level > 8 then return end
    visited[t] = true
    for k, val in pairs(t) do
      if is_ident(k) and (not methods or type(val) == "function") then out[k] = true end
    end
    local mt = getmetatable(t)
    if type(mt) == "table" and type(rawget(mt, "__index")) == "table" then
      add_table(rawget(mt, "__index"), level + 1)
    end
  end
  local t = type(v)
  if t == "table" then
    add_table(v, 1)
  elseif t == "string" then
    if methods then add_table(string, 1) end
  elseif t == "userdata" then
    local mt = getmetatable(v)
    if type(mt) ~= "table" then return end
    local kind = mt == core.metatables.switch and "switch" or mt == core.metatables.port and "port"
    if kind then
      add_table(core.methods[kind], 1)
      if not methods then
        for _, f in ipairs(OBJECT_FIELDS[kind]) do out[f] = true end
      end
      return
    end
    if type(rawget(mt, "__index")) == "table" then add_table(rawget(mt, "__index"), 1) end
    if type(rawget(mt, "methods")) == "table" then add_table(rawget(mt, "methods"), 1) end
  end
end

--- Completions of the word before the cursor: a global, a helper or a keyword
-- (`lua` → `luaswitch`), a field (`luaswitch.sw` → `luaswitch.switch`,
-- `luaswitch.switches`) or a method (`sw:fd` → `sw:fdb`, `sw:fdb_add`, ...; on switches and
-- ports through `luaswitch.core.methods`). Fields are looked up without calling anything
-- but `__index` metamethods.
-- @tparam string word
-- @tparam[opt] table env (default `console.env`)
-- @treturn {string,...} sorted full words
function M.complete(word, env)
  env = env or M.env
  local names = {}
  local head, sep, tail = word:match("^(.*)([%.:])([%w_]*)$")
  local prefix
  if not head then
    if word ~= "" and not word:match("^[%a_][%w_]*$") then return {} end
    tail, prefix = word, ""
    for k in pairs(_G) do if is_ident(k) then names[k] = true end end
    for k in pairs(M.helpers) do names[k] = true end
    for k in pairs(KEYWORDS) do names[k] = true end
  else
    if head:find(":", 1, true) then return {} end
    local v, first = nil, true
    for part in (head .. "."):gmatch("(.-)%.") do
      if not is_ident(part) then return {} end
      if first then
        v, first = env[part], false
      else
        v = safe_index(v, part)
      end
      if v == nil then return {} end
    end
    fields_of(v, sep == ":", names)
    prefix = head .. sep
  end
  local list = {}
  for k in pairs(names) do
    if k:sub(1, #tail) == tail then list[#list + 1] = prefix .. k end
  end
  sort(list)
  return list
end

-- ---- running chunks ------------------------------------------------------------------------

-- The traceback of an error in a chunk, cut below the chunk itself.
local function chunk_traceback(msg)
  local tb = debug.traceback(msg, 3) -- from the function that raised
  local cut = tb:find("\n\t[^\n]*in main chunk", 1)
  if cut then
    local eol = tb:find("\n", cut + 1, true)
    return eol and tb:sub(1, eol - 1) or tb
  end
  cut = tb:find("\n\t%[C%]: in function 'xpcall'")
  return cut and tb:sub(1, cut - 1) or tb
end

local function errmsg(e)
  if type(e) == "string" then return e end
  local ok, s = pcall(tostring, e)
  if ok and type(s) == "string" and has_tostring(e) then return s end
  return format("(error object is a %s value)", type(e))
end

local function handler(e)
  local tb = chunk_traceback(errmsg(e)) -- not a tail call: chunk_traceback counts levels
  return tb
end

--- Run one line (or the lines so far of a multi-line statement) at the REPL: compile it,
-- run it, print its values or its error (with a traceback) to stdout/stderr.
-- @tparam string src
-- @return "incomplete" when more lines are needed, else nothing
function M.repl_line(src)
  local fn, err, incomplete = M.compile(src, "=stdin", M.env)
  if not fn then
    if incomplete then return "incomplete" end
    io.stderr:write(err, "\n")
    io.stderr:flush()
    return
  end
  local r = table.pack(xpcall(fn, handler))
  io.stdout:flush()
  if not r[1] then
    io.stderr:write(r[2], "\n")
    io.stderr:flush()
    return
  end
  local text = M.show(table.pack(table.unpack(r, 2, r.n)))
  if text then
    io.stdout:write(text, "\n")
    io.stdout:flush()
  end
end

-- Run fn under the request time limit, print captured. Returns ok, values (packed) or
-- message, traceback; and the captured output.
local function run_request(fn)
  capture = {}
  local deadline = core.monotime() + M.timeout
  local timeout = M.timeout
  debug.sethook(function()
    if core.monotime() > deadline then
      debug.sethook()
      error(format("request interrupted: it ran longer than %g s (console.timeout)", timeout), 2)
    end
  end, "", 100000)
  local r = table.pack(xpcall(fn, function(e)
    local msg = errmsg(e)
    return { msg = msg, tb = chunk_traceback(msg) }
  end))
  debug.sethook()
  local out = concat(capture)
  capture = nil
  if r[1] then return true, table.pack(table.unpack(r, 2, r.n)), out end
  return false, r[2], out
end

local function reply_error(msg, extra)
  return '{"ok":false,"error":' .. json_string(msg) .. (extra or "") .. "}"
end

local function output_field(out)
  return out ~= "" and ',"output":' .. json_string(out) or ""
end

local COMMANDS = { eval = true, pretty = true, complete = true }

--- Answer one control-socket request line (without its newline) with one line of JSON
-- (without a newline). See the README ("REPL and control socket") for the protocol:
--
--    CHUNK                      run a Lua chunk, reply with its values as JSON
--    \eval "JSON string"        the same, for chunks with newlines in them
--    \pretty "JSON string"      run it, reply with the text the REPL would print
--    \complete "JSON string"    completions of a word, as a JSON array
--
-- Replies: `{"ok":true,"result":...[,"output":"..."]}` or
-- `{"ok":false,"error":"..."[,"traceback":"..."][,"incomplete":true]}`.
-- @tparam string line
-- @treturn string
function M.request(line)
  local cmd, src = "eval", line
  if line:sub(1, 1) == "\\" then
    local arg
    cmd, arg = line:match("^\\(%a*)%s*(.*)$")
    if not cmd or not COMMANDS[cmd] then
      return reply_error(format("unknown command '%s' (one of \\eval, \\pretty, \\complete)",
        (line:match("^\\[%w_]*"):sub(1, 40))))
    end
    local err
    src, err = json_unquote(arg)
    if not src then return reply_error(format("\\%s: %s", cmd, err)) end
  end
  if cmd == "complete" then
    return '{"ok":true,"result":' .. M.json(M.complete(src, M.remote_env)) .. "}"
  end
  local fn, err, incomplete = M.compile(src, "=request", M.remote_env)
  if not fn then return reply_error(err, incomplete and ',"incomplete":true' or nil) end
  local ok, r, out = run_request(fn)
  if not ok then
    return reply_error(r.msg, ',"traceback":' .. json_string(r.tb) .. output_field(out))
  end
  local result
  if cmd == "pretty" then
    local text = M.show(r)
    result = text and json_string(text) or "null"
  elseif r.n == 0 then
    result = "null"
  elseif r.n == 1 then
    result = M.json(r[1])
  else -- several values: an array, nils included
    local parts = {}
    for i = 1, r.n do parts[i] = M.json(r[i]) end
    result = "[" .. concat(parts, ",") .. "]"
  end
  return '{"ok":true,"result":' .. result .. output_field(out) .. "}"
end

return M
