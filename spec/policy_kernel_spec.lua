-- Filters and impairments against real kernel network stacks (root only): three hosts in
-- network namespaces on TAP ports of one switch. arping stopped by an ARP-drop rule while
-- pings to a resolved neighbour go on; a 20 ms delay seen in ping RTT; a 10 Mbit/s rate
-- limit seen by iperf3; and the reset back to full speed and zero loss. Every namespace is
-- created here and removed in after_each (and by the exit hook if the process dies).

local luaswitch = require "luaswitch"
local netns = require "luaswitch.netns"
local S = require "support"

local ROOT = S.is_root()

describe("policy against kernel hosts #root", function()
  local sw, made, h, p

  before_each(function()
    made, h, p = {}, {}, {}
    if not ROOT then return end
    sw = luaswitch.switch "policy"
    for i = 1, 3 do
      h[i] = assert(netns.create(S.uniq("k" .. i)))
      made[#made + 1] = h[i]
      p[i] = assert(sw:port { kind = "tap", name = "h" .. i, ifname = "eth0", netns = h[i].name,
                              addresses = { "10.0.9." .. i .. "/24" } })
    end
  end)

  after_each(function()
    if sw then sw:close() end
    for i = #made, 1, -1 do made[i]:close() end
    luaswitch.stop()
  end)

  local function needs_root()
    if not ROOT then pending("needs root (network namespaces, TAP)") return true end
  end

  -- ping statistics: received, loss %, min and avg RTT (ms)
  local function ping(from, to, count, interval)
    local out = from:run(("ping -n -q -c %d -i %s -W 2 %s"):format(count, interval or "0.2", to))
    local rx = tonumber(out:match("(%d+) received"))
    local loss = tonumber(out:match("([%d.]+)%% packet loss"))
    local min, avg = out:match("= ([%d.]+)/([%d.]+)/")
    return rx, loss, tonumber(min), tonumber(avg), out
  end

  -- iperf3 TCP from host a to host b's address for secs seconds: receiver Mbit/s
  local function iperf_mbps(a, b, addr, secs)
    local server = b:spawn("iperf3 -s -1")
    S.eventually(function()
      local _, rc = b:run("ss -ltn | grep -q ':5201 '")
      return rc == 0
    end, 5, "iperf3 server")
    local out, rc = a:run(("iperf3 -c %s -t %d -f m"):format(addr, secs))
    server:wait(5)
    server:cleanup()
    assert.equal(0, rc, out)
    return tonumber(out:match("([%d.]+) Mbits/sec%s+receiver")), out
  end

  it("drops ARP on a port: arping fails, pings to a resolved neighbour go on, counters match", function()
    if needs_root() then return end
    h[1]:check("ping -c 2 -i 0.2 -W 2 10.0.9.2") -- resolves 10.0.9.2
    p[1]:filter("in", {
      { match = "arp", action = "drop" },
      { match = "icmp[icmptype] = icmp-echo", action = "count" },
    })
    local out, rc = h[1]:run("arping -c 3 -w 3 -I eth0 10.0.9.3")
    assert.are_not.equal(0, rc, out)
    assert.matches("3 packets transmitted, 0 packets received", out)
    local rx, loss = ping(h[1], "10.0.9.2", 5)
    assert.equal(5, rx)
    assert.equal(0, loss)
    local rules = p[1]:filter("in")
    assert.is_true(rules[1].matches >= 3, "ARP matches " .. rules[1].matches)
    assert.equal(5, rules[2].matches)
    assert.equal(rules[1].matches, p[1]:stats().drops.filter)
    -- h3 never saw h1's requests; from h2 (no rule) arping works
    h[2]:check("arping -c 1 -w 3 -I eth0 10.0.9.3")
    p[1]:filter("in", {})
    h[1]:check("arping -c 1 -w 3 -I eth0 10.0.9.3")
  end)

  it("shows a 20 ms delay in ping RTT (>= 20 ms, < 25 ms), and none after the reset", function()
    if needs_root() then return end
    h[1]:check("ping -c 1 -W 2 10.0.9.2")
    p[2]:impair { delay = 0.02 } -- towards h2: the echo requests
    local rx, loss, min, avg, out = ping(h[1], "10.0.9.2", 10)
    assert.equal(10, rx, out)
    assert.equal(0, loss)
    assert.is_true(min >= 20, "min RTT " .. min)
    assert.is_true(avg < 25, "avg RTT " .. avg)
    assert.equal(0.02, p[2]:impair().out.delay)
    p[2]:impair(nil)
    rx, loss, min, avg = ping(h[1], "10.0.9.2", 10, "0.05")
    assert.equal(10, rx)
    assert.is_true(avg < 5, "avg RTT after reset " .. avg)
  end)

  it("caps iperf3 at a 10 Mbit/s rate limit within 10%, and restores full speed and zero loss at once", function()
    if needs_root() then return end
    local full = iperf_mbps(h[1], h[2], "10.0.9.2", 2)
    p[2]:impair { rate = "10mbit", limit = 32 }
    local capped, out = iperf_mbps(h[1], h[2], "10.0.9.2", 4)
    print(("    iperf3 TCP: %.0f Mbit/s free, %.2f Mbit/s under a 10 Mbit/s limit"):format(full, capped))
    assert.is_true(capped >= 9 and capped <= 11, out)
    -- loss and delay as well, then back to zero: full speed and no loss at once
    p[2]:impair { rate = "10mbit", limit = 32, loss = 0.2, seed = 1 }
    local _, lossy = ping(h[1], "10.0.9.2", 20, "0.05")
    assert.is_true(lossy > 0)
    p[2]:impair(nil)
    local rx, loss = ping(h[1], "10.0.9.2", 50, "0.02")
    assert.equal(50, rx)
    assert.equal(0, loss)
    local after = iperf_mbps(h[1], h[2], "10.0.9.2", 2)
    print(("    after the reset: %.0f Mbit/s"):format(after))
    assert.is_true(after > 10 * capped, ("%.0f Mbit/s after the reset"):format(after))
  end)
end)
