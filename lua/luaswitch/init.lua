--- luaswitch: a userspace L2 Ethernet switch with a C data plane and a Lua control plane.
--
-- The data plane (C, libuv, its own thread) does all per-frame work: receiving,
-- learning, forwarding, flooding, aging. This module configures it at run time and
-- receives its events off the hot path. Lua never runs per frame.
--
--    local luaswitch = require "luaswitch"
--    local sw = luaswitch.switch { name = "net0", aging = 300, max_macs = 8192 }
--    local a  = sw:port { kind = "socketpair", name = "a" }
--    sw:on("learn", function(ev) print(ev.mac, ev.port.name) end)
--    luaswitch.run(10)          -- dispatch events for 10 seconds
--
-- Errors: a programmer error (wrong type, malformed MAC, unknown option, closed object)
-- raises an error naming the argument; a runtime failure (address in use, ...) returns
-- `nil, message, code` with code the errno name, e.g. "EADDRINUSE".
-- @module luaswitch

local core = require "luaswitch.core"

local M = {}

--- Version string of the module.
M.version = core.version
--- The C module, for advanced use.
M.core = core

--- Create a switch (a broadcast domain).
-- @tparam[opt] table|string opts `name` (string), `aging` (seconds, default 300, 0 = never),
--   `max_macs` (learned-entry cap, default 8192), `evict` ("oldest" (default), "port" =
--   the oldest entry of the port with the most entries, or "refuse"). A string is a name.
-- @treturn switch
-- @function switch
M.switch = core.switch

--- Create an endpoint: the far side of a port (a stand-in VM), for sending and receiving
-- frames from Lua. `path` binds it, `peer` connects it (both unix socket paths).
-- @tparam table opts `path`, `peer`
-- @function endpoint
M.endpoint = core.endpoint

--- Compile a tcpdump expression (pcap-filter(7)) with libpcap, for matching frames from
-- Lua: `luaswitch.bpf("udp port 53"):match(frame)` is true or false. The same compiler
-- and interpreter as filter rules; a bad expression raises libpcap's message
-- ("bad argument #1 to 'bpf' (can't parse filter expression: syntax error)"). The
-- program has `expr`, `:match(frame)` and `:close()`.
-- @tparam string expr
-- @function bpf
M.bpf = core.bpf

--- Start the data-plane thread (done implicitly by the first switch).
-- @function start
M.start = core.start
--- Is the data-plane thread running?
-- @function running
M.running = core.running
--- Get or set the clock mode: "real" (default) or "manual". A manual clock stands still
-- until `advance` moves it, so aging can be tested in microseconds.
-- @function clock
M.clock = core.clock
--- Seconds on the runtime clock.
-- @function now
M.now = core.now
--- Seconds on the monotonic wall clock (not affected by a manual runtime clock).
-- @function monotime
M.monotime = core.monotime
--- File descriptor that is readable while events are pending; wait on it with any event
-- loop (luv, cqueues, poll) and call `dispatch(0)`. It changes when the runtime restarts.
-- @function fileno
M.fileno = core.fileno
--- Runtime counters: wakeups, batches, commands, events_lost, buffers (`buffers_live`, `buffers_allocated`, `buffer_bytes`), clock.
-- @function info
M.info = core.info
--- Open switches, in creation order.
-- @function switches
M.switches = core.switches

-- ---- ports that own what Lua set up for them --------------------------------------------

local switch_methods = core.methods.switch
local port_methods = core.methods.port
local netns -- luaswitch.netns, loaded on first use

-- port -> list of objects with :close() (namespaces created for it), closed with the port
local owned = setmetatable({}, { __mode = "k" })

local function release(p)
  local list = owned[p]
  if not list then return end
  owned[p] = nil
  for i = #list, 1, -1 do list[i]:close() end
end

