-- luaswitch.frame: builders and parsers of Ethernet, 802.1Q/802.1ad, ARP, IPv4, IPv6, ICMP,
-- ICMPv6 (echo, neighbour discovery), UDP and TCP. Checked against themselves (round
-- trips, every truncation, random bytes), against real decoders (tshark with checksum
-- validation on a pcap file written here; scapy building the same frames byte for byte),
-- and against a real kernel (#root): a host in a network namespace on a TAP port pings,
-- sends UDP and opens TCP to a host played by this spec, which answers with frames built
-- here — the kernel accepting them is the proof their checksums are right.

local luaswitch = require "luaswitch"
local F = require "luaswitch.frame"
local S = require "support"

local A, B = F.mac(1), F.mac(2)

-- run a shell command, return its stdout and exit status
local function sh(cmd)
  local p = io.popen(cmd .. "; echo \"::rc=$?\"")
  local out = p:read("a")
  p:close()
  return (out:gsub("::rc=%d+%s*$", "")), tonumber(out:match("::rc=(%d+)%s*$"))
end

local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

describe("luaswitch.frame", function()
  describe("addresses and checksums", function()
    it("keeps the Ethernet API other specs use: mac, mac_bytes, mac_string, ethernet, parse", function()
      assert.equal("02:00:00:00:00:01", F.mac(1))
      assert.equal("02:01:02:03:04:05", F.mac(0x0102030405))
      assert.equal("\2\0\0\0\0\1", F.mac_bytes("02:00:00:00:00:01"))
      assert.equal("\170\187\204\221\238\255", F.mac_bytes("AA-BB-CC-DD-EE-FF"))
      assert.equal("aa:bb:cc:dd:ee:ff", F.mac_string("\170\187\204\221\238\255"))
      assert.equal("ff:ff:ff:ff:ff:ff", F.BROADCAST)
      assert.equal(0x88b5, F.ETH_P_EXPERIMENTAL)
      local f = F.ethernet { dst = F.BROADCAST, src = A, payload = "hello", size = 64 }
      assert.equal(64, #f)
      assert.equal("\255\255\255\255\255\255\2\0\0\0\0\1\136\181hello", f:sub(1, 19))
      local p = F.parse(f)
      assert.same({ F.BROADCAST, A, 0x88b5, {} }, { p.dst, p.src, p.type, p.tags })
      assert.equal("hello" .. string.rep("\0", 45), p.payload)
      -- vlan + pcp, then stacked tags (802.1ad outside)
      p = F.parse(F.ethernet { dst = B, src = A, vlan = 42, pcp = 5, type = 0x0800 })
      assert.same({ { tpid = 0x8100, vid = 42, pcp = 5 } }, p.tags)
      assert.equal(42, p.vlan)
      p = F.parse(F.ethernet { dst = B, src = A, tags = { { tpid = 0x88a8, vid = 100, pcp = 1 }, { vid = 10 } } })
      assert.same({ { tpid = 0x88a8, vid = 100, pcp = 1 }, { tpid = 0x8100, vid = 10, pcp = 0 } }, p.tags)
      assert.equal(0x88b5, p.type)
      assert.is_nil(F.parse("too short"))
    end)

    it("reads and writes IPv4 and IPv6 text, IPv6 in its RFC 5952 form", function()
      assert.equal("\10\0\0\1", F.ip4_bytes("10.0.0.1"))
      assert.equal("192.168.255.0", F.ip4_string("\192\168\255\0"))
      local canonical = {
        { "2001:db8:0:0:0:0:2:1", "2001:db8::2:1" },
        { "2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1" },
        { "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1" }, -- a single zero group stays
        { "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1" },     -- the first of equal runs
        { "2001:0:0:1:0:0:0:1", "2001:0:0:1::1" },           -- the longest run
        { "2001:DB8::AAAA", "2001:db8::aaaa" },
        { "::", "::" }, { "::1", "::1" }, { "fe80::", "fe80::" },
        { "::ffff:10.0.0.1", "::ffff:10.0.0.1" }, { "::ffff:a00:1", "::ffff:10.0.0.1" },
        { "64:ff9b::192.0.2.33", "64:ff9b::c000:221" },
        { "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8" }, { "1::8", "1::8" }, { "1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0" },
      }
      for _, c in ipairs(canonical) do
        assert.equal(c[2], F.ip6_string(F.ip6_bytes(c[1])), c[1])
        assert.equal(c[2], F.normalize(c[1]), c[1])
      end
      assert.equal("02:00:00:00:00:0a", F.normalize("02-00-00-00-00-0A"))
      for _, s in ipairs { "1:2:3:4:5:6:7:8:9", "1::2::3", ":1::", "1:::2", "12345::", "g::", "::1.2.3", "::256.0.0.1", "" } do
        S.raises("bad argument #1 to 'ip6_bytes' %(malformed IPv6 address", function() F.ip6_bytes(s) end)
      end
      for _, s in ipairs { "10.0.0", "10.0.0.256", "1.2.3.4.5", "a.b.c.d", "10.0.0.1 " } do
        S.raises("bad argument #1 to 'ip4_bytes' %(malformed IPv4 address", function() F.ip4_bytes(s) end)
      end
    end)

    it("computes the Internet checksum as RFC 1071 does", function()
      -- RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2, the checksum its complement
      assert.equal(0x220d, F.checksum("\0\1\242\3\244\245\246\247"))
      assert.equal(0xffff, F.checksum(""))
      -- odd length: the last byte is padded with a zero
      assert.equal(F.checksum("\1\2\3\0"), F.checksum("\1\2\3"))
      -- over data holding its own checksum, the result is 0
      local data = "\69\0\0\115\0\0\64\0\64\17\0\0\192\168\0\1\192\168\0\199"
      local ck = F.checksum(data)
      assert.equal(0xb861, ck) -- the classic example header from Wikipedia's IPv4 checksum article
      assert.equal(0, F.checksum(data:sub(1, 10) .. string.pack(">I2", ck) .. data:sub(13)))
    end)
  end)

  describe("builders and the parser", function()
    it("round-trips ARP requests and replies", function()
      local req = F.arp { op = "request", src_mac = A, sender_ip = "10.0.0.1", target_ip = "10.0.0.2" }
      assert.equal(42, #req)
      local p = F.parse(req)
      assert.same({ dst = F.BROADCAST, src = A, type = 0x0806 }, { dst = p.dst, src = p.src, type = p.type })
      assert.same({ htype = 1, ptype = 0x0800, hlen = 6, plen = 4, opcode = 1, op = "request", sender_mac = A,
        sender_ip = "10.0.0.1", target_mac = "00:00:00:00:00:00", target_ip = "10.0.0.2" }, p.arp)
      local rep = F.arp { op = "reply", src_mac = B, dst_mac = A, sender_ip = "10.0.0.2", target_ip = "10.0.0.1",
        size = 60 }
      assert.equal(60, #rep)
      p = F.parse(rep)
      assert.same({ "reply", B, A, A }, { p.arp.op, p.arp.sender_mac, p.arp.target_mac, p.dst })
      -- a gratuitous ARP on a VLAN, an opcode by number
      p = F.parse(F.arp { op = 4, sender_mac = A, sender_ip = "10.0.0.1", target_ip = "10.0.0.1", target_mac = A, vlan = 7 })
      assert.same({ "rarp_reply", 4, 7, A }, { p.arp.op, p.arp.opcode, p.vlan, p.dst })
    end)

    it("round-trips UDP over IPv4 and IPv6 with valid checksums, on tags", function()
      for _, fam in ipairs { { "10.0.0.1", "10.0.0.2", "ip" }, { "fd00::1", "fd00::2", "ip6" } } do
        local f = F.udp { src_mac = A, dst_mac = B, src = fam[1], dst = fam[2], sport = 5353, dport = 7777,
          payload = "hello", ttl = 17, tos = 0xb8, tags = { { tpid = 0x88a8, vid = 100 }, { vid = 10, pcp = 6 } } }
        local p = F.parse(f)
        assert.same({ 100, 10, 6 }, { p.tags[1].vid, p.tags[2].vid, p.tags[2].pcp })
        local ip = p[fam[3]]
        assert.same({ fam[1], fam[2] }, { ip.src, ip.dst })
        assert.same({ sport = 5353, dport = 7777, len = 13, payload = "hello", checksum_ok = true },
          { sport = p.udp.sport, dport = p.udp.dport, len = p.udp.len, payload = p.udp.payload,
            checksum_ok = p.udp.checksum_ok })
        if fam[3] == "ip" then
          assert.same({ 4, 17, 0xb8, 46, 0, 17, 33, true }, { ip.version, ip.ttl, ip.tos, ip.dscp, ip.ecn, ip.proto,
            ip.len, ip.checksum_ok })
        else
          assert.same({ 6, 17, 0xb8, 13, 17, 17 }, { ip.version, ip.hlim, ip.tc, ip.plen, ip.next, ip.proto })
        end
      end
      -- IPv4: checksum 0 means "none" and is valid; padding after the datagram is ignored
      local p = F.parse(F.udp { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", dport = 9,
        checksum = 0, payload = "x", size = 60 })
      assert.same({ 0, true, "x", 60 }, { p.udp.checksum, p.udp.checksum_ok, p.udp.payload, p.len })
      -- IPv6 has no "none": 0 is a bad checksum there
      p = F.parse(F.udp { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2", dport = 9, checksum = 0 })
      assert.is_false(p.udp.checksum_ok)
    end)

    it("round-trips TCP with flags, options and payload, and detects bad checksums", function()
      local f = F.tcp { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", sport = 40000, dport = 80,
        seq = 0xfffffff0, ack = 7, flags = "SA", window = 1000, mss = 1460,
        options = "\1\3\3\7\4\2\8\10\0\0\0\1\0\0\0\2", df = true, ip_id = 0x1234 }
      local p = F.parse(f)
      local t = p.tcp
      assert.same({ 40000, 80, 0xfffffff0, 7, "SA", 0x12, 1000, 40, 1460, 7, true, 1, 2, true },
        { t.sport, t.dport, t.seq, t.ack, t.flags, t.bits, t.window, t.hlen, t.mss, t.wscale, t.sack_ok, t.ts_val,
          t.ts_ecr, t.checksum_ok })
      assert.same({ true, 0x1234, true }, { p.ip.df, p.ip.id, p.ip.checksum_ok })
      for flags, want in pairs { S = "S", ["."] = "A", PA = "PA", fa = "FA", R = "R", FSRPAUEC = "FSRPAUEC", [""] = "" } do
        assert.equal(want, F.parse(F.tcp { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2", dport = 1,
          flags = flags }).tcp.flags)
      end
      assert.equal("S", F.parse(F.tcp { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2", dport = 1 }).tcp.flags)
      p = F.parse(F.tcp { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2", dport = 1, flags = "PA",
        payload = "GET / HTTP/1.0\r\n\r\n" })
      assert.same({ "GET / HTTP/1.0\r\n\r\n", true }, { p.tcp.payload, p.tcp.checksum_ok })
      -- a wrong checksum on purpose, and one flipped bit in a good frame
      p = F.parse(F.tcp { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", dport = 1, checksum = 0xbeef,
        ip_checksum = 0xdead })
      assert.same({ 0xbeef, false, 0xdead, false }, { p.tcp.checksum, p.tcp.checksum_ok, p.ip.checksum, p.ip.checksum_ok })
      local good = F.tcp { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", dport = 1, payload = "abcd" }
      local flipped = good:sub(1, -2) .. string.char(good:byte(-1) ~ 1)
      assert.is_true(F.parse(good).tcp.checksum_ok)
      assert.is_false(F.parse(flipped).tcp.checksum_ok)
      assert.is_true(F.parse(flipped).ip.checksum_ok)
    end)

    it("round-trips ICMP and ICMPv6 echo, and any ICMP type", function()
      local p = F.parse(F.icmp_echo { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", id = 7, seq = 3,
        payload = "ping" })
      assert.same({ 1, 8, 0, "echo_request", 7, 3, "ping", true }, { p.ip.proto, p.icmp.type, p.icmp.code, p.icmp.kind,
        p.icmp.id, p.icmp.seq, p.icmp.payload, p.icmp.checksum_ok })
      p = F.parse(F.icmp_echo { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2", id = 7, seq = 3, reply = true,
        payload = "ping" })
      assert.same({ 58, 129, "echo_reply", 7, 3, "ping", true }, { p.ip6.next, p.icmp6.type, p.icmp6.kind, p.icmp6.id,
        p.icmp6.seq, p.icmp6.payload, p.icmp6.checksum_ok })
      assert.is_nil(p.icmp)
      -- the ICMPv6 checksum covers the pseudo-header: the same message to another address is bad
      local f = F.icmp_echo { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2" }
      local other = f:sub(1, 14 + 39) .. "\3" .. f:sub(14 + 41)
      assert.equal("fd00::3", F.parse(other).ip6.dst)
      assert.is_false(F.parse(other).icmp6.checksum_ok)
      -- destination unreachable, fragmentation needed, with the MTU
      p = F.parse(F.icmp { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", type = 3, code = 4,
        body = "\0\0\5\220" .. "quoted header" })
      assert.same({ "dest_unreachable", 4, 1500, true }, { p.icmp.kind, p.icmp.code, p.icmp.mtu, p.icmp.checksum_ok })
      p = F.parse(F.icmp { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2", type = 2, body = "\0\0\5\0" })
      assert.same({ "packet_too_big", true }, { p.icmp6.kind, p.icmp6.checksum_ok })
    end)

    it("builds neighbour solicitations and advertisements as RFC 4861 says", function()
      local ns = F.neighbor_solicitation { src_mac = A, src = "fd00::1", target = "fd00::abcd:2" }
      local p = F.parse(ns)
      assert.same({ "33:33:ff:cd:00:02", "ff02::1:ffcd:2", 255 }, { p.dst, p.ip6.dst, p.ip6.hlim })
      assert.same({ 135, "neighbor_solicitation", "fd00::abcd:2", A, true },
        { p.icmp6.type, p.icmp6.kind, p.icmp6.target, p.icmp6.sll, p.icmp6.checksum_ok })
      -- duplicate address detection: from ::, without the source link-layer option
      p = F.parse(F.neighbor_solicitation { src_mac = A, src = "::", target = "fd00::1" })
      assert.same({ "::", {}, true }, { p.ip6.src, p.icmp6.options, p.icmp6.checksum_ok })
      assert.is_nil(p.icmp6.sll)
      local na = F.neighbor_advertisement { src_mac = B, dst_mac = A, src = "fd00::2", dst = "fd00::1", router = true }
      p = F.parse(na)
      assert.same({ 136, "fd00::2", true, true, true, B, true }, { p.icmp6.type, p.icmp6.target, p.icmp6.router,
        p.icmp6.solicited, p.icmp6.override, p.icmp6.tll, p.icmp6.checksum_ok })
      -- unsolicited, to all nodes: the MAC follows the group address
      p = F.parse(F.neighbor_advertisement { src_mac = B, src = "fd00::2", dst = "ff02::1", solicited = false, tll = false })
      assert.same({ "33:33:00:00:00:01", false, false, {} }, { p.dst, p.icmp6.router, p.icmp6.solicited, p.icmp6.options })
    end)

    it("takes any IP protocol, and maps group addresses to group MACs", function()
      local p = F.parse(F.ip { src_mac = A, src = "10.1.2.3", dst = "239.129.2.3", proto = 89, payload = "ospf?" })
      assert.same({ "01:00:5e:01:02:03", 89, "ospf?", true }, { p.dst, p.ip.proto, p.ip.payload, p.ip.checksum_ok })
      assert.equal(F.BROADCAST, F.parse(F.udp { src_mac = A, src = "10.0.0.1", dst = "255.255.255.255", dport = 67 }).dst)
      p = F.parse(F.ip { src_mac = A, src = "fe80::1", dst = "ff02::16", proto = 59, flow = 0xabcde, tos = 3 })
      assert.same({ "33:33:00:00:00:16", 59, 0xabcde, 3 }, { p.dst, p.ip6.proto, p.ip6.flow, p.ip6.tc })
      -- IPv4 options make a longer header; the checksum covers them
      p = F.parse(F.ip { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", proto = 17,
        ip_options = "\148\4\0\0" })
      assert.same({ 24, "\148\4\0\0", true }, { p.ip.hlen, p.ip.options, p.ip.checksum_ok })
    end)

    it("raises errors that name the bad option", function()
      local base = { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2" }
      local function with(extra, drop)
        local t = {}
        for k, v in pairs(base) do if k ~= drop then t[k] = v end end
        for k, v in pairs(extra) do t[k] = v end
        return t
      end
      local cases = {
        { "udp", with { dport = 70000 }, "frame.udp: bad option 'dport' %(an integer between 0 and 65535 expected, got 70000%)" },
        { "udp", with {}, "frame.udp: missing option 'dport'" },
        { "udp", with { dport = 1, dprot = 2 }, "frame.udp: unknown option 'dprot'" },
        { "udp", with({ dport = 1 }, "src_mac"), "frame.udp: missing option 'src_mac'" },
        { "udp", with { dport = 1, src = "10.0.0.300" }, "frame.udp: bad option 'src' %(an IPv4 or IPv6 address expected, got '10.0.0.300'%)" },
        { "udp", with { dport = 1, dst = "fd00::2" }, "frame.udp: bad option 'dst' %(an IPv4 address like 'src' expected, got 'fd00::2'%)" },
        { "udp", with { dport = 1, dst_mac = "02:00:00:00:00" }, "frame.udp: bad option 'dst_mac' %(malformed MAC address '02:00:00:00:00'%)" },
        { "udp", with { dport = 1, payload = 5 }, "frame.udp: bad option 'payload' %(string expected, got number%)" },
        { "udp", with { dport = 1, ttl = 256 }, "frame.udp: bad option 'ttl'" },
        { "udp", with { dport = 1, flow = 1 }, "frame.udp: bad option 'flow' %(IPv6 only%)" },
        { "udp", with { dport = 1, vlan = 4096 }, "frame.udp: bad option 'vlan'" },
        { "udp", with { dport = 1, tags = { { vid = 5000 } } }, "frame.udp: bad option 'tags%[1%]' %(vid: 0 to 4095 expected, got 5000%)" },
        { "tcp", with { dport = 1, flags = "SX" }, "frame.tcp: bad option 'flags' %(letters of \"FSRPAUEC\"" },
        { "tcp", with { dport = 1, seq = -1 }, "frame.tcp: bad option 'seq'" },
        { "tcp", with { dport = 1, options = string.rep("\1", 41) }, "frame.tcp: bad option 'options' %(at most 40 bytes" },
        { "icmp_echo", with { id = 1.5 }, "frame.icmp_echo: bad option 'id' %(an integer between 0 and 65535 expected, got 1.5%)" },
        { "icmp_echo", with { reply = "yes" }, "frame.icmp_echo: bad option 'reply' %(boolean expected, got 'yes'%)" },
        { "icmp", with {}, "frame.icmp: missing option 'type'" },
        { "neighbor_solicitation", with { target = "10.0.0.2" }, "frame.neighbor_solicitation: bad option 'target' %(an IPv6 address expected" },
        { "neighbor_advertisement", with {}, "frame.neighbor_advertisement: bad option 'src' %(an IPv6 address expected" },
        { "arp", { src_mac = A, sender_ip = "10.0.0.1", target_ip = "10.0.0.2" }, "frame.arp: missing option 'op'" },
        { "arp", { op = "ask", src_mac = A, sender_ip = "10.0.0.1", target_ip = "10.0.0.2" }, "frame.arp: bad option 'op' %(\"request\", \"reply\" or an opcode expected, got 'ask'%)" },
        { "arp", { op = "reply", src_mac = A, sender_ip = "10.0.0.1", target_ip = "10.0.0.2" }, "frame.arp: missing option 'target_mac' %(or 'dst_mac'%) for a reply" },
        { "arp", { op = "request", src_mac = A, sender_ip = "fd00::1", target_ip = "10.0.0.2" }, "frame.arp: bad option 'sender_ip' %(an IPv4 address expected, got 'fd00::1'%)" },
        { "ethernet", { dst = B, src = A, type = 0x10000 }, "frame.ethernet: bad option 'type'" },
        { "ethernet", { dst = B, src = A, pcp = 3 }, "frame.ethernet: bad option 'pcp' %(it needs the option 'vlan'%)" },
        { "ethernet", { dst = B }, "frame.ethernet: missing option 'src'" },
        { "ip", with { proto = 6, payload = string.rep("x", 65516) }, "frame.ip: packet of 65536 bytes is longer than IPv4 allows" },
      }
      for i, c in ipairs(cases) do
        local err = S.raises(c[3], function() F[c[1]](c[2]) end)
        -- reported at the caller's line, not inside frame.lua
        assert.matches("^[^:]*spec/frame_spec%.lua:%d+: frame%.", err, "case " .. i)
      end
      S.raises("bad argument #1 to 'udp' %(table of options expected, got string%)", function() F.udp("x") end)
      S.raises("bad argument #1 to 'parse' %(string expected, got nil%)", function() F.parse() end)
      S.raises("bad argument #1 to 'mac_bytes' %(malformed MAC address 'nope'%)", function() F.mac_bytes("nope") end)
    end)

    it("never raises on bad bytes: every truncation of every kind of frame, and random bytes", function()
      local frames = {
        F.arp { op = "request", src_mac = A, sender_ip = "10.0.0.1", target_ip = "10.0.0.2", vlan = 3 },
        F.udp { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", dport = 53, payload = "q" },
        F.tcp { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2", dport = 80, mss = 1400, payload = "x" },
        F.icmp_echo { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", payload = "abc" },
        F.neighbor_advertisement { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2" },
        F.ip { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", proto = 6, ip_options = "\1\1\1\1" },
      }
      local n = 0
      for _, f in ipairs(frames) do
        for len = 0, #f do
          local p = F.parse(f:sub(1, len))
          n = n + 1
          if len < 14 then assert.is_nil(p) else
            assert.is_string(F.summary(p))
            if len < #f then -- something is missing: it says so, or a checksum fails
              local l4 = p.udp or p.tcp or p.icmp or p.icmp6
              assert.is_true(p.malformed ~= nil or (p.ip or p.ip6 or {}).truncated == true or
                (p.type == 0x0806 and len < 22) or (l4 ~= nil and l4.checksum_ok == false) or p.arp == nil,
                ("prefix %d of %s"):format(len, F.summary(f)))
            end
          end
        end
      end
      local rnd = 12345
      local function byte() rnd = (rnd * 1103515245 + 12345) % 2147483648 return rnd >> 16 & 0xff end
      for _ = 1, 3000 do
        local bytes = {}
        -- an Ethernet header with a known ethertype, then noise
        local et = ({ "\8\0", "\134\221", "\8\6", "\129\0\8\0" })[byte() % 4 + 1]
        for i = 1, byte() % 100 do bytes[i] = string.char(byte()) end
        local f = F.mac_bytes(B) .. F.mac_bytes(A) .. et .. ((byte() % 2 == 0) and "\69" or "\96") .. table.concat(bytes)
        local p = F.parse(f)
        assert.is_table(p)
        assert.is_string(F.summary(p))
        n = n + 1
      end
      assert.is_true(n > 3000)
    end)

    it("describes a frame in one line", function()
      assert.equal("02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ARP request who-has 10.0.0.2 tell 10.0.0.1, 42 bytes",
        F.summary(F.arp { op = "request", src_mac = A, sender_ip = "10.0.0.1", target_ip = "10.0.0.2" }))
      assert.equal("02:00:00:00:00:01 > 02:00:00:00:00:02, vlan 10 p 3, IPv4 ttl 64 10.0.0.1.5353 > 10.0.0.2.53: " ..
        "UDP, length 5, 51 bytes", F.summary(F.udp { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2",
          sport = 5353, dport = 53, payload = "hello", vlan = 10, pcp = 3 }))
      assert.equal("02:00:00:00:00:01 > 02:00:00:00:00:02, IPv6 hlim 64 fd00::1.49152 > fd00::2.80: TCP [S] seq 0 " ..
        "ack 0 win 65535, length 0, 74 bytes [bad TCP checksum]", F.summary(F.tcp { src_mac = A, dst_mac = B,
          src = "fd00::1", dst = "fd00::2", dport = 80, checksum = 1 }))
      assert.equal("02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype 0x88b5, 2 bytes of payload, 16 bytes",
        F.summary(F.ethernet { src = A, dst = B, payload = "hi" }))
    end)

    it("writes pcap files and reads them back, and reads what a pcap port writes", function()
      local dir = S.tmpdir()
      local frames = { F.ethernet { src = A, dst = B, payload = "one" },
        { frame = F.ethernet { src = B, dst = A, payload = "two" }, time = 1700000000.25 } }
      assert.is_true(F.write_pcap(dir .. "/x.pcap", frames))
      local back, linktype = F.read_pcap(dir .. "/x.pcap")
      assert.equal(1, linktype)
      assert.equal(2, #back)
      assert.equal(frames[1], back[1].frame)
      assert.equal(frames[2].frame, back[2].frame)
      assert.equal(1700000000.25, back[2].time)
      assert.equal(#frames[1], back[1].len)
      local none, err = F.read_pcap(dir .. "/nothing.pcap")
      assert.is_nil(none)
      assert.matches("No such file", err)
      -- a pcap port (nanosecond timestamps) as a mirror of a socketpair port
      local sw = luaswitch.switch "pcapread"
      local a = sw:port { kind = "socketpair", name = "a" }
      local cap = sw:port { kind = "pcap", name = "cap", path = dir .. "/port.pcap" }
      a:mirror(cap, "in")
      local ep = a:endpoint()
      local sent = F.udp { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", dport = 9, payload = "cap" }
      local t0 = os.time()
      ep:send(sent)
      S.eventually(function() return cap:stats().tx_frames == 1 end, 5, "the capture")
      sw:close()
      ep:close()
      back = assert(F.read_pcap(dir .. "/port.pcap"))
      assert.equal(1, #back)
      assert.equal(sent, back[1].frame)
      assert.is_true(math.abs(back[1].time - t0) < 5)
      S.cleanup()
    end)
  end)

  describe("against real decoders", function()
    local dir
    before_each(function() dir = S.tmpdir() end)
    after_each(function() S.cleanup() end)

    it("tshark decodes every field set here and finds every checksum good", function()
      if not S.have("tshark") then return pending("needs tshark") end
      local fields = { "eth.src", "eth.dst", "ieee8021ad.id", "vlan.id", "vlan.priority", "arp.opcode", "arp.src.hw_mac",
        "arp.src.proto_ipv4", "arp.dst.hw_mac", "arp.dst.proto_ipv4", "ip.src", "ip.dst", "ip.ttl", "ip.id", "ip.proto",
        "ip.flags.df", "ip.dsfield", "ip.len", "ip.checksum.status", "ipv6.src", "ipv6.dst", "ipv6.hlim", "ipv6.nxt",
        "ipv6.plen", "ipv6.flow", "ipv6.tclass", "udp.srcport", "udp.dstport", "udp.length", "udp.checksum.status",
        "udp.payload", "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.flags", "tcp.window_size_value",
        "tcp.options.mss_val", "tcp.payload", "tcp.checksum.status", "icmp.type", "icmp.code", "icmp.ident", "icmp.seq",
        "icmp.checksum.status", "icmpv6.type", "icmpv6.echo.identifier", "icmpv6.echo.sequence_number",
        "icmpv6.nd.ns.target_address", "icmpv6.nd.na.target_address", "icmpv6.opt.linkaddr", "icmpv6.nd.na.flag.r",
        "icmpv6.nd.na.flag.s", "icmpv6.nd.na.flag.o", "icmpv6.checksum.status", "data.data", "_ws.malformed" }
      local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end
      -- each case: a frame and what tshark must say (checksum statuses: 1 = good)
      local cases = {
        { F.arp { op = "request", src_mac = A, sender_ip = "10.0.0.1", target_ip = "10.0.0.2" },
          { ["eth.dst"] = F.BROADCAST, ["arp.opcode"] = 1, ["arp.src.hw_mac"] = A, ["arp.src.proto_ipv4"] = "10.0.0.1",
            ["arp.dst.hw_mac"] = "00:00:00:00:00:00", ["arp.dst.proto_ipv4"] = "10.0.0.2" } },
        { F.arp { op = "reply", src_mac = B, dst_mac = A, sender_ip = "10.0.0.2", target_ip = "10.0.0.1", vlan = 30, pcp = 2 },
          { ["eth.dst"] = A, ["vlan.id"] = 30, ["vlan.priority"] = 2, ["arp.opcode"] = 2, ["arp.src.hw_mac"] = B,
            ["arp.dst.hw_mac"] = A } },
        { F.udp { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", sport = 4000, dport = 4001,
            payload = "hello", ttl = 9, ip_id = 0x4242, df = true, tos = 0x28 },
          { ["ip.src"] = "10.0.0.1", ["ip.dst"] = "10.0.0.2", ["ip.ttl"] = 9, ["ip.id"] = 0x4242, ["ip.flags.df"] = 1,
            ["ip.dsfield"] = 0x28, ["ip.len"] = 33, ["ip.proto"] = 17, ["ip.checksum.status"] = 1, ["udp.srcport"] = 4000,
            ["udp.dstport"] = 4001, ["udp.length"] = 13, ["udp.checksum.status"] = 1, ["data.data"] = hex("hello") } },
        { F.udp { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2", sport = 4000, dport = 4001,
            payload = "hello6", ttl = 3, flow = 0x12345, tos = 0x20, tags = { { tpid = 0x88a8, vid = 100 }, { vid = 10 } } },
          { ["ieee8021ad.id"] = 100, ["vlan.id"] = 10, ["ipv6.src"] = "fd00::1", ["ipv6.dst"] = "fd00::2", ["ipv6.hlim"] = 3,
            ["ipv6.flow"] = 0x12345, ["ipv6.tclass"] = 0x20, ["ipv6.nxt"] = 17, ["ipv6.plen"] = 14,
            ["udp.checksum.status"] = 1, ["data.data"] = hex("hello6") } },
        { F.tcp { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", sport = 40000, dport = 8080, seq = 1000,
            flags = "S", mss = 1460, window = 29200 },
          { ["tcp.srcport"] = 40000, ["tcp.dstport"] = 8080, ["tcp.seq_raw"] = 1000, ["tcp.flags"] = 0x002,
            ["tcp.window_size_value"] = 29200, ["tcp.options.mss_val"] = 1460, ["tcp.checksum.status"] = 1,
            ["ip.checksum.status"] = 1 } },
        { F.tcp { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2", sport = 8080, dport = 40000, seq = 7,
            ack = 1001, flags = "PA", payload = "response" },
          { ["tcp.seq_raw"] = 7, ["tcp.ack_raw"] = 1001, ["tcp.flags"] = 0x018, ["tcp.checksum.status"] = 1,
            ["tcp.payload"] = hex("response"), ["ipv6.nxt"] = 6 } },
        { F.icmp_echo { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", id = 77, seq = 5, payload = "ping!" },
          { ["icmp.type"] = 8, ["icmp.code"] = 0, ["icmp.ident"] = 77, ["icmp.seq"] = 5, ["icmp.checksum.status"] = 1,
            ["data.data"] = hex("ping!") } },
        { F.icmp_echo { src_mac = B, dst_mac = A, src = "10.0.0.2", dst = "10.0.0.1", id = 77, seq = 5, reply = true },
          { ["icmp.type"] = 0, ["icmp.ident"] = 77, ["icmp.checksum.status"] = 1 } },
        { F.icmp_echo { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2", id = 78, seq = 6, payload = "ping6" },
          { ["icmpv6.type"] = 128, ["icmpv6.echo.identifier"] = 78, ["icmpv6.echo.sequence_number"] = 6,
            ["icmpv6.checksum.status"] = 1 } },
        { F.icmp_echo { src_mac = B, dst_mac = A, src = "fd00::2", dst = "fd00::1", id = 78, seq = 6, reply = true },
          { ["icmpv6.type"] = 129, ["icmpv6.checksum.status"] = 1 } },
        { F.neighbor_solicitation { src_mac = A, src = "fd00::1", target = "fd00::2" },
          { ["eth.dst"] = "33:33:ff:00:00:02", ["ipv6.dst"] = "ff02::1:ff00:2", ["ipv6.hlim"] = 255, ["icmpv6.type"] = 135,
            ["icmpv6.nd.ns.target_address"] = "fd00::2", ["icmpv6.opt.linkaddr"] = A, ["icmpv6.checksum.status"] = 1 } },
        { F.neighbor_advertisement { src_mac = B, dst_mac = A, src = "fd00::2", dst = "fd00::1", router = true },
          { ["icmpv6.type"] = 136, ["icmpv6.nd.na.target_address"] = "fd00::2", ["icmpv6.opt.linkaddr"] = B,
            ["icmpv6.nd.na.flag.r"] = 1, ["icmpv6.nd.na.flag.s"] = 1, ["icmpv6.nd.na.flag.o"] = 1,
            ["icmpv6.checksum.status"] = 1 } },
        -- wrong on purpose: tshark must agree that they are wrong (status 2 = bad)
        { F.udp { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", dport = 4001, checksum = 0x1234,
            ip_checksum = 0x4321 },
          { ["ip.checksum.status"] = 0, ["udp.checksum.status"] = 0 } },
        { F.icmp_echo { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2", checksum = 0x1234 },
          { ["icmpv6.checksum.status"] = 0 } },
      }
      local list = {}
      for i, c in ipairs(cases) do list[i] = c[1] end
      assert.is_true(F.write_pcap(dir .. "/built.pcap", list))
      local cmd = ("tshark -r %s -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -o tcp.check_checksum:TRUE " ..
        "-o tcp.relative_sequence_numbers:FALSE -T fields -E separator=/t -E occurrence=a -E aggregator=, -e %s 2>%s")
        :format(dir .. "/built.pcap", table.concat(fields, " -e "), dir .. "/tshark.err")
      local out, rc = sh(cmd)
      assert.equal(0, rc, S.read_file(dir .. "/tshark.err"))
      local rows = {}
      for line in out:gmatch("[^\n]+") do
        local row, i = {}, 1
        for v in (line .. "\t"):gmatch("([^\t]*)\t") do row[fields[i]] = v; i = i + 1 end
        rows[#rows + 1] = row
      end
      assert.equal(#cases, #rows, out)
      for i, c in ipairs(cases) do
        local row = rows[i]
        assert.equal("", row["_ws.malformed"], ("frame %d: malformed for tshark"):format(i))
        local want = c[2]
        -- the Ethernet source, every time
        want["eth.src"] = want["eth.src"] or F.parse(c[1]).src
        for k, v in pairs(want) do
          local got = row[k]
          if type(v) == "number" then
            -- tshark writes some numbers in hex, booleans as 0/1, checksum statuses as 0 (bad),
            -- 1 (good) or 2 (unverified)
            assert.equal(v, tonumber(got), ("frame %d (%s): %s"):format(i, F.summary(c[1]), k))
          else
            assert.equal(v, got, ("frame %d (%s): %s"):format(i, F.summary(c[1]), k))
          end
        end
        -- and every checksum tshark checked and we did not mention is good
        for _, k in ipairs { "ip.checksum.status", "udp.checksum.status", "tcp.checksum.status", "icmp.checksum.status",
          "icmpv6.checksum.status" } do
          if want[k] == nil and row[k] ~= "" then
            assert.equal("1", row[k], ("frame %d (%s): %s"):format(i, F.summary(c[1]), k))
          end
        end
      end
    end)

    it("builds the same bytes as scapy, and parses scapy's frames", function()
      if os.execute("/usr/bin/python3 -c 'import scapy' 2>/dev/null") ~= true then return pending("needs python3-scapy") end
      local py = dir .. "/build.py"
      local f = io.open(py, "w")
      f:write([[
import sys
from scapy.all import Ether, Dot1Q, Dot1AD, IP, IPv6, UDP, TCP, ICMP, ARP, Raw, ICMPv6EchoRequest, ICMPv6EchoReply, \
    ICMPv6ND_NS, ICMPv6ND_NA, ICMPv6NDOptSrcLLAddr, ICMPv6NDOptDstLLAddr
A, B = "02:00:00:00:00:01", "02:00:00:00:00:02"
frames = [
  Ether(src=A, dst="ff:ff:ff:ff:ff:ff")/ARP(op=1, hwsrc=A, psrc="10.0.0.1", hwdst="00:00:00:00:00:00", pdst="10.0.0.2"),
  Ether(src=A, dst=B)/IP(src="10.0.0.1", dst="10.0.0.2", id=0, ttl=64, flags=0)/UDP(sport=5000, dport=6000)/Raw(b"hello"),
  Ether(src=A, dst=B)/Dot1Q(vlan=10, prio=3)/IP(src="10.0.0.1", dst="10.0.0.2", id=4660, ttl=33, tos=0x10, flags="DF")/UDP(sport=1, dport=2),
  Ether(src=A, dst=B)/Dot1AD(vlan=100)/Dot1Q(vlan=10)/IPv6(src="fd00::1", dst="fd00::2", hlim=64)/UDP(sport=5000, dport=6000)/Raw(b"hello6"),
  Ether(src=A, dst=B)/IP(src="10.0.0.1", dst="10.0.0.2", id=0, ttl=64, flags=0)/TCP(sport=40000, dport=80, seq=1000, ack=0, flags="S", window=65535, options=[("MSS", 1460)]),
  Ether(src=A, dst=B)/IPv6(src="fd00::1", dst="fd00::2", hlim=64)/TCP(sport=80, dport=40000, seq=1, ack=1001, flags="PA", window=1000)/Raw(b"GET /"),
  Ether(src=A, dst=B)/IP(src="10.0.0.1", dst="10.0.0.2", id=0, ttl=64, flags=0)/ICMP(type=8, id=7, seq=1)/Raw(b"ping"),
  Ether(src=A, dst=B)/IPv6(src="fd00::1", dst="fd00::2", hlim=64)/ICMPv6EchoRequest(id=7, seq=1, data=b"ping"),
  Ether(src=B, dst=A)/IPv6(src="fd00::2", dst="fd00::1", hlim=64)/ICMPv6EchoReply(id=7, seq=1, data=b"ping"),
  Ether(src=A, dst="33:33:ff:00:00:02")/IPv6(src="fd00::1", dst="ff02::1:ff00:2", hlim=255)/ICMPv6ND_NS(tgt="fd00::2")/ICMPv6NDOptSrcLLAddr(lladdr=A),
  Ether(src=B, dst=A)/IPv6(src="fd00::2", dst="fd00::1", hlim=255)/ICMPv6ND_NA(tgt="fd00::2", R=0, S=1, O=1)/ICMPv6NDOptDstLLAddr(lladdr=B),
]
for f in frames:
    print(bytes(f).hex())
]])
      f:close()
      local ours = {
        F.arp { op = "request", src_mac = A, sender_ip = "10.0.0.1", target_ip = "10.0.0.2" },
        F.udp { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", sport = 5000, dport = 6000, payload = "hello" },
        F.udp { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", sport = 1, dport = 2, vlan = 10, pcp = 3,
          ip_id = 4660, ttl = 33, tos = 0x10, df = true },
        F.udp { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2", sport = 5000, dport = 6000, payload = "hello6",
          tags = { { tpid = 0x88a8, vid = 100 }, { vid = 10 } } },
        F.tcp { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", sport = 40000, dport = 80, seq = 1000,
          flags = "S", mss = 1460 },
        F.tcp { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2", sport = 80, dport = 40000, seq = 1, ack = 1001,
          flags = "PA", window = 1000, payload = "GET /" },
        F.icmp_echo { src_mac = A, dst_mac = B, src = "10.0.0.1", dst = "10.0.0.2", id = 7, seq = 1, payload = "ping" },
        F.icmp_echo { src_mac = A, dst_mac = B, src = "fd00::1", dst = "fd00::2", id = 7, seq = 1, payload = "ping" },
        F.icmp_echo { src_mac = B, dst_mac = A, src = "fd00::2", dst = "fd00::1", id = 7, seq = 1, payload = "ping", reply = true },
        F.neighbor_solicitation { src_mac = A, src = "fd00::1", target = "fd00::2" },
        F.neighbor_advertisement { src_mac = B, dst_mac = A, src = "fd00::2", dst = "fd00::1" },
      }
      local out, rc = sh("/usr/bin/python3 " .. py .. " 2>&1")
      assert.equal(0, rc, out)
      local i = 0
      for h in out:gmatch("%x+") do
        i = i + 1
        local theirs = unhex(h)
        assert.equal(F.hex(theirs), F.hex(ours[i]), ("frame %d: %s"):format(i, F.summary(theirs)))
        local p = F.parse(theirs)
        assert.is_nil(p.malformed)
        for _, l in ipairs { p.ip, p.udp, p.tcp, p.icmp, p.icmp6 } do assert.is_true(l.checksum_ok, "frame " .. i) end
      end
      assert.equal(#ours, i)
    end)
  end)
end)

describe("luaswitch.frame and a real kernel #root", function()
  local netns = require "luaswitch.netns"
  local sw, ns, ep, kmac, dir, cap, tap
  local ME = F.mac(0x99)

  before_each(function()
    if not S.is_root() then return end
    dir = S.tmpdir()
    ns = assert(netns.create(S.uniq("fk")))
    sw = luaswitch.switch "kernel-frames"
    tap = assert(sw:port { kind = "tap", name = "k", ifname = "eth0", netns = ns.name })
    ns:check("ip addr add 10.0.8.1/24 dev eth0 && ip -6 addr add fd00:8::1/64 dev eth0 nodad")
    kmac = ns:check("cat /sys/class/net/eth0/address"):gsub("%s+", "")
    ep = sw:port { kind = "socketpair", name = "me" }:endpoint()
    cap = sw:port { kind = "pcap", name = "cap", path = dir .. "/k.pcap" }
    tap:mirror(cap)
  end)

  after_each(function()
    if ep then ep:close() end
    if sw then sw:close() end
    if ns then ns:close() end
    sw, ns, ep = nil, nil, nil
    S.cleanup()
  end)

  -- wait until a process in the namespace printed what matches `pattern` (its exit is noticed
  -- only when init reaps it, which can take a second in some containers)
  local function printed(proc, pattern, what)
    S.eventually(function() return proc:output():match(pattern) end, 5, what)
  end

  -- every frame the kernel sent us, parsed, in order
  local seen = {}
  -- the next frame from the kernel that `pred` accepts (others are kept in `seen`)
  local function await(pred, what, timeout)
    local deadline = luaswitch.monotime() + (timeout or 5)
    while true do
      local left = deadline - luaswitch.monotime()
      assert(left > 0, "timed out waiting for " .. what)
      local f = ep:recv(left)
      if f then
        local p = F.parse(f)
        seen[#seen + 1] = p
        if pred(p) then return p end
      end
    end
  end

  it("parses the kernel's ARP, ICMP, UDP and TCP, and the kernel accepts the frames built here", function()
    if not S.is_root() then return pending("needs root (network namespaces, TAP)") end
    seen = {}
    -- ping: ARP first, answered by us; then the echo request, answered by us
    local ping = ns:spawn("ping -n -c 1 -W 5 10.0.8.2")
    local req = await(function(p) return p.arp and p.arp.target_ip == "10.0.8.2" end, "the kernel's ARP request")
    assert.same({ "request", kmac, "10.0.8.1", F.BROADCAST }, { req.arp.op, req.arp.sender_mac, req.arp.sender_ip, req.dst })
    ep:send(F.arp { op = "reply", src_mac = ME, dst_mac = kmac, sender_ip = "10.0.8.2", target_ip = "10.0.8.1" })
    local echo = await(function(p) return p.icmp and p.icmp.kind == "echo_request" end, "the echo request")
    assert.same({ kmac, ME, "10.0.8.1", "10.0.8.2", 64, true, true, 1 }, { echo.src, echo.dst, echo.ip.src, echo.ip.dst,
      echo.ip.ttl, echo.ip.checksum_ok, echo.icmp.checksum_ok, echo.icmp.seq })
    ep:send(F.icmp_echo { src_mac = ME, dst_mac = kmac, src = "10.0.8.2", dst = "10.0.8.1", id = echo.icmp.id,
      seq = echo.icmp.seq, payload = echo.icmp.payload, reply = true })
    printed(ping, "1 received", "ping's summary")

    -- UDP from the kernel
    ns:check([[python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"from the kernel", ("10.0.8.2", 9999))']])
    local u = await(function(p) return p.udp and p.udp.dport == 9999 end, "the UDP datagram")
    assert.same({ "from the kernel", true, true }, { u.udp.payload, u.udp.checksum_ok, u.ip.checksum_ok })
    -- UDP to the kernel: one with a bad checksum (the kernel drops and counts it), then a good one
    local rx = ns:spawn([[python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.0.8.1", 7777)); print(s.recv(100).decode(), flush=True)']])
    S.eventually(function() return (ns:run("ss -lun")):match("10%.0%.8%.1:7777") end, 5, "the UDP receiver")
    local function csum_errors() return tonumber(ns:check("cat /proc/net/snmp"):match("Udp: %d+ %d+ %d+ %d+ %d+ %d+ (%d+)")) end
    local errors0 = csum_errors()
    local udp = { src_mac = ME, dst_mac = kmac, src = "10.0.8.2", dst = "10.0.8.1", sport = 1234, dport = 7777 }
    udp.payload, udp.checksum = "bad checksum", 0x1234
    ep:send(F.udp(udp))
    S.eventually(function() return csum_errors() == errors0 + 1 end, 5, "the kernel counting the bad checksum")
    udp.payload, udp.checksum = "built by luaswitch.frame", nil
    ep:send(F.udp(udp))
    printed(rx, "\n", "the receiver's line")
    assert.equal("built by luaswitch.frame\n", rx:output())

    -- TCP: the kernel connects to us; we answer its SYN; it acknowledges and sends data
    local client = ns:spawn([[python3 -c 'import socket; s = socket.create_connection(("10.0.8.2", 8080), timeout=5); s.sendall(b"hello over tcp"); s.close()']])
    local syn = await(function(p) return p.tcp and p.tcp.dport == 8080 and p.tcp.flags == "S" end, "the SYN")
    assert.is_true(syn.tcp.checksum_ok)
    assert.is_true(syn.tcp.mss ~= nil and syn.tcp.mss <= 1460)
    assert.is_true(syn.tcp.sack_ok)
    local tcp = { src_mac = ME, dst_mac = kmac, src = "10.0.8.2", dst = "10.0.8.1", sport = 8080, dport = syn.tcp.sport }
    tcp.flags, tcp.seq, tcp.ack, tcp.mss = "SA", 5000, syn.tcp.seq + 1, 1460
    ep:send(F.tcp(tcp))
    local ack = await(function(p) return p.tcp and p.tcp.dport == 8080 and p.tcp.flags == "A" end, "the ACK")
    assert.same({ 5001, syn.tcp.seq + 1, true }, { ack.tcp.ack, ack.tcp.seq, ack.tcp.checksum_ok })
    local data = await(function(p) return p.tcp and p.tcp.dport == 8080 and #p.tcp.payload > 0 end, "the data")
    assert.same({ "hello over tcp", "PA", true, true }, { data.tcp.payload, data.tcp.flags, data.tcp.checksum_ok,
      data.ip.checksum_ok })
    tcp.flags, tcp.seq, tcp.ack, tcp.mss = "R", 5001, nil, nil
    ep:send(F.tcp(tcp))
    client:cleanup()

    -- nothing the kernel sent us was malformed or carried a bad checksum
    for _, p in ipairs(seen) do
      assert.is_nil(p.malformed, F.summary(p))
      for _, l in ipairs { p.ip or {}, p.udp or {}, p.tcp or {}, p.icmp or {}, p.icmp6 or {} } do
        assert.is_not_false(l.checksum_ok, F.summary(p))
      end
    end
  end)

  it("parses the kernel's neighbour discovery and ICMPv6, and the kernel accepts ours", function()
    if not S.is_root() then return pending("needs root (network namespaces, TAP)") end
    seen = {}
    local ping = ns:spawn("ping -6 -n -c 1 -W 5 fd00:8::2")
    local sol = await(function(p) return p.icmp6 and p.icmp6.kind == "neighbor_solicitation" and p.icmp6.target == "fd00:8::2" end,
      "the kernel's neighbour solicitation")
    assert.same({ "33:33:ff:00:00:02", "ff02::1:ff00:2", "fd00:8::1", 255, kmac, true },
      { sol.dst, sol.ip6.dst, sol.ip6.src, sol.ip6.hlim, sol.icmp6.sll, sol.icmp6.checksum_ok })
    ep:send(F.neighbor_advertisement { src_mac = ME, dst_mac = kmac, src = "fd00:8::2", dst = "fd00:8::1" })
    local echo = await(function(p) return p.icmp6 and p.icmp6.kind == "echo_request" end, "the ICMPv6 echo request")
    assert.same({ "fd00:8::1", "fd00:8::2", true }, { echo.ip6.src, echo.ip6.dst, echo.icmp6.checksum_ok })
    ep:send(F.icmp_echo { src_mac = ME, dst_mac = kmac, src = "fd00:8::2", dst = "fd00:8::1", id = echo.icmp6.id,
      seq = echo.icmp6.seq, payload = echo.icmp6.payload, reply = true })
    printed(ping, "1 received", "ping's summary")
    -- UDP over IPv6 both ways: the kernel checks our pseudo-header checksum
    local rx = ns:spawn([[python3 -c 'import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("fd00:8::1", 7777)); print(s.recv(100).decode(), flush=True)']])
    S.eventually(function() return (ns:run("ss -lun")):match("%[fd00:8::1%]:7777") end, 5, "the UDP receiver")
    ep:send(F.udp { src_mac = ME, dst_mac = kmac, src = "fd00:8::2", dst = "fd00:8::1", sport = 1, dport = 7777,
      payload = "six" })
    printed(rx, "\n", "the receiver's line")
    assert.equal("six\n", rx:output())
    ns:check([[python3 -c 'import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.sendto(b"back", ("fd00:8::2", 9999))']])
    local u = await(function(p) return p.udp and p.udp.dport == 9999 end, "the kernel's UDP over IPv6")
    assert.same({ "back", true }, { u.udp.payload, u.udp.checksum_ok })
    for _, p in ipairs(seen) do
      assert.is_nil(p.malformed, F.summary(p))
      for _, l in ipairs { p.ip or {}, p.udp or {}, p.tcp or {}, p.icmp or {}, p.icmp6 or {} } do
        assert.is_not_false(l.checksum_ok, F.summary(p))
      end
    end
  end)

  it("parses what a pcap port captured of a kernel host, and tshark agrees on every checksum", function()
    if not S.is_root() then return pending("needs root (network namespaces, TAP)") end
    seen = {}
    local ping = ns:spawn("ping -n -c 2 -i 0.2 -W 5 10.0.8.2")
    await(function(p) return p.arp and p.arp.target_ip == "10.0.8.2" end, "the ARP request")
    ep:send(F.arp { op = "reply", src_mac = ME, dst_mac = kmac, sender_ip = "10.0.8.2", target_ip = "10.0.8.1" })
    for _ = 1, 2 do
      local echo = await(function(p) return p.icmp and p.icmp.kind == "echo_request" end, "an echo request")
      ep:send(F.icmp_echo { src_mac = ME, dst_mac = kmac, src = "10.0.8.2", dst = "10.0.8.1", id = echo.icmp.id,
        seq = echo.icmp.seq, payload = echo.icmp.payload, reply = true })
    end
    printed(ping, "2 received", "ping's summary")
    ns:check([[python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"captured", ("10.0.8.2", 9999))']])
    await(function(p) return p.udp and p.udp.dport == 9999 end, "the UDP datagram")
    -- wait until the capture holds the whole exchange (the pcap port flushes whole batches,
    -- so a reader sees complete records); the tap's counters are no measure of it, as the
    -- kernel sends its first frames (IPv6 autoconfiguration) before the mirror is set
    local function count(k, list)
      local n = 0
      for _, r in ipairs(list) do
        local p = F.parse(r.frame)
        local kind = p and (p.arp and ("arp " .. p.arp.op) or p.icmp and p.icmp.kind or p.udp and "udp")
        if kind == k then n = n + 1 end
      end
      return n
    end
    S.eventually(function()
      local list = F.read_pcap(dir .. "/k.pcap")
      return list and count("arp reply", list) == 1 and count("echo_reply", list) == 2 and count("udp", list) == 1
    end, 5, "every copy written")
    cap:close()
    local recs = assert(F.read_pcap(dir .. "/k.pcap"))
    local kinds = {}
    for _, r in ipairs(recs) do
      local p = F.parse(r.frame)
      assert.is_nil(p.malformed, F.summary(p))
      for _, l in ipairs { p.ip or {}, p.udp or {}, p.tcp or {}, p.icmp or {}, p.icmp6 or {} } do
        assert.is_not_false(l.checksum_ok, F.summary(p))
      end
      local k = p.arp and ("arp " .. p.arp.op) or p.icmp and p.icmp.kind or p.udp and "udp" or p.icmp6 and p.icmp6.kind
      if k then kinds[k] = (kinds[k] or 0) + 1 end
    end
    assert.same({ 1, 1, 2, 2, 1 }, { kinds["arp request"], kinds["arp reply"], kinds.echo_request, kinds.echo_reply,
      kinds.udp })
    if S.have("tshark") then
      local out = sh(("tshark -r %s -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -o tcp.check_checksum:TRUE " ..
        "-T fields -e ip.checksum.status -e udp.checksum.status -e icmp.checksum.status -e icmpv6.checksum.status " ..
        "2>/dev/null"):format(dir .. "/k.pcap"))
      local good, bad = 0, 0
      for v in out:gmatch("%d") do if v == "1" then good = good + 1 elseif v == "0" then bad = bad + 1 end end
      assert.equal(0, bad, out)
      assert.is_true(good >= 2 * 5, out) -- IP and ICMP/UDP of 2 requests, 2 replies, 1 datagram
    end
  end)
end)
