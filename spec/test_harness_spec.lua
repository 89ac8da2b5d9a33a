-- luaswitch.test, the harness for specs: virtual ports that send frames and expect them
-- with a deadline; matchers by field, by tcpdump expression (luaswitch.bpf) and by
-- function; failures that show what arrived against what was expected and write a pcap
-- per port (read back with tshark); expect_none; events dispatched while waiting (a punt
-- handler answers during an expect); the manual clock (delays released, aging run).

local luaswitch = require "luaswitch"
local F = require "luaswitch.frame"
local T = require "luaswitch.test"
local S = require "support"

local A, B, C = F.mac(1), F.mac(2), F.mac(3)

local function arp(src_mac, sender, target, extra)
  local o = { op = "request", src_mac = src_mac, sender_ip = sender, target_ip = target }
  for k, v in pairs(extra or {}) do o[k] = v end
  return F.arp(o)
end

local function udp(dport, extra)
  local o = { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", sport = 4000, dport = dport,
    payload = "hello" }
  for k, v in pairs(extra or {}) do o[k] = v end
  return F.udp(o)
end

-- run fn, which must raise; returns the message
local function failure(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected a failure")
  return tostring(err)
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

describe("luaswitch.test", function()
  local h, dir

  before_each(function()
    dir = S.tmpdir()
  end)

  after_each(function()
    if h and not h.closed and not h.switch.closed then S.audit(h.switch) end
    if h then h:close() end
    h = nil
    S.cleanup()
  end)

  local function harness(opts)
    opts = opts or {}
    opts.capture_dir = opts.capture_dir or dir
    h = T.harness(opts)
    return h
  end

  describe("expect", function()
    it("takes a matching frame and returns it parsed", function()
      harness()
      local a, b = h:port "a", h:port "b"
      a:send(arp(A, "10.0.0.1", "10.0.0.2"))
      local p = b:expect { type = "arp", src = A, dst = F.BROADCAST, arp = { op = "request", target_ip = "10.0.0.2" } }
      assert.equal("10.0.0.1", p.arp.sender_ip)
      assert.equal(p.len, #p.bytes)
      assert.same({}, b:received()) -- taken
      a:expect_none()               -- a flood does not come back to its sender
    end)

    it("leaves frames that do not match for later expects, in any order", function()
      harness()
      local a, b = h:port "a", h:port "b"
      a:send(udp(53))
      a:send(udp(123))
      a:send(arp(A, "10.0.0.1", "10.0.0.9"))
      b:expect { udp = { dport = 123 } }
      b:expect { type = "arp" }
      b:expect { type = "udp", udp = { dport = 53, payload = "hello" } }
      b:expect_none()
    end)

    it("waits up to `within` for a frame that comes late, without sleeping through it", function()
      harness { switch = { name = "late" } }
      local a, b = h:port "a", h:port "b"
      b.port:impair { delay = 0.15 }
      local t0 = luaswitch.monotime()
      a:send(udp(7))
      b:expect({ udp = { dport = 7 } }, { within = 2 })
      local dt = luaswitch.monotime() - t0
      assert.is_true(dt >= 0.14 and dt < 1.5, ("arrived after %.3f s"):format(dt))
    end)

    it("waits for `count` frames and returns them all", function()
      harness()
      local a, b = h:port "a", h:port "b"
      for i = 1, 5 do a:send(udp(1000 + i)) end
      local got = b:expect({ type = "udp" }, { count = 5 })
      assert.equal(5, #got)
      for i = 1, 5 do assert.equal(1000 + i, got[i].udp.dport) end
      local got1 = (function() a:send(udp(9)) return b:expect({ type = "udp" }, { count = 1 }) end)()
      assert.equal(1, #got1)
    end)

    it("matches addresses in any spelling, vlan = false for untagged, and ethertypes by name or number", function()
      harness { switch = { name = "v", vlan_aware = true } }
      local a = h:port { name = "a", vlan = { mode = "trunk", allowed = { 10 } } }
      local b = h:port { name = "b", vlan = 10 }
      a:send(F.ethernet { dst = F.BROADCAST, src = A, type = 0x88b5, vlan = 10, payload = "x", size = 64 })
      local p = b:expect { dst = "FF-FF-FF-FF-FF-FF", src = "02:00:00:00:00:01", vlan = false, type = 0x88b5 }
      assert.is_nil(p.vlan)
      b:send(arp(B, "10.0.0.2", "10.0.0.1"))
      a:expect { type = "arp", vlan = 10, arp = { sender_mac = "02-00-00-00-00-02" } }
      b:send(udp(1, { src_mac = B, dst_mac = A, src = "fd00::2", dst = "FD00:0::1" }))
      a:expect { type = "ipv6", ip6 = { dst = "fd00::1" }, udp = { dport = 1 } }
    end)

    it("fails with the frames that arrived, the fields that differ, and a pcap per port", function()
      harness { switch = { name = "diff", vlan_aware = true } }
      local a = h:port { name = "a", vlan = 10 }
      local b = h:port { name = "b", vlan = 10 }
      h:port { name = "c", vlan = 20 }
      a:send(arp(A, "10.0.0.1", "10.0.0.3"))
      a:send(udp(53))
      b:expect "udp port 53" -- taken: not in the diff
      local t0 = luaswitch.monotime()
      local msg = failure(function()
        b:expect({ type = "arp", vlan = 10, arp = { target_ip = "10.0.0.2" } }, { within = 0.1 })
      end)
      local dt = luaswitch.monotime() - t0
      assert.is_true(dt >= 0.1 and dt < 3, ("failed after %.3f s"):format(dt))
      assert.matches('expect: no frame matching {arp={target_ip="10.0.0.2"}, type="arp", vlan=10} on port b within 0.1 s',
        msg, 1, true)
      assert.matches("port b received 1 frame(s) that no expect took:", msg, 1, true)
      assert.matches("1%. %+%d+%.%d+s 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ARP request who%-has 10.0.0.3 tell 10.0.0.1, %d+ bytes",
        msg)
      assert.matches('arp.target_ip: expected "10.0.0.2", got "10.0.0.3"', msg, 1, true)
      assert.matches("vlan: expected 10, got untagged", msg, 1, true)
      assert.is_nil(msg:find("UDP", 1, true)) -- the taken frame is not listed
      -- a pcap file per port, named in the message, each with that port's frames both ways
      local paths = {}
      for port, path, n in msg:gmatch("\n  (%a): (%S+%.pcap) %((%d+) frames%)") do paths[port] = { path, tonumber(n) } end
      assert.same({ "a", "b", "c" }, (function() local l = {} for k in pairs(paths) do l[#l + 1] = k end table.sort(l) return l end)())
      assert.equal(2, paths.a[2]) -- what a sent
      assert.equal(2, paths.b[2]) -- what b received
      assert.equal(0, paths.c[2]) -- another VLAN
      for _, p in pairs(paths) do
        assert.is_true(exists(p[1]), p[1])
        assert.equal(dir, p[1]:match("^(.*)/[^/]+$"))
      end
      local recs = assert(F.read_pcap(paths.b[1]))
      assert.equal(2, #recs)
      assert.equal("arp", F.parse(recs[1].frame).arp and "arp")
      if S.have("tshark") then
        local p = io.popen("tshark -r " .. paths.a[1] .. " -T fields -e frame.protocols 2>&1")
        local out = p:read("a")
        p:close()
        assert.matches("eth:ethertype:arp\n", out, 1, true)
        assert.matches("eth:ethertype:ip:udp", out, 1, true)
      end
    end)

    it("fails naming nothing received when nothing came, and says what other ports got", function()
      harness()
      local a, b = h:port "a", h:port "b"
      h.switch:fdb_add(C, a.port) -- frames to C go back to a: b gets nothing
      local c = h:port "c"
      a:send(F.ethernet { dst = B, src = A, type = 0x88b5, payload = "first", size = 60 })
      c:expect { type = "experimental" }
      a:send(F.ethernet { dst = C, src = B, type = 0x88b5, payload = "to c", size = 60 })
      local msg = failure(function() c:expect({ src = B }, { within = 0.05 }) end)
      assert.matches("port c received no frame that an expect had not taken", msg, 1, true)
      assert.matches("meanwhile port b has 1 frame(s) waiting, the first: 02:00:00:00:00:01 > 02:00:00:00:00:02", msg, 1,
        true)
      assert.matches("c: " .. dir:gsub("%p", "%%%0") .. "/test%-1%-c%.pcap %(1 frames%)", msg)
      -- a second failure writes new files
      msg = failure(function() c:expect(nil, { within = 0 }) end)
      assert.matches("c: " .. dir:gsub("%p", "%%%0") .. "/test%-2%-c%.pcap", msg)
      h:flush()
    end)

    it("fails as an error at the caller's line, in a plain script as in busted", function()
      harness()
      local a = h:port "a"
      local ok, err = pcall(function()
        a:expect(nil, { within = 0 }) -- this line
      end)
      assert.is_false(ok)
      assert.matches("test_harness_spec%.lua:%d+: expect: no frame matching any frame on port a within 0 s", err)
    end)
  end)

  describe("expect_none", function()
    it("passes when nothing matching arrives, whatever else does", function()
      harness()
      local a, b = h:port "a", h:port "b"
      a:send(udp(53))
      b:expect_none("arp", { within = 0.05 })
      b:expect_none { udp = { dport = 54 } }
      b:expect { udp = { dport = 53 } } -- expect_none took nothing
    end)

    it("fails on a matching frame, already waiting or arriving within the window", function()
      harness()
      local a, b = h:port "a", h:port "b"
      a:send(arp(A, "10.0.0.1", "10.0.0.2"))
      local msg = failure(function() b:expect_none("arp", { within = 0.5 }) end)
      assert.matches('expect_none: port b received 1 frame(s) matching tcpdump "arp" within 0.5 s:', msg, 1, true)
      assert.matches("  1%. %+%d+%.%d+s 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ARP request who%-has 10.0.0.2", msg)
      assert.matches("b: " .. dir:gsub("%p", "%%%0") .. "/test%-1%-b%.pcap %(1 frames%)", msg)
      assert.equal(1, b:flush())
      local t0 = luaswitch.monotime()
      a:send(udp(53))
      msg = failure(function() b:expect_none(nil, { within = 10 }) end)
      assert.is_true(luaswitch.monotime() - t0 < 5, "fails as soon as the frame is there")
      assert.matches("received 1 frame(s) matching any frame within 10 s:\n  1. +", msg, 1, true)
      assert.matches("10.0.0.1.4000 > 10.0.0.2.53: UDP", msg, 1, true)
    end)
  end)

  describe("matchers", function()
    it("take tcpdump expressions as text, as luaswitch.bpf programs, and with fields", function()
      harness { switch = { name = "bpf", vlan_aware = true } }
      local a = h:port { name = "a", vlan = 10 }
      local t = h:port { name = "t", vlan = { mode = "trunk", allowed = { 10 } } }
      a:send(udp(53))
      t:expect "vlan 10 and udp dst port 53"
      a:send(udp(53))
      t:expect(luaswitch.bpf("vlan and ether src " .. A))
      a:send(udp(5353))
      t:expect { vlan = 10, bpf = "vlan 10 and udp port 5353", udp = { sport = 4000 } }
      a:send(udp(53))
      local msg = failure(function() t:expect({ bpf = "udp port 54", udp = { dport = 53 } }, { within = 0.05 }) end)
      assert.matches('does not match tcpdump expression "udp port 54"', msg, 1, true)
      t:flush()
      S.raises("can't parse filter expression", function() t:expect("udp prot 53") end)
    end)

    it("take functions, with a reason when they refuse", function()
      local m = T.matcher(function(p, bytes) return #bytes > 100, "too short" end)
      local ok, why = m:test(udp(1))
      assert.is_false(ok)
      assert.same({ "too short" }, why)
      assert.is_true(T.matcher(function(p) return p.udp.dport == 1 end):test(udp(1)))
      ok, why = T.matcher { udp = { dport = function(v) return v > 10, "a port above 10" end } }:test(udp(1))
      assert.is_false(ok)
      assert.same({ "udp.dport: a port above 10 (got 1)" }, why)
    end)

    it("describe mismatches field by field, missing layers and runts too", function()
      local ok, why = T.matcher { type = "tcp", ip = { ttl = 1 }, arp = { op = "reply" } }:test(udp(1))
      assert.is_false(ok)
      assert.same({ 'arp: expected {op="reply"}, got none', "ip.ttl: expected 1, got 64",
        "type: expected tcp, got ipv4 (0x0800)" }, why)
      ok, why = T.matcher { type = "arp" }:test("short")
      assert.is_false(ok)
      assert.same({ "type: expected arp (0x0806), got none" }, why)
      ok, why = T.matcher { type = 0x0806 }:test(udp(1))
      assert.same({ "type: expected arp (0x0806), got ipv4 (0x0800)" }, why)
      assert.is_true(T.matcher { bytes = udp(1) }:test(udp(1)))
      assert.is_true(T.matcher(nil):test("anything at all"))
    end)

    it("reject what is not a matcher", function()
      S.raises("bad matcher %(nil, tcpdump expression, luaswitch.bpf program, function or table expected, got number%)",
        function() T.matcher(42) end)
      S.raises("matcher: unknown type 'ipx'", function() T.matcher({ type = "ipx" }):test(udp(1)) end)
    end)
  end)

  describe("the harness", function()
    it("dispatches events while it waits: a punt handler's answer arrives during an expect", function()
      harness()
      local a, b = h:port "a", h:port "b"
      a.port:filter("in", { { match = "arp", action = "punt" } })
      local punted = 0
      h.switch:on("punt", function(ev)
        punted = punted + 1
        ev.port:inject(ev.frame)
      end)
      a:send(arp(A, "10.0.0.1", "10.0.0.2"))
      b:expect({ type = "arp" }, { within = 2 })
      assert.equal(1, punted)
    end)

    it("moves the manual clock: delayed frames leave when it passes their time, entries age", function()
      harness { switch = { name = "clk", aging = 30 } }
      h:manual_clock()
      assert.equal("manual", luaswitch.clock())
      local a, b = h:port "a", h:port "b"
      b.port:impair { delay = 1 }
      local aged = {}
      h.switch:on("age", function(ev) aged[#aged + 1] = ev.mac end)
      local t0 = h:now()
      a:send(udp(9))
      b:expect_none(nil, { within = 0.1 })
      assert.equal(t0 + 0.5, h:advance(0.5))
      b:expect_none()
      h:advance(0.5)
      b:expect { udp = { dport = 9 } } -- released by the move, sent by the data plane just after
      h:advance(30, { step = 10 })
      assert.same({ A }, aged) -- the age event was dispatched by advance
      h:close()
      assert.equal("real", luaswitch.clock())
    end)

    it("closes what it made, leaves a borrowed switch open, and checks its arguments", function()
      local sw = luaswitch.switch "mine"
      local own = sw:port { kind = "socketpair", name = "own" }
      harness { switch = sw }
      local a = h:port "a"
      local o = h:attach("own", own, own:endpoint())
      a:send(udp(1))
      o:expect { udp = { dport = 1 } }
      S.raises("a virtual port named 'a' exists already", function() h:port "a" end)
      S.raises("unknown option 'whithin'", function() a:expect_none(nil, { whithin = 1 }) end)
      S.raises("bad option 'count'", function() a:expect(nil, { count = 0 }) end)
      S.raises("harness: unknown option 'swtich'", function() T.harness { swtich = {} } end)
      S.audit(sw)
      h:close()
      assert.is_true(a.port.closed)
      assert.is_false(own.closed)
      assert.is_false(sw.closed)
      S.raises("virtual port a is closed", function() a:send(udp(1)) end)
      sw:close()
      local h2 = T.harness()
      local sw2 = h2.switch
      h2:port "x"
      h2:close()
      assert.is_true(sw2.closed)
    end)
  end)
end)
