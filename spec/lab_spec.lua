-- luaswitch.lab: declaring labs (checked without root), and running them (root): a
-- Mininet-style lab of three switches and six hosts in a few lines, hosts' commands,
-- routers, a ring of switches under the spanning tree, Graphviz, teardown after errors
-- and after SIGINT (a child luaswitch process interrupted during lab:start() and during
-- traffic), and every examples/lab_*.lua. After each test nothing of its labs may be left:
-- no namespace, no interface, no process, no socket directory.

local luaswitch = require "luaswitch"
local Lab = require "luaswitch.lab"
local netns = require "luaswitch.netns"
local S = require "support"

local ROOT = S.is_root()
local SRC = os.getenv("LUASWITCH_SOURCE") or "."
local BIN = os.getenv("LUASWITCH_BIN") or "build/luaswitch"
local q, sh = netns.quote, netns.sh

local function needs_root()
  if not ROOT then pending("needs root (network namespaces, TAP)") return true end
end

-- Interface names in the root namespace.
local function root_links()
  local set = {}
  for name in sh("ip -o link show"):gmatch("%d+: ([^:@%s]+)") do set[name] = true end
  return set
end

-- What is left of labs whose names start with prefix: namespaces, processes (whose
-- command line names one of them), socket directories; and TAP devices or lab
-- interfaces in the root namespace that were not there before (`before`).
local function leftovers(prefix, before)
  local left = {}
  for _, n in ipairs(netns.list()) do
    if n:sub(1, #prefix) == prefix then left[#left + 1] = "netns " .. n end
  end
  local p = io.popen("ps -eo pid=,args=")
  for line in p:lines() do
    if line:find(prefix, 1, true) then left[#left + 1] = "process " .. line end
  end
  p:close()
  local dirs = io.popen("ls -d /tmp/luaswitch-" .. q(prefix) .. "* 2>/dev/null")
  for d in dirs:lines() do left[#left + 1] = "directory " .. d end
  dirs:close()
  if before then
    for name in pairs(root_links()) do
      if not before[name] and (name:find("^lstap") or name:find(prefix, 1, true)) then
        left[#left + 1] = "interface " .. name
      end
    end
  end
  return left
end

-- Remove what a failed test may have left of labs with that prefix: processes in their
-- namespaces, the namespaces, socket directories.
local function purge(prefix)
  for _, n in ipairs(netns.list()) do
    if n:sub(1, #prefix) == prefix then
      sh(("ip netns pids %s | xargs -r kill -9; ip netns del %s"):format(q(n), q(n)))
    end
  end
  sh("rm -rf /tmp/luaswitch-" .. q(prefix) .. "*")
end

-- Assert that nothing of the labs with that prefix is left (a TAP device of another
-- test may exist for a moment while it is moved into its namespace: retried for 2 s);
-- what is left is removed before the test fails.
local function assert_clean(prefix, before)
  local left
  luaswitch.wait_until(function()
    left = leftovers(prefix, before)
    return #left == 0
  end, 2)
  if #left > 0 then purge(prefix) end
  assert(#left == 0, "left behind: " .. table.concat(left, "; "))
end

-- Stop a child that is still running (SIGINT, then SIGKILL after 10 s) and remove what
-- it may have left of labs with that prefix.
local function reap(c, prefix)
  if c.alive() then
    c.kill("INT")
    if not luaswitch.wait_until(function() return not c.alive() end, 10) then c.kill("KILL") end
  end
  if prefix then
    luaswitch.wait_until(function() return not c.alive() end, 5)
    local left = leftovers(prefix)
    if #left > 0 then purge(prefix) end
  end
end

local function pid_alive(pid)
  local stat = S.read_file("/proc/" .. pid .. "/stat")
  local state = stat and stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

-- A child `luaswitch SCRIPT ARGS` in the background (its pid, output and, once it has
-- exited, its exit status in files of dir).
local function child(script, args, dir)
  local out, pidf, rcf = dir .. "/out", dir .. "/pid", dir .. "/rc"
  os.execute(("( %s %s %s >%s 2>&1 </dev/null & echo $! >%s; wait $!; echo $? >%s ) >/dev/null 2>&1 &")
    :format(q(BIN), q(script), args or "", q(out), q(pidf), q(rcf)))
  local pid
  assert(luaswitch.wait_until(function()
    pid = tonumber(S.read_file(pidf) or "")
    return pid
  end, 10), "the child did not start")
  local c = { pid = pid }
  function c.output() return S.read_file(out) or "" end
  function c.rc() return tonumber(S.read_file(rcf) or "") end
  function c.alive() return c.rc() == nil end
  function c.wait_output(pattern, timeout)
    return luaswitch.wait_until(function()
      assert(c.output():find(pattern) or c.alive(), "the child exited early:\n" .. c.output())
      return c.output():find(pattern) ~= nil
    end, timeout or 20)
  end
  function c.kill(sig) os.execute(("kill -%s %d 2>/dev/null"):format(sig, pid)) end
  return c
end

describe("lab declarations", function()
  it("checks what is declared, naming the argument and the problem", function()
    local lab = Lab.new { name = "decl" }
    local s1 = lab:switch "s1"
    lab:switch "s2"
    S.raises("name 's1' is already used", lab.switch, lab, "s1")
    S.raises("every host needs the switch", lab.host, lab, "h1", { ip = "10.0.0.1/24" })
    S.raises("no switch named 'nope'", lab.host, lab, "h1", { switch = "nope" })
    S.raises("bad option 'ip' %(an address with a prefix length", lab.host, lab, "h1", { switch = s1, ip = "10.0.0.1" })
    S.raises("'DESTINATION via GATEWAY' expected", lab.host, lab, "h1", { switch = s1, routes = { "10.1.0.0/16" } })
    S.raises("unknown option 'colour'", lab.host, lab, "h1", { switch = s1, colour = "red" })
    S.raises("a link joins two different switches", lab.link, lab, s1, "s1")
    S.raises("bad option 'stp' %(true, false or a table", Lab.new, { stp = "yes" })
    S.raises("bad option 'static_arp' %(a boolean expected", Lab.new, { static_arp = "yes" })
    S.raises("is not running", lab.pingall, lab)
    S.raises("'start' is the name of a lab method", lab.switch, lab, "start")
    assert.matches('luaswitch.lab "decl" %(2 switches; declared%)', tostring(lab))
  end)

  it("draws a declared lab in Graphviz that dot accepts", function()
    if not S.have("dot") then return pending("graphviz is not installed") end
    local lab = Lab.new { name = "drawn", stp = true }
    local s1, s2, s3 = lab:switch "s1", lab:switch "s2", lab:switch("s3", { stp = false })
    lab:link(s1, s2, { delay = 0.01, trunk = { 10, "20-29" } })
    lab:link(s2, s3, { kind = "vxlan", vni = 42 })
    lab:host("h1", { switch = s1, ip = { "10.0.0.1/24", "fd00::1/64" }, vlan = 10, gateway = "10.0.0.254" })
    lab:router("r1", { { s2, "10.0.0.254/24" }, { s3, "10.0.1.254/24" } })
    lab:vm("vm1", { switch = s3, kind = "stream" })
    local dir = S.tmpdir()
    local text = lab:dot()
    assert.matches('^graph "drawn" {', text)
    assert.matches('"s1" %-%- "s2" %[label="s1%-s2\\npatch\\ntrunk 10,20%-29\\ndelay 10 ms each way"', text)
    assert.matches('style=dashed', text)
    local path, svg = lab:dot(dir .. "/drawn.dot")
    assert.equal(dir .. "/drawn.dot", path)
    assert.equal(dir .. "/drawn.svg", svg)
    local out, rc = sh(("dot -Tsvg %s -o /dev/null"):format(q(path)))
    assert.equal(0, rc, out)
    assert.matches("<svg", S.read_file(svg))
    S.cleanup()
  end)
end)

describe("labs #root", function()
  local labs, before

  -- a lab with a prefix of this spec's own (ls<pid>L<n>-), stopped after the test
  local function new_lab(opts)
    opts = opts or {}
    opts.prefix = opts.prefix or ("%sL%d-"):format(S.uniq(""), #labs + 1)
    local lab = Lab.new(opts)
    labs[#labs + 1] = lab
    return lab
  end

  before_each(function()
    labs = {}
    before = ROOT and root_links() or {}
  end)

  after_each(function()
    for _, lab in ipairs(labs) do
      for _, s in ipairs(lab.switches) do
        if s.sw and not s.sw.closed then S.audit(s.sw) end
      end
      lab:stop()
    end
    S.cleanup()
    luaswitch.stop()
    if ROOT then assert_clean(S.uniq("L"), before) end
  end)

  it("three switches, six hosts in a few lines: pingall 100% in under 3 s; nothing left after stop", function()
    if needs_root() then return end
    -- the lab, as a reader would write it (15 lines at most)
    local lab = new_lab { name = "six" }
    local s1, s2, s3 = lab:switch "s1", lab:switch "s2", lab:switch "s3"
    lab:link(s1, s2)
    lab:link(s2, s3)
    for i, sw in ipairs { s1, s1, s2, s2, s3, s3 } do lab:host("h" .. i, { switch = sw }) end
    lab:start()
    local t0 = luaswitch.monotime()
    local drop, res = lab:pingall { quiet = true }
    local took = luaswitch.monotime() - t0
    -- end of the lab
    print(("    pingall of 6 hosts over 3 switches: %d/%d in %.2f s"):format(res.received, res.sent, took))
    assert.equal(0, drop)
    assert.equal(30, res.received)
    assert.is_true(took < 3, ("pingall took %.2f s"):format(took))
    assert.is_true(res.h1.h6 and res.h6.h1)
    for _, name in ipairs { "s1", "s2", "s3" } do S.audit(lab[name].sw) end
    local prefix = lab.prefix
    assert.is_true(netns.exists(prefix .. "h6"))
    assert.is_true(#leftovers(prefix, before) >= 6) -- what the checks below must not find
    lab:stop()
    assert.equal("stopped", lab.state)
    assert_clean(prefix, before)
    -- and it starts again
    lab:start()
    assert.equal(0, (lab:pingall { quiet = true }))
    lab:stop()
    assert_clean(prefix, before)
  end)

  -- The kernel's neighbour table limits (one table for every namespace), as found.
  local function neigh_limits()
    local t = {}
    for _, f in ipairs { "ipv4/neigh/default/gc_thresh2", "ipv4/neigh/default/gc_thresh3",
      "ipv6/neigh/default/gc_thresh3" } do
      local h = assert(io.open("/proc/sys/net/" .. f))
      t[f] = h:read("l")
      h:close()
    end
    return t
  end

  it("pingall's verdict is the network's: a 64-host tree, whole and with an edge link cut, against pings one at a time", function()
    if needs_root() then return end
    local limits = neigh_limits()
    local lab = new_lab { name = "tree64" }
    local core = lab:switch "c0"
    local side, cut = {}, nil
    for k = 1, 4 do
      local e = lab:switch("e" .. k)
      local l = lab:link(core, e)
      if k == 3 then cut = l end
      for j = 1, 16 do
        local name = ("h%d"):format((k - 1) * 16 + j)
        lab:host(name, { switch = e })
        side[name] = k == 3
      end
    end
    lab:start()
    -- whole: every one of the 64 x 63 pairs answers, with no request refused by a kernel
    -- (the neighbour tables hold 4,032 entries, more than the kernel's default 1,024)
    local drop, res = lab:pingall { quiet = true }
    print(("    pingall of 64 hosts on a tree: %d/%d in %.2f s"):format(res.received, res.sent, res.elapsed))
    assert.equal(0, drop)
    assert.equal(4032, res.sent)
    assert.equal(4032, res.received)
    assert.equal(0, res.probe.send_errors)
    assert.is_true(res.h1.h64)
    assert.is_true(res.rtt.h1.h64 > 0 and res.rtt.h1.h64 < 1000)
    -- one edge switch cut off: exactly the pairs across the cut are lost, both ways
    cut:down()
    drop, res = lab:pingall { quiet = true, timeout = 0.5, attempts = 2 }
    local want = 2 * 16 * 48
    assert.equal(4032 - want, res.received)
    assert.near(100 * want / 4032, drop, 1e-9)
    for a, row in pairs(res) do
      if side[a] ~= nil then
        for b, rtt in pairs(row) do
          assert(rtt == (side[a] == side[b]), ("%s -> %s: %s"):format(a, b, tostring(rtt)))
        end
      end
    end
    -- and a sample agrees with ping run for each pair on its own
    for i = 1, 24 do
      local a, b = ("h%d"):format(i * 5 % 64 + 1), ("h%d"):format(i * 11 % 64 + 1)
      if a ~= b then
        local alone = lab[a]:ping(lab[b], { count = 1, timeout = 0.5 })
        assert.equal(alone, res[a][b], ("%s -> %s alone: %s, in pingall: %s"):format(a, b, tostring(alone),
          tostring(res[a][b])))
      end
    end
    lab:stop()
    assert.same(limits, neigh_limits()) -- the kernel's limits are back as they were
  end)

  it("pingall on chosen pairs or a sample; bad options named", function()
    if needs_root() then return end
    local lab = new_lab { name = "pairs" }
    local s1 = lab:switch "s1"
    for i = 1, 6 do lab:host("h" .. i, { switch = s1 }) end
    S.raises("is not running", lab.pingall, lab)
    lab:start()
    local drop, res = lab:pingall { quiet = true, pairs = { { "h1", "h2" }, { lab.h3, "h6" } } }
    assert.equal(0, drop)
    assert.equal(2, res.sent)
    assert.is_true(res.h1.h2)
    assert.is_true(res.h3.h6)
    assert.is_nil(res.h2.h1)
    drop, res = lab:pingall { quiet = true, pairs = 7 }
    assert.equal(0, drop)
    assert.equal(7, res.sent)
    local n = 0
    for a, row in pairs(res) do
      if a:match("^h%d$") then
        for b in pairs(row) do
          assert.not_equal(a, b)
          n = n + 1
        end
      end
    end
    assert.equal(7, n) -- seven different pairs
    S.raises("unknown option 'count'", lab.pingall, lab, { count = 1 })
    S.raises("bad option 'pairs'", lab.pingall, lab, { pairs = "some" })
    S.raises("bad option 'pairs' %(entry 1", lab.pingall, lab, { pairs = { "h1" } })
    S.raises("a host, a router or its name expected", lab.pingall, lab, { pairs = { { "h1", "nope" } } })
    S.raises("a table of options expected", lab.pingall, lab, 5)
    S.raises("timeout", lab.pingall, lab, { timeout = -1 })
  end)

  it("bench/lab_scale.lua runs a tree and checks its verdict (no Mininet here)", function()
    if needs_root() then return end
    local out, rc = sh(("%s %s 16,25 no 2>&1"):format(q(BIN), q(SRC .. "/bench/lab_scale.lua")))
    assert.equal(0, rc, out)
    -- hosts arp start pingall pairs lost truth stop ...: every pair answered, the sample agrees
    assert.matches("\n16%s+dynamic%s+[%d.]+%s+[%d.]+%s+240%s+0%.0%s+0/%d+%s", out)
    assert.matches("\n25%s+dynamic%s+[%d.]+%s+[%d.]+%s+600%s+0%.0%s+0/%d+%s", out)
  end)

  it("static_arp: every neighbour entry filled in at start, nothing ARPs; IPv6 only where it is asked for", function()
    if needs_root() then return end
    local lab = new_lab { name = "arp", static_arp = true }
    local left, right = lab:switch "left", lab:switch "right"
    lab:link(left, right)
    local h1 = lab:host("h1", { switch = left, ip = "10.1.0.1/24", gateway = "10.1.0.254" })
    local h2 = lab:host("h2", { switch = left, ip = { "10.1.0.2/24", "fd00:1::2/64" }, gateway = "10.1.0.254" })
    local h3 = lab:host("h3", { switch = right, ip = { "10.2.0.3/24" }, gateway = "10.2.0.254" })
    local h4 = lab:host("h4", { switch = left, ip = { "10.1.0.4/24", "fd00:1::4/64" }, gateway = "10.1.0.254" })
    local r1 = lab:router("r1", { { left, "10.1.0.254/24" }, { right, "10.2.0.254/24" } })
    lab:start()
    -- h1's table: its subnet's other addresses (h2, h4, r1's left leg), permanent, with their MACs
    local neigh = h1:check("ip -4 neigh show dev eth0 nud permanent")
    local want = { ["10.1.0.2"] = h2.mac, ["10.1.0.4"] = h4.mac, ["10.1.0.254"] = r1.interfaces[1].mac }
    local got = {}
    for ip, mac in neigh:gmatch("(%S+) lladdr (%S+) PERMANENT") do got[ip] = mac end
    assert.same(want, got)
    -- the router has both subnets; IPv6 entries between the hosts that have IPv6
    assert.matches("10%.2%.0%.3 dev eth1 lladdr " .. h3.mac:gsub("%p", "%%%0") .. " PERMANENT", r1:check("ip -4 neigh show"))
    assert.matches("fd00:1::4 lladdr " .. h4.mac:gsub("%p", "%%%0") .. " PERMANENT",
      h2:check("ip -6 neigh show dev eth0 nud permanent"))
    assert.equal(0, (lab:pingall { quiet = true }))
    -- no ARP request went out: no host's table holds a learned (non-permanent) entry
    for _, h in ipairs { h1, h2, h3, h4 } do
      assert.equal("", h:check("ip -4 neigh show nud reachable nud stale nud delay nud probe nud failed nud incomplete"))
    end
    -- IPv6 is on where an IPv6 address is, off elsewhere, and the namespace's default is back on
    assert.equal("1\n", h1:check("cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6"))
    assert.equal("0\n", h2:check("cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6"))
    assert.equal("0\n", h1:check("cat /proc/sys/net/ipv6/conf/default/disable_ipv6"))
    assert.is_true((h2:ping("fd00:1::4")))
    assert.is_true((h3:ping(h1)))
  end)

  it("runs commands in hosts (output, status), pings, routes through a router, measures TCP", function()
    if needs_root() then return end
    local lab = new_lab { name = "routed" }
    local left, right = lab:switch "left", lab:switch "right"
    local h1 = lab:host("h1", { switch = left, ip = "10.1.0.1/24", gateway = "10.1.0.254" })
    local h2 = lab:host("h2", { switch = right, ip = "10.2.0.1/24", gateway = "10.2.0.254" })
    local r1 = lab:router("r1", { { left, "10.1.0.254/24" }, { right, "10.2.0.254/24" } })
    lab:start()
    local out, rc = h1:run("echo hello; ip -br addr show eth0; exit 3")
    assert.equal(3, rc)
    assert.matches("^hello\n", out)
    assert.matches("10%.1%.0%.1/24", out)
    assert.equal("1\n", r1:check("cat /proc/sys/net/ipv4/ip_forward"))
    assert.has_error(function() h1:check("false") end)
    local ok, r = h1:ping(h2, { count = 3, interval = 0.05 })
    assert.is_true(ok, r.output)
    assert.equal(3, r.received)
    assert.is_true(r.rtt_avg > 0)
    assert.matches("ttl=63", h1:check("ping -c 1 -W 2 10.2.0.1")) -- one router on the way
    assert.is_true((h2:ping("10.1.0.254")))
    assert.equal(0, (lab:pingall { quiet = true }))
    local gbps, res = lab:iperf(h1, h2, { seconds = 1, quiet = true })
    assert.truthy(gbps, res)
    print(("    TCP h1 -> r1 -> h2: %.2f Gbit/s"):format(gbps))
    assert.is_true(gbps > 0.05)
  end)

  it("removes what it created when start fails halfway", function()
    if needs_root() then return end
    local lab = new_lab { name = "broken" }
    local s1 = lab:switch "s1"
    lab:host("h1", { switch = s1, ip = "10.0.0.1/24" })
    lab:host("h2", { switch = s1, ip = "10.0.0.2/24", routes = { "10.9.0.0/16 via 10.5.0.1" } }) -- unreachable
    local err = S.raises("start: lab 'broken': routes: ENETUNREACH.*route 10%.9%.0%.0/16 via 10%.5%.0%.1 in .*h2", lab.start, lab)
    assert.equal("stopped", lab.state)
    assert_clean(lab.prefix, before)
    assert.equal(0, #luaswitch.switches())
  end)

  it("breaks a ring of three switches with STP: no storm, pings, and reconverges when a link is cut", function()
    if needs_root() then return end
    local lab = new_lab { name = "ring", stp = true }
    local s1, s2, s3 = lab:switch "s1", lab:switch "s2", lab:switch "s3"
    local links = { lab:link(s1, s2), lab:link(s2, s3), lab:link(s3, s1) }
    for i, sw in ipairs { s1, s2, s3 } do lab:host("h" .. i, { switch = sw }) end
    local t0 = luaswitch.monotime()
    lab:start() -- returns once the tree has settled
    print(("    a ring of 3 switches with STP started and settled in %.2f s"):format(luaswitch.monotime() - t0))
    assert.is_true(lab:converged())
    local blocked = 0
    for _, l in ipairs(links) do
      for _, state in pairs(l:stp()) do
        if state == "blocking" then blocked = blocked + 1 end
      end
    end
    assert.equal(1, blocked)
    -- frames on the links (BPDUs aside) while every host pings every other: a storm
    -- would be millions within the second
    local function data_frames()
      local n = 0
      for _, l in ipairs(links) do
        for _, p in ipairs { l.ports.a, l.ports.b } do
          local st = p:stats()
          n = n + st.rx_frames - st.rx_bpdu
        end
      end
      return n
    end
    local n0 = data_frames()
    assert.equal(0, (lab:pingall { quiet = true }))
    local during = data_frames() - n0
    assert.is_true(during < 200, "frames on the links during pingall: " .. during)
    -- quiet afterwards: nothing circulates
    n0 = data_frames()
    luaswitch.wait_until(function() return false end, 0.5)
    assert.is_true(data_frames() - n0 < 20, "frames on the links while idle: " .. (data_frames() - n0))
    -- cut a forwarding link of the root: the blocked one takes over
    local cut
    for _, l in ipairs(links) do
      local st = l:stp()
      if st[l.a.name] == "forwarding" and st[l.b.name] == "forwarding"
        and (l.a.sw:stp().is_root or l.b.sw:stp().is_root) then
        cut = l
        break
      end
    end
    assert.truthy(cut)
    t0 = luaswitch.monotime()
    cut:down()
    assert.is_true(lab:converged(5))
    local took = luaswitch.monotime() - t0
    print(("    cut link %s: reconverged in %.2f s"):format(cut.name, took))
    assert.is_true(took < 3)
    for _, l in ipairs(links) do
      if l ~= cut then assert.same({ [l.a.name] = "forwarding", [l.b.name] = "forwarding" }, l:stp()) end
    end
    assert.equal(0, (lab:pingall { quiet = true }))
    -- the drawing of the running lab shows the cut link; dot accepts it
    local path, svg = lab:dot(S.tmpdir() .. "/ring.dot")
    assert.truthy(path, svg)
    if S.have("dot") then assert.matches("<svg", S.read_file(svg)) end
    -- plugged in again: a ring once more, one end blocked, still reachable
    cut:up()
    assert.is_true(lab:converged(5))
    assert.equal(0, (lab:pingall { quiet = true }))
  end)

  it("Ctrl-C (SIGINT) during lab:start() removes everything", function()
    if needs_root() then return end
    local dir = S.tmpdir()
    local prefix = S.uniq("Li") .. "-"
    local script = dir .. "/lab.lua"
    local f = assert(io.open(script, "w"))
    f:write([[
local luaswitch = require "luaswitch"
local Lab = require "luaswitch.lab"
local lab = Lab.new { name = "interrupted", prefix = arg[1], log = function(line)
  print(line)
  io.stdout:flush()
  if line:find("host h3:") then -- halfway: three of six hosts exist
    print("PAUSED")
    io.stdout:flush()
    luaswitch.wait_until(function() return false end, 60) -- until interrupted
  end
end }
lab:switch "s1"
lab:switch "s2"
lab:link("s1", "s2")
lab:vm("vm1", { switch = "s1" })
for i = 1, 6 do lab:host("h" .. i, { switch = i <= 3 and "s1" or "s2" }) end
lab:start()
print("STARTED")
]])
    f:close()
    local c = child(script, q(prefix), dir)
    local ok, err = pcall(function()
      assert.truthy(c.wait_output("PAUSED", 20))
      -- every namespace is made at once, then the hosts' interfaces one by one
      assert.is_true(netns.exists(prefix .. "h4"))
      assert.equal(0, select(3, os.execute(("ip -n %s link show eth0 >/dev/null 2>&1"):format(q(prefix .. "h3")))))
      assert.is_not.equal(0, select(3, os.execute(("ip -n %s link show eth0 >/dev/null 2>&1"):format(q(prefix .. "h4")))))
      c.kill("INT")
      assert.is_true(luaswitch.wait_until(function() return not c.alive() end, 20), "still running after SIGINT")
    end)
    if not ok then reap(c, prefix) end
    assert(ok, err)
    local out = c.output()
    assert.matches("interrupted!", out)
    assert.is_nil(out:find("STARTED", 1, true))
    assert_clean(prefix, before)
  end)

  it("Ctrl-C (SIGINT) while traffic runs removes everything, processes included", function()
    if needs_root() then return end
    local dir = S.tmpdir()
    local prefix = S.uniq("Lt") .. "-"
    local script = dir .. "/lab.lua"
    local f = assert(io.open(script, "w"))
    f:write([[
local Lab = require "luaswitch.lab"
local lab = Lab.new { name = "busy", prefix = arg[1] }
local s1, s2 = lab:switch "s1", lab:switch "s2"
lab:link(s1, s2, { delay = 0.001 })
lab:host("h1", { switch = s1, ip = "10.0.0.1/24" })
lab:host("h2", { switch = s2, ip = "10.0.0.2/24" })
lab:start()
lab.h1:spawn("ping -q -i 0.01 10.0.0.2")
print("TRAFFIC")
io.stdout:flush()
lab:iperf("h1", "h2", { seconds = 60 })
print("FINISHED")
]])
    f:close()
    local c = child(script, q(prefix), dir)
    local pids = {}
    local ok, err = pcall(function()
      assert.truthy(c.wait_output("TRAFFIC", 20))
      -- the ping and the iperf3 client in h1, the server in h2
      assert.truthy(luaswitch.wait_until(function()
        pids = {}
        for _, ns in ipairs { "h1", "h2" } do
          for pid in sh("ip netns pids " .. q(prefix .. ns)):gmatch("%d+") do pids[#pids + 1] = pid end
        end
        return #pids >= 3
      end, 20), "traffic did not start")
      c.kill("INT")
      assert.is_true(luaswitch.wait_until(function() return not c.alive() end, 20), "still running after SIGINT")
    end)
    if not ok then reap(c, prefix) end
    assert(ok, err)
    local out = c.output()
    assert.matches("interrupted!", out)
    assert.is_nil(out:find("FINISHED", 1, true))
    for _, pid in ipairs(pids) do assert.is_false(pid_alive(pid), "process " .. pid .. " still runs") end
    assert_clean(prefix, before)
  end)
end)

describe("lab examples #root", function()
  local before

  before_each(function()
    before = ROOT and root_links() or {}
  end)

  -- Run examples/NAME.lua in a child luaswitch; its labs' prefix is lab<pid>.<n>-.
  local function run_example(name, args)
    local dir = S.tmpdir()
    local c = child(SRC .. "/examples/" .. name .. ".lua", args, dir)
    local ok = luaswitch.wait_until(function() return not c.alive() end, 120)
    if not ok then reap(c, ("lab%d."):format(c.pid)) end
    local out, rc = c.output(), c.rc()
    S.cleanup()
    assert(ok, name .. " did not finish in 120 s:\n" .. out)
    assert(rc == 0, ("%s exited with %s:\n%s"):format(name, tostring(rc), out))
    assert_clean(("lab%d."):format(c.pid), before)
    return out
  end

  for _, ex in ipairs {
    { "lab_two_hosts", "%*%*%* Results: 0%% dropped %(2/2 received%)",
      "TCP h1 %-> h2 through the switch: [%d.]+ Gbit/s" },
    { "lab_vlan_trunk", "same VLAN: answered across the trunk; other VLAN: never", "a20 %-> b20: 0 of 3 replies" },
    { "lab_line", "h1 %-> h3: 5 of 5 replies, RTT avg [%d.]+ ms %(min 4%d%.%d+", "3%. impairments removed" },
    { "lab_vxlan", "VXLAN, flags %[I%] %(0x08%), vni 42", "4%. TCP h1 %-> h2 through the tunnel" },
    { "lab_ring", "2%. link s%d%-s%d cut\n  settled again in [%d.]+ s", "3%. link .- plugged in again\n.-blocking" },
    { "lab_vms", "vm3 %(socketpair, MAC [%x:]+%): h1 answered its ARP request", "%-netdev stream,id=vm2,server=off" },
  } do
    it(ex[1] .. ".lua runs, succeeds and cleans up", function()
      if needs_root() then return end
      local out = run_example(ex[1])
      assert(out:find(ex[2]), out)
      assert(out:find(ex[3]), out)
    end)
  end
end)
