-- Spanning tree (802.1D) through the public Lua API: a ring of three switches joined by
-- patch ports converges with one port blocking, carries each broadcast once, stays quiet,
-- and reconverges when a link is cut; edge ports; turning STP off and on; bad settings;
-- and (root only) a Linux bridge running stp_state 1 in a loop with luaswitch.

local luaswitch = require "luaswitch"
local netns = require "luaswitch.netns"
local S = require "support"

local FAST = { hello = 0.125, forward_delay = 0.25, max_age = 0.75 } -- exact in 1/256 s
local BPDU_DST = "\1\128\194\0\0\0"

-- the next frame on ep that is not a BPDU, within t seconds
local function recv(ep, t)
  local deadline = luaswitch.monotime() + t
  while true do
    local left = deadline - luaswitch.monotime()
    if left <= 0 then return nil end
    local f = ep:recv(left)
    if f and f:sub(1, 6) ~= BPDU_DST then return f end
  end
end

local function states(sw)
  local r = {}
  for _, p in ipairs(sw:stp().ports) do r[p.port.name] = p.state .. "/" .. p.role end
  return r
end

describe("STP", function()
  local sw, eps, links

  local function link(a, b)
    local p = sw[a]:port { kind = "patch", name = ("s%d-s%d"):format(a, b) }
    local q = sw[b]:port { kind = "patch", name = ("s%d-s%d"):format(b, a), peer = p }
    links[#links + 1] = p
    links[#links + 1] = q
  end

  local function ring(opts)
    sw, eps, links = {}, {}, {}
    for i = 1, 3 do
      sw[i] = luaswitch.switch { name = "s" .. i, stp = opts or FAST }
      eps[i] = sw[i]:port { kind = "socketpair", name = "h" .. i }:endpoint()
    end
    link(1, 2); link(2, 3); link(3, 1)
  end

  local function converged()
    local blocking, forwarding = 0, 0
    for _, l in ipairs(links) do
      local st = l:info().stp_state
      if st == "blocking" then blocking = blocking + 1 end
      if st == "forwarding" then forwarding = forwarding + 1 end
    end
    return blocking == 1 and forwarding == #links - 1
  end

  after_each(function()
    for _, ep in ipairs(eps or {}) do ep:close() end
    for _, s in ipairs(sw or {}) do
      for _, p in ipairs(s:ports()) do S.check_counters(p) end
      s:close()
    end
    sw, eps, links = nil, nil, nil
  end)

  it("turns a ring of three switches into a tree: one port blocks, broadcasts arrive once, quiet", function()
    ring()
    S.eventually(converged, 5, "convergence")
    -- the lowest bridge ID is the root; everyone agrees
    local root = sw[1]:stp().root_id
    for i = 1, 3 do assert.equal(root, sw[i]:stp().root_id) end
    local n_root = 0
    for i = 1, 3 do if sw[i]:stp().is_root then n_root = n_root + 1 end end
    assert.equal(1, n_root)
    -- each broadcast reaches each other host exactly once
    for i = 1, 3 do
      eps[i]:send(S.frame(i, S.BCAST))
      for j = 1, 3 do
        if j ~= i then
          assert.truthy(recv(eps[j], 1), ("host %d -> %d"):format(i, j))
          assert.is_nil(recv(eps[j], 0.05), ("a second copy at host %d"):format(j))
        end
      end
    end
    -- and nothing circulates: over half a second only BPDUs cross the links (one stats
    -- snapshot per link, so a BPDU arriving between two reads cannot skew the count)
    local function counts()
      local frames, data = 0, 0
      for _, l in ipairs(links) do
        local st = l:stats()
        frames, data = frames + st.rx_frames, data + st.rx_frames - st.rx_bpdu
      end
      return frames, data
    end
    local f0, d0 = counts()
    luaswitch.wait_until(function() return false end, 0.5)
    local f1, d1 = counts()
    assert.equal(0, d1 - d0, "data frames on the links")
    assert.is_true(f1 - f0 < 60, "frames on the links: " .. (f1 - f0))
  end)

  it("reconverges when a forwarding link is cut, and again when it comes back", function()
    ring()
    S.eventually(converged, 5, "convergence")
    local rec = { stp = {} }
    for i = 1, 3 do sw[i]:on("stp", function(ev) rec.stp[#rec.stp + 1] = ev end) end
    -- cut a forwarding link that touches the root
    local cut
    for _, l in ipairs(links) do
      if l:info().stp_state == "forwarding" and l.switch:stp().is_root then cut = l break end
    end
    local tc0 = 0
    for i = 1, 3 do tc0 = tc0 + sw[i]:stp().topology_changes end
    cut:close()
    local t0 = luaswitch.monotime()
    S.eventually(function()
      eps[1]:send(S.frame(1, S.BCAST))
      return recv(eps[2], 0.05) and recv(eps[3], 0.05)
    end, 5, "hosts reaching each other again")
    assert.is_true(luaswitch.monotime() - t0 < 3)
    local blocked = 0
    for _, l in ipairs(links) do if not l.closed and l:info().stp_state == "blocking" then blocked = blocked + 1 end end
    assert.equal(0, blocked) -- a line now: nothing to block
    local tc = 0
    for i = 1, 3 do tc = tc + sw[i]:stp().topology_changes end
    assert.is_true(tc > tc0)
    assert.is_true(#rec.stp > 0)
    assert.truthy(rec.stp[1].state and rec.stp[1].role and rec.stp[1].port)
  end)

  it("lets edge ports forward at once, until a BPDU shows a bridge behind them", function()
    local s = luaswitch.switch { name = "edge", stp = { hello = 1, forward_delay = 5, max_age = 10 } }
    sw, eps, links = { s }, {}, {}
    local host = s:port { kind = "socketpair", name = "host", stp_edge = true }
    local other = s:port { kind = "socketpair", name = "other" }
    eps[1], eps[2] = host:endpoint(), other:endpoint()
    assert.same({ host = "forwarding/designated", other = "listening/designated" }, states(s))
    assert.is_true(host:info().stp_edge)
    -- a BPDU arrives on the edge port: it drops back to listening
    local bpdu = BPDU_DST .. S.mac(9):gsub(":", ""):gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end) ..
      string.pack(">I2BBB", 38, 0x42, 0x42, 3) ..
      string.pack(">I2BBB", 0, 0, 0, 0) .. string.pack(">I8I4I8I2I2I2I2I2", 0x1000000000000001, 0,
        0x1000000000000001, 0x8001, 0, 20 * 256, 2 * 256, 15 * 256)
    bpdu = bpdu .. string.rep("\0", 60 - #bpdu)
    eps[1]:send(bpdu)
    S.eventually(function() return states(s).host ~= "forwarding/designated" end, 2, "the edge port giving way")
    assert.matches("/root$", states(s).host) -- it leads to a better root than ourselves
    assert.is_false(s:stp().is_root)
  end)

  it("turns off (every port forwards) and on again (ports start blocking), and reads back", function()
    local s = luaswitch.switch { name = "onoff" }
    sw, eps, links = { s }, {}, {}
    s:port { kind = "socketpair", name = "a" }
    assert.is_false(s:stp().enabled)
    s:stp(FAST)
    local st = s:stp()
    assert.is_true(st.enabled)
    assert.is_true(st.is_root)
    assert.same({ 0.125, 0.25, 0.75 }, { st.hello, st.forward_delay, st.max_age })
    assert.matches("^8000%.02%x+$", st.bridge_id)
    assert.equal("listening", st.ports[1].state)
    S.eventually(function() return s:stp().ports[1].state == "forwarding" end, 2, "forwarding")
    s:stp { priority = 4096, hello = 0.125, forward_delay = 0.25, max_age = 0.75, mac = "02:00:00:00:aa:01" }
    assert.equal("1000.02000000aa01", s:stp().bridge_id)
    s:stp(false)
    assert.is_false(s:stp().enabled)
    assert.equal("forwarding", s:ports()[1]:info().stp_state)
  end)

  it("rejects bad settings, naming them, and keeps the old ones", function()
    local s = luaswitch.switch { name = "bad", stp = FAST }
    sw, eps, links = { s }, {}, {}
    local p = s:port { kind = "socketpair", name = "a" }
    assert.has_error(function() s:stp { priority = 100 } end, "stp: bad option 'priority' (a multiple of 4096 expected, got 100)")
    assert.has_error(function() s:stp { hello = 0 } end, "stp: bad option 'hello' (must be between 0.05 and 10, got 0)")
    assert.has_error(function() s:stp { hello = 1, max_age = 1 } end, "stp: bad option 'max_age' (must be longer than hello (1 s))")
    assert.has_error(function() s:stp { speed = 1 } end, "stp: unknown option 'speed'")
    assert.has_error(function() p:set { stp_priority = 100 } end,
      "set: bad option 'stp_priority' (a multiple of 16 (0 to 240) expected, got 100)")
    assert.has_error(function() luaswitch.switch { stp = 5 } end)
    assert.same({ 0.125, 0.25, 0.75 }, { s:stp().hello, s:stp().forward_delay, s:stp().max_age })
    assert.equal(128, p:info().stp_priority)
  end)
end)

describe("STP with a Linux bridge #root", function()
  local made, sw

  after_each(function()
    if sw then sw:close() end
    for i = #made or 0, 1, -1 do made[i]:close() end
    made, sw = {}, nil
    luaswitch.stop()
  end)

  it("breaks a loop with a Linux bridge running stp_state 1, whichever is the root", function()
    if not S.is_root() then return pending("needs root (namespaces, veth)") end
    made = {}
    local ns = assert(netns.create(S.uniq("stp")))
    made[#made + 1] = ns
    -- a Linux bridge in the namespace with two links to luaswitch: a loop
    ns:check("ip link add br0 type bridge stp_state 1 forward_delay 200 hello_time 100 max_age 600 priority 32768")
    local v = {}
    for i = 1, 2 do
      v[i] = assert(netns.veth { name = "l" .. i, netns = ns, peer = S.uniq("sv" .. i) })
      made[#made + 1] = v[i]
      ns:check(("ip link set l%d master br0"):format(i))
    end
    ns:check("ip link set br0 up")
    sw = luaswitch.switch { name = "lx", stp = { priority = 4096, hello = 1, forward_delay = 2, max_age = 6 } }
    local p = {}
    for i = 1, 2 do p[i] = assert(sw:port { kind = "packet", name = "p" .. i, ifname = S.uniq("sv" .. i) }) end
    local function linux_state(i)
      local out = ns:check(("cat /sys/class/net/l%d/brport/state"):format(i))
      return tonumber(out) -- 0 disabled, 1 listening, 2 learning, 3 forwarding, 4 blocking
    end
    -- luaswitch (priority 4096) is the root: Linux blocks one of its two ports
    S.eventually(function()
      local a, b = linux_state(1), linux_state(2)
      return (a == 3 and b == 4) or (a == 4 and b == 3)
    end, 20, "Linux blocking one port")
    assert.is_true(sw:stp().is_root)
    S.eventually(function() return p[1]:info().stp_state == "forwarding" and p[2]:info().stp_state == "forwarding" end,
      10, "both luaswitch ports forwarding")
    local root = ns:check("cat /sys/class/net/br0/bridge/root_id"):gsub("%s+", "")
    assert.equal(sw:stp().bridge_id, root)
    -- Linux becomes the better bridge: luaswitch now blocks one of its ports
    ns:check("ip link set br0 type bridge priority 0")
    S.eventually(function()
      local a, b = p[1]:info().stp_state, p[2]:info().stp_state
      return (a == "forwarding" and b == "blocking") or (a == "blocking" and b == "forwarding")
    end, 30, "luaswitch blocking one port")
    assert.is_false(sw:stp().is_root)
    S.eventually(function() return linux_state(1) == 3 and linux_state(2) == 3 end, 10, "both Linux ports forwarding")
  end)
end)