-- Call a C method from a Lua wrapper so that its errors point at the wrapper's caller
-- (the user's line), as they would without the wrapper. The wrapper must not tail-call it.
local function call_c(fn, ...)
  local r = table.pack(pcall(fn, ...))
  if not r[1] then error(r[2], 3) end
  return table.unpack(r, 2, r.n)
end

local c_port, c_port_close, c_switch_close, c_stop =
  switch_methods.port, port_methods.close, switch_methods.close, core.stop

--- Create a port. See the README for the kinds and their options. A "tap" port also
-- takes `addresses` (list of "10.0.0.1/24", "fd00::1/64"; assigned with iproute2) and
-- `create_netns = true` (create the namespace named by `netns` if it does not exist; it is
-- then deleted when the port closes).
function switch_methods.port(sw, opts)
  if getmetatable(sw) ~= core.metatables.switch then
    error(("calling 'port' on bad self (luaswitch.switch expected, got %s)"):format(type(sw)), 2)
  end
  if sw.closed then error(("calling 'port' on bad self (switch '%s' is closed)"):format(sw.name), 2) end
  if type(opts) ~= "table" or (opts.addresses == nil and opts.create_netns == nil) then
    local p, err, code = call_c(c_port, sw, opts) -- not a tail call: see call_c
    return p, err, code
  end
  if opts.kind ~= "tap" then
    local k = opts.addresses ~= nil and "addresses" or "create_netns"
    error(("port: unknown option '%s'"):format(k), 2)
  end
  local addrs = opts.addresses
  if addrs ~= nil then
    if type(addrs) ~= "table" then
      error(("port: bad option 'addresses' (list of strings expected, got %s)"):format(type(addrs)), 2)
    end
    for i, a in ipairs(addrs) do
      if type(a) ~= "string" or not a:match("^[%x:.]+/%d+$") then
        error(("port: bad option 'addresses' (item %d: an address with a prefix length like 10.0.0.1/24 expected, got %s)")
          :format(i, tostring(a)), 2)
      end
    end
  end
  if opts.create_netns ~= nil and type(opts.create_netns) ~= "boolean" then
    error(("port: bad option 'create_netns' (boolean expected, got %s)"):format(type(opts.create_netns)), 2)
  end
  if opts.create_netns and not opts.netns then
    error("port: bad option 'create_netns' (it needs the option 'netns', the name to create)", 2)
  end
  local o = {}
  for k, v in pairs(opts) do
    if k ~= "addresses" and k ~= "create_netns" then o[k] = v end
  end
  netns = netns or require "luaswitch.netns"
  local ns
  if opts.create_netns and type(opts.netns) == "string" and not netns.exists(opts.netns) then
    local err, code
    ns, err, code = netns.create(opts.netns)
    if not ns then return nil, err, code end
  end
  local p, err, code = call_c(c_port, sw, o)
  if not p then
    if ns then ns:close() end
    return nil, err, code
  end
  if ns then owned[p] = { ns } end
  local info = p:info()
  for _, a in ipairs(addrs or {}) do
    local out, rc = netns.sh(("ip %saddr add %s dev %s"):format(
      info.netns and ("-n " .. netns.quote(info.netns) .. " ") or "", netns.quote(a), netns.quote(info.ifname)))
    if rc ~= 0 then
      port_methods.close(p)
      return nil, ("EINVAL: cannot add address %s to %s: %s"):format(a, info.ifname, out:gsub("%s+$", "")),
        "EINVAL"
    end
  end
  return p
end

--- Close the port (and what was created for it).
function port_methods.close(p)
  c_port_close(p)
  release(p)
end

--- Close the switch, its ports, and what was created for them.
function switch_methods.close(sw)
  local ports = sw.closed and {} or sw:ports()
  c_switch_close(sw)
  for _, p in ipairs(ports) do release(p) end
end

core.metatables.port.__close = port_methods.close
core.metatables.switch.__close = switch_methods.close

local timers = {} -- pending luaswitch.after timers, by due time then creation (see below)

local function stop()
  for _, t in ipairs(timers) do t.cancelled = true end
  timers = {}
  local ports = {}
  for _, sw in ipairs(core.switches()) do
    for _, p in ipairs(sw:ports()) do ports[#ports + 1] = p end
  end
  c_stop()
  for _, p in ipairs(ports) do release(p) end
end

--- Close every switch and port and stop the data-plane thread. `start` (or a new switch)
-- starts it again.
-- @function stop
M.stop = stop

local EVENTS = {
  learn = true, move = true, age = true, evict = true, port = true, error = true, lost = true,
  punt = true, sample = true, table_full = true, admit = true, refuse = true, stp = true,
}
local EVENT_LIST = "learn, move, age, evict, port, error, lost, punt, sample, table_full, admit, refuse, stp"

-- handlers[key][event] = { fn, ... }; key is a switch, or M for global handlers
local handlers = setmetatable({}, { __mode = "k" })

local function check_handler(fname, event, fn, level)
  if type(event) ~= "string" then
    error(("bad argument #1 to '%s' (event name expected, got %s)"):format(fname, type(event)), level)
  end
  if not EVENTS[event] then
    error(("bad argument #1 to '%s' (unknown event '%s'; one of %s)"):format(fname, event, EVENT_LIST),
      level)
  end
  if fn ~= nil and type(fn) ~= "function" then
    error(("bad argument #2 to '%s' (function expected, got %s)"):format(fname, type(fn)), level)
  end
end

local function add_handler(key, event, fn)
  local byev = handlers[key]
  if not byev then
    byev = {}
    handlers[key] = byev
  end
  local list = byev[event]
  if not list then
    list = {}
    byev[event] = list
  end
  list[#list + 1] = fn
  return fn
end

local function remove_handler(key, event, fn)
  local byev = handlers[key]
  local list = byev and byev[event]
  if not list then return 0 end
  local n = 0
  for i = #list, 1, -1 do
    if fn == nil or list[i] == fn then
      table.remove(list, i)
      n = n + 1
    end
  end
  return n
end

--- Register a handler for this switch's events. Events: "learn", "move", "age",
-- "evict", "port", "error". Several handlers per event run in registration order, from
-- `dispatch()`, in the Lua thread.
-- @param sw the switch (called as `sw:on(event, fn)`)
-- @tparam string event
-- @tparam function fn called with the event table
-- @return fn (pass it to `off`)
function switch_methods.on(sw, event, fn)
  check_handler("on", event, fn, 3)
  if fn == nil then error("bad argument #2 to 'on' (function expected, got no value)", 2) end
  return add_handler(sw, event, fn)
end

--- Remove a handler (or all handlers of an event when fn is nil).
-- @treturn integer how many were removed
function switch_methods.off(sw, event, fn)
  check_handler("off", event, fn, 3)
  return remove_handler(sw, event, fn)
end

--- Register a handler for an event of any switch (and "lost": events dropped because
-- the ring was full, with `count`).
function M.on(event, fn)
  check_handler("on", event, fn, 3)
  if fn == nil then error("bad argument #2 to 'on' (function expected, got no value)", 2) end
  return add_handler(M, event, fn)
end

--- Remove a global handler (or all of an event when fn is nil).
function M.off(event, fn)
  check_handler("off", event, fn, 3)
  return remove_handler(M, event, fn)
end

--- Counters of the Lua side: `dispatched` (events delivered), `handler_errors` (handler
-- calls that failed, whatever the reason) and, among those, `handler_overruns` (handlers
-- interrupted for running past `handler_budget`).
M.stats = { dispatched = 0, handler_errors = 0, handler_overruns = 0 }

--- Budget of one handler call, in Lua VM instructions (default 10,000,000: about 0.05 to
-- 0.1 s of pure Lua here). A handler still running past it (`while true do end`) is
-- interrupted with an error, reported with the event type and the handler's source:line,
-- and counted in `stats.handler_overruns`; the other handlers and forwarding carry on.
-- Time spent inside C functions (a blocking os.execute) is not counted. `0` or `false`
-- means no budget.
M.handler_budget = 10000000

--- Called with a message when a handler raises an error; replace to log elsewhere.
-- The default writes to stderr. The switch keeps forwarding either way.
function M.report(msg)
  io.stderr:write("luaswitch: ", msg, "\n")
end

local traceback, sethook, getinfo = debug.traceback, debug.sethook, debug.getinfo
local cocreate, coresume, costatus, coclose = coroutine.create, coroutine.resume, coroutine.status,
  coroutine.close
local HOOK_STEP_MAX = 0x40000000

local function budget_of(b)
  if b == nil or b == false then return 0 end
  if math.type(b) == "float" and b == math.floor(b) and b < 2 ^ 63 then b = math.tointeger(b) end
  if math.type(b) ~= "integer" and b ~= math.huge or b < 0 then
    error(("luaswitch.handler_budget: a non-negative number of instructions expected, got %s")
      :format(tostring(b)), 3)
  end
  return b == math.huge and 0 or b
end

local function where(fn)
  local info = getinfo(fn, "S")
  if info.what == "C" then return "[C]" end
  return ("%s:%d"):format(info.short_src, info.linedefined)
end

local function failed(ev, msg)
  M.stats.handler_errors = M.stats.handler_errors + 1
  local ok = pcall(M.report, msg)
  if not ok then io.stderr:write("luaswitch: ", msg, "\n") end
end

-- Run one handler in a coroutine of its own: its instruction budget is a count hook on
-- that coroutine only (the caller's hooks, such as the REPL's Ctrl-C, are untouched), and
-- a handler that yields is caught instead of suspending dispatch() halfway.
local function call_handler(fn, ev, budget)
  local co = cocreate(fn)
  local overrun = false
  if budget > 0 then
    local step = budget < HOOK_STEP_MAX and budget or HOOK_STEP_MAX
    local used = 0
    sethook(co, function()
      used = used + step
      if used >= budget then
        overrun = true
        sethook() -- this coroutine's hook: stop counting while the error unwinds
        error("interrupted", 2)
      end
    end, "", step)
  else
    sethook(co) -- a new coroutine inherits its creator's hook: drop it
  end
  local ok, err = coresume(co, ev)
  if ok then
    if costatus(co) == "dead" then return true, err end
    coclose(co)
    failed(ev, ("'%s' handler at %s yielded: handlers run to completion from dispatch() and " ..
      "cannot yield (start a coroutine of your own for work that waits)"):format(ev.type, where(fn)))
    return false
  end
  local tb = traceback(co, tostring(err))
  coclose(co)
  if overrun then
    M.stats.handler_overruns = M.stats.handler_overruns + 1
    failed(ev, ("'%s' handler at %s interrupted: it ran past its budget of %d instructions " ..
      "(luaswitch.handler_budget)\n%s"):format(ev.type, where(fn), budget,
      (tb:gsub("^[^\n]*\n", ""):gsub("\n\t%[C%]: in function 'error'", ""):gsub("\n\t[^\n]*in hook[^\n]*", ""))))
  else
    failed(ev, ("error in '%s' handler: %s"):format(ev.type, tb))
  end
end

local function run_list(list, ev, budget)
  if not list or #list == 0 then return end
  local copy = table.move(list, 1, #list, 1, {})
  for i = 1, #copy do call_handler(copy[i], ev, budget) end
end

-- switch -> its admission policy (see switch_methods.admission)
local policies = setmetatable({}, { __mode = "k" })

local function deliver(ev, budget)
  M.stats.dispatched = M.stats.dispatched + 1
  local sw = ev.switch
  if ev.type == "admit" and sw and policies[sw] and not sw.closed and ev.port and not ev.port.closed then
    local ok, answer = call_handler(policies[sw], ev, budget)
    if ok and answer ~= nil then
      ev.answer = answer and true or false
      local done, err = pcall(sw.admit, sw, ev.mac, ev.port, ev.answer, ev.vlan)
      if not done then failed(ev, ("admission answer for %s: %s"):format(ev.mac, tostring(err))) end
    end
  end
  if sw then
    local byev = handlers[sw]
    if byev then run_list(byev[ev.type], ev, budget) end
  end
  local g = handlers[M]
  if g then run_list(g[ev.type], ev, budget) end
end

--- Set the switch's learning admission policy: `fn(ev)` is called (from `dispatch()`, with
-- the handler budget) for each `admit` event — a new source MAC `ev.mac` in `ev.vlan` on a
-- port with `admission` set — and returns true (learn it), false (refuse it: its frames
-- are dropped until the refusal expires) or nil (no answer now: call `sw:admit(mac, port,
-- ok, vlan)` later). Until then the port's frames from that MAC are forwarded without
-- learning (`admission = "flood"`) or dropped (`"drop"`). `nil` removes the policy.
-- @param sw the switch (called as `sw:admission(fn)`)
-- @tparam[opt] function fn
function switch_methods.admission(sw, fn)
  if fn ~= nil and type(fn) ~= "function" then
    error(("bad argument #1 to 'admission' (function expected, got %s)"):format(type(fn)), 2)
  end
  policies[sw] = fn
  return sw
end

--- An admission policy that lets each port have at most `n` learned MACs at a time (port
-- security's "first N"): `sw:admission(luaswitch.admit_first(2))`.
function M.admit_first(n)
  if math.type(n) ~= "integer" or n < 0 then
    error(("bad argument #1 to 'admit_first' (non-negative integer expected, got %s)"):format(tostring(n)), 2)
  end
  return function(ev) return ev.port:info().macs < n end
end

--- An admission policy that learns only the listed MACs (a list, or a set keyed by MAC;
-- any case): `sw:admission(luaswitch.admit_only { "02:00:00:00:00:01" })`.
function M.admit_only(macs)
  if type(macs) ~= "table" then
    error(("bad argument #1 to 'admit_only' (table of MACs expected, got %s)"):format(type(macs)), 2)
  end
  local set = {}
  for k, v in pairs(macs) do
    local mac = type(k) == "string" and k or v
    if type(mac) ~= "string" or not mac:match("^%x%x[:-]%x%x[:-]%x%x[:-]%x%x[:-]%x%x[:-]%x%x$") then
      error(("bad argument #1 to 'admit_only' (malformed MAC address '%s')"):format(tostring(mac)), 2)
    end
    set[mac:lower():gsub("-", ":")] = true
  end
  return function(ev) return set[ev.mac] == true end
end

--- The MAC table as a plain table that `sw:fdb_restore()` takes back (and that JSON can
-- carry): `{ version = 1, switch = name, entries = { { mac =, vlan =, port = (name),
-- static =, sticky =, age =, hits = }, ... } }`.
function switch_methods.fdb_snapshot(sw)
  local entries = {}
  for _, e in ipairs(sw:fdb()) do
    entries[#entries + 1] = { mac = e.mac, vlan = e.vlan, port = e.port.name, static = e.static,
      sticky = e.sticky, age = e.age, hits = e.hits }
  end
  return { version = 1, switch = sw.name, entries = entries }
end

--- Put the entries of a snapshot back, by port name, replacing entries with the same MAC
-- and VLAN: static entries as static, sticky as sticky, learned ones as learned just now
-- (their aging starts again). Entries whose port does not exist on this switch, or that
-- the table refuses (full), are skipped. Nothing is removed first: `sw:fdb_flush{}` does.
-- @treturn integer entries restored
-- @treturn table skipped `{ { entry =, reason = }, ... }`
function switch_methods.fdb_restore(sw, snap)
  if type(snap) ~= "table" or type(snap.entries) ~= "table" then
    error("bad argument #1 to 'fdb_restore' (a snapshot from fdb_snapshot() expected)", 2)
  end
  if snap.version ~= 1 then
    error(("bad argument #1 to 'fdb_restore' (snapshot version 1 expected, got %s)"):format(tostring(snap.version)), 2)
  end
  local byname = {}
  for _, p in ipairs(sw:ports()) do byname[p.name] = p end
  -- check everything first: a malformed entry changes nothing
  for i, e in ipairs(snap.entries) do
    local bad = type(e) ~= "table" and "not a table"
      or type(e.mac) ~= "string" and "no mac"
      or (e.vlan ~= nil and math.type(e.vlan) ~= "integer") and "vlan is not an integer"
      or type(e.port) ~= "string" and "no port name"
    if bad then error(("bad argument #1 to 'fdb_restore' (entry %d: %s)"):format(i, bad), 2) end
  end
  local n, skipped = 0, {}
  for _, e in ipairs(snap.entries) do
    local p = byname[e.port]
    local ok, err
    if not p then
      err = ("no port named '%s'"):format(e.port)
    else
      local good, r, msg = pcall(sw.fdb_add, sw, e.mac, p,
        { vlan = e.vlan or 0, sticky = e.sticky == true or nil, dynamic = not e.static and not e.sticky or nil })
      if not good then err = tostring(r):gsub("^.-: ", "") elseif not r then err = msg else ok = true end
    end
    if ok then n = n + 1 else skipped[#skipped + 1] = { entry = e, reason = err } end
  end
  return n, skipped
end

--- Write the MAC table to a JSON file (written to `path.tmp`, then renamed over `path`).
function switch_methods.fdb_save(sw, path)
  if type(path) ~= "string" then
    error(("bad argument #1 to 'fdb_save' (path expected, got %s)"):format(type(path)), 2)
  end
  local text = require("luaswitch.console").json(sw:fdb_snapshot())
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "w")
  if not f then return nil, err end
  local ok, werr = f:write(text, "\n")
  f:close()
  if not ok then os.remove(tmp); return nil, werr end
  local r, rerr = os.rename(tmp, path)
  if not r then os.remove(tmp); return nil, rerr end
  return true
end

--- Read a JSON file written by `fdb_save` and restore it (as `fdb_restore`).
-- @return entries restored and the skipped ones, or nil and a message
function switch_methods.fdb_load(sw, path)
  if type(path) ~= "string" then
    error(("bad argument #1 to 'fdb_load' (path expected, got %s)"):format(type(path)), 2)
  end
  local f, err = io.open(path, "r")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  local snap, jerr = require("luaswitch.json").decode(text)
  if not snap then return nil, ("%s: %s"):format(path, jerr) end
  if type(snap) ~= "table" or snap.version ~= 1 or type(snap.entries) ~= "table" then
    return nil, ("%s: not an FDB snapshot"):format(path)
  end
  local ok, n, skipped = pcall(switch_methods.fdb_restore, sw, snap)
  if not ok then return nil, ("%s: %s"):format(path, tostring(n):gsub("^bad argument #1 to 'fdb_restore' ", "")) end
  return n, skipped
end

-- ---- timers on the runtime clock ------------------------------------------------------------

local timer_seq = 0
local Timer = {}
Timer.__index = Timer

function Timer:__tostring()
  return ("luaswitch.timer (due at %.6f s%s)"):format(self.due, self.cancelled and ", cancelled"
    or self.fired and ", fired" or "")
end

--- Call `fn(ev)` once, `seconds` from now on the runtime clock (`luaswitch.now()`), from
-- `dispatch()` (so from `run`, `wait_until` and the REPL's loop too), with the handler
-- budget; `ev` is `{ type = "timer", time = now, due = when it was due, timer = t }`. With
-- the manual clock a timer fires when `advance` moves the clock past it, at its own time:
-- `advance(3)` over timers due at 1 and 2.5 moves to 1, fires, moves to 2.5, fires, moves
-- to 3. An error in `fn` is reported (`luaswitch.report`) like a handler's.
-- @tparam number seconds
-- @tparam function fn
-- @treturn timer `t.due` (runtime clock), `t:cancel()`, `t.fired`, `t.cancelled`
function M.after(seconds, fn)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 or seconds > 1e9 then
    error(("bad argument #1 to 'after' (seconds between 0 and 1e9 expected, got %s)"):format(tostring(seconds)), 2)
  end
  if type(fn) ~= "function" then
    error(("bad argument #2 to 'after' (function expected, got %s)"):format(type(fn)), 2)
  end
  timer_seq = timer_seq + 1
  local t = setmetatable({ due = core.now() + seconds, fn = fn, seq = timer_seq, fired = false,
    cancelled = false }, Timer)
  local i = #timers
  while i > 0 and timers[i].due > t.due do i = i - 1 end
  table.insert(timers, i + 1, t)
  return t
end

--- Cancel a timer that has not fired (no-op otherwise).
function Timer:cancel()
  for i, t in ipairs(timers) do
    if t == self then
      table.remove(timers, i)
      self.cancelled = true
      return true
    end
  end
  return false
end

--- Pending timers, soonest first.
function M.timers()
  return table.move(timers, 1, #timers, 1, {})
end

-- Fire the timers due at or before `limit`; returns how many.
local function run_timers(limit, budget)
  local n = 0
  while timers[1] and timers[1].due <= limit do
    local t = table.remove(timers, 1)
    t.fired = true
    call_handler(t.fn, { type = "timer", time = core.now(), due = t.due, timer = t }, budget)
    n = n + 1
  end
  return n
end

--- Move a manual clock forward by `seconds` and run aging at the new time; timers due on
-- the way fire at their own times (see `after`).
-- @tparam number seconds
function M.advance(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 or seconds > 1e9 then
    error("bad argument #1 to 'advance' (seconds must be between 0 and 1e9)", 2)
  end
  if core.clock() ~= "manual" or not timers[1] then return core.advance(seconds) end
  local target = core.now() + seconds
  while timers[1] and timers[1].due <= target do
    local due = timers[1].due
    local step = due - core.now()
    if step > 0 then core.advance(step) end
    run_timers(due, budget_of(M.handler_budget))
  end
  local rest = target - core.now()
  core.advance(rest > 0 and rest or 0)
end

--- Run the handlers of pending events, first waiting up to `timeout` seconds (default 0)
-- for one to arrive.
-- @treturn integer number of events dispatched
function M.dispatch(timeout)
  timeout = timeout or 0
  if type(timeout) ~= "number" or timeout ~= timeout or timeout < 0 then
    error("bad argument #1 to 'dispatch' (non-negative number of seconds expected)", 2)
  end
  local budget = budget_of(M.handler_budget)
  local evs, lost = core.events()
  if #evs == 0 and lost == 0 and timeout > 0 then
    if timers[1] and core.clock() ~= "manual" then -- wake for the next timer
      local left = timers[1].due - core.now()
      if left < timeout then timeout = left > 0 and left or 0 end
    end
    if timeout > 0 and core.wait(timeout) then evs, lost = core.events() end
  end
  if lost > 0 then deliver({ type = "lost", count = lost, time = core.now() }, budget) end
  for i = 1, #evs do deliver(evs[i], budget) end
  local fired = timers[1] and run_timers(core.now() + 1e-9, budget) or 0
  return #evs + fired
end

local quitting = false

--- Dispatch events until `quit()` is called, `seconds` have passed (if given), or no
-- switch is left.
-- @tparam[opt] number seconds
function M.run(seconds)
  quitting = false
  local deadline = seconds and core.monotime() + seconds
  while not quitting do
    if #core.switches() == 0 then break end
    local wait = 0.5
    if deadline then
      local left = deadline - core.monotime()
      if left <= 0 then break end
      if left < wait then wait = left end
    end
    M.dispatch(wait)
  end
end

--- Make `run()` return after the current dispatch.
function M.quit()
  quitting = true
end

--- Dispatch events until `cond()` returns a true value or `timeout` seconds (default 5)
-- pass. Returns cond's value, or nil after the timeout.
function M.wait_until(cond, timeout)
  local deadline = core.monotime() + (timeout or 5)
  while true do
    M.dispatch(0)
    local v = cond()
    if v then return v end
    local left = deadline - core.monotime()
    if left <= 0 then return nil end
    M.dispatch(left < 0.01 and left or 0.01)
  end
end

return M
