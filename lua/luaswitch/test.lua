--- luaswitch.test: a harness that checks what a switch does, frame by frame, for busted
-- specs and plain scripts.
--
-- A harness owns a switch (or borrows yours) and virtual ports: socketpair ports whose far
-- end it holds, so a spec sends frames as a host would and expects frames with a deadline:
--
--    local T, frame = require "luaswitch.test", require "luaswitch.frame"
--    local h <close> = T.harness { switch = { name = "sw", vlan_aware = true } }
--    local a, b = h:port { name = "a", vlan = 10 }, h:port { name = "b", vlan = 10 }
--    a:send(frame.arp { op = "request", src_mac = frame.mac(1), sender_ip = "10.0.0.1",
--                       target_ip = "10.0.0.2" })
--    b:expect({ type = "arp", dst = frame.BROADCAST, arp = { target_ip = "10.0.0.2" } })
--    a:expect_none(nil, { within = 0.05 })              -- nothing comes back to a
--    a:send(frame.udp { src_mac = frame.mac(1), dst_mac = frame.mac(2), src = "10.0.0.1",
--                       dst = "10.0.0.2", dport = 53 })
--    b:expect("udp port 53 and not vlan", { within = 0.5 })   -- a tcpdump expression
--
-- **Waiting.** `expect` and `expect_none` wait on the endpoints' sockets and the runtime's
-- event fd at once (`luaswitch.core.wait`), dispatching events as they come
-- (`luaswitch.dispatch`), so punt handlers and admission policies run while a spec waits.
-- `within` is real (monotonic) time, whatever the runtime clock: with a manual clock,
-- frames held by a delay impairment leave only when `h:advance()` moves the clock.
--
-- **Matchers.** `nil` (any frame); a string (a tcpdump expression, compiled once with
-- `luaswitch.bpf`); a program from `luaswitch.bpf`; a function `fn(parsed, bytes)`
-- returning true (or false and a reason); or a table of fields of `frame.parse`'s result,
-- compared one by one (see `matcher`).
--
-- **Failures** raise an error (so busted reports it) whose message names what was expected,
-- lists every frame the port received that no `expect` took, each on one line
-- (`frame.summary`) followed by the fields that did not match, and gives the path of a pcap
-- file per virtual port holding everything it sent and received (for `tshark -r`, Wireshark).
-- @module luaswitch.test

local luaswitch = require "luaswitch"
local frame = require "luaswitch.frame"

local core = luaswitch.core
local monotime = luaswitch.monotime
local concat, fmt = table.concat, string.format

local M = {}

--- Default `within` of `expect` (seconds).
M.WITHIN = 0.2
--- Default `within` of `expect_none` (seconds).
M.QUIET = 0.05
--- At most this many received frames are listed in a failure message.
M.SHOW = 20

-- ---- matchers -------------------------------------------------------------------------

-- ethertype names accepted by `type`, and names of layers (present or not)
local ETHERTYPES = { arp = 0x0806, ipv4 = 0x0800, ip = 0x0800, ipv6 = 0x86dd, ip6 = 0x86dd, lldp = 0x88cc,
  vlan = 0x8100, qinq = 0x88a8, experimental = 0x88b5 }
local LAYERS = { udp = "udp", tcp = "tcp", icmp = "icmp", icmp6 = "icmp6", icmpv6 = "icmp6" }

local function is_bpf(v)
  return type(v) == "userdata" and tostring(v):match("^luaswitch%.bpf ") ~= nil
end

