--- luaswitch.frame: build and parse Ethernet frames as Lua strings, without outside tools.
--
-- Builders take one table of options and return the frame's bytes; each layer fills in
-- what it can (lengths, checksums, multicast MACs) and the rest is yours to set:
--
--    local frame = require "luaswitch.frame"
--    frame.ethernet { dst = frame.BROADCAST, src = frame.mac(1), type = 0x88b5, payload = "hi" }
--    frame.arp  { op = "request", src_mac = frame.mac(1), sender_ip = "10.0.0.1", target_ip = "10.0.0.2" }
--    frame.udp  { src_mac = a, dst_mac = b, src = "10.0.0.1", dst = "10.0.0.2", sport = 5353, dport = 53,
--                 payload = query }
--    frame.tcp  { src_mac = a, dst_mac = b, src = "fd00::1", dst = "fd00::2", dport = 80, flags = "S", mss = 1460 }
--    frame.icmp_echo { src_mac = a, dst_mac = b, src = "10.0.0.1", dst = "10.0.0.2", id = 7, seq = 1 }
--    frame.neighbor_solicitation { src_mac = a, src = "fd00::1", target = "fd00::2" }
--
--    local p = frame.parse(bytes)
--    p.src, p.dst, p.type, p.vlan, p.tags    -- Ethernet and its 802.1Q/802.1ad tags
--    p.arp.target_ip, p.ip.ttl, p.ip6.hlim, p.udp.dport, p.tcp.flags, p.icmp6.target, ...
--    p.ip.checksum_ok, p.udp.checksum_ok    -- checksums verified (pseudo-headers included)
--    frame.summary(p)                       -- one line, tcpdump style
--
-- The IP family follows the addresses: `src = "10.0.0.1"` builds IPv4, `src = "fd00::1"`
-- IPv6, with the same options (`ttl` is IPv6's hop limit, `tos` its traffic class).
-- Options are checked: a missing, malformed or unknown one raises an error that names it
-- (`frame.udp: bad option 'dport' (an integer between 0 and 65535 expected, got 70000)`).
-- Addresses come back as text in their canonical form: MACs in lower case with colons,
-- IPv6 as RFC 5952 writes it (`fd00::1`). `read_pcap` and `write_pcap` read and write
-- classic pcap files (tshark, tcpdump, Wireshark).
-- @module luaswitch.frame

local M = {}

local spack, sunpack, schar, srep, concat = string.pack, string.unpack, string.char, string.rep, table.concat

--- Ethertype for local experiments (IEEE 802 "local experimental 1").
M.ETH_P_EXPERIMENTAL = 0x88b5
--- Ethertypes.
M.ETH_P_IPV4 = 0x0800
M.ETH_P_ARP = 0x0806
M.ETH_P_IPV6 = 0x86dd
M.ETH_P_8021Q = 0x8100
M.ETH_P_8021AD = 0x88a8
--- IP protocol numbers.
M.IPPROTO_ICMP = 1
M.IPPROTO_TCP = 6
M.IPPROTO_UDP = 17
M.IPPROTO_ICMPV6 = 58
--- The broadcast MAC.
M.BROADCAST = "ff:ff:ff:ff:ff:ff"

-- ---- errors that name the option -------------------------------------------------------

-- Errors raised inside a builder carry this metatable; the public wrapper re-raises the
-- message at the caller's line.
local FrameError = {}
local ctx = "?" -- the public builder running, for messages

local function oops(msg)
  error(setmetatable({ msg = ("frame.%s: %s"):format(ctx, msg) }, FrameError), 0)
end

local function show(v)
  if type(v) == "string" then return ("'%s'"):format(v) end
  if type(v) == "table" or type(v) == "function" or type(v) == "userdata" then return type(v) end
  return tostring(v)
end

local function bad(key, fmt, ...)
  oops(("bad option '%s' (%s)"):format(key, fmt:format(...)))
end

local function api(name, impl)
  return function(t, ...)
    if type(t) ~= "table" then
      error(("bad argument #1 to '%s' (table of options expected, got %s)"):format(name, type(t)), 2)
    end
    local saved = ctx
    ctx = name
    local ok, r = pcall(impl, t, ...)
    ctx = saved
    if ok then return r end
    if getmetatable(r) == FrameError then error(r.msg, 2) end
    error(r, 0)
  end
end

local function known(t, set)
  for k in pairs(t) do
    if not set[k] then oops(("unknown option '%s'"):format(tostring(k))) end
  end
end

local function set_of(...)
  local s = {}
  for _, list in ipairs { ... } do
    for _, k in ipairs(list) do s[k] = true end
  end
  return s
end

local function opt_int(t, key, def, min, max)
  local v = t[key]
  if v == nil then
    if def == nil then oops(("missing option '%s'"):format(key)) end
    return def
  end
  if math.type(v) == "float" and v == math.floor(v) and v >= min and v <= max then v = math.tointeger(v) end
  if math.type(v) ~= "integer" or v < min or v > max then
    bad(key, "an integer between %d and %d expected, got %s", min, max, show(v))
  end
  return v
end

local function opt_str(t, key, def)
  local v = t[key]
  if v == nil then
    if def == nil then oops(("missing option '%s'"):format(key)) end
    return def
  end
  if type(v) ~= "string" then bad(key, "string expected, got %s", type(v)) end
  return v
end

local function opt_bool(t, key, def)
  local v = t[key]
  if v == nil then return def end
  if type(v) ~= "boolean" then bad(key, "boolean expected, got %s", show(v)) end
  return v
end

-- ---- addresses ----------------------------------------------------------------------

local function parse_mac(s)
  if type(s) ~= "string" then return nil end
  local b = { s:match("^(%x%x)[:-](%x%x)[:-](%x%x)[:-](%x%x)[:-](%x%x)[:-](%x%x)$") }
  if #b ~= 6 then return nil end
  for i = 1, 6 do b[i] = tonumber(b[i], 16) end
  return schar(table.unpack(b))
end

local function parse_ip4(s)
  if type(s) ~= "string" then return nil end
  local a, b, c, d = s:match("^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
  if not a then return nil end
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if a > 255 or b > 255 or c > 255 or d > 255 then return nil end
  return schar(a, b, c, d)
end

local function groups(part)
  local g = {}
  if part == "" then return g end
  for x in (part .. ":"):gmatch("([^:]*):") do
    if not x:match("^%x%x?%x?%x?$") then return nil end
    g[#g + 1] = tonumber(x, 16)
  end
  return g
end

local function parse_ip6(s)
  if type(s) ~= "string" or not s:find(":", 1, true) then return nil end
  local tail4
  local head, v4 = s:match("^(.*:)(%d+%.%d+%.%d+%.%d+)$")
  if v4 then
    tail4 = parse_ip4(v4)
    if not tail4 then return nil end
    s = head .. "0:0"
  end
  local all
  local dbl = s:find("::", 1, true)
  if dbl then
    if s:find("::", dbl + 1, true) then return nil end
    local a, b = groups(s:sub(1, dbl - 1)), groups(s:sub(dbl + 2))
    if not a or not b or #a + #b > 7 then return nil end
    all = a
    for _ = 1, 8 - #a - #b do all[#all + 1] = 0 end
    for _, x in ipairs(b) do all[#all + 1] = x end
  else
    all = groups(s)
    if not all or #all ~= 8 then return nil end
  end
  local bytes = spack(">I2I2I2I2I2I2I2I2", table.unpack(all))
  if tail4 then bytes = bytes:sub(1, 12) .. tail4 end
  return bytes
end

--- MAC text ("02:00:00:00:00:01", or with dashes, any case) to its 6 bytes.
-- @tparam string mac
-- @treturn string
function M.mac_bytes(mac)
  if type(mac) ~= "string" then
    error(("bad argument #1 to 'mac_bytes' (MAC address string expected, got %s)"):format(type(mac)), 2)
  end
  local b = parse_mac(mac)
  if not b then error(("bad argument #1 to 'mac_bytes' (malformed MAC address '%s')"):format(mac), 2) end
  return b
end

--- 6 bytes to MAC text ("02:00:00:00:00:01").
function M.mac_string(bytes)
  return (("%02x:%02x:%02x:%02x:%02x:%02x"):format(bytes:byte(1, 6)))
end

--- A locally administered unicast MAC from an integer: mac(1) = "02:00:00:00:00:01".
function M.mac(n)
  return ("02:%02x:%02x:%02x:%02x:%02x"):format((n >> 32) & 0xff, (n >> 24) & 0xff,
    (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
end

--- IPv4 text ("10.0.0.1") to its 4 bytes.
function M.ip4_bytes(s)
  local b = parse_ip4(s)
  if not b then error(("bad argument #1 to 'ip4_bytes' (malformed IPv4 address %s)"):format(show(s)), 2) end
  return b
end

--- 4 bytes to IPv4 text.
function M.ip4_string(b)
  return (("%d.%d.%d.%d"):format(b:byte(1, 4)))
end

--- IPv6 text (any form RFC 4291 allows: "fd00::1", "::ffff:10.0.0.1", ...) to its 16 bytes.
function M.ip6_bytes(s)
  local b = parse_ip6(s)
  if not b then error(("bad argument #1 to 'ip6_bytes' (malformed IPv6 address %s)"):format(show(s)), 2) end
  return b
end

--- 16 bytes to IPv6 text in the RFC 5952 form: lower case, no leading zeros, the longest
-- run of two or more zero groups as "::", IPv4-mapped addresses dotted ("::ffff:10.0.0.1").
function M.ip6_string(b)
  local g = { sunpack(">I2I2I2I2I2I2I2I2", b) }
  g[9] = nil
  if g[1] == 0 and g[2] == 0 and g[3] == 0 and g[4] == 0 and g[5] == 0 and g[6] == 0xffff then
    return "::ffff:" .. M.ip4_string(b:sub(13, 16))
  end
  local best, bestlen, i = nil, 1, 1
  while i <= 8 do
    if g[i] == 0 then
      local j = i
      while j < 8 and g[j + 1] == 0 do j = j + 1 end
      if j - i + 1 > bestlen then best, bestlen = i, j - i + 1 end
      i = j + 1
    else
      i = i + 1
    end
  end
  local function hex(from, to)
    local t = {}
    for k = from, to do t[#t + 1] = ("%x"):format(g[k]) end
    return concat(t, ":")
  end
  if not best then return hex(1, 8) end
  return hex(1, best - 1) .. "::" .. hex(best + bestlen, 8)
end

--- Normalise address text: a MAC to lower case with colons, an IPv6 address to its RFC 5952
-- form, IPv4 as it is; anything else comes back unchanged. Handy to compare what you wrote
-- with what `parse` returns.
function M.normalize(s)
  if type(s) ~= "string" then return s end
  local m = parse_mac(s)
  if m then return M.mac_string(m) end
  local v6 = parse_ip6(s)
  if v6 then return M.ip6_string(v6) end
  return s
end

local function opt_mac(t, key, def)
  local v = t[key]
  if v == nil then
    if def == nil then oops(("missing option '%s'"):format(key)) end
    return def
  end
  local b = parse_mac(v)
  if not b then bad(key, "malformed MAC address %s", show(v)) end
  return b
end

-- An IP address option: its bytes (4 or 16).
local function opt_ip(t, key, def)
  local v = t[key]
  if v == nil then
    if def == nil then oops(("missing option '%s'"):format(key)) end
    return def
  end
  local b = parse_ip4(v) or parse_ip6(v)
  if not b then bad(key, "an IPv4 or IPv6 address expected, got %s", show(v)) end
  return b
end

-- ---- checksums ----------------------------------------------------------------------

local function sum16(s)
  local acc, n, i = 0, #s, 1
  while i + 15 <= n do
    local a, b, c, d, e, f, g, h = sunpack(">I2I2I2I2I2I2I2I2", s, i)
    acc = acc + a + b + c + d + e + f + g + h
    i = i + 16
  end
  while i + 1 <= n do
    acc = acc + sunpack(">I2", s, i)
    i = i + 2
  end
  if i == n then acc = acc + (s:byte(i) << 8) end
  while acc > 0xffff do acc = (acc & 0xffff) + (acc >> 16) end
  return acc
end

--- The Internet checksum (RFC 1071) of `s`: the value to put in a checksum field that was
-- zero while summing. Over data that includes a correct checksum it is 0.
-- @tparam string s
-- @treturn integer
function M.checksum(s)
  if type(s) ~= "string" then
    error(("bad argument #1 to 'checksum' (string expected, got %s)"):format(type(s)), 2)
  end
  return (~sum16(s)) & 0xffff
end
local checksum = M.checksum

-- The pseudo-header of UDP, TCP and ICMPv6 checksums (RFC 768, RFC 8200 8.1).
local function pseudo(src, dst, proto, len)
  if #src == 4 then return src .. dst .. spack(">BBI2", 0, proto, len) end
  return src .. dst .. spack(">I4I3B", len, 0, proto)
end

local function put16(s, off, v) -- off: 1-based position of the field
  return s:sub(1, off - 1) .. spack(">I2", v) .. s:sub(off + 2)
end

-- ---- Ethernet -----------------------------------------------------------------------

local function tags_of(t, vlan_key)
  local out = {}
  if t[vlan_key] ~= nil then
    local vid = opt_int(t, vlan_key, nil, 0, 4095)
    local pcp = opt_int(t, "pcp", 0, 0, 7)
    out[1] = spack(">I2I2", 0x8100, (pcp << 13) | vid)
  elseif t.pcp ~= nil then
    bad("pcp", "it needs the option '%s'", vlan_key)
  end
  if t.tags ~= nil then
    if type(t.tags) ~= "table" then bad("tags", "list of { vid =, pcp =, tpid = } expected, got %s", type(t.tags)) end
    for i, tag in ipairs(t.tags) do
      local key = ("tags[%d]"):format(i)
      if type(tag) ~= "table" then bad(key, "table expected, got %s", type(tag)) end
      for k in pairs(tag) do
        if k ~= "vid" and k ~= "pcp" and k ~= "tpid" and k ~= "dei" then bad(key, "unknown field '%s'", tostring(k)) end
      end
      local vid, pcp, tpid = tag.vid, tag.pcp or 0, tag.tpid or 0x8100
      if math.type(vid) ~= "integer" or vid < 0 or vid > 4095 then bad(key, "vid: 0 to 4095 expected, got %s", show(vid)) end
      if math.type(pcp) ~= "integer" or pcp < 0 or pcp > 7 then bad(key, "pcp: 0 to 7 expected, got %s", show(pcp)) end
      if math.type(tpid) ~= "integer" or tpid < 0 or tpid > 0xffff then bad(key, "tpid: a 16-bit integer expected, got %s", show(tpid)) end
      out[#out + 1] = spack(">I2I2", tpid, (pcp << 13) | (tag.dei and 0x1000 or 0) | vid)
    end
  end
  return out
end

local function eth(dst, src, tags, etype, payload, size)
  local parts = { dst, src }
  for _, tag in ipairs(tags) do parts[#parts + 1] = tag end
  parts[#parts + 1] = spack(">I2", etype)
  parts[#parts + 1] = payload
  local s = concat(parts)
  if size and #s < size then s = s .. srep("\0", size - #s) end
  return s
end

local ETH = set_of { "dst", "src", "type", "vlan", "pcp", "tags", "payload", "size" }

--- Build an Ethernet frame.
-- @tparam table f `dst`, `src` (MAC text), `type` (ethertype, default 0x88b5),
--   `payload` (string, default ""), `vlan` (802.1Q VLAN id to tag with, optional),
--   `pcp` (its priority, default 0), `tags` (list of tags after `vlan`, outermost first,
--   each { vid =, pcp =, tpid = (default 0x8100), dei = }: for 802.1ad or stacked tags),
--   `size` (pad with zeros to this many bytes, optional; 60 is the minimum on a wire, 65536
--   the largest frame a port carries)
-- @treturn string
-- @function ethernet
M.ethernet = api("ethernet", function(t)
  known(t, ETH)
  return eth(opt_mac(t, "dst"), opt_mac(t, "src"), tags_of(t, "vlan"), opt_int(t, "type", M.ETH_P_EXPERIMENTAL, 0, 0xffff),
    opt_str(t, "payload", ""), opt_int(t, "size", 0, 0, 65536))
end)

-- The Ethernet header of a frame built by an upper-layer builder: src_mac, dst_mac (or the
-- default, e.g. a multicast MAC derived from the IP destination), vlan, pcp, tags, size.
local L2 = { "src_mac", "dst_mac", "vlan", "pcp", "tags", "size" }

local function l2(t, etype, payload, dst_default)
  return eth(opt_mac(t, "dst_mac", dst_default), opt_mac(t, "src_mac"), tags_of(t, "vlan"), etype, payload,
    opt_int(t, "size", 0, 0, 65536))
end

-- The MAC an IP destination maps to, when it is a group address (RFC 1112, RFC 2464).
local function group_mac(dst)
  if #dst == 4 then
    if dst == "\255\255\255\255" then return "\255\255\255\255\255\255" end
    local a = dst:byte(1)
    if a >= 224 and a <= 239 then return "\1\0\94" .. schar(dst:byte(2) & 0x7f) .. dst:sub(3, 4) end
  elseif dst:byte(1) == 0xff then
    return "\51\51" .. dst:sub(13, 16)
  end
  return nil
end

-- ---- IP -----------------------------------------------------------------------------

local IP = { "src", "dst", "ttl", "tos", "ip_id", "df", "flow", "ip_checksum", "ip_options" }

local function addresses(t)
  local src, dst = opt_ip(t, "src"), opt_ip(t, "dst")
  if #src ~= #dst then
    bad("dst", "an %s address like 'src' expected, got %s", #src == 4 and "IPv4" or "IPv6", show(t.dst))
  end
  return src, dst
end

local function ip_packet(t, src, dst, proto, l4, hlim_default)
  if #src == 4 then
    if t.flow ~= nil then bad("flow", "IPv6 only") end
    local opts = opt_str(t, "ip_options", "")
    if #opts % 4 ~= 0 then opts = opts .. srep("\0", 4 - #opts % 4) end
    if #opts > 40 then bad("ip_options", "at most 40 bytes, got %d", #opts) end
    local hlen = 20 + #opts
    if hlen + #l4 > 65535 then oops(("packet of %d bytes is longer than IPv4 allows (65535)"):format(hlen + #l4)) end
    local hdr = spack(">BBI2I2I2BBI2", 0x40 | (hlen // 4), opt_int(t, "tos", 0, 0, 255), hlen + #l4,
      opt_int(t, "ip_id", 0, 0, 0xffff), opt_bool(t, "df", false) and 0x4000 or 0, opt_int(t, "ttl", hlim_default or 64, 0, 255),
      proto, 0) .. src .. dst .. opts
    local ck = t.ip_checksum ~= nil and opt_int(t, "ip_checksum", nil, 0, 0xffff) or checksum(hdr)
    return put16(hdr, 11, ck) .. l4
  end
  for _, k in ipairs { "ip_id", "df", "ip_checksum", "ip_options" } do
    if t[k] ~= nil then bad(k, "IPv4 only") end
  end
  if #l4 > 65535 then oops(("payload of %d bytes is longer than IPv6 allows without jumbograms (65535)"):format(#l4)) end
  local tc, flow = opt_int(t, "tos", 0, 0, 255), opt_int(t, "flow", 0, 0, 0xfffff)
  return spack(">I4I2BB", (6 << 28) | (tc << 20) | flow, #l4, proto, opt_int(t, "ttl", hlim_default or 64, 0, 255))
    .. src .. dst .. l4
end

-- An IP frame around the upper layer made by make(src, dst) (its bytes).
local function ip_frame(t, proto, make, hlim_default)
  local src, dst = addresses(t)
  local l4 = make(src, dst)
  local pkt = ip_packet(t, src, dst, type(proto) == "function" and proto(src) or proto, l4, hlim_default)
  return l2(t, #src == 4 and M.ETH_P_IPV4 or M.ETH_P_IPV6, pkt, group_mac(dst))
end

-- A transport checksum: the explicit `checksum` option, or computed over the pseudo-header.
local function l4_checksum(t, src, dst, proto, seg, zero_means_none)
  if t.checksum ~= nil then return opt_int(t, "checksum", nil, 0, 0xffff) end
  local ck = checksum(pseudo(src, dst, proto, #seg) .. seg)
  if ck == 0 and zero_means_none then ck = 0xffff end
  return ck
end

--- Build an IP packet in an Ethernet frame around a payload you made (any protocol).
-- @tparam table f `src`, `dst` (IPv4 or IPv6 text; the family of both decides the
--   version), `proto` (protocol number / next header), `payload` (the bytes after the IP
--   header, taken as they are), `ttl` (64; IPv6: hop limit), `tos` (0; IPv6: traffic
--   class), IPv4: `ip_id` (identification, 0), `df` (false), `ip_options` (bytes, padded to 4), `ip_checksum`
--   (instead of the right one); IPv6: `flow` (label, 0). Ethernet: `src_mac`, `dst_mac`
--   (default: the group MAC of a multicast or broadcast destination), `vlan`, `pcp`,
--   `tags`, `size` as for `ethernet`.
-- @treturn string
-- @function ip
M.ip = api("ip", function(t)
  known(t, set_of(L2, IP, { "proto", "payload" }))
  local proto = opt_int(t, "proto", nil, 0, 255)
  local payload = opt_str(t, "payload", "")
  return ip_frame(t, proto, function() return payload end)
end)

--- Build a UDP datagram in IPv4 or IPv6 in Ethernet, its checksum computed over the
-- pseudo-header.
-- @tparam table f `sport` (default 49152), `dport`, `payload` (""), `checksum` (instead of
--   the right one; 0 = none, IPv4 only), and the options of `ip` but `proto`
-- @treturn string
-- @function udp
M.udp = api("udp", function(t)
  known(t, set_of(L2, IP, { "sport", "dport", "payload", "checksum" }))
  local sport, dport = opt_int(t, "sport", 49152, 0, 0xffff), opt_int(t, "dport", nil, 0, 0xffff)
  local payload = opt_str(t, "payload", "")
  return ip_frame(t, M.IPPROTO_UDP, function(src, dst)
    if 8 + #payload > 0xffff then bad("payload", "%d bytes do not fit a UDP datagram", #payload) end
    local seg = spack(">I2I2I2I2", sport, dport, 8 + #payload, 0) .. payload
    return put16(seg, 7, l4_checksum(t, src, dst, M.IPPROTO_UDP, seg, true))
  end)
end)

local TCP_FLAGS = { F = 0x01, S = 0x02, R = 0x04, P = 0x08, A = 0x10, U = 0x20, E = 0x40, C = 0x80, ["."] = 0x10 }
local TCP_ORDER = "FSRPAUEC"

local function tcp_flags(t)
  local f = t.flags
  if f == nil then return TCP_FLAGS.S end
  if math.type(f) == "integer" then return opt_int(t, "flags", nil, 0, 0xff) end
  if type(f) ~= "string" then bad("flags", "letters of \"FSRPAUEC\" or an integer expected, got %s", show(f)) end
  local bits = 0
  for c in f:upper():gmatch(".") do
    local b = TCP_FLAGS[c]
    if not b then bad("flags", "letters of \"FSRPAUEC\" (FIN SYN RST PSH ACK URG ECE CWR) expected, got %s", show(f)) end
    bits = bits | b
  end
  return bits
end

--- Build a TCP segment in IPv4 or IPv6 in Ethernet, its checksum computed over the
-- pseudo-header.
-- @tparam table f `sport` (default 49152), `dport`, `seq` (0), `ack` (the acknowledgment
--   number, 0), `flags` (letters of "FSRPAUEC" as tcpdump shows them — "S", "SA", "PA",
--   "FA", "R"; "." is ACK too — or the flag bits; default "S"), `window` (65535), `urg`
--   (urgent pointer, 0), `mss` (adds the MSS option), `options` (more option bytes; padded
--   to 4), `payload` (""), `checksum` (instead of the right one), and the options of `ip`
--   but `proto`
-- @treturn string
-- @function tcp
M.tcp = api("tcp", function(t)
  known(t, set_of(L2, IP, { "sport", "dport", "seq", "ack", "flags", "window", "urg", "mss", "options", "payload",
    "checksum" }))
  local sport, dport = opt_int(t, "sport", 49152, 0, 0xffff), opt_int(t, "dport", nil, 0, 0xffff)
  local seq, ack = opt_int(t, "seq", 0, 0, 0xffffffff), opt_int(t, "ack", 0, 0, 0xffffffff)
  local flags, window, urg = tcp_flags(t), opt_int(t, "window", 65535, 0, 0xffff), opt_int(t, "urg", 0, 0, 0xffff)
  local opts = opt_str(t, "options", "")
  if t.mss ~= nil then opts = spack(">BBI2", 2, 4, opt_int(t, "mss", nil, 0, 0xffff)) .. opts end
  if #opts % 4 ~= 0 then opts = opts .. srep("\0", 4 - #opts % 4) end
  if #opts > 40 then bad("options", "at most 40 bytes of options, got %d", #opts) end
  local payload = opt_str(t, "payload", "")
  return ip_frame(t, M.IPPROTO_TCP, function(src, dst)
    local seg = spack(">I2I2I4I4BBI2I2I2", sport, dport, seq, ack, ((20 + #opts) // 4) << 4, flags, window, 0, urg)
      .. opts .. payload
    return put16(seg, 17, l4_checksum(t, src, dst, M.IPPROTO_TCP, seg))
  end)
end)

-- An ICMP (IPv4) or ICMPv6 message: type, code, checksum, then body.
local function icmp_msg(t, src, dst, typ, code, body)
  local msg = spack(">BBI2", typ, code, 0) .. body
  local ck
  if t.checksum ~= nil then
    ck = opt_int(t, "checksum", nil, 0, 0xffff)
  elseif #src == 4 then
    ck = checksum(msg)
  else
    ck = checksum(pseudo(src, dst, M.IPPROTO_ICMPV6, #msg) .. msg)
  end
  return put16(msg, 3, ck)
end

local function icmp_proto(src) return #src == 4 and M.IPPROTO_ICMP or M.IPPROTO_ICMPV6 end

--- Build an ICMP message (IPv4 addresses) or an ICMPv6 message (IPv6 addresses) of any
-- type: the checksum is computed (ICMPv6's over the pseudo-header).
-- @tparam table f `type`, `code` (0), `body` (the bytes after the checksum, ""), `checksum`
--   (instead of the right one), and the options of `ip` but `proto`
-- @treturn string
-- @function icmp
M.icmp = api("icmp", function(t)
  known(t, set_of(L2, IP, { "type", "code", "body", "checksum" }))
  local typ, code, body = opt_int(t, "type", nil, 0, 255), opt_int(t, "code", 0, 0, 255), opt_str(t, "body", "")
  return ip_frame(t, icmp_proto, function(src, dst) return icmp_msg(t, src, dst, typ, code, body) end)
end)

--- Build an echo request or reply: ICMP (type 8/0) for IPv4 addresses, ICMPv6 (128/129)
-- for IPv6 addresses.
-- @tparam table f `id` (0), `seq` (0), `reply` (false: a request), `payload` (""),
--   `checksum` (instead of the right one), and the options of `ip` but `proto`
-- @treturn string
-- @function icmp_echo
M.icmp_echo = api("icmp_echo", function(t)
  known(t, set_of(L2, IP, { "id", "seq", "reply", "payload", "checksum" }))
  local id, seq = opt_int(t, "id", 0, 0, 0xffff), opt_int(t, "seq", 0, 0, 0xffff)
  local reply, payload = opt_bool(t, "reply", false), opt_str(t, "payload", "")
  return ip_frame(t, icmp_proto, function(src, dst)
    local typ = #src == 4 and (reply and 0 or 8) or (reply and 129 or 128)
    return icmp_msg(t, src, dst, typ, 0, spack(">I2I2", id, seq) .. payload)
  end)
end)

-- Solicited-node multicast address of an IPv6 address (RFC 4291 2.7.1).
local function solicited_node(addr)
  return M.ip6_bytes("ff02::1:ff00:0"):sub(1, 13) .. addr:sub(14, 16)
end

local function ll_option(t, key, default_bytes, opt_type)
  local v = t[key]
  if v == false then return "" end
  local mac = v == nil and default_bytes or opt_mac(t, key)
  return schar(opt_type, 1) .. mac
end

local function ip6_only(t, src)
  if #src ~= 16 then bad("src", "an IPv6 address expected, got %s", show(t.src)) end
end

--- Build an ICMPv6 neighbour solicitation (RFC 4861 4.3), hop limit 255.
-- @tparam table f `src_mac`, `src` (IPv6; "::" for duplicate address detection),
--   `target` (the address asked about), `dst` (default: the target's solicited-node
--   multicast address), `dst_mac` (default: its 33:33 MAC), `sll` (the source link-layer
--   address option: default `src_mac`, `false` to leave it out, as DAD must), `checksum`,
--   and the other options of `ip`
-- @treturn string
-- @function neighbor_solicitation
M.neighbor_solicitation = api("neighbor_solicitation", function(t)
  known(t, set_of(L2, IP, { "target", "sll", "checksum" }))
  local target = opt_ip(t, "target")
  if #target ~= 16 then bad("target", "an IPv6 address expected, got %s", show(t.target)) end
  local src_mac = opt_mac(t, "src_mac")
  local view = setmetatable({ dst = t.dst or M.ip6_string(solicited_node(target)) }, { __index = t })
  return ip_frame(view, M.IPPROTO_ICMPV6, function(src, dst)
    ip6_only(t, src)
    local sll = ll_option(t, "sll", src_mac, 1)
    if src == srep("\0", 16) and t.sll == nil then sll = "" end
    return icmp_msg(t, src, dst, 135, 0, "\0\0\0\0" .. target .. sll)
  end, 255)
end)

--- Build an ICMPv6 neighbour advertisement (RFC 4861 4.4), hop limit 255.
-- @tparam table f `src_mac`, `dst_mac` (default: that of a multicast `dst`), `src`, `dst`
--   (IPv6), `target` (default `src`), `router` (false), `solicited` (true), `override`
--   (true), `tll` (the target link-layer address option: default `src_mac`, `false` to
--   leave it out), `checksum`, and the other options of `ip`
-- @treturn string
-- @function neighbor_advertisement
M.neighbor_advertisement = api("neighbor_advertisement", function(t)
  known(t, set_of(L2, IP, { "target", "router", "solicited", "override", "tll", "checksum" }))
  local src_mac = opt_mac(t, "src_mac")
  local flags = (opt_bool(t, "router", false) and 0x80000000 or 0) | (opt_bool(t, "solicited", true) and 0x40000000 or 0)
    | (opt_bool(t, "override", true) and 0x20000000 or 0)
  return ip_frame(t, M.IPPROTO_ICMPV6, function(src, dst)
    ip6_only(t, src)
    local target = opt_ip(t, "target", src)
    if #target ~= 16 then bad("target", "an IPv6 address expected, got %s", show(t.target)) end
    return icmp_msg(t, src, dst, 136, 0, spack(">I4", flags) .. target .. ll_option(t, "tll", src_mac, 2))
  end, 255)
end)

local ARP_OPS = { request = 1, reply = 2, rarp_request = 3, rarp_reply = 4 }
local ARP_NAMES = { "request", "reply", "rarp_request", "rarp_reply" }

--- Build an ARP packet (IPv4 over Ethernet) in an Ethernet frame.
-- @tparam table f `op` ("request", "reply", or the opcode), `sender_mac` (default
--   `src_mac`), `sender_ip`, `target_mac` (default 00:00:00:00:00:00 in a request, the
--   frame's `dst_mac` in a reply), `target_ip`; Ethernet: `src_mac` (default
--   `sender_mac`), `dst_mac` (default: broadcast for a request, `target_mac` otherwise),
--   `vlan`, `pcp`, `tags`, `size`
-- @treturn string
-- @function arp
M.arp = api("arp", function(t)
  known(t, set_of(L2, { "op", "sender_mac", "sender_ip", "target_mac", "target_ip" }))
  local op = t.op
  if op == nil then oops("missing option 'op'") end
  if type(op) == "string" then
    if not ARP_OPS[op] then bad("op", "\"request\", \"reply\" or an opcode expected, got %s", show(op)) end
    op = ARP_OPS[op]
  else
    op = opt_int(t, "op", nil, 0, 0xffff)
  end
  if t.sender_mac == nil and t.src_mac == nil then oops("missing option 'sender_mac' (or 'src_mac')") end
  local sender_mac = opt_mac(t, "sender_mac", t.src_mac and opt_mac(t, "src_mac"))
  local src_mac = opt_mac(t, "src_mac", sender_mac)
  local dst_mac_given = t.dst_mac ~= nil and opt_mac(t, "dst_mac")
  local target_mac = opt_mac(t, "target_mac", op ~= 1 and dst_mac_given or srep("\0", 6))
  if op ~= 1 and not dst_mac_given and t.target_mac == nil then
    oops("missing option 'target_mac' (or 'dst_mac') for a reply")
  end
  local sender_ip, target_ip = opt_ip(t, "sender_ip"), opt_ip(t, "target_ip")
  if #sender_ip ~= 4 then bad("sender_ip", "an IPv4 address expected, got %s", show(t.sender_ip)) end
  if #target_ip ~= 4 then bad("target_ip", "an IPv4 address expected, got %s", show(t.target_ip)) end
  local body = spack(">I2I2BBI2", 1, 0x0800, 6, 4, op) .. sender_mac .. sender_ip .. target_mac .. target_ip
  local view = setmetatable({ src_mac = M.mac_string(src_mac) }, { __index = t })
  return l2(view, M.ETH_P_ARP, body, dst_mac_given or (op == 1 and srep("\255", 6) or target_mac))
end)

-- ---- parsing ------------------------------------------------------------------------

local ICMP_KINDS = { [0] = "echo_reply", [3] = "dest_unreachable", [4] = "source_quench", [5] = "redirect",
  [8] = "echo_request", [11] = "time_exceeded", [12] = "parameter_problem", [13] = "timestamp",
  [14] = "timestamp_reply" }
local ICMP6_KINDS = { [1] = "dest_unreachable", [2] = "packet_too_big", [3] = "time_exceeded",
  [4] = "parameter_problem", [128] = "echo_request", [129] = "echo_reply", [130] = "mld_query",
  [131] = "mld_report", [132] = "mld_done", [133] = "router_solicitation", [134] = "router_advertisement",
  [135] = "neighbor_solicitation", [136] = "neighbor_advertisement", [137] = "redirect", [143] = "mldv2_report" }

local function tcp_flag_string(bits)
  local s = {}
  for i = 1, #TCP_ORDER do
    if bits & (1 << (i - 1)) ~= 0 then s[#s + 1] = TCP_ORDER:sub(i, i) end
  end
  return concat(s)
end

local function parse_udp(seg, src, dst)
  if #seg < 8 then return nil, "UDP header truncated" end
  local u = {}
  u.sport, u.dport, u.len, u.checksum = sunpack(">I2I2I2I2", seg)
  if u.len < 8 or u.len > #seg then
    u.payload = seg:sub(9)
    u.checksum_ok = false
    u.truncated = u.len > #seg or nil
    return u
  end
  u.payload = seg:sub(9, u.len)
  if u.checksum == 0 and #src == 4 then
    u.checksum_ok = true -- none was computed (allowed over IPv4)
  else
    u.checksum_ok = sum16(pseudo(src, dst, M.IPPROTO_UDP, u.len) .. seg:sub(1, u.len)) == 0xffff
  end
  return u
end

local function parse_tcp(seg, src, dst)
  if #seg < 20 then return nil, "TCP header truncated" end
  local t = {}
  local off, bits
  t.sport, t.dport, t.seq, t.ack, off, bits, t.window, t.checksum, t.urg = sunpack(">I2I2I4I4BBI2I2I2", seg)
  t.hlen = (off >> 4) * 4
  t.bits = bits | ((off & 1) << 8)
  t.flags = tcp_flag_string(bits)
  if t.hlen < 20 or t.hlen > #seg then return nil, "TCP header length " .. t.hlen .. " is wrong" end
  t.options = seg:sub(21, t.hlen)
  local o, i = t.options, 1
  while i <= #o do
    local k = o:byte(i)
    if k == 0 then break end
    if k == 1 then
      i = i + 1
    else
      local l = o:byte(i + 1)
      if not l or l < 2 or i + l - 1 > #o then break end
      local v = o:sub(i + 2, i + l - 1)
      if k == 2 and l == 4 then t.mss = sunpack(">I2", v)
      elseif k == 3 and l == 3 then t.wscale = v:byte()
      elseif k == 4 and l == 2 then t.sack_ok = true
      elseif k == 8 and l == 10 then t.ts_val, t.ts_ecr = sunpack(">I4I4", v) end
      i = i + l
    end
  end
  t.payload = seg:sub(t.hlen + 1)
  t.checksum_ok = sum16(pseudo(src, dst, M.IPPROTO_TCP, #seg) .. seg) == 0xffff
  return t
end

local function parse_icmp(seg)
  if #seg < 4 then return nil, "ICMP header truncated" end
  local c = {}
  c.type, c.code, c.checksum = sunpack(">BBI2", seg)
  c.kind = ICMP_KINDS[c.type]
  c.checksum_ok = sum16(seg) == 0xffff
  if (c.type == 0 or c.type == 8) and #seg >= 8 then c.id, c.seq = sunpack(">I2I2", seg, 5) end
  if c.type == 3 and c.code == 4 and #seg >= 8 then c.mtu = sunpack(">I2", seg, 7) end
  c.payload = seg:sub(9)
  return c
end

local function nd_options(c, o)
  c.options = {}
  local i = 1
  while i + 1 <= #o do
    local typ, len = o:byte(i), o:byte(i + 1) * 8
    if len == 0 or i + len - 1 > #o then
      c.malformed = "bad ND option length"
      break
    end
    local data = o:sub(i + 2, i + len - 1)
    local opt = { type = typ }
    if (typ == 1 or typ == 2) and len == 8 then
      opt.mac = M.mac_string(data)
      if typ == 1 then c.sll = opt.mac else c.tll = opt.mac end
    elseif typ == 3 and len == 32 then
      local plen, fl, valid, preferred = sunpack(">BBI4I4", data)
      opt.prefix, opt.prefix_len, opt.valid, opt.preferred = M.ip6_string(data:sub(15, 30)), plen, valid, preferred
      opt.on_link, opt.autonomous = fl & 0x80 ~= 0, fl & 0x40 ~= 0
      c.prefixes = c.prefixes or {}
      c.prefixes[#c.prefixes + 1] = opt
    elseif typ == 5 and len == 8 then
      opt.mtu = sunpack(">I4", data, 3)
      c.mtu = opt.mtu
    else
      opt.data = data
    end
    c.options[#c.options + 1] = opt
    i = i + len
  end
end

local function parse_icmp6(seg, src, dst)
  if #seg < 4 then return nil, "ICMPv6 header truncated" end
  local c = {}
  c.type, c.code, c.checksum = sunpack(">BBI2", seg)
  c.kind = ICMP6_KINDS[c.type]
  c.checksum_ok = sum16(pseudo(src, dst, M.IPPROTO_ICMPV6, #seg) .. seg) == 0xffff
  local typ = c.type
  if (typ == 128 or typ == 129) and #seg >= 8 then
    c.id, c.seq = sunpack(">I2I2", seg, 5)
    c.payload = seg:sub(9)
  elseif (typ == 135 or typ == 136 or typ == 137) and #seg >= 24 then
    if typ == 136 then
      local fl = sunpack(">I4", seg, 5)
      c.router, c.solicited, c.override = fl & 0x80000000 ~= 0, fl & 0x40000000 ~= 0, fl & 0x20000000 ~= 0
    end
    c.target = M.ip6_string(seg:sub(9, 24))
    local opts_at = 25
    if typ == 137 and #seg >= 40 then
      c.destination = M.ip6_string(seg:sub(25, 40))
      opts_at = 41
    end
    nd_options(c, seg:sub(opts_at))
  elseif typ == 133 and #seg >= 8 then
    nd_options(c, seg:sub(9))
  elseif typ == 134 and #seg >= 16 then
    local fl
    c.hop_limit, fl, c.lifetime, c.reachable, c.retrans = sunpack(">BBI2I4I4", seg, 5)
    c.managed, c.other = fl & 0x80 ~= 0, fl & 0x40 ~= 0
    nd_options(c, seg:sub(17))
  elseif typ == 143 and #seg >= 8 then
    local n = sunpack(">I2", seg, 7)
    c.records = {}
    local i = 9
    for _ = 1, n do
      if i + 19 > #seg then break end
      local rtype, aux, nsrc = sunpack(">BBI2", seg, i)
      c.records[#c.records + 1] = { type = rtype, group = M.ip6_string(seg:sub(i + 4, i + 19)), sources = nsrc }
      i = i + 20 + nsrc * 16 + aux * 4
    end
  elseif (typ == 130 or typ == 131 or typ == 132) and #seg >= 24 then
    c.group = M.ip6_string(seg:sub(9, 24))
  else
    c.payload = seg:sub(5)
  end
  if not c.payload then c.payload = "" end
  return c
end

-- The transport layer of an IP packet: p[name] = fields, or p.malformed.
local function parse_l4(r, proto, seg, src, dst)
  local name, l4, err
  if proto == M.IPPROTO_UDP then
    name, l4, err = "udp", parse_udp(seg, src, dst)
  elseif proto == M.IPPROTO_TCP then
    name, l4, err = "tcp", parse_tcp(seg, src, dst)
  elseif proto == M.IPPROTO_ICMP and #src == 4 then
    name, l4, err = "icmp", parse_icmp(seg)
  elseif proto == M.IPPROTO_ICMPV6 and #src == 16 then
    name, l4, err = "icmp6", parse_icmp6(seg, src, dst)
  end
  if l4 then r[name] = l4 elseif err then r.malformed = err end
end

local function parse_ip4(r, s)
  if #s < 20 then r.malformed = "IPv4 header truncated" return end
  local vi, tos, len, id, frag, ttl, proto, ck = sunpack(">BBI2I2I2BBI2", s)
  local hlen = (vi & 0x0f) * 4
  if vi >> 4 ~= 4 then r.malformed = "IPv4 version is " .. (vi >> 4) return end
  if hlen < 20 or hlen > #s then r.malformed = "IPv4 header length " .. hlen .. " is wrong" return end
  local ip = {
    version = 4, hlen = hlen, tos = tos, dscp = tos >> 2, ecn = tos & 3, len = len, id = id,
    df = frag & 0x4000 ~= 0, mf = frag & 0x2000 ~= 0, frag = (frag & 0x1fff) * 8, ttl = ttl, proto = proto,
    checksum = ck, checksum_ok = sum16(s:sub(1, hlen)) == 0xffff,
    src = M.ip4_string(s:sub(13, 16)), dst = M.ip4_string(s:sub(17, 20)), options = s:sub(21, hlen),
  }
  r.ip = ip
  if len < hlen then r.malformed = "IPv4 total length " .. len .. " is shorter than its header" return end
  if len > #s then ip.truncated = true end
  ip.payload = s:sub(hlen + 1, len)
  if ip.mf or ip.frag > 0 then
    ip.fragment = true -- the transport header is in the first fragment only; no checksum to check
    return
  end
  if not ip.truncated then parse_l4(r, proto, ip.payload, s:sub(13, 16), s:sub(17, 20)) end
end

local EXT = { [0] = true, [43] = true, [60] = true } -- hop-by-hop, routing, destination options

local function parse_ip6(r, s)
  if #s < 40 then r.malformed = "IPv6 header truncated" return end
  local vtf, plen, nxt, hlim = sunpack(">I4I2BB", s)
  if vtf >> 28 ~= 6 then r.malformed = "IPv6 version is " .. (vtf >> 28) return end
  local ip6 = {
    version = 6, tc = (vtf >> 20) & 0xff, flow = vtf & 0xfffff, plen = plen, next = nxt, hlim = hlim,
    src = M.ip6_string(s:sub(9, 24)), dst = M.ip6_string(s:sub(25, 40)), ext = {},
  }
  r.ip6 = ip6
  if 40 + plen > #s then ip6.truncated = true end
  local body = s:sub(41, 40 + plen)
  local proto, at = nxt, 1
  while true do
    if EXT[proto] or proto == 51 then
      if at + 1 > #body then r.malformed = "IPv6 extension header truncated" return end
      local n, l = body:byte(at), body:byte(at + 1)
      local len = proto == 51 and (l + 2) * 4 or (l + 1) * 8
      ip6.ext[#ip6.ext + 1] = proto
      proto, at = n, at + len
    elseif proto == 44 then
      if at + 7 > #body then r.malformed = "IPv6 fragment header truncated" return end
      local n, _, off = sunpack(">BBI2", body, at)
      ip6.ext[#ip6.ext + 1] = proto
      proto, at = n, at + 8
      if off & 0xfff9 ~= 0 then -- an offset, or more fragments
        ip6.fragment = true
        ip6.proto, ip6.payload = proto, body:sub(at)
        return
      end
    else
      break
    end
  end
  if at > #body + 1 then r.malformed = "IPv6 extension headers longer than the payload" return end
  ip6.proto, ip6.payload = proto, body:sub(at)
  if not ip6.truncated then parse_l4(r, proto, ip6.payload, s:sub(9, 24), s:sub(25, 40)) end
end

local function parse_arp(r, s)
  if #s < 8 then r.malformed = "ARP header truncated" return end
  local a = {}
  a.htype, a.ptype, a.hlen, a.plen, a.opcode = sunpack(">I2I2BBI2", s)
  a.op = ARP_NAMES[a.opcode] or a.opcode
  r.arp = a
  if a.htype == 1 and a.ptype == 0x0800 and a.hlen == 6 and a.plen == 4 then
    if #s < 28 then r.malformed = "ARP packet truncated" return end
    a.sender_mac, a.sender_ip = M.mac_string(s:sub(9, 14)), M.ip4_string(s:sub(15, 18))
    a.target_mac, a.target_ip = M.mac_string(s:sub(19, 24)), M.ip4_string(s:sub(25, 28))
  end
end

--- Parse an Ethernet frame and every layer in it that this module knows. Returns nil for a
-- frame shorter than an Ethernet header; never raises for bad bytes (what could not be
-- decoded is named in `malformed`).
-- @tparam string s the frame
-- @treturn table `dst`, `src` (MAC text), `tags` (list of { tpid =, vid =, pcp = },
--   outermost first), `vlan` (the outer tag's VLAN id, or nil), `type` (the ethertype after
--   the tags), `payload` (the bytes after it), `len` (the frame's length); then, when
--   present:
--
--   - `arp`: `op` ("request", "reply", or the number), `opcode`, `sender_mac`,
--     `sender_ip`, `target_mac`, `target_ip`, `htype`, `ptype`, `hlen`, `plen`
--   - `ip` (IPv4): `src`, `dst`, `ttl`, `proto`, `tos`, `dscp`, `ecn`, `id`, `df`, `mf`,
--     `frag` (offset in bytes), `len` (total length), `hlen`, `options`, `checksum`,
--     `checksum_ok`, `payload` (without Ethernet padding), `fragment`, `truncated`
--   - `ip6`: `src`, `dst`, `hlim`, `tc`, `flow`, `plen`, `next` (first next header),
--     `ext` (extension headers skipped), `proto` (the upper layer's), `payload`,
--     `fragment`, `truncated`
--   - `udp`: `sport`, `dport`, `len`, `checksum`, `checksum_ok` (true for IPv4's "no
--     checksum", 0), `payload`
--   - `tcp`: `sport`, `dport`, `seq`, `ack`, `flags` (letters in the order "FSRPAUEC", as
--     `frame.tcp` takes them: "SA"), `bits`, `window`, `urg`, `hlen`, `options`, `mss`,
--     `wscale`, `sack_ok`, `ts_val`, `ts_ecr`, `checksum`, `checksum_ok`, `payload`
--   - `icmp`: `type`, `code`, `kind` ("echo_request", "echo_reply", "dest_unreachable",
--     ...), `id`, `seq` (echo), `mtu`, `checksum`, `checksum_ok`, `payload`
--   - `icmp6`: `type`, `code`, `kind` ("echo_request", "neighbor_solicitation",
--     "neighbor_advertisement", "router_advertisement", "mldv2_report", ...), `id`, `seq`,
--     `payload` (echo); `target`, `router`, `solicited`, `override`, `sll`, `tll`,
--     `options` (neighbour discovery); `prefixes`, `hop_limit`, `lifetime` (router
--     advertisement); `records` (MLDv2), `checksum`, `checksum_ok`
--   - `malformed`: what could not be decoded
function M.parse(s)
  if type(s) ~= "string" then
    error(("bad argument #1 to 'parse' (string expected, got %s)"):format(type(s)), 2)
  end
  if #s < 14 then return nil end
  local r = { dst = M.mac_string(s:sub(1, 6)), src = M.mac_string(s:sub(7, 12)), tags = {}, len = #s }
  local off = 13
  local t = sunpack(">I2", s, off)
  while (t == 0x8100 or t == 0x88a8 or t == 0x9100) and #s >= off + 5 do
    local tci = sunpack(">I2", s, off + 2)
    r.tags[#r.tags + 1] = { tpid = t, vid = tci & 0xfff, pcp = tci >> 13 }
    off = off + 4
    t = sunpack(">I2", s, off)
  end
  r.type = t
  r.vlan = r.tags[1] and r.tags[1].vid
  r.payload = s:sub(off + 2)
  local decode = t == M.ETH_P_IPV4 and parse_ip4 or t == M.ETH_P_IPV6 and parse_ip6 or t == M.ETH_P_ARP and parse_arp
  if decode then
    local ok, err = pcall(decode, r, r.payload)
    if not ok then r.malformed = tostring(err) end
  end
  return r
end

-- ---- one line per frame -------------------------------------------------------------

local function l4_summary(p, src, dst)
  local bad = {}
  local l
  if p.udp then
    local u = p.udp
    l = ("%s.%d > %s.%d: UDP, length %d"):format(src, u.sport, dst, u.dport, #u.payload)
    if not u.checksum_ok then bad[#bad + 1] = "bad UDP checksum" end
  elseif p.tcp then
    local t = p.tcp
    l = ("%s.%d > %s.%d: TCP [%s] seq %d ack %d win %d"):format(src, t.sport, dst, t.dport,
      t.flags == "" and "none" or t.flags, t.seq, t.ack, t.window)
    if t.mss then l = l .. " mss " .. t.mss end
    l = l .. ", length " .. #t.payload
    if not t.checksum_ok then bad[#bad + 1] = "bad TCP checksum" end
  elseif p.icmp or p.icmp6 then
    local c = p.icmp or p.icmp6
    local what = (c.kind or ("type " .. c.type)):gsub("_", " ")
    l = ("%s > %s: %s %s"):format(src, dst, p.icmp and "ICMP" or "ICMPv6", what)
    if c.id then l = l .. (", id %d, seq %d, length %d"):format(c.id, c.seq, #c.payload) end
    if c.target then l = l .. ", " .. (c.type == 135 and "who has " or "tgt is ") .. c.target end
    if c.sll then l = l .. ", from " .. c.sll end
    if c.tll then l = l .. ", at " .. c.tll end
    if c.type == 136 then
      l = l .. (", flags [%s%s%s]"):format(c.router and "R" or "", c.solicited and "S" or "", c.override and "O" or "")
    end
    if c.records then l = l .. (", %d group record(s)"):format(#c.records) end
    if c.code ~= 0 then l = l .. ", code " .. c.code end
    if not c.checksum_ok then bad[#bad + 1] = (p.icmp and "bad ICMP checksum" or "bad ICMPv6 checksum") end
  end
  return l, bad
end

--- One line describing a frame, tcpdump style:
-- `02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ARP request who-has 10.0.0.2 tell 10.0.0.1, 42 bytes`.
-- Bad checksums and undecodable layers are named in brackets.
-- @tparam string|table f the frame's bytes, or what `parse` returned
-- @treturn string
function M.summary(f)
  local p = type(f) == "table" and f or (type(f) == "string" and M.parse(f))
  if type(f) ~= "table" and type(f) ~= "string" then
    error(("bad argument #1 to 'summary' (frame or parsed frame expected, got %s)"):format(type(f)), 2)
  end
  if not p then return ("runt frame of %d bytes"):format(#f) end
  local parts = { ("%s > %s"):format(p.src, p.dst) }
  for _, tag in ipairs(p.tags) do
    parts[#parts + 1] = ("%s %d%s"):format(tag.tpid == 0x8100 and "vlan" or ("tag 0x%04x"):format(tag.tpid), tag.vid,
      tag.pcp ~= 0 and (" p " .. tag.pcp) or "")
  end
  local bad = {}
  if p.arp then
    local a = p.arp
    if a.op == "request" and a.target_ip then
      parts[#parts + 1] = ("ARP request who-has %s tell %s"):format(a.target_ip, a.sender_ip)
    elseif a.op == "reply" and a.sender_ip then
      parts[#parts + 1] = ("ARP reply %s is-at %s"):format(a.sender_ip, a.sender_mac)
    else
      parts[#parts + 1] = ("ARP %s"):format(a.op)
    end
  elseif p.ip or p.ip6 then
    local ip = p.ip or p.ip6
    local l
    l, bad = l4_summary(p, ip.src, ip.dst)
    local head = p.ip and ("IPv4 ttl %d"):format(ip.ttl) or ("IPv6 hlim %d"):format(ip.hlim)
    if not l then
      l = ("%s > %s: proto %d%s, length %d"):format(ip.src, ip.dst, ip.proto or -1, ip.fragment and " (fragment)" or "",
        #(ip.payload or ""))
    end
    parts[#parts + 1] = head .. " " .. l
    if p.ip and not p.ip.checksum_ok then table.insert(bad, 1, "bad IPv4 header checksum") end
    if ip.truncated then bad[#bad + 1] = "truncated" end
  else
    parts[#parts + 1] = ("ethertype 0x%04x, %d bytes of payload"):format(p.type, #p.payload)
  end
  if p.malformed then bad[#bad + 1] = "malformed: " .. p.malformed end
  local s = concat(parts, ", ") .. (", %d bytes"):format(p.len or 0)
  if #bad > 0 then s = s .. " [" .. concat(bad, "; ") .. "]" end
  return s
end

--- Bytes as hex pairs ("02 00 00 00 00 01 ..."), for messages.
function M.hex(s)
  return (s:gsub(".", function(c) return ("%02x "):format(c:byte()) end):gsub(" $", ""))
end

-- ---- pcap files ---------------------------------------------------------------------

--- Write frames to a classic pcap file (LINKTYPE_ETHERNET, microsecond timestamps) that
-- tshark, tcpdump and Wireshark read.
-- @tparam string path
-- @tparam table frames a list of frames (strings), or of { frame =, time = } records with
--   `time` in seconds since the epoch (default: now)
-- @return true, or nil and a message
function M.write_pcap(path, frames)
  if type(path) ~= "string" then
    error(("bad argument #1 to 'write_pcap' (path expected, got %s)"):format(type(path)), 2)
  end
  if type(frames) ~= "table" then
    error(("bad argument #2 to 'write_pcap' (list of frames expected, got %s)"):format(type(frames)), 2)
  end
  local out = { spack("<I4I2I2i4I4I4I4", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1) }
  local now = os.time()
  for i, rec in ipairs(frames) do
    local f, t = rec, now
    if type(rec) == "table" then f, t = rec.frame, rec.time or now end
    if type(f) ~= "string" or type(t) ~= "number" then
      error(("bad argument #2 to 'write_pcap' (item %d: a frame or { frame =, time = } expected)"):format(i), 2)
    end
    local sec = math.floor(t)
    local usec = math.floor((t - sec) * 1e6 + 0.5)
    if usec >= 1000000 then sec, usec = sec + 1, usec - 1000000 end
    local caplen = math.min(#f, 65535)
    out[#out + 1] = spack("<I4I4I4I4", sec, usec, caplen, #f) .. f:sub(1, caplen)
  end
  local fh, err = io.open(path, "wb")
  if not fh then return nil, err end
  local ok, werr = fh:write(concat(out))
  fh:close()
  if not ok then return nil, werr end
  return true
end

--- Read a classic pcap file (either byte order, micro- or nanosecond timestamps; what a
-- `pcap` port, tcpdump or `write_pcap` writes).
-- @tparam string path
-- @return a list of { frame =, time = (seconds since the epoch), len = (length on the
--   wire) } and the link type, or nil and a message
function M.read_pcap(path)
  if type(path) ~= "string" then
    error(("bad argument #1 to 'read_pcap' (path expected, got %s)"):format(type(path)), 2)
  end
  local fh, err = io.open(path, "rb")
  if not fh then return nil, err end
  local s = fh:read("a")
  fh:close()
  if #s < 24 then return nil, path .. ": not a pcap file (too short)" end
  local magic = sunpack("<I4", s)
  local e, scale
  if magic == 0xa1b2c3d4 then e, scale = "<", 1e-6
  elseif magic == 0xa1b23c4d then e, scale = "<", 1e-9
  elseif magic == 0xd4c3b2a1 then e, scale = ">", 1e-6
  elseif magic == 0x4d3cb2a1 then e, scale = ">", 1e-9
  else return nil, ("%s: not a classic pcap file (magic 0x%08x)"):format(path, magic) end
  local linktype = sunpack(e .. "I4", s, 21)
  local list, at = {}, 25
  while at + 15 <= #s do
    local sec, frac, caplen, len = sunpack(e .. "I4I4I4I4", s, at)
    if at + 15 + caplen > #s then return nil, ("%s: record %d truncated"):format(path, #list + 1) end
    list[#list + 1] = { frame = s:sub(at + 16, at + 15 + caplen), time = sec + frac * scale, len = len }
    at = at + 16 + caplen
  end
  return list, linktype
end

return M
