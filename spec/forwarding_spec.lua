-- Forwarding behaviour through the public Lua API, end to end over socketpair ports:
-- flooding, learning, unicast, isolation between switches, admission of runts,
-- oversize frames and group/zero source addresses. Includes the seed project's
-- integration suite rewritten against this API.

local luaswitch = require "luaswitch"
local frame = require "luaswitch.frame"
local S = require "support"

local hosts = S.hosts

describe("forwarding", function()
  local sw, ports, eps

  before_each(function()
    sw = luaswitch.switch { name = "fwd" }
    ports, eps = hosts(sw, { "a", "b", "c", "d" })
  end)

  after_each(function()
    for _, ep in pairs(eps) do ep:close() end
    if not sw.closed then S.audit(sw) end
    sw:close()
  end)

  it("floods a broadcast to every other port and never back to its sender", function()
    local f = S.frame(1, S.BCAST)
    assert.is_true(eps.a:send(f))
    for _, n in ipairs { "b", "c", "d" } do assert.equal(f, eps[n]:recv(1)) end
    assert.is_true(S.nothing(eps.a))
  end)

  it("floods multicast like broadcast", function()
    local f = S.frame(1, "01:00:5e:00:00:fb")
    eps.b:send(f)
    for _, n in ipairs { "a", "c", "d" } do assert.equal(f, eps[n]:recv(1)) end
    assert.is_true(S.nothing(eps.b))
  end)

  it("floods unknown unicast", function()
    local f = S.frame(1, 99)
    eps.a:send(f)
    for _, n in ipairs { "b", "c", "d" } do assert.equal(f, eps[n]:recv(1)) end
  end)

  it("sends unicast to a learned MAC only to its port", function()
    eps.b:send(S.frame(2, S.BCAST)) -- learn 2 on b
    for _, n in ipairs { "a", "c", "d" } do assert.truthy(eps[n]:recv(1)) end
    local f = S.frame(1, 2)
    eps.a:send(f)
    assert.equal(f, eps.b:recv(1))
    assert.is_true(S.nothing(eps.c))
    assert.is_true(S.nothing(eps.d))
    assert.is_true(S.nothing(eps.a))
    local st = sw:stats()
    assert.equal(1, st.unicast)
    assert.equal(1, st.flooded)
  end)

  it("does not echo a unicast whose destination is on the sending port", function()
    eps.a:send(S.frame(1, S.BCAST))
    S.collect(eps.b, 0.05); S.collect(eps.c, 0.05); S.collect(eps.d, 0.05)
    eps.a:send(S.frame(5, 1)) -- to 1, which lives on a itself
    assert.is_true(S.nothing(eps.a))
    assert.is_true(S.nothing(eps.b))
    assert.equal(1, ports.a:stats().drops.no_dest)
  end)

  it("drops and counts frames shorter than an Ethernet header", function()
    eps.a:send(string.rep("\1", 13))
    eps.a:send("")
    eps.a:send(S.frame(1, S.BCAST)) -- a good one after, to know the bad ones were processed
    assert.truthy(eps.b:recv(1))
    assert.is_true(S.nothing(eps.b))
    local st = ports.a:stats()
    assert.equal(2, st.drops.runt)
    assert.equal(3, st.rx_frames)
    assert.equal(1, st.rx_forwarded)
  end)

  it("drops and counts frames whose payload exceeds the port's MTU", function()
    ports.a:set { mtu = 100 }
    eps.a:send(S.frame(1, S.BCAST, { size = 14 + 101 }))
    eps.a:send(S.frame(1, S.BCAST, { size = 14 + 100 })) -- exactly the MTU: passes
    eps.a:send(S.frame(1, S.BCAST, { vlan = 7, size = 18 + 100 })) -- a tag does not count
    assert.equal(114, #eps.b:recv(1))
    assert.equal(118, #eps.b:recv(1))
    assert.is_true(S.nothing(eps.b))
    assert.equal(1, ports.a:stats().drops.oversize)
    -- and on the way out: b's MTU is checked too
    ports.b:set { mtu = 80 }
    eps.c:send(S.frame(3, S.BCAST, { size = 14 + 90 }))
    assert.truthy(eps.d:recv(1))
    assert.is_true(S.nothing(eps.b))
    assert.equal(1, ports.b:stats().drops.tx_mtu)
  end)

  it("drops frames larger than any buffer (a 9000-byte MTU port receives them whole)", function()
    ports.a:set { mtu = 9000 }
    ports.b:set { mtu = 9000 }
    local big = S.frame(1, S.BCAST, { size = 9014 })
    eps.a:send(big)
    assert.equal(big, eps.b:recv(1))
    eps.a:send(S.frame(1, S.BCAST, { size = 20000 }))
    eps.a:send(S.frame(1, S.BCAST))
    assert.equal(60, #eps.b:recv(1))
    assert.equal(1, ports.a:stats().drops.oversize)
  end)

  it("forwards frames from a group source address but never learns it", function()
    local f = S.frame("03:00:00:00:00:01", S.BCAST)
    eps.a:send(f)
    assert.equal(f, eps.b:recv(1))
    assert.equal(0, #sw:fdb())
    assert.equal(1, sw:stats().group_src)
  end)

  it("never learns the all-zero source address", function()
    eps.a:send(S.frame("00:00:00:00:00:00", S.BCAST))
    assert.truthy(eps.b:recv(1))
    assert.equal(0, #sw:fdb())
    assert.equal(1, sw:stats().zero_src)
  end)

  it("passes 802.1Q-tagged frames through untouched when VLAN-unaware", function()
    local f = S.frame(1, S.BCAST, { vlan = 42 })
    eps.a:send(f)
    assert.equal(f, eps.b:recv(1))
    local p = frame.parse(f)
    assert.equal(42, p.tags[1].vid)
  end)

  it("does not forward to or from an admin-down port, and counts what it drops", function()
    local rec = S.record(sw, { "port" })
    ports.c:down()
    eps.a:send(S.frame(1, S.BCAST))
    assert.truthy(eps.b:recv(1))
    assert.is_true(S.nothing(eps.c))
    eps.c:send(S.frame(3, S.BCAST))
    assert.is_true(S.nothing(eps.b))
    assert.equal(1, ports.c:stats().drops.down)
    ports.c:up()
    eps.a:send(S.frame(1, S.BCAST))
    assert.truthy(eps.c:recv(1))
    S.eventually(function() return #rec.port == 2 end, 2, "port events")
    assert.equal("down", rec.port[1].state)
    assert.equal("admin", rec.port[1].reason)
    assert.equal(ports.c, rec.port[1].port)
    assert.equal("up", rec.port[2].state)
  end)
end)

describe("the seed's integration suite", function()
  after_each(function()
    luaswitch.stop()
    S.cleanup()
  end)

  it("floods broadcast to all ports on the same network", function()
    local sw = luaswitch.switch "n1"
    local _, eps = hosts(sw, { "a", "b", "c" })
    eps.a:send(S.frame(1, S.BCAST))
    assert.truthy(eps.b:recv(1))
    assert.truthy(eps.c:recv(1))
  end)

  it("sends unicast to a learned MAC only", function()
    local sw = luaswitch.switch "n1"
    local _, eps = hosts(sw, { "a", "b", "c" })
    eps.b:send(S.frame(2, S.BCAST))
    eps.a:recv(1); eps.c:recv(1)
    eps.a:send(S.frame(1, 2))
    assert.truthy(eps.b:recv(1))
    assert.is_nil(eps.c:recv(0.1))
  end)

  it("keeps different networks isolated, broadcast included", function()
    local n1, n2 = luaswitch.switch "n1", luaswitch.switch "n2"
    local _, e1 = hosts(n1, { "a", "b" })
    local _, e2 = hosts(n2, { "a", "b" })
    e1.a:send(S.frame(1, S.BCAST))
    e1.a:send(S.frame(1, 2))
    assert.truthy(e1.b:recv(1))
    assert.is_nil(e2.a:recv(0.1))
    assert.is_nil(e2.b:recv(0.1))
  end)

  it("never echoes a frame back to its sender", function()
    local sw = luaswitch.switch "n1"
    local _, eps = hosts(sw, { "a", "b" })
    eps.a:send(S.frame(1, S.BCAST))
    eps.a:send(S.frame(1, 99))
    assert.truthy(eps.b:recv(1))
    assert.is_nil(eps.a:recv(0.1))
  end)

  it("drops runt frames", function()
    local sw = luaswitch.switch "n1"
    local ports, eps = hosts(sw, { "a", "b" })
    eps.a:send("short")
    assert.is_nil(eps.b:recv(0.1))
    assert.equal(1, ports.a:stats().drops.runt)
  end)

  it("delivers a burst of 10,000 unpaced unicast frames A->B, all of them, in order", function()
    local sw = luaswitch.switch "n1"
    local ports, eps = hosts(sw, { "a", "b", "c" })
    eps.b:send(S.frame(2, S.BCAST)) -- learn B
    eps.a:recv(1); eps.c:recv(1)
    local sink = eps.b:start_receiving { seq_offset = 14 }
    local sender = eps.a:start_sending { frame = S.frame(1, 2, { size = 64 }), count = 10000,
                                         seq_offset = 14 }
    local sent = sender:wait()
    assert.equal(10000, sent.frames)
    local got = sink:wait { frames = 10000, timeout = 10 }
    assert.equal(10000, got.frames)
    assert.equal(10000, got.in_order)
    assert.equal(0, got.reordered)
    assert.equal(0, got.gaps)
    assert.equal(0, ports.b:stats().drops.tx_full)
    assert.is_nil(eps.c:recv(0.05)) -- unicast: C saw none of it
  end)

  it("runs a sender and a sink on one endpoint; a sink measures gaps and stamped latency", function()
    local sw = luaswitch.switch "both"
    local ports, eps = hosts(sw, { "a", "b" })
    local fa, fb = S.frame(1, 2, { size = 64 }), S.frame(2, 1, { size = 64 })
    local sinks = { a = eps.a:start_receiving { seq_offset = 14, ts_offset = 22 },
                    b = eps.b:start_receiving { seq_offset = 14, ts_offset = 22 } }
    assert.has_error(function() eps.a:start_receiving() end,
      "calling 'start_receiving' on bad self (endpoint already runs a sink)")
    local t0 = luaswitch.monotime()
    local senders = { a = eps.a:start_sending { frame = fa, count = 2000, rate = 10000, seq_offset = 14, ts_offset = 22 },
                      b = eps.b:start_sending { frame = fb, count = 2000, rate = 10000, seq_offset = 14, ts_offset = 22 } }
    assert.has_error(function() eps.b:start_sending { frame = fb } end,
      "calling 'start_sending' on bad self (endpoint already runs a sender)")
    assert.has_error(function() eps.b:send(fb) end,
      "calling 'send' on bad self (endpoint is busy with a background job)")
    for _, n in ipairs { "a", "b" } do assert.equal(2000, senders[n]:wait().frames) end
    for _, n in ipairs { "a", "b" } do
      local got = sinks[n]:wait { frames = 2000, timeout = 10 }
      assert.equal(2000, got.frames)
      assert.equal(2000, got.in_order)
      assert.equal(2000, got.stamped)
      -- paced at 10,000 frames/s: arrivals 0.1 ms apart, each a few microseconds late
      assert.is_true(got.max_gap > 0 and got.max_gap < luaswitch.monotime() - t0)
      assert.is_true(got.max_latency >= got.mean_latency and got.mean_latency > 0)
      assert.is_true(got.max_latency < luaswitch.monotime() - t0)
      -- when they happened, on luaswitch.monotime()'s clock, within the run
      assert.is_true(got.max_gap_at > t0 + got.max_gap and got.max_gap_at <= luaswitch.monotime())
      assert.is_true(got.max_latency_at > t0 and got.max_latency_at <= luaswitch.monotime())
    end
    -- without timestamps there is no latency, and a sender may start again once finished
    local sink = eps.b:start_receiving()
    eps.a:start_sending { frame = fa, count = 10 }:wait()
    local got = sink:wait { frames = 10 }
    assert.equal(10, got.frames)
    assert.is_nil(got.max_latency)
    assert.is_nil(got.stamped)
    eps.a:close(); eps.b:close()
    S.audit(sw)
    sw:close()
  end)

  it("runs several networks at once", function()
    local nets = {}
    for i = 1, 5 do
      local sw = luaswitch.switch("net" .. i)
      local _, eps = hosts(sw, { "a", "b" })
      nets[i] = eps
    end
    for i = 1, 5 do nets[i].a:send(S.frame(i, S.BCAST, { payload = "net" .. i })) end
    for i = 1, 5 do
      local f = frame.parse(nets[i].b:recv(1))
      assert.equal("net" .. i, f.payload:sub(1, #("net" .. i)))
      assert.is_nil(nets[i].a:recv(0.01))
    end
  end)

  it("restarts: stop, then new switches forward again", function()
    local sw = luaswitch.switch "n1"
    local _, eps = hosts(sw, { "a", "b" })
    eps.a:send(S.frame(1, S.BCAST))
    assert.truthy(eps.b:recv(1))
    luaswitch.stop()
    assert.is_false(luaswitch.running())
    assert.is_true(sw.closed)
    local sw2 = luaswitch.switch "n1"
    local _, eps2 = hosts(sw2, { "a", "b" })
    eps2.a:send(S.frame(1, S.BCAST))
    assert.truthy(eps2.b:recv(1))
    assert.is_true(luaswitch.running())
  end)
end)
