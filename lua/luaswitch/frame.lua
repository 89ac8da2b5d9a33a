--- luaswitch.frame: build and parse Ethernet frames as Lua strings.
--
--    local frame = require "luaswitch.frame"
--    local f = frame.ethernet { dst = "ff:ff:ff:ff:ff:ff", src = "02:00:00:00:00:01",
--                               type = 0x88b5, payload = "hello", size = 64 }
--    local p = frame.parse(f)   --> { dst =, src =, type =, tags = {...}, payload = }
-- @module luaswitch.frame

local M = {}

--- Ethertype for local experiments (IEEE 802 "local experimental 1").
M.ETH_P_EXPERIMENTAL = 0x88b5
M.BROADCAST = "ff:ff:ff:ff:ff:ff"

--- MAC text ("02:00:00:00:00:01") to its 6 bytes.
function M.mac_bytes(mac)
  if type(mac) ~= "string" then
    error(("bad argument #1 to 'mac_bytes' (MAC address string expected, got %s)"):format(type(mac)), 2)
  end
  local b = { mac:match("^(%x%x)[:-](%x%x)[:-](%x%x)[:-](%x%x)[:-](%x%x)[:-](%x%x)$") }
  if #b ~= 6 then error(("bad argument #1 to 'mac_bytes' (malformed MAC address '%s')"):format(mac), 2) end
  for i = 1, 6 do b[i] = tonumber(b[i], 16) end
  return string.char(table.unpack(b))
end

--- 6 bytes to MAC text.
function M.mac_string(bytes)
  return (("%02x:%02x:%02x:%02x:%02x:%02x"):format(bytes:byte(1, 6)))
end

--- A locally administered unicast MAC from an integer: mac(1) = "02:00:00:00:00:01".
function M.mac(n)
  return ("02:%02x:%02x:%02x:%02x:%02x"):format((n >> 32) & 0xff, (n >> 24) & 0xff,
    (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
end

--- Build an Ethernet frame.
-- @tparam table f `dst`, `src` (MAC text), `type` (ethertype, default 0x88b5),
--   `payload` (string, default ""), `vlan` (802.1Q VLAN id to tag with, optional),
--   `pcp` (priority, default 0), `tags` (list of tags, outermost first, each
--   { vid =, pcp =, tpid = (default 0x8100) }: for 802.1ad or stacked tags; instead of
--   `vlan`), `size` (pad with zeros to this many bytes, optional)
-- @treturn string
function M.ethernet(f)
  local parts = { M.mac_bytes(f.dst), M.mac_bytes(f.src) }
  if f.vlan then
    parts[#parts + 1] = string.pack(">I2I2", 0x8100, ((f.pcp or 0) << 13) | f.vlan)
  end
  for _, t in ipairs(f.tags or {}) do
    parts[#parts + 1] = string.pack(">I2I2", t.tpid or 0x8100, ((t.pcp or 0) << 13) | t.vid)
  end
  parts[#parts + 1] = string.pack(">I2", f.type or M.ETH_P_EXPERIMENTAL)
  parts[#parts + 1] = f.payload or ""
  local s = table.concat(parts)
  if f.size and #s < f.size then s = s .. string.rep("\0", f.size - #s) end
  return s
end

--- Parse an Ethernet frame. Returns nil for a frame shorter than its header.
-- @treturn table `dst`, `src`, `type`, `tags` (list of { tpid =, vid =, pcp = }), `payload`
function M.parse(s)
  if #s < 14 then return nil end
  local r = { dst = M.mac_string(s:sub(1, 6)), src = M.mac_string(s:sub(7, 12)), tags = {} }
  local off = 13
  local t = string.unpack(">I2", s, off)
  while (t == 0x8100 or t == 0x88a8 or t == 0x9100) and #s >= off + 5 do
    local tci = string.unpack(">I2", s, off + 2)
    r.tags[#r.tags + 1] = { tpid = t, vid = tci & 0xfff, pcp = tci >> 13 }
    off = off + 4
    t = string.unpack(">I2", s, off)
  end
  r.type = t
  r.payload = s:sub(off + 2)
  return r
end

return M
