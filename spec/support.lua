-- spec/support.lua — helpers shared by the busted specs.
--
-- Frames, temporary directories (removed even when a spec fails), deadline-based
-- waiting, and process introspection (/proc) for threads, fds and CPU time.

local luaswitch = require "luaswitch"
local frame = require "luaswitch.frame"

local S = {}

--- The sanitizer of this build, if any ("address" or "thread"). Then the specs run in the
-- instrumented luaswitch executable (see cmake/tests.cmake). S.LUA is the command that
-- runs a Lua script with the module: stock lua5.4, or that executable.
S.SANITIZER = os.getenv("LS_SANITIZER")
S.LUA = S.SANITIZER and os.getenv("LUASWITCH_BIN") or "lua5.4"

S.BCAST = frame.BROADCAST
S.mac = frame.mac

--- A frame from host number `src` to `dst` (a host number or MAC text).
function S.frame(src, dst, opts)
  opts = opts or {}
  return frame.ethernet {
    src = type(src) == "number" and frame.mac(src) or src,
    dst = type(dst) == "number" and frame.mac(dst) or dst,
    type = opts.type, vlan = opts.vlan, pcp = opts.pcp,
    payload = opts.payload or "luaswitch spec",
    size = opts.size or 60,
  }
end

--- Socketpair ports named `names` on switch sw, and an endpoint on each.
-- @return ports (by name), endpoints (by name)
function S.hosts(sw, names)
  local ports, eps = {}, {}
  for _, n in ipairs(names) do
    ports[n] = sw:port { kind = "socketpair", name = n }
    eps[n] = ports[n]:endpoint()
  end
  return ports, eps
end

