-- Patch ports: virtual cables between switches of one runtime, through the public Lua
-- API — cabling and loose ends, frames both ways, a million frames without loss, a loop
-- that storms without holding the data plane, impairment of a cable, and bad input.

local luaswitch = require "luaswitch"
local S = require "support"

describe("patch ports", function()
  local s1, s2, eps

  before_each(function()
    s1, s2 = luaswitch.switch "s1", luaswitch.switch "s2"
    eps = {}
  end)

  after_each(function()
    for _, ep in pairs(eps) do ep:close() end
    s1:close()
    s2:close()
    if luaswitch.clock() == "manual" then luaswitch.clock("real") end
  end)

  local function host(sw, name)
    local p = sw:port { kind = "socketpair", name = name }
    eps[name] = p:endpoint()
    return p, eps[name]
  end

  it("cables two switches: link events, frames both ways, learning across", function()
    local rec = S.record(s1, { "port" })
    local p1 = s1:port { kind = "patch", name = "to-s2" }
    assert.equal("down", p1:state()) -- a loose end
    local p2 = s2:port { kind = "patch", name = "to-s1", peer = p1 }
    assert.equal("up", p1:state())
    assert.equal("up", p2:state())
    assert.equal("s2/to-s1", p1:info().peer)
    S.eventually(function() return #rec.port == 1 end, 5, "link up event")
    assert.same({ "up", "peer" }, { rec.port[1].state, rec.port[1].reason })
    local _, ea = host(s1, "a")
    local _, eb = host(s2, "b")
    local f = S.frame(1, S.BCAST)
    ea:send(f)
    assert.equal(f, eb:recv(1))
    eb:send(S.frame(2, 1)) -- unicast back: 1 was learned on s2's patch port
    assert.equal(S.frame(2, 1), ea:recv(1))
    local e
    for _, x in ipairs(s2:fdb()) do if x.mac == S.mac(1) then e = x end end
    assert.equal(p2, e.port)
    assert.equal(p1:stats().tx_frames, p2:stats().rx_frames)
    assert.equal(p2:stats().tx_frames, p1:stats().rx_frames)
    -- closing one end takes the other's link down
    p2:close()
    S.eventually(function() return #rec.port == 2 end, 5, "hang-up event")
    assert.same({ "down", "hangup" }, { rec.port[2].state, rec.port[2].reason })
    assert.equal("down", p1:state())
    S.check_counters(p1)
  end)

  it("carries a million frames between two switches without losing one", function()
    local p1 = s1:port { kind = "patch", name = "x" }
    s2:port { kind = "patch", name = "y", peer = p1 }
    local _, ea = host(s1, "a")
    local _, eb = host(s2, "b")
    eb:send(S.frame(2, S.BCAST))
    assert.truthy(ea:recv(1))
    local sink = eb:start_receiving { seq_offset = 14 }
    local job = ea:start_sending { frame = S.frame(1, 2), count = 1000000, seq_offset = 14 }
    job:wait(60)
    S.eventually(function() return sink:progress() >= 1000000 end, 60, "a million frames")
    local r = sink:stop()
    assert.same({ 1000000, 0, 0 }, { r.frames, r.gaps, r.reordered })
  end)

  it("storms in a loop like a real cable would, without holding the data plane", function()
    local l1 = s1:port { kind = "patch", name = "l1" }
    local l2 = s1:port { kind = "patch", name = "l2", peer = l1 }
    local _, ea = host(s1, "a")
    ea:send(S.frame(1, S.BCAST))
    local t0 = luaswitch.monotime()
    S.eventually(function() return l1:stats().rx_frames > 10000 end, 5, "the storm")
    -- commands still go through, and quickly
    for _ = 1, 20 do s1:stats() end
    assert.is_true(luaswitch.monotime() - t0 < 5)
    l2:close() -- cut the loop
    local n = l1:stats().rx_frames
    luaswitch.dispatch(0.1)
    assert.equal(n, l1:stats().rx_frames)
  end)

  it("impairs a cable per direction (manual clock)", function()
    luaswitch.clock("manual")
    local p1 = s1:port { kind = "patch", name = "x" }
    local p2 = s2:port { kind = "patch", name = "y", peer = p1 }
    p1:impair { delay = 0.05 } -- s1 -> s2
    local _, ea = host(s1, "a")
    local _, eb = host(s2, "b")
    ea:send(S.frame(1, S.BCAST))
    assert.is_nil(eb:recv(0.1))
    luaswitch.advance(0.05)
    assert.truthy(eb:recv(1))
    eb:send(S.frame(2, S.BCAST)) -- s2 -> s1: not delayed
    assert.truthy(ea:recv(1))
    assert.is_nil(p2:impair().out)
  end)

  it("rejects a peer that is not a loose patch end", function()
    local p1 = s1:port { kind = "patch", name = "x" }
    s2:port { kind = "patch", name = "y", peer = p1 }
    local p, err, code = s2:port { kind = "patch", name = "z", peer = p1 }
    assert.is_nil(p)
    assert.equal("EBUSY", code, err)
    local a = s1:port { kind = "socketpair", name = "a" }
    assert.has_error(function() s2:port { kind = "patch", peer = a } end,
      "port: bad option 'peer' (port 'a' is a socketpair port, not a patch port)")
    local c = s1:port { kind = "patch", name = "c" }
    c:close()
    assert.has_error(function() s2:port { kind = "patch", peer = c } end,
      "port: bad option 'peer' (port 'c' is closed)")
    assert.has_error(function() s2:port { kind = "patch", peer = "x" } end,
      "port: bad option 'peer' (a patch port expected, got string)")
    assert.equal(1, #s2:ports())
  end)
end)
