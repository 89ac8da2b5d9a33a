-- The luaswitch executable: options, running scripts and -e chunks, serving until a
-- signal with events dispatched, clean teardown (socket files removed), and the
-- examples, each run as documented.

local luaswitch = require "luaswitch"
local S = require "support"

local BIN = os.getenv("LUASWITCH_BIN") or "build/luaswitch"
local SRC = os.getenv("LUASWITCH_SOURCE") or "."

-- run a shell command; returns stdout, exit code (stderr goes to stdout with 2>&1 in cmd)
local function run(cmd)
  local p = io.popen(cmd .. "; echo \"::rc=$?\"")
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("::rc=(%d+)%s*$"))
  return out:gsub("::rc=%d+%s*$", ""), rc
end

local function exists(path) return os.execute("test -e '" .. path .. "'") == true end

local function alive(pid) return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true end

-- start the executable in the background; returns its pid
local function spawn(args, out)
  local p = io.popen(("%s %s >%s 2>&1 & echo $!"):format(BIN, args, out))
  local pid = tonumber(p:read("l"))
  p:close()
  return pid
end

describe("the luaswitch executable", function()
  local dir, pids

  before_each(function()
    dir = S.tmpdir()
    pids = {}
  end)

  after_each(function()
    for _, pid in ipairs(pids) do os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    S.cleanup()
  end)

  it("prints its version and usage", function()
    local out, rc = run(BIN .. " --version")
    assert.equal(0, rc)
    assert.matches("^luaswitch " .. luaswitch.version:gsub("%.", "%%.") .. " %(Lua 5%.4", out)
    out, rc = run(BIN .. " --help")
    assert.equal(0, rc)
    assert.matches("usage: luaswitch %[options%] %[script%.lua %[args%.%.%.%]%]", out)
    assert.matches("%-e CODE", out)
    assert.matches("%-i +interactive", out)
    assert.matches("%-%-control PATH", out)
    assert.matches("luaswitch attach PATH", out)
    assert.matches("luaswitch ctl PATH 'lua chunk'", out)
    out, rc = run(BIN .. " --bogus 2>&1")
    assert.equal(2, rc)
    assert.matches("unknown option '%-%-bogus'", out)
  end)

  it("runs -e chunks and scripts with their arguments", function()
    local out, rc = run(BIN .. [[ -e 'print(require("luaswitch").version)']])
    assert.equal(0, rc)
    assert.equal(luaswitch.version .. "\n", out)
    local f = io.open(dir .. "/args.lua", "w")
    f:write("print(select('#', ...), table.concat({ ... }, ','), arg[0], arg[2])\n")
    f:close()
    out, rc = run(BIN .. " -e 'x=1' " .. dir .. "/args.lua one two")
    assert.equal(0, rc)
    assert.equal(("2\tone,two\t%s/args.lua\ttwo\n"):format(dir), out)
  end)

  it("reports a script error with its location and exits 1", function()
    local f = io.open(dir .. "/bad.lua", "w")
    f:write("local luaswitch = require 'luaswitch'\nluaswitch.switch { aging = -1 }\n")
    f:close()
    local out, rc = run(BIN .. " " .. dir .. "/bad.lua 2>&1")
    assert.equal(1, rc)
    assert.matches("bad%.lua:2: luaswitch%.switch: bad option 'aging'", out)
    assert.matches("stack traceback", out)
  end)

  it("serves a script's switches, dispatching events, until SIGTERM; then cleans up", function()
    local script = dir .. "/serve.lua"
    local f = io.open(script, "w")
    f:write(([[
      local luaswitch = require "luaswitch"
      local sw = luaswitch.switch "served"
      sw:port { kind = "unix", name = "vm", path = %q }
      sw:port { kind = "socketpair", name = "other" }
      sw:on("learn", function(ev) print("learned " .. ev.mac); io.stdout:flush() end)
    ]]):format(dir .. "/sw.sock"))
    f:close()
    local pid = spawn(script, dir .. "/out.txt")
    pids[#pids + 1] = pid
    S.eventually(function() return exists(dir .. "/sw.sock") end, 5, "the socket file")
    local vm = luaswitch.endpoint { path = dir .. "/vm.sock", peer = dir .. "/sw.sock" }
    vm:send(S.frame(7, S.BCAST))
    S.eventually(function()
      return (S.read_file(dir .. "/out.txt") or ""):match("learned 02:00:00:00:00:07")
    end, 5, "the learn event handled by the served script")
    vm:close()
    assert.is_true(alive(pid))
    os.execute("kill -TERM " .. pid)
    S.eventually(function() return not alive(pid) end, 5, "exit after SIGTERM")
    assert.is_false(exists(dir .. "/sw.sock"))
  end)

  it("interrupts a busy script on SIGINT and still removes what it created", function()
    if S.SANITIZER == "thread" then
      -- ThreadSanitizer defers signal handlers until the thread calls into libc, which a
      -- pure Lua loop never does: this behaviour cannot be observed under it.
      return pending("not observable under ThreadSanitizer")
    end
    local script = dir .. "/busy.lua"
    local f = io.open(script, "w")
    f:write(([[
      local luaswitch = require "luaswitch"
      local sw = luaswitch.switch "busy"
      sw:port { kind = "unix", name = "vm", path = %q }
      io.stdout:write("ready\n"); io.stdout:flush()
      while true do end
    ]]):format(dir .. "/busy.sock"))
    f:close()
    local pid = spawn(script, dir .. "/out.txt")
    pids[#pids + 1] = pid
    S.eventually(function() return (S.read_file(dir .. "/out.txt") or ""):match("ready") end, 5, "ready")
    os.execute("kill -INT " .. pid)
    S.eventually(function() return not alive(pid) end, 5, "exit after SIGINT")
    assert.matches("interrupted!", S.read_file(dir .. "/out.txt"))
    assert.is_false(exists(dir .. "/busy.sock"))
  end)

  it("exits by itself when the script leaves no switch open", function()
    local out, rc = run(BIN .. [[ -e 'local l = require "luaswitch"; local s = l.switch "x"; s:close()']])
    assert.equal(0, rc)
    assert.equal("", out)
  end)
end)

describe("examples", function()
  it("demo.lua runs as documented: learns three hosts, unicasts 100000 frames to bob only", function()
    local out, rc = run(BIN .. " " .. SRC .. "/examples/demo.lua 2>&1")
    assert.equal(0, rc, out)
    assert.matches("learn  02:00:00:00:00:01  on port alice", out)
    assert.matches("learn  02:00:00:00:00:02  on port bob", out)
    assert.matches("learn  02:00:00:00:00:03  on port carol", out)
    assert.matches("bob received 100000 frames in order %(0 lost, 0 reordered%)", out)
    assert.matches("carol received 0 of them", out)
    assert.matches("switch: 100000 unicast, 3 flooded, 3 MACs learned", out)
  end)

  it("two_hosts.lua runs as documented: pings and TCP between two namespaces on TAP ports", function()
    if not S.is_root() then return pending("needs root (network namespaces, TAP)") end
    local out, rc = run(BIN .. " " .. SRC .. "/examples/two_hosts.lua 2>&1")
    assert.equal(0, rc, out)
    assert.matches("3 packets transmitted, 3 received, 0%% packet loss", out)
    assert.matches("[%d.]+ Gbits/sec received", out)
    local _, learned = out:gsub("learn %x%x:[%x:]+ on h%d", "")
    assert.equal(2, learned)
    assert.matches("port h1: %d+ frames in, %d+ out, offloads true", out)
    local ns = io.popen("ip netns list")
    assert.is_nil(ns:read("a"):match("^ex%d+h%d"))
    ns:close()
  end)

  it("vlan_lab.lua runs as documented: VLAN isolation, a filter, impairments, explain", function()
    if not S.is_root() then return pending("needs root (network namespaces, TAP)") end
    local out, rc = run(BIN .. " " .. SRC .. "/examples/vlan_lab.lua 2>&1")
    assert.equal(0, rc, out)
    assert.matches("h1 %-> 10.0.0.2: 3 of 3 received", out)
    assert.matches("h1 %-> 10.0.0.3: 0 of 3 received", out)
    assert.matches("h3 %-> 10.0.0.4: 3 of 3 received", out)
    assert.matches("h1 %-> 10.0.0.2: 0 of 5 received", out)
    assert.matches("rule matched 5 frames", out)
    assert.matches("rule removed: h1 %-> 10.0.0.2: 3 of 3 received", out)
    local rtt = tonumber(out:match("40 ms, 20%% loss: h3 %-> 10.0.0.4: %d+ of 20 received, avg RTT ([%d.]+) ms"))
    assert.is_true(rtt >= 40 and rtt < 45, out)
    local mbps = tonumber(out:match("5 Mbit/s limit: TCP h3 %-> h4 ([%d.]+) Mbit/s"))
    assert.is_true(mbps >= 4.5 and mbps <= 5.5, out)
    assert.matches("reset: h3 %-> 10.0.0.4: 10 of 10 received", out)
    assert.matches("verdict forward, VLAN 10 %(the access VLAN of the port%), lookup miss, flood", out)
    assert.matches("h3  not a member of the VLAN", out)
    local ns = io.popen("ip netns list")
    assert.is_nil(ns:read("a"):match("vl%d+h%d"))
    ns:close()
  end)

  it("policy_harness.lua runs as documented: ARP inspection and port security checked with expect", function()
    local dir = S.tmpdir()
    local out, rc = run(("%s %s/examples/policy_harness.lua %s 2>&1"):format(BIN, SRC, dir))
    S.cleanup()
    assert.equal(0, rc, out)
    for i = 1, 6 do assert.matches("\nok " .. i .. " %- ", "\n" .. out) end
    assert.matches("ARP inspection: 2 passed, 1 dropped; port security: 1 refused", out, 1, true)
    assert.matches("policy_harness: 6 checks passed", out, 1, true)
  end)

  it("lab.lua runs as documented: a prompt on a lab whose objects are globals", function()
    local out, rc = run(("printf '%%s\\n' 'sw:fdb()' 'received()' | %s -i %s/examples/lab.lua 2>&1"):format(
      BIN, SRC))
    assert.equal(0, rc, out)
    assert.matches("learned 02:00:00:00:00:01 on alice", out)
    assert.matches("learned 02:00:00:00:00:03 on carol", out)
    assert.matches("\nmac +vlan +port +age +hits +static +sticky\n", out)
    assert.matches("\n02:00:00:00:00:02 +0  bob ", out)
    assert.matches("\nbob received %d+ frames\n", out)
  end)

  it("demo.lua also runs under stock lua5.4 with the module on its paths", function()
    local out, rc = run(("LUA_PATH=%q LUA_CPATH=%q %s %s/examples/demo.lua 2>&1"):format(
      package.path, package.cpath, S.LUA, SRC))
    assert.equal(0, rc, out)
    assert.matches("bob received 100000 frames in order", out)
  end)
end)