--- Receive frames on endpoint `ep` until `n` have arrived (waiting at most `timeout` s,
-- default 5, for each), then any more that arrive within `quiet` s (default 0.05): a count
-- that does not depend on how fast the machine is, and still shows extras.
function S.collect_n(ep, n, timeout, quiet)
  local got = {}
  while #got < n do
    local f = ep:recv(timeout or 5)
    if not f then return got end
    got[#got + 1] = f
  end
  for _, f in ipairs(S.collect(ep, quiet or 0.05)) do got[#got + 1] = f end
  return got
end

-- Receive on endpoint `ep` until the exact frame `want` arrives (at most `timeout` s, default
-- 1, for each frame), skipping others (say, late copies of an earlier flood). Returns the
-- frame (nil if it never came) and the list of frames skipped.
function S.await(ep, want, timeout)
  local skipped = {}
  while true do
    local f = ep:recv(timeout or 1)
    if f == nil or f == want then return f, skipped end
    skipped[#skipped + 1] = f
  end
end

-- Send frame f from endpoint `ep` into `port` and wait until the switch has read it (for a
-- frame nothing else can be waited on for: dropped, or only raising events).
function S.sent(port, ep, f)
  local before = port:stats().rx_frames
  ep:send(f)
  S.eventually(function() return port:stats().rx_frames > before end, 5, "the switch to read the frame")
end

-- Receive every frame that arrives on endpoint `ep` within `window` seconds.
function S.collect(ep, window)
  local got = {}
  local deadline = luaswitch.monotime() + (window or 0.2)
  while true do
    local left = deadline - luaswitch.monotime()
    if left <= 0 then break end
    local f = ep:recv(left)
    if f then got[#got + 1] = f end
  end
  return got
end

--- Wait (dispatching events) until cond() is true; fail the spec after `timeout`.
function S.eventually(cond, timeout, what)
  local v = luaswitch.wait_until(cond, timeout or 5)
  assert(v, "timed out waiting for " .. (what or "condition"))
  return v
end

--- A fresh temporary directory; S.cleanup() removes them all.
local dirs = {}
function S.tmpdir()
  local p = io.popen("mktemp -d /tmp/luaswitch-spec.XXXXXX")
  local d = p:read("l")
  p:close()
  dirs[#dirs + 1] = d
  return d
end

function S.cleanup()
  for _, d in ipairs(dirs) do os.execute("rm -rf '" .. d .. "'") end
  dirs = {}
end

local function read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
S.read_file = read_file

--- Thread ids of this process by name (comm).
function S.threads()
  local p = io.popen("ls /proc/" .. S.pid() .. "/task 2>/dev/null")
  local list = {}
  for tid in p:lines() do
    local comm = read_file("/proc/self/task/" .. tid .. "/comm")
    if comm then list[#list + 1] = { tid = tid, name = comm:gsub("%s+$", "") } end
  end
  p:close()
  return list
end

--- The data-plane thread's CPU time in seconds (nil if it is not running).
function S.dataplane_cpu()
  for _, t in ipairs(S.threads()) do
    if t.name == "luaswitch-dp" then
      local s = read_file("/proc/self/task/" .. t.tid .. "/schedstat")
      if s then return tonumber(s:match("^(%d+)")) / 1e9 end
    end
  end
  return nil
end

--- Number of open file descriptors of process pid (default: this process).
-- For this process the pipe of the popen that asks is not counted: popen closes its
-- child's end in the parent only after the child started, so a plain
-- `ls /proc/PID/fd | wc -l` sometimes sees that end too.
function S.fd_count(pid)
  local p = io.popen("for f in /proc/" .. (pid or S.pid()) .. "/fd/*; do readlink \"$f\"; done; "
    .. "echo \"self $(readlink /proc/$$/fd/1)\"")
  local out = p:read("a")
  p:close()
  local own = assert(out:match("self ([^\n]+)"))
  local n = 0
  for target in out:gmatch("([^\n]+)") do
    if target ~= own and not target:match("^self ") then n = n + 1 end
  end
  return n
end

function S.pid()
  local stat = read_file("/proc/self/stat")
  return tonumber(stat:match("^(%d+)"))
end

--- Number of threads of process pid (default: this process).
function S.thread_count(pid)
  local stat = read_file("/proc/" .. (pid or "self") .. "/status")
  return tonumber(stat:match("Threads:%s*(%d+)"))
end

--- Resident set size in kB of process pid (default: this process).
function S.rss_kb(pid)
  local stat = read_file("/proc/" .. (pid or "self") .. "/status")
  return tonumber(stat:match("VmRSS:%s*(%d+)"))
end

--- Count events of each type delivered for switch sw from now on.
function S.record(sw, types)
  local rec = { list = {} }
  for _, t in ipairs(types or { "learn", "move", "age", "evict", "port", "error" }) do
    rec[t] = {}
    sw:on(t, function(ev)
      rec[t][#rec[t] + 1] = ev
      rec.list[#rec.list + 1] = ev
    end)
  end
  return rec
end

--- True if nothing arrives on endpoint ep within `window` seconds (default 0.05).
function S.nothing(ep, window)
  return ep:recv(window or 0.05) == nil
end

--- Assert that fn(...) raises an error matching the Lua pattern; returns the message.
function S.raises(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error matching " .. pattern)
  assert(tostring(err):match(pattern), ("error %q does not match %q"):format(tostring(err), pattern))
  return err
end

--- The FDB entry of mac (in vlan, default 0) on switch sw, or nil.
function S.entry(sw, mac, vlan)
  for _, e in ipairs(sw:fdb()) do
    if e.mac == mac and e.vlan == (vlan or 0) then return e end
  end
end

--- Assert that port p's counters add up (sw:audit(), which checks every frame a port
-- received or was given is accounted for; see the README). Retries for up to 2 s, so a
-- frame still on its way from one batch to the next does not count as lost.
function S.check_counters(p)
  local report
  local ok = luaswitch.wait_until(function()
    local _, bad = p.switch:audit()
    report = {}
    for _, b in ipairs(bad) do
      if b.port == p then
        report[#report + 1] = ("%s: %d in, %d accounted for"):format(b.side, b.received or b.queued, b.accounted)
      end
    end
    return #report == 0
  end, 2)
  assert(ok, ("port %s: counters do not add up: %s"):format(p.name, table.concat(report, "; ")))
end

--- The end of a test on switch sw with ports and endpoints (tables by name, as S.hosts
-- returns them; either may be nil): every open port's counters must add up
-- (S.check_counters), then the endpoints and the switch are closed.
function S.teardown(sw, ports, eps)
  if sw and not sw.closed then
    for _, p in pairs(ports or {}) do if not p.closed then S.check_counters(p) end end
  end
  for _, ep in pairs(eps or {}) do ep:close() end
  if sw then sw:close() end
end

--- Assert that every port of switch sw accounts for its frames (sw:audit()).
function S.audit(sw)
  local report
  local ok = luaswitch.wait_until(function()
    local good, bad = sw:audit()
    report = {}
    for _, b in ipairs(bad) do
      report[#report + 1] = ("%s %s: %d in, %d accounted for"):format(b.port and b.port.name or "?", b.side,
        b.received or b.queued, b.accounted)
    end
    return good
  end, 2)
  assert(ok, ("switch %s: counters do not add up: %s"):format(sw.name, table.concat(report, "; ")))
end

--- Running as root (needed for namespaces, TAP and AF_PACKET)?
function S.is_root()
  local p = io.popen("id -u")
  local uid = p:read("l")
  p:close()
  return uid == "0"
end

--- A short name unique to this process, for namespaces and interfaces (<= 15 bytes).
function S.uniq(tag)
  return ("ls%d%s"):format(S.pid() % 100000, tag)
end

--- Is a command available?
function S.have(cmd)
  return os.execute("command -v " .. cmd .. " >/dev/null 2>&1") == true
end

--- Start `iperf3 -s` in netns `srv`, run a TCP client from netns `cli` to `ip` for `secs`
-- seconds; returns the receiver's Gbit/s (nil, output on failure).
function S.iperf(cli, srv, ip, secs)
  local server = srv:spawn("iperf3 -s -1")
  S.eventually(function()
    local _, rc = srv:run("ss -ltn | grep -q ':5201 '")
    return rc == 0
  end, 5, "iperf3 server")
  local out, rc = cli:run(("iperf3 -c %s -t %d -f g"):format(ip, secs or 2))
  server:wait(2)
  server:cleanup()
  if rc ~= 0 then return nil, out end
  local gbps = out:match("([%d.]+) Gbits/sec%s+receiver")
  return tonumber(gbps), out
end

return S
