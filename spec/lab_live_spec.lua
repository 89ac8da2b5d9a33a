-- Labs that change while they run (issue 13 item 4): luaswitch.after (timers on the
-- runtime clock, replayed exactly by the manual clock), lab:schedule (a fault timeline of
-- link cuts, plugs and impairments, checked against frames through the lab under the
-- manual clock without root), and nodes and links added to and removed from a running
-- lab (root: namespaces), with pingall, the spanning tree and the cleanup seeing each change.

local luaswitch = require "luaswitch"
local Lab = require "luaswitch.lab"
local F = require "luaswitch.frame"
local T = require "luaswitch.test"
local netns = require "luaswitch.netns"
local S = require "support"

local ROOT = S.is_root()

local function exists(path) -- a socket file too (io.open cannot open one)
  return os.execute(("test -e %s"):format(netns.quote(path))) == true
end

-- the port of that name on a lab switch, or nil
local function port_named(s, name)
  for _, p in ipairs(s.sw:ports()) do
    if p.name == name then return p end
  end
end

local function close_to(want, got, what)
  assert(math.abs(want - got) < 1e-6, ("%s: %g expected, got %g"):format(what or "time", want, got))
end

describe("luaswitch.after", function()
  after_each(function()
    luaswitch.clock("real")
    luaswitch.stop()
    S.cleanup()
  end)

  it("fires each timer at its own time under the manual clock, in order; cancel; errors reported", function()
    luaswitch.switch { name = "t" }
    luaswitch.clock("manual")
    local t0 = luaswitch.now()
    local log = {}
    for _, at in ipairs { 2.5, 1.0, 3.0, 1.0 } do
      luaswitch.after(at, function(ev)
        assert.equal("timer", ev.type)
        log[#log + 1] = { at, ev.time - t0 }
      end)
    end
    local never = luaswitch.after(1.5, function() log[#log + 1] = "cancelled one fired" end)
    assert.is_true(never:cancel())
    assert.is_true(never.cancelled)
    local reports = {}
    local report = luaswitch.report
    luaswitch.report = function(msg) reports[#reports + 1] = msg end
    local errs = luaswitch.stats.handler_errors
    luaswitch.after(0.5, function() error("boom") end)
    luaswitch.advance(2.7)
    luaswitch.report = report
    assert.equal(3, #log)
    for i, want in ipairs { 1.0, 1.0, 2.5 } do
      assert.equal(want, log[i][1])
      close_to(want, log[i][2], "timer " .. i)
    end
    assert.equal(1, #reports)
    assert.matches("error in 'timer' handler: .*boom", reports[1])
    assert.equal(errs + 1, luaswitch.stats.handler_errors)
    assert.equal(1, #luaswitch.timers())
    luaswitch.advance(1)
    assert.equal(4, #log)
    close_to(3.0, log[4][2])
    close_to(3.7, luaswitch.now() - t0, "clock")
    assert.equal(0, #luaswitch.timers())
  end)

  it("wakes dispatch for a timer on the real clock, and checks its arguments", function()
    luaswitch.switch { name = "t" }
    local t = luaswitch.monotime()
    local at
    luaswitch.after(0.1, function() at = luaswitch.monotime() - t end)
    assert.truthy(luaswitch.wait_until(function() return at end, 2))
    assert.is_true(at >= 0.099 and at < 1, tostring(at))
    S.raises("bad argument #1 to 'after' %(seconds", luaswitch.after, -1, function() end)
    S.raises("bad argument #2 to 'after' %(function expected", luaswitch.after, 1, "f")
    S.raises("bad argument #1 to 'advance'", luaswitch.advance, -1)
    -- luaswitch.stop() cancels what is pending
    local pending = luaswitch.after(10, function() end)
    luaswitch.stop()
    assert.is_true(pending.cancelled)
    assert.equal(0, #luaswitch.timers())
  end)
end)

describe("lab:schedule", function()
  local lab, h

  after_each(function()
    if h then h:close() end
    if lab then lab:stop() end
    h, lab = nil, nil
    luaswitch.clock("real")
    luaswitch.stop()
    S.cleanup()
  end)

  -- s1 - s2 - s3 in a line, a socketpair VM on each end standing in as a host
  local function line()
    lab = Lab.new { name = "timeline" }
    local s1, s2, s3 = lab:switch "s1", lab:switch "s2", lab:switch "s3"
    lab:link(s1, s2)
    lab:link(s2, s3)
    lab:vm("left", { switch = s1, kind = "socketpair" })
    lab:vm("right", { switch = s3, kind = "socketpair" })
    lab:start()
    -- frames that do not arrive are expected here: their captures go where S.cleanup removes them
    h = T.harness { switch = lab.s1.sw, quiet = 0.05, capture_dir = S.tmpdir() }
    local a = h:attach("left", lab.left.port, assert(lab.left:endpoint()))
    local b = h:attach("right", lab.right.port, assert(lab.right:endpoint()))
    return a, b
  end

  local n = 0
  local function through(a, b)
    n = n + 1
    local f = F.udp { src_mac = F.mac(1), dst_mac = "ff:ff:ff:ff:ff:ff", src = "10.0.0.1", dst = "10.0.0.2",
      sport = 1000 + n, dport = 7, payload = "frame " .. n }
    a:send(f)
    local ok = pcall(b.expect, b, { udp = { sport = 1000 + n } })
    return ok
  end

  it("replays link cuts, plugs and impairments at their times under the manual clock", function()
    local a, b = line()
    h:manual_clock()
    local sc = lab:schedule {
      { at = 1.0, link = "s1-s2", down = true },
      { at = 2.5, link = lab.links[1], up = true },
      { at = 3, link = "s2-s3", impair = { loss = 1 } },
      { at = 4, link = "s2-s3", impair = false },
      { at = 5, link = "s2-s3", impair = { loss = 1 }, dir = "s3" }, -- only s3 -> s2
    }
    assert.equal(5, sc:pending())
    assert.is_true(through(a, b))
    h:advance(0.9)
    assert.equal(0, #sc.applied)
    assert.is_true(through(a, b))
    h:advance(0.2) -- 1.1: cut
    assert.equal(1, #sc.applied)
    close_to(1.0, sc.applied[1].time)
    assert.equal("link s1-s2 down", sc.applied[1].what)
    assert.equal("down", lab.links[1].ports.a:state())
    assert.is_false(through(a, b))
    h:advance(1.5) -- 2.6: plugged in again
    close_to(2.5, sc.applied[2].time)
    assert.is_true(through(a, b))
    h:advance(0.5) -- 3.1: all lost on s2-s3
    close_to(3.0, sc.applied[3].time)
    assert.matches("loss 100%%", sc.applied[3].what)
    assert.is_false(through(a, b))
    h:advance(1) -- 4.1: cleared
    assert.is_true(through(a, b))
    h:advance(1) -- 5.1: lossy from s3 only: left -> right passes, right -> left does not
    assert.is_true(through(a, b))
    assert.is_false(through(b, a))
    assert.is_true(sc:done())
    for i, want in ipairs { 1.0, 2.5, 3, 4, 5 } do
      close_to(want, sc.applied[i].time, "event " .. i)
      assert.is_true(sc.applied[i].ok)
    end
  end)

  it("checks the whole list first; a failing event is reported and the rest go on; stop cancels", function()
    line()
    local before = #luaswitch.timers()
    S.raises("event 2: exactly one of down, up, impair, run expected, got down, up", lab.schedule, lab,
      { { at = 1, link = "s1-s2", down = true }, { at = 2, link = "s1-s2", down = true, up = true } })
    S.raises("event 1: no link named 'nope'", lab.schedule, lab, { { at = 1, link = "nope", down = true } })
    S.raises("event 1: bad option 'at'", lab.schedule, lab, { { at = -1, link = "s1-s2", down = true } })
    S.raises("event 1: unknown key 'when'", lab.schedule, lab, { { when = 1, link = "s1-s2", down = true } })
    S.raises("event 1: bad option 'dir'", lab.schedule, lab, { { at = 1, link = "s1-s2", impair = { loss = 0.1 }, dir = "s3" } })
    S.raises("unknown option 'lost'", lab.schedule, lab, { { at = 1, link = "s1-s2", impair = { lost = 0.1 } } })
    S.raises("bad option 'run' %(a function", lab.schedule, lab, { { at = 1, run = "x" } })
    S.raises("a list of events expected", lab.schedule, lab, 5)
    assert.equal(before, #luaswitch.timers()) -- nothing was scheduled
    local reports = {}
    local report = luaswitch.report
    luaswitch.report = function(msg) reports[#reports + 1] = msg end
    local ran = false
    local sc = lab:schedule {
      { at = 0.05, run = function() error("broken hook") end },
      { at = 0.1, run = function(l) ran = l == lab end },
    }
    local ok = sc:wait(5)
    luaswitch.report = report
    assert.is_true(ok)
    assert.is_true(ran)
    assert.is_false(sc.applied[1].ok)
    assert.matches("broken hook", sc.applied[1].err)
    assert.matches("schedule: run: .*broken hook", reports[1])
    local later = lab:schedule { { at = 60, link = "s1-s2", down = true } }
    lab:stop()
    assert.equal(0, later:pending())
    assert.equal(0, #later.applied)
    assert.equal(before, #luaswitch.timers())
    S.raises("is not running", lab.schedule, lab, {})
  end)
end)

-- TAP devices in the root namespace (a port is made there, then moved into its host's)
local function root_taps()
  local n = 0
  for _ in netns.sh("ip -o link show"):gmatch("%d+: lstap") do n = n + 1 end
  return n
end

describe("a running lab that changes #root", function()
  local lab, prefix, taps

  before_each(function()
    taps = ROOT and root_taps()
  end)

  after_each(function()
    if lab then lab:stop() end
    lab = nil
    luaswitch.stop()
    S.cleanup()
    if ROOT and prefix then
      for _, n in ipairs(netns.list()) do
        assert.is_nil(n:find(prefix, 1, true), "namespace left: " .. n)
      end
      local out = netns.sh("ps -eo args=")
      assert.is_nil(out:find(prefix, 1, true), "process left")
      assert.equal(taps, root_taps(), "TAP devices left in the root namespace")
    end
  end)

  local function gone(name) return not netns.exists(prefix .. name) end

  it("adds and removes hosts, switches, links, routers and VMs at once; pingall and the tree follow", function()
    if not ROOT then return pending("needs root (network namespaces, TAP)") end
    prefix = S.uniq("Lv") .. "-"
    lab = Lab.new { name = "live", prefix = prefix, stp = true }
    local s1, s2 = lab:switch "s1", lab:switch "s2"
    lab:link(s1, s2)
    lab:host("h1", { switch = s1 })
    lab:host("h2", { switch = s2 })
    lab:start()
    assert.equal(0, (lab:pingall { quiet = true }))
    -- a host on a running lab: there at once
    local h3 = lab:host("h3", { switch = s2 })
    assert.truthy(h3.ns and h3.port and h3.mac)
    local drop, res = lab:pingall { quiet = true }
    assert.equal(0, drop)
    assert.equal(6, res.sent)
    -- a switch, a link to it, a host behind it; and a second link closing a loop the tree breaks
    local s3 = lab:switch "s3"
    lab:link(s2, s3)
    local h4 = lab:host("h4", { switch = s3, ip = "10.0.0.44/8" })
    local loop = lab:link(s1, s3)
    assert.is_true(lab:converged(10))
    drop, res = lab:pingall { quiet = true }
    assert.equal(0, drop)
    assert.equal(12, res.sent)
    -- a router on a running lab, on a new subnet
    local s4 = lab:switch "s4"
    lab:router("r1", { { s3, "10.0.0.254/8" }, { s4, "10.9.0.254/24" } })
    local h5 = lab:host("h5", { switch = s4, ip = "10.9.0.5/24", gateway = "10.9.0.254" })
    assert.is_true((h5:ping("10.9.0.254")))
    -- removal: a host goes with its namespace and processes; its name is free again
    local sleeper = h3:spawn("sleep 600")
    assert.is_true(sleeper:alive())
    h3:remove()
    assert.is_true(gone("h3"))
    assert.is_false(sleeper:alive())
    assert.is_nil(lab.h3)
    assert.is_nil(port_named(s2, "h3"))
    drop, res = lab:pingall { quiet = true, pairs = { { "h1", "h2" }, { "h2", "h4" } } }
    assert.equal(0, drop)
    assert.is_nil(res.h3)
    local again = lab:host("h3", { switch = s1 })
    assert.is_true((again:ping(lab.h2)))
    -- a link of the loop cut for good: the tree reconverges, everyone still reachable
    loop:remove()
    assert.is_nil(port_named(s1, "to-s3"))
    assert.is_true(lab:converged(10))
    assert.is_true((lab.h1:ping(h4)))
    -- a switch that a router uses cannot go first: nothing changes
    S.raises("router 'r1' has an interface on switch 's4'", s4.remove, s4)
    assert.truthy(lab.s4 and lab.h5.ns)
    lab.r1:remove()
    assert.is_true(gone("r1"))
    -- the switch, and everything plugged into it
    s3:remove()
    assert.is_nil(lab.s3)
    assert.is_nil(lab.h4)
    assert.is_true(gone("h4"))
    for _, l in ipairs(lab.links) do assert.is_true(l.a ~= s3 and l.b ~= s3) end
    assert.is_nil(port_named(s2, "to-s3"))
    -- a VXLAN link added (a second path s1-s2 for the tree to block) and removed with its underlay
    local vx = lab:link(s1, s2, { kind = "vxlan" })
    assert.is_true(netns.exists(vx.underlay[1]) and netns.exists(vx.underlay[2]))
    assert.is_true(lab:converged(10))
    assert.is_true((lab.h1:ping(lab.h2)))
    vx:remove()
    assert.is_false(netns.exists(vx.underlay[1]) or netns.exists(vx.underlay[2]))
        -- a VM added and removed: port and socket files gone
    local vm = lab:vm("vm1", { switch = s1, kind = "stream" })
    assert.truthy(vm.port and exists(vm.path))
    local path = vm.path
    vm:remove()
    assert.is_false(exists(path))
    assert.is_nil(port_named(s1, "vm1"))
    -- a host that cannot be made leaves nothing, not even its declaration
    S.raises("host: ", lab.host, lab, "bad", { switch = s1, port = { mtu = 70000 } })
    assert.is_nil(lab.bad)
    assert.is_true(gone("bad"))
    -- h5 lost its router: the lab's verdict says so, then its switch goes and takes it along
    drop, res = lab:pingall { quiet = true }
    assert.equal(50, drop)
    assert.is_false(res.h1.h5)
    assert.is_true(res.h1.h3)
    s4:remove()
    assert.is_true(gone("h5"))
    drop, res = lab:pingall { quiet = true }
    assert.equal(0, drop)
    assert.equal(6, res.sent)
    lab:stop()
    assert.is_true(gone("h1") and gone("h2") and gone("h3"))
  end)

  it("static_arp follows the hosts that come and go", function()
    if not ROOT then return pending("needs root (network namespaces, TAP)") end
    prefix = S.uniq("La") .. "-"
    lab = Lab.new { name = "livearp", prefix = prefix, static_arp = true }
    local s1 = lab:switch "s1"
    local h1 = lab:host("h1", { switch = s1, ip = "10.5.0.1/24" })
    lab:start()
    local h2 = lab:host("h2", { switch = s1, ip = "10.5.0.2/24" })
    assert.matches("10%.5%.0%.2 lladdr " .. h2.mac:gsub("%p", "%%%0") .. " PERMANENT", h1:check("ip neigh show dev eth0"))
    assert.matches("10%.5%.0%.1 lladdr " .. h1.mac:gsub("%p", "%%%0") .. " PERMANENT", h2:check("ip neigh show dev eth0"))
    assert.equal(0, (lab:pingall { quiet = true }))
    h2:remove()
    assert.is_nil(h1:check("ip neigh show"):find("10.5.0.2 ", 1, true))
  end)
end)