-- Lua-ish text of a value, keys sorted, for messages.
local function show(v, depth)
  depth = depth or 0
  local t = type(v)
  if t == "string" then
    if v:match("^[%g ]*$") then return fmt("%q", v) end
    return fmt("<%d bytes: %s%s>", #v, frame.hex(v:sub(1, 16)), #v > 16 and " ..." or "")
  elseif t == "table" then
    if depth > 2 then return "{...}" end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
    local parts = {}
    for _, k in ipairs(keys) do
      local ks = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or ("[" .. show(k) .. "]")
      parts[#parts + 1] = ks .. "=" .. show(v[k], depth + 1)
    end
    return "{" .. concat(parts, ", ") .. "}"
  elseif t == "userdata" and is_bpf(v) then
    return fmt("tcpdump %q", v.expr)
  elseif t == "function" then
    return "<function>"
  end
  return tostring(v)
end
M.show = show

local function same(want, got)
  if want == got then return true end
  if type(want) == "string" and type(got) == "string" then
    return frame.normalize(want) == frame.normalize(got)
  end
  return false
end

local function type_name(et)
  for name, v in pairs(ETHERTYPES) do
    if v == et and name ~= "ip" and name ~= "ip6" then return name end
  end
end

-- an ethertype for messages: "arp (0x0806)", "0x88cc", "none" (a runt)
local function type_text(et)
  if et == nil then return "none" end
  local n = type_name(et)
  return n and fmt("%s (0x%04x)", n, et) or fmt("0x%04x", et)
end

-- compare the fields of table `want` with the parsed table `got`; append mismatches
local function compare(want, got, path, out)
  local keys = {}
  for k in pairs(want) do keys[#keys + 1] = k end
  table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
  for _, k in ipairs(keys) do
    local w, g = want[k], got and got[k]
    local name = path .. tostring(k)
    if path == "" and k == "type" and type(w) == "string" then
      local layer = LAYERS[w]
      if layer then
        if not got[layer] then
          out[#out + 1] = fmt("type: expected %s, got %s", w, type_text(got.type))
        end
      elseif not ETHERTYPES[w] then
        error(fmt("matcher: unknown type '%s' (an ethertype number, or one of arp, ipv4, ipv6, lldp, " ..
          "vlan, qinq, experimental, udp, tcp, icmp, icmp6)", w), 0)
      elseif got.type ~= ETHERTYPES[w] then
        out[#out + 1] = fmt("type: expected %s (0x%04x), got %s", w, ETHERTYPES[w], type_text(got.type))
      end
    elseif path == "" and k == "vlan" and w == false then
      if g ~= nil then out[#out + 1] = fmt("vlan: expected untagged, got %d", g) end
    elseif path == "" and k == "bpf" then
      local prog = is_bpf(w) and w or luaswitch.bpf(w)
      if not prog:match(got.bytes) then
        out[#out + 1] = fmt("does not match tcpdump expression %q", prog.expr)
      end
    elseif type(w) == "function" then
      local ok, why = w(g, got)
      if not ok then
        out[#out + 1] = fmt("%s: %s (got %s)", name, why or "the predicate returned false", show(g))
      end
    elseif type(w) == "table" then
      if type(g) ~= "table" then
        out[#out + 1] = fmt("%s: expected %s, got %s", name, show(w), g == nil and "none" or show(g))
      else
        compare(w, g, name .. ".", out)
      end
    elseif not same(w, g) then
      if path == "" and k == "type" then
        out[#out + 1] = fmt("type: expected %s, got %s", math.type(w) == "integer" and type_text(w) or show(w),
          type_text(g))
      else
        local got_text = (path == "" and k == "vlan" and g == nil) and "untagged" or show(g)
        out[#out + 1] = fmt("%s: expected %s, got %s", name, show(w), got_text)
      end
    end
  end
end

local Matcher = {}
Matcher.__index = Matcher

--- Make a matcher (what `expect` does with its argument; useful on its own).
-- A table matches a frame when each of its fields matches the field of the same name in
-- `frame.parse`'s result: strings and numbers by equality (addresses normalised first, so
-- "FF-FF-FF-FF-FF-FF" matches), nested tables field by field (`arp = { op = "request" }`,
-- `udp = { dport = 53 }`, `ip = { ttl = 64 }`), functions as predicates `fn(value,
-- parsed)` returning true, or false and a reason. Besides the parsed fields:
--
-- - `type`: an ethertype number, or "arp", "ipv4", "ipv6", "lldp", ... (the ethertype), or
--   "udp", "tcp", "icmp", "icmp6" (that layer is present)
-- - `vlan`: the outer tag's VLAN id, or `false` for an untagged frame
-- - `bpf`: a tcpdump expression (text or a `luaswitch.bpf` program) the frame must match too
-- - `bytes`: the frame exactly
-- @param m nil, string, `luaswitch.bpf` program, function or table
-- @treturn table a matcher: `m:test(bytes)` returns true, or false and the list of
--   mismatches (one line each); `m.text` describes it
function M.matcher(m)
  if getmetatable(m) == Matcher then return m end
  local self = setmetatable({ spec = m }, Matcher)
  local t = type(m)
  if m == nil then
    self.text = "any frame"
    self.fn = function() return true end
  elseif t == "string" or is_bpf(m) then
    local prog = t == "string" and luaswitch.bpf(m) or m
    self.text = fmt("tcpdump %q", prog.expr)
    self.fn = function(bytes)
      if prog:match(bytes) then return true end
      return false, { fmt("does not match tcpdump expression %q", prog.expr) }
    end
  elseif t == "function" then
    self.text = "a function matcher"
    self.fn = function(bytes, p)
      local ok, why = m(p, bytes)
      if ok then return true end
      return false, { why and tostring(why) or "the function matcher returned false" }
    end
  elseif t == "table" then
    self.text = show(m)
    if m.bpf ~= nil and not is_bpf(m.bpf) then
      m = {} -- a shallow copy, the expression compiled once
      for k, v in pairs(self.spec) do m[k] = v end
      m.bpf = luaswitch.bpf(self.spec.bpf)
    end
    self.fn = function(_, p)
      local out = {}
      compare(m, p, "", out)
      if #out == 0 then return true end
      return false, out
    end
  else
    error(fmt("bad matcher (nil, tcpdump expression, luaswitch.bpf program, function or table " ..
      "expected, got %s)", t), 2)
  end
  return self
end

--- Does `bytes` match? Returns true, or false and a list of mismatches.
function Matcher:test(bytes, parsed)
  parsed = parsed or frame.parse(bytes) or { bytes = bytes, tags = {}, len = #bytes }
  parsed.bytes = bytes
  return self.fn(bytes, parsed)
end

-- ---- the harness ------------------------------------------------------------------------

local Harness = {}
Harness.__index = Harness
local VPort = {}
VPort.__index = VPort

local function tmpdir()
  local p = io.popen("mktemp -d /tmp/luaswitch-test.XXXXXX 2>/dev/null")
  local d = p:read("l")
  p:close()
  return d
end

--- Make a harness.
-- @tparam[opt] table opts
--
--   - `switch`: a switch to use (you close it), or the options of one to create (a table,
--     or a name; default `{ name = "test" }`), closed with the harness
--   - `name`: the harness's name, in messages and capture file names (default: the switch's)
--   - `capture_dir`: where failures write their pcap files (default: a directory made with
--     `mktemp -d /tmp/luaswitch-test.XXXXXX` at the first failure, left there to look at)
--   - `within`: default deadline of `expect` (0.2 s); `quiet`: of `expect_none` (0.05 s)
-- @treturn harness with `h.switch`, `h.ports` (virtual ports in creation order) and the
--   methods below; `local h <close> = T.harness()` closes it at the end of the scope
function M.harness(opts)
  opts = opts or {}
  if type(opts) ~= "table" then
    error(fmt("bad argument #1 to 'harness' (table of options expected, got %s)", type(opts)), 2)
  end
  for k in pairs(opts) do
    if k ~= "switch" and k ~= "name" and k ~= "capture_dir" and k ~= "within" and k ~= "quiet" then
      error(fmt("harness: unknown option '%s'", tostring(k)), 2)
    end
  end
  local h = setmetatable({ ports = {}, byname = {}, failures = 0, within = opts.within or M.WITHIN,
    quiet = opts.quiet or M.QUIET, capture_dir = opts.capture_dir, mono0 = monotime(), wall0 = os.time() }, Harness)
  local sw = opts.switch
  if getmetatable(sw) == core.metatables.switch then
    h.switch = sw
  else
    h.switch = luaswitch.switch(sw or { name = "test" })
    h.own_switch = true
  end
  h.name = opts.name or h.switch.name
  return h
end

-- the wall-clock time of now, for pcap records
local function stamp(h)
  local m = monotime()
  return h.wall0 + (m - h.mono0), m - h.mono0
end

local function log(vp, f, dir)
  local wall, rel = stamp(vp.harness)
  local rec = { frame = f, time = wall, rel = rel, dir = dir }
  vp.log[#vp.log + 1] = rec
  return rec
end

local function new_vport(h, name, port, ep, own)
  if h.byname[name] then error(fmt("harness: a virtual port named '%s' exists already", name), 3) end
  local vp = setmetatable({ harness = h, name = name, port = port, endpoint = ep, own = own, pending = {},
    log = {} }, VPort)
  h.ports[#h.ports + 1] = vp
  h.byname[name] = vp
  return vp
end

--- A virtual port: a socketpair port on the harness's switch and the endpoint at its far
-- end, held by the harness.
-- @param opts a name, or the options of `sw:port` (`kind` defaults to "socketpair"; `name`
--   is required)
-- @treturn vport with `vp.name`, `vp.port` (the switch's port), `vp.endpoint`, and the
--   methods `send`, `expect`, `expect_none`, `received`, `flush`
function Harness:port(opts)
  if type(opts) == "string" then opts = { name = opts } end
  if type(opts) ~= "table" or type(opts.name) ~= "string" then
    error("bad argument #1 to 'port' (a name or a table of port options with a name expected)", 2)
  end
  if self.byname[opts.name] then
    error(fmt("harness: a virtual port named '%s' exists already", opts.name), 2)
  end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.kind = o.kind or "socketpair"
  if o.kind ~= "socketpair" then
    error("port: a virtual port is a socketpair port (use h:attach(name, port, endpoint) for others)", 2)
  end
  local p, err, code = self.switch:port(o)
  if not p then return nil, err, code end
  return new_vport(self, opts.name, p, p:endpoint(), true)
end

--- Make an existing port and an endpoint on its far side (a unix or UDP endpoint, say) a
-- virtual port of the harness. The harness closes the endpoint, not the port.
function Harness:attach(name, port, endpoint)
  if type(name) ~= "string" or endpoint == nil then
    error("bad arguments to 'attach' (name, port, endpoint expected)", 2)
  end
  return new_vport(self, name, port, endpoint, false)
end

-- Move every frame waiting on the endpoints into their ports' pending lists.
local function drain(h)
  local n = 0
  for _, vp in ipairs(h.ports) do
    if not vp.closed then
      while true do
        local f = vp.endpoint:recv(0)
        if not f then break end
        local rec = log(vp, f, "out")
        vp.pending[#vp.pending + 1] = rec
        n = n + 1
      end
    end
  end
  return n
end

local function fds(h)
  local list = {}
  for _, vp in ipairs(h.ports) do
    if not vp.closed then list[#list + 1] = vp.endpoint:fileno() end
  end
  return list
end

--- Dispatch events and collect frames until `cond()` returns a true value or `within`
-- seconds pass (waiting on the endpoints and the event fd, not sleeping).
-- @treturn cond's value, or nil after the deadline
function Harness:wait(cond, within)
  local deadline = monotime() + (within or self.within)
  local list = fds(self)
  while true do
    luaswitch.dispatch(0)
    drain(self)
    local v = cond()
    if v then return v end
    local left = deadline - monotime()
    if left <= 0 then return nil end
    core.wait(left, list)
  end
end

--- Dispatch pending events and collect the frames that have arrived, without waiting.
function Harness:pump()
  luaswitch.dispatch(0)
  return drain(self)
end

--- Write a pcap file per virtual port, each with every frame the port's endpoint sent into
-- the switch and received from it, in order.
-- @tparam[opt] string dir a directory (default: the harness's `capture_dir`)
-- @treturn table a list of `{ port = name, path =, frames = }`
function Harness:capture(dir)
  dir = dir or self.capture_dir
  if not dir then
    dir = tmpdir()
    self.capture_dir = dir
  end
  self.captures = (self.captures or 0) + 1
  local files = {}
  for _, vp in ipairs(self.ports) do
    local path = fmt("%s/%s-%d-%s.pcap", dir, (self.name:gsub("[^%w_.-]", "_")), self.captures,
      (vp.name:gsub("[^%w_.-]", "_")))
    local ok, err = frame.write_pcap(path, vp.log)
    files[#files + 1] = { port = vp.name, path = path, frames = #vp.log, error = not ok and err or nil }
  end
  return files
end

local function rel(t) return fmt("+%.3fs", t) end

-- The failure message: headline, then what each port has, then where the captures are.
local function fail(h, vp, headline, m, list, title, level)
  h.failures = h.failures + 1
  local lines = { headline }
  if #list == 0 then
    lines[#lines + 1] = fmt("port %s received no frame that an expect had not taken", vp.name)
  else
    if title ~= "" then
      lines[#lines + 1] = title or fmt("port %s received %d frame(s) that no expect took:", vp.name, #list)
    end
    for i, rec in ipairs(list) do
      if i > M.SHOW then
        lines[#lines + 1] = fmt("  ... and %d more", #list - M.SHOW)
        break
      end
      lines[#lines + 1] = fmt("  %d. %s %s", i, rel(rec.rel), frame.summary(rec.frame))
      if m then
        local ok, why = m:test(rec.frame)
        if not ok then
          for _, w in ipairs(why) do lines[#lines + 1] = "       " .. w end
        end
      end
    end
  end
  for _, other in ipairs(h.ports) do
    if other ~= vp and #other.pending > 0 then
      lines[#lines + 1] = fmt("meanwhile port %s has %d frame(s) waiting, the first: %s", other.name,
        #other.pending, frame.summary(other.pending[1].frame))
    end
  end
  local files = h:capture()
  lines[#lines + 1] = "captures (each port's frames both ways; tshark -r FILE):"
  for _, f in ipairs(files) do
    lines[#lines + 1] = fmt("  %s: %s (%d frames)%s", f.port, f.path, f.frames,
      f.error and (" NOT WRITTEN: " .. f.error) or "")
  end
  error(concat(lines, "\n"), level + 1)
end

local function check_vport(vp, fname)
  if getmetatable(vp) ~= VPort then
    error(fmt("bad argument #1 to '%s' (a virtual port of luaswitch.test expected, got %s)", fname, type(vp)), 3)
  end
  if vp.closed then error(fmt("%s: virtual port %s is closed", fname, vp.name), 3) end
end

local function opt_within(o, def, fname)
  if o == nil then return def, 1 end
  if type(o) ~= "table" then error(fmt("bad argument #3 to '%s' (table of options expected)", fname), 3) end
  for k in pairs(o) do
    if k ~= "within" and k ~= "count" then error(fmt("%s: unknown option '%s'", fname, tostring(k)), 3) end
  end
  local w = o.within or def
  if type(w) ~= "number" or w < 0 or w ~= w then
    error(fmt("%s: bad option 'within' (a non-negative number of seconds expected)", fname), 3)
  end
  local n = o.count or 1
  if math.type(n) ~= "integer" or n < 1 then
    error(fmt("%s: bad option 'count' (a positive integer expected)", fname), 3)
  end
  return w, n
end

--- Send a frame into the switch from this port's far end (as its host would).
-- @tparam string f the frame's bytes (`frame.ethernet`, `frame.arp`, ...)
function VPort:send(f)
  check_vport(self, "send")
  if type(f) ~= "string" then
    error(fmt("bad argument #1 to 'send' (frame expected, got %s)", type(f)), 2)
  end
  local ok, err, code = self.endpoint:send(f)
  if not ok then return nil, err, code end
  log(self, f, "in")
  return true
end

--- Wait until a frame matching `m` arrives on this port, and take it (frames that do not
-- match stay, for later expects). Raises an error with the diff and the capture files if
-- none arrives within the deadline.
-- @param m a matcher (see `matcher`)
-- @tparam[opt] table opts `within` (seconds, default the harness's, 0.2), `count` (wait
--   for that many matching frames, default 1)
-- @return the parsed frame (with `bytes`), or with `count` a list of them
function VPort:expect(m, opts)
  check_vport(self, "expect")
  local within, count = opt_within(opts, self.harness.within, "expect")
  local mt = M.matcher(m)
  local taken = {}
  local scanned = 0 -- pending frames before this one did not match: only new ones are tested
  local function take()
    local i = scanned + 1
    while i <= #self.pending and #taken < count do
      local rec = self.pending[i]
      rec.parsed = rec.parsed or frame.parse(rec.frame) or { tags = {}, len = #rec.frame }
      local p = rec.parsed
      if mt:test(rec.frame, p) then
        table.remove(self.pending, i)
        taken[#taken + 1] = p
      else
        i = i + 1
      end
    end
    scanned = i - 1
    return #taken >= count
  end
  if not self.harness:wait(take, within) then
    local what = count == 1 and "no frame" or fmt("%d of %d frames", #taken, count)
    fail(self.harness, self, fmt("expect: %s matching %s on port %s within %g s", what, mt.text, self.name, within),
      mt, self.pending, nil, 2)
  end
  if count == 1 and not (opts and opts.count) then return taken[1] end
  return taken
end

--- Check that no frame matching `m` (nil: any frame) arrives on this port within the
-- window (default the harness's `quiet`, 0.05 s); frames already waiting count too. Raises
-- an error listing the offending frames and the capture files otherwise. Takes nothing.
function VPort:expect_none(m, opts)
  check_vport(self, "expect_none")
  local within = opt_within(opts, self.harness.quiet, "expect_none")
  local mt = M.matcher(m)
  local bad = {}
  local seen = 0
  local function found()
    for i = seen + 1, #self.pending do
      local rec = self.pending[i]
      if mt:test(rec.frame) then bad[#bad + 1] = rec end
    end
    seen = #self.pending
    return #bad > 0
  end
  if self.harness:wait(found, within) then
    fail(self.harness, self, fmt("expect_none: port %s received %d frame(s) matching %s within %g s:", self.name,
      #bad, mt.text, within), nil, bad, "", 2)
  end
  return true
end

--- The frames this port received that no `expect` took yet (after collecting what has
-- arrived), as `{ frame =, rel = (seconds since the harness started) }` records.
function VPort:received()
  self.harness:pump()
  return self.pending
end

--- Forget the frames waiting on this port (after collecting what has arrived).
-- @treturn integer how many were dropped
function VPort:flush()
  self.harness:pump()
  local n = #self.pending
  self.pending = {}
  return n
end

function VPort:__tostring()
  return fmt("luaswitch.test vport %q (%s)", self.name, self.closed and "closed" or tostring(self.port))
end

--- Forget the frames waiting on every port.
function Harness:flush()
  self:pump()
  for _, vp in ipairs(self.ports) do vp.pending = {} end
end

--- The virtual port named `name`.
function Harness:get(name)
  return self.byname[name]
end

--- As `vp:expect(m, opts)`.
function M.expect(vp, m, opts) return VPort.expect(vp, m, opts) end
--- As `vp:expect_none(m, opts)`.
function M.expect_none(vp, m, opts) return VPort.expect_none(vp, m, opts) end

-- ---- the clock ----------------------------------------------------------------------------

--- Switch the runtime to the manual clock (restored to the mode it had when the harness
-- closes). Time then stands still until `advance`.
function Harness:manual_clock()
  if self.saved_clock == nil then self.saved_clock = luaswitch.clock() end
  luaswitch.clock("manual")
  return self
end

--- Move the manual clock forward by `seconds` (in steps of `step` seconds if given: each
-- step runs aging and releases the impaired frames due, as a real clock passing would),
-- dispatching the events each step caused (aging's are there when it returns). Frames a
-- step releases are sent by the data plane a moment after it: `expect` them (with a
-- deadline) rather than looking at `received()` at once.
-- @tparam number seconds
-- @tparam[opt] table opts `step` (seconds)
-- @treturn number the runtime clock after the move (`luaswitch.now()`)
function Harness:advance(seconds, opts)
  if type(seconds) ~= "number" or seconds < 0 or seconds ~= seconds then
    error("bad argument #1 to 'advance' (a non-negative number of seconds expected)", 2)
  end
  if luaswitch.clock() ~= "manual" then
    error("advance: the clock is not manual (call h:manual_clock() first)", 2)
  end
  local step = opts and opts.step
  if step ~= nil and (type(step) ~= "number" or step <= 0) then
    error("advance: bad option 'step' (a positive number of seconds expected)", 2)
  end
  local left = seconds
  repeat
    local d = step and math.min(step, left) or left
    luaswitch.advance(d)
    left = left - d
    self:pump()
  until left <= 1e-12
  return luaswitch.now()
end

--- Seconds on the runtime clock (`luaswitch.now()`).
function Harness:now()
  return luaswitch.now()
end

--- Close the endpoints, the ports the harness created, its own switch, and restore the
-- clock mode. Capture files stay where they were written.
function Harness:close()
  if self.closed then return end
  self.closed = true
  for _, vp in ipairs(self.ports) do
    if not vp.closed then
      vp.closed = true
      pcall(vp.endpoint.close, vp.endpoint)
      if vp.own and not vp.port.closed then pcall(vp.port.close, vp.port) end
    end
  end
  if self.own_switch and not self.switch.closed then self.switch:close() end
  if self.saved_clock then
    pcall(luaswitch.clock, self.saved_clock)
    self.saved_clock = nil
  end
  luaswitch.dispatch(0)
end
Harness.__close = Harness.close

function Harness:__tostring()
  return fmt("luaswitch.test harness %q (%d ports%s)", self.name, #self.ports, self.closed and ", closed" or "")
end

return M
