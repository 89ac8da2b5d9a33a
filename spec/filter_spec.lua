-- Filter rules (tcpdump syntax compiled by libpcap) and their actions, punting and
-- sampling to Lua, frames from Lua (inject, send), sw:explain() checked against what the
-- data plane does, and bad input: each through the public Lua API over socketpair ports.

local luaswitch = require "luaswitch"
local frame = require "luaswitch.frame"
local S = require "support"

-- A frame with a one-byte marker right after the Ethernet header (ether[14]).
local function marked(src, dst, mark, opts)
  opts = opts or {}
  opts.payload = string.char(mark) .. "luaswitch spec"
  return S.frame(src, dst, opts)
end

local function arp(src)
  return frame.ethernet { dst = S.BCAST, src = S.mac(src), type = 0x0806,
    payload = string.pack(">I2I2BBI2", 1, 0x0800, 6, 4, 1) .. frame.mac_bytes(S.mac(src)) ..
      "\10\0\0\1" .. string.rep("\0", 6) .. "\10\0\0\2", size = 60 }
end

describe("filters", function()
  local sw, ports, eps

  before_each(function()
    sw = luaswitch.switch { name = "filters" }
    ports, eps = S.hosts(sw, { "a", "b", "c", "m" })
  end)

  after_each(function()
    S.teardown(sw, ports, eps)
  end)

  it("drop ARP but pass the rest, with per-rule counters", function()
    ports.a:filter("in", {
      { match = "arp", action = "drop" },
      { match = "ether proto 0x88b5", action = "count" },
    })
    eps.a:send(arp(1))
    eps.a:send(arp(1))
    for _ = 1, 3 do eps.a:send(S.frame(1, S.BCAST)) end
    for _ = 1, 3 do assert.equal(S.frame(1, S.BCAST), eps.b:recv(1)) end
    assert.is_true(S.nothing(eps.b))
    local rules = ports.a:filter("in")
    assert.equal(2, #rules)
    assert.same({ "arp", "drop", 2, 120, 0 }, { rules[1].match, rules[1].action, rules[1].matches, rules[1].bytes, rules[1].limited })
    assert.same({ "count", 3, 180 }, { rules[2].action, rules[2].matches, rules[2].bytes })
    assert.equal(2, ports.a:stats().drops.filter)
    assert.equal(5, ports.a:stats().rx_frames)
  end)

  it("reports libpcap's message for a bad expression and keeps the previous rules in force", function()
    ports.a:filter("in", { { match = "arp", action = "drop" } })
    local ok, err = pcall(ports.a.filter, ports.a, "in", { { match = "arp", action = "count" },
      { match = "udp prot 53", action = "drop" } })
    assert.is_false(ok)
    assert.matches("filter: rule 2: bad option 'match' %(.*syntax error.*%)", err)
    local rules = ports.a:filter("in")
    assert.equal(1, #rules)
    assert.same({ "arp", "drop" }, { rules[1].match, rules[1].action })
    eps.a:send(arp(1))
    eps.a:send(S.frame(1, S.BCAST))
    assert.equal(S.frame(1, S.BCAST), eps.b:recv(1)) -- the ARP was still dropped
    assert.equal(1, ports.a:filter("in")[1].matches)
  end)

  it("stops at allow, evaluates in order, and replaces or removes a set as a whole", function()
    ports.a:filter("in", {
      { match = "ether[14] = 1", action = "allow" },
      { action = "drop" },
    })
    eps.a:send(marked(1, S.BCAST, 2))
    eps.a:send(marked(1, S.BCAST, 1))
    assert.equal(1, eps.b:recv(1):byte(15))
    assert.is_true(S.nothing(eps.b))
    ports.a:filter("in", { { match = "ether[14] = 1", action = "drop" } })
    eps.a:send(marked(1, S.BCAST, 1))
    eps.a:send(marked(1, S.BCAST, 2))
    assert.equal(2, eps.b:recv(1):byte(15))
    ports.a:filter("in", {})
    assert.same({}, ports.a:filter("in"))
    eps.a:send(marked(1, S.BCAST, 1))
    assert.equal(1, eps.b:recv(1):byte(15))
  end)

  it("filters on the way out as well, counted as tx_filter", function()
    ports.b:filter("out", { { match = "ether[14] = 7", action = "drop" } })
    eps.a:send(marked(1, S.BCAST, 7))
    eps.a:send(marked(1, S.BCAST, 8))
    assert.equal(7, eps.c:recv(1):byte(15))
    assert.equal(8, eps.c:recv(1):byte(15))
    assert.equal(8, eps.b:recv(1):byte(15))
    assert.is_true(S.nothing(eps.b))
    local st = ports.b:stats()
    assert.equal(1, st.drops.tx_filter)
    assert.equal(2, st.tx_queued)
    assert.equal(1, st.tx_frames)
  end)

  it("mirrors matching frames to a port and still forwards them", function()
    ports.a:filter("in", { { match = "ether[14] = 5", action = "mirror", port = ports.m } })
    eps.a:send(marked(1, S.BCAST, 5))
    eps.a:send(marked(1, S.BCAST, 6))
    assert.equal(5, eps.m:recv(1):byte(15)) -- the copy, made before forwarding
    assert.equal(5, eps.m:recv(1):byte(15)) -- m is an ordinary port: the flood reaches it too
    assert.equal(6, eps.m:recv(1):byte(15))
    assert.is_true(S.nothing(eps.m))
    assert.equal(5, eps.b:recv(1):byte(15))
    assert.equal(6, eps.b:recv(1):byte(15))
    assert.equal(ports.m, ports.a:filter("in")[1].port)
    -- the mirror port closes: the rule stays, mirroring nowhere
    ports.m:close()
    eps.a:send(marked(1, S.BCAST, 5))
    assert.truthy(eps.b:recv(1))
    assert.is_nil(ports.a:filter("in")[1].port)
  end)

  it("set_vlan tags or retags and strip_vlan untags, in and out", function()
    ports.a:filter("in", { { match = "not vlan", action = "set_vlan", vid = 42, pcp = 3 } })
    eps.a:send(S.frame(1, S.BCAST))
    local p = frame.parse(eps.b:recv(1))
    assert.same({ tpid = 0x8100, vid = 42, pcp = 3 }, p.tags[1])
    eps.a:send(S.frame(1, S.BCAST, { vlan = 7 })) -- tagged already: not matched
    assert.equal(7, frame.parse(eps.b:recv(1)).tags[1].vid)
    S.collect(eps.c, 0.05); S.collect(eps.m, 0.05)
    ports.c:filter("out", { { match = "vlan", action = "strip_vlan" } })
    ports.m:filter("out", { { match = "vlan 7", action = "set_vlan", vid = 9 } })
    eps.a:send(S.frame(1, S.BCAST, { vlan = 7, pcp = 5 }))
    local f = S.frame(1, S.BCAST, { vlan = 7, pcp = 5 })
    assert.equal(f, eps.b:recv(1)) -- b has no rules: the frame as it came
    assert.equal(f:sub(1, 12) .. f:sub(17), eps.c:recv(1))
    local m = frame.parse(eps.m:recv(1))
    assert.same({ tpid = 0x8100, vid = 9, pcp = 5 }, m.tags[1])
  end)

  it("polices frames per second with a burst, and bits per second", function()
    ports.a:filter("in", { { action = "police", pps = 0.001, burst = 10 } })
    for i = 1, 50 do eps.a:send(marked(1, S.BCAST, i)) end
    local got = S.collect_n(eps.b, 10)
    assert.equal(10, #got)
    assert.equal(40, ports.a:stats().drops.police)
    assert.equal(40, ports.a:filter("in")[1].limited)
    assert.equal(50, ports.a:filter("in")[1].matches)
    ports.a:filter("in", { { action = "police", bps = 1000, burst = 1000 } }) -- 1000 bytes: 16 frames of 60
    for i = 1, 30 do eps.a:send(marked(1, S.BCAST, i)) end
    assert.equal(16, #S.collect_n(eps.b, 16))
    assert.same({ 1000, 1000 }, { ports.a:filter("in")[1].bps, ports.a:filter("in")[1].burst })
  end)

  it("punts to Lua with port and bytes; the handler re-injects a modified frame that arrives", function()
    ports.a:filter("in", { { match = "ether[14] = 1", action = "punt" } })
    local seen = {}
    sw:on("punt", function(ev)
      seen[#seen + 1] = ev
      -- rewrite the marker and send it on its way, as if received (the rules are passed)
      ev.port:inject(ev.frame:sub(1, 14) .. "\2" .. ev.frame:sub(16))
    end)
    local f = marked(1, S.BCAST, 1)
    eps.a:send(f)
    S.eventually(function() return #seen == 1 end, 5, "the punt event")
    assert.equal(ports.a, seen[1].port)
    assert.equal(f, seen[1].frame)
    assert.equal("in", seen[1].dir)
    assert.equal(1, seen[1].rule)
    local got = eps.b:recv(1)
    assert.equal(2, got:byte(15))
    assert.equal(f:sub(16), got:sub(16))
    local st = ports.a:stats()
    assert.equal(1, st.drops.punted)
    assert.equal(1, st.injected)
    assert.equal(1, st.rx_frames)
  end)

  it("holds the punt rate limit and counts what is over it", function()
    ports.a:filter("in", { { action = "punt", rate = 0.001, burst = 5 } })
    local n = 0
    sw:on("punt", function() n = n + 1 end)
    for i = 1, 50 do eps.a:send(marked(1, S.BCAST, i)) end
    S.eventually(function()
      return ports.a:stats().drops.punted + ports.a:stats().drops.punt_limit == 50
    end, 5, "50 frames handled")
    S.eventually(function() return n == 5 end, 5, "5 punt events")
    luaswitch.dispatch(0.05)
    assert.equal(5, n)
    assert.equal(45, ports.a:stats().drops.punt_limit)
    assert.equal(45, ports.a:filter("in")[1].limited)
    assert.is_true(S.nothing(eps.b))
  end)

  it("samples 1 in N to Lua and forwards every frame", function()
    ports.a:filter("in", { { action = "sample", every = 10 } })
    local marks = {}
    sw:on("sample", function(ev) marks[#marks + 1] = ev.frame:byte(15) end)
    for i = 1, 100 do eps.a:send(marked(1, S.BCAST, i)) end
    assert.equal(100, #S.collect_n(eps.b, 100))
    S.eventually(function() return #marks == 10 end, 5, "10 samples")
    assert.same({ 10, 20, 30, 40, 50, 60, 70, 80, 90, 100 }, marks)
  end)

  it("punts on egress too, and an error in the handler is reported while forwarding goes on", function()
    ports.b:filter("out", { { match = "ether[14] = 3", action = "punt" } })
    local reports = {}
    local old = luaswitch.report
    luaswitch.report = function(msg) reports[#reports + 1] = msg end
    sw:on("punt", function(ev)
      assert.equal("out", ev.dir)
      error("boom")
    end)
    eps.a:send(marked(1, S.BCAST, 3))
    eps.a:send(marked(1, S.BCAST, 4))
    assert.equal(4, eps.b:recv(1):byte(15))
    S.eventually(function() return #reports == 1 end, 5, "the handler error")
    luaswitch.report = old
    assert.matches("boom", reports[1])
    assert.equal(3, eps.c:recv(1):byte(15))
  end)

  it("replaces rule sets and flags and reads them back while traffic flows, losing no frame", function()
    local sink = eps.b:start_receiving()
    local job = eps.a:start_sending { frame = marked(1, 2, 0), count = 30000 }
    for i = 1, 60 do
      local rules = { { match = "ether[14] = 0", action = "count" } }
      if i % 2 == 0 then rules[2] = { match = "ether[14] = 200", action = "drop" } end
      ports.a:filter("in", rules)
      ports.c:set { flood = i % 2 == 0 }
      local back = ports.a:filter("in")
      assert.equal(#rules, #back)
      assert.is_true(back[1].matches <= 30000)
      assert.equal(i % 2 == 0, ports.c:info().flood)
    end
    job:wait()
    S.eventually(function() return sink:progress() >= 30000 end, 10, "30000 frames")
    assert.equal(30000, sink:stop().frames)
    assert.equal(0, ports.a:stats().drops.filter)
  end)

  it("sends a frame from Lua straight to a port's peer", function()
    local f = marked(9, 1, 77)
    assert.equal(ports.c, ports.c:send(f))
    assert.equal(f, eps.c:recv(1))
    assert.is_true(S.nothing(eps.a))
    assert.equal(1, ports.c:stats().sent)
    ports.c:down()
    local ok, err, code = ports.c:send(f)
    assert.is_nil(ok)
    assert.equal("ENETDOWN", code, err)
  end)
end)

describe("explain", function()
  it("agrees with what the data plane does, over a table of cases", function()
    local sw = luaswitch.switch { name = "explain", vlan_aware = true }
    local ports, eps = S.hosts(sw, { "a", "b", "c", "d", "t", "iso1", "iso2", "nof" })
    ports.a:vlan(10); ports.b:vlan(10); ports.c:vlan(20); ports.d:vlan(20)
    ports.t:vlan { mode = "trunk", allowed = { 10, 20 }, native = 30 }
    ports.iso1:vlan(10); ports.iso1:set { isolated = true }
    ports.iso2:vlan(10); ports.iso2:set { isolated = true }
    ports.nof:vlan(10); ports.nof:set { flood = false, mcast_flood = false }
    ports.a:filter("in", { { match = "arp", action = "drop" }, { match = "ether[14] = 9", action = "count" } })
    ports.b:filter("out", { { match = "ether[14] = 8", action = "drop" } })
    local names = {}
    for n, p in pairs(ports) do names[p] = n end

    local cases = {
      { "a", marked(1, S.BCAST, 0) },
      { "a", marked(1, "01:00:5e:00:00:01", 0) },
      { "a", marked(1, 99, 0) }, -- unknown unicast
      { "b", marked(2, 1, 0) },  -- 1 was learned on a
      { "a", arp(1) },           -- dropped by a's rule
      { "a", marked(1, S.BCAST, 8) }, -- b's egress rule drops it for b only
      { "a", marked(1, S.BCAST, 9) }, -- counted, forwarded
      { "t", marked(5, S.BCAST, 0, { vlan = 20 }) },
      { "t", marked(5, S.BCAST, 0) },  -- native VLAN 30: no one else is in it
      { "t", marked(5, S.BCAST, 0, { vlan = 40 }) }, -- not carried
      { "c", marked(3, 5, 0) },  -- 5 learned on t in VLAN 20: unicast, tagged
      { "iso1", marked(11, S.BCAST, 0) },
      { "b", marked(2, 11, 0) }, -- to the isolated port from a normal one
      { "iso2", marked(12, 11, 0) }, -- isolated to isolated
      { "a", marked(1, 2, 0) },
      { "d", marked(4, S.BCAST, 0, { vlan = 20 }) }, -- access port, right VLAN tagged: accepted
    }
    for i, c in ipairs(cases) do
      local inp, f = ports[c[1]], c[2]
      local x = sw:explain(f, inp)
      local want = {}
      for _, p in ipairs(x.out) do want[names[p]] = true end
      -- nothing was changed by explaining: the same question gives the same answer
      assert.same(x, sw:explain(f, inp), "case " .. i)
      eps[c[1]]:send(f)
      local got = {}
      for n, ep in pairs(eps) do
        local r = ep:recv(n == c[1] and 0.02 or (want[n] and 1 or 0.03))
        if r then
          got[n] = true
          -- tagged or not, as explained
          for _, xp in ipairs(x.ports) do
            if names[xp.port] == n then
              assert.equal(xp.tagged, #frame.parse(r).tags > 0 and frame.parse(r).tags[1].vid == xp.vlan,
                "case " .. i .. " port " .. n)
            end
          end
        end
      end
      assert.same(want, got, ("case %d (%s from %s): %s"):format(i, x.verdict, c[1], x.reason or ""))
      assert.equal(next(want) ~= nil, x.verdict == "forward", "case " .. i)
    end
    -- some of the reasons, as a user reads them
    local x = sw:explain(arp(1), ports.a)
    assert.same({ "drop", "dropped by an ingress rule", 1, "drop" },
      { x.verdict, x.reason, x.rules[1].index, x.rules[1].action })
    x = sw:explain(marked(12, 11, 0), ports.iso2)
    assert.equal("unicast", x.decision)
    assert.equal(ports.iso1, x.dest)
    assert.matches("isolated", x.ports[1].why)
    x = sw:explain(marked(1, 99, 0), ports.a)
    local why = {}
    for _, xp in ipairs(x.ports) do why[names[xp.port]] = xp.why or "sent" end
    assert.equal("flood off (unknown unicast)", why.nof)
    assert.equal("not a member of the VLAN", why.c)
    assert.equal("the input port (hairpin off)", why.a)
    assert.equal("sent", why.t)
    assert.equal(10, x.vlan)
    x = sw:explain(marked(5, S.BCAST, 0, { vlan = 40 }), ports.t)
    assert.same({ "drop", "tagged with a VLAN the port does not carry" }, { x.verdict, x.reason })
    for _, p in pairs(ports) do S.check_counters(p) end
    for _, ep in pairs(eps) do ep:close() end
    sw:close()
  end)
end)

describe("bad policy input", function()
  local sw, ports, eps

  before_each(function()
    sw = luaswitch.switch { name = "bad" }
    ports, eps = S.hosts(sw, { "a", "b" })
  end)

  after_each(function()
    S.teardown(sw, ports, eps)
  end)

  it("rejects VLAN ids 0, 4095 and 5000, naming the option, and keeps the old setting", function()
    ports.a:vlan(10)
    for _, v in ipairs { 0, 4095, 5000 } do
      S.raises("vlan: bad option 'vlan' %(a VLAN id between 1 and 4094 expected, got " .. v .. "%)",
        function() ports.a:vlan(v) end)
      S.raises("vlan: bad option 'pvid' %(a VLAN id between 1 and 4094 expected, got " .. v .. "%)",
        function() ports.a:vlan { pvid = v } end)
      S.raises("vlan: bad option 'allowed%[2%]'", function() ports.a:vlan { mode = "trunk", allowed = { 3, v } } end)
      S.raises("vlan: bad option 'native'", function() ports.a:vlan { mode = "trunk", allowed = { 3 }, native = v } end)
      S.raises("filter: rule 1: bad option 'vid'", function()
        ports.a:filter("in", { { action = "set_vlan", vid = v } })
      end)
    end
    S.raises("vlan: bad option 'allowed%[1%]' %(range 30%-20 is backwards%)",
      function() ports.a:vlan { mode = "trunk", allowed = { "30-20" } } end)
    S.raises("vlan: bad option 'native' %(only for mode \"trunk\"%)", function() ports.a:vlan { native = 3 } end)
    S.raises("port: option 'vlan': bad option 'pvid'", function() sw:port { kind = "socketpair", vlan = { pvid = 0 } } end)
    assert.same({ mode = "access", pvid = 10 }, ports.a:vlan())
    assert.equal(2, #sw:ports())
  end)

  it("rejects unknown actions, options of other actions, negative rates; keeps the old rules", function()
    ports.a:filter("in", { { match = "arp", action = "drop" } })
    S.raises("filter: rule 2: bad option 'action' %(one of \"allow\", .* expected, got \"reject\"%)", function()
      ports.a:filter("in", { { action = "count" }, { action = "reject" } })
    end)
    S.raises("filter: rule 1: missing option 'action'", function() ports.a:filter("in", { { match = "arp" } }) end)
    S.raises("filter: rule 1: bad option 'vid' %(not an option of action \"drop\"%)", function()
      ports.a:filter("in", { { action = "drop", vid = 3 } })
    end)
    S.raises("filter: rule 1: bad option 'pps' %(must be between 0 and", function()
      ports.a:filter("in", { { action = "police", pps = -5 } })
    end)
    S.raises("filter: rule 1: a police rule needs", function() ports.a:filter("in", { { action = "police" } }) end)
    S.raises("filter: rule 1: bad option 'rate'", function() ports.a:filter("in", { { action = "punt", rate = -1 } }) end)
    S.raises("filter: rule 1: bad option 'every'", function() ports.a:filter("in", { { action = "sample", every = 0 } }) end)
    S.raises("bad argument #1 to 'filter' %(invalid option 'sideways'%)", function() ports.a:filter("sideways", {}) end)
    S.raises("filter: rule 1: unknown option 'mtach'", function() ports.a:filter("in", { { mtach = "arp", action = "drop" } }) end)
    assert.same({ "arp", "drop" }, { ports.a:filter("in")[1].match, ports.a:filter("in")[1].action })
  end)

  it("rejects a mirror to a closed port or to itself", function()
    local m = sw:port { kind = "socketpair", name = "m" }
    m:close()
    S.raises("filter: rule 1: bad option 'port' %(port 'm' is closed%)", function()
      ports.a:filter("in", { { action = "mirror", port = m } })
    end)
    S.raises("filter: rule 1: bad option 'port' %(a port cannot mirror to itself%)", function()
      ports.a:filter("in", { { action = "mirror", port = ports.a } })
    end)
    local other = luaswitch.switch "other"
    local o = other:port { kind = "socketpair" }
    S.raises("belongs to another switch", function() ports.a:filter("in", { { action = "mirror", port = o } }) end)
    other:close()
    assert.same({}, ports.a:filter("in"))
  end)

  it("refuses a set of 10,000 rules (the limit is 1024 per port and direction)", function()
    ports.a:filter("in", { { match = "arp", action = "drop" } })
    local many = {}
    for i = 1, 10000 do many[i] = { match = "udp port " .. (i % 60000), action = "count" } end
    S.raises("at most 1024 rules per port and direction, got 10000", function() ports.a:filter("in", many) end)
    local max = {}
    for i = 1, 1024 do max[i] = { match = "udp port " .. i, action = "count" } end
    ports.a:filter("out", max)
    assert.equal(1024, #ports.a:filter("out"))
    assert.equal(1, #ports.a:filter("in"))
    eps.b:send(S.frame(2, S.BCAST)) -- 1024 BPF programs on the way out, still forwarding
    assert.truthy(eps.a:recv(1))
  end)

  it("rejects impairments out of range and keeps the old ones", function()
    ports.a:impair { loss = 0.25, seed = 3 }
    S.raises("impair: bad option 'loss' %(must be between 0 and 1, got 1.5%)", function() ports.a:impair { loss = 1.5 } end)
    S.raises("impair: bad option 'rate'", function() ports.a:impair { rate = -10 } end)
    S.raises("impair: bad option 'rate' %(bits per second or a string like \"10mbit\" expected, got '10 furlongs'%)",
      function() ports.a:impair { rate = "10 furlongs" } end)
    S.raises("impair: bad option 'delay' %(must be between 0 and 60, got %-1%)", function() ports.a:impair { delay = -1 } end)
    S.raises("impair: bad option 'dup'", function() ports.a:impair { dup = 2 } end)
    S.raises("impair: unknown option 'lose'", function() ports.a:impair { lose = 0.1 } end)
    S.raises("impair: bad option 'dir'", function() ports.a:impair { dir = "up", loss = 0.1 } end)
    S.raises("impair: bad option 'gilbert' %(give 'loss'", function() ports.a:impair { loss = 0.1, gilbert = { p = 0.1 } } end)
    local cur = ports.a:impair()
    assert.equal(0.25, cur.out.loss)
    assert.equal(3, cur.out.seed)
    assert.is_nil(cur["in"])
  end)

  it("rejects frames from Lua that are not frames", function()
    S.raises("bad argument #1 to 'inject' %(frame of 5 bytes is shorter than an Ethernet header %(14%)%)",
      function() ports.a:inject("short") end)
    S.raises("bad argument #1 to 'send' %(string expected, got no value%)", function() ports.a:send() end)
    S.raises("bad argument #1 to 'explain'", function() sw:explain("", ports.a) end)
    local other = luaswitch.switch "other2"
    local o = other:port { kind = "socketpair" }
    S.raises("bad argument #2 to 'explain' %(port '.*' is not on switch 'bad'%)", function()
      sw:explain(S.frame(1, 2), o)
    end)
    other:close()
  end)
end)
