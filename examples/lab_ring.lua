-- examples/lab_ring.lua — three switches in a ring, kept loop-free by the spanning tree.
--
-- s1, s2, s3 joined in a ring by patch links, a host on each, and `stp = true` on the lab:
-- every switch runs 802.1D with lab timers (hello 0.125 s, forward delay 0.25 s, max age
-- 0.75 s) and the host ports are edge ports. lab:start() returns once the tree has
-- settled. Then:
--   1. which link end blocks; pingall (a broadcast storm would make it fail); how many
--      frames crossed the links for it.
--   2. a forwarding link of the root is cut: the blocked end takes over (timed); pingall.
--   3. the link is plugged in again: the ring is broken at one end again; pingall.
-- Everything is removed at the end, on errors and on Ctrl-C.
--
--   build/luaswitch examples/lab_ring.lua [DRAWING.dot]   (as root; ping installed)

local luaswitch = require "luaswitch"
local Lab = require "luaswitch.lab"

local lab = Lab.new { name = "ring", stp = true, verbose = true }
local s1, s2, s3 = lab:switch "s1", lab:switch "s2", lab:switch "s3"
local links = { lab:link(s1, s2), lab:link(s2, s3), lab:link(s3, s1) }
for i, sw in ipairs { s1, s2, s3 } do lab:host("h" .. i, { switch = sw, ip = ("10.0.0.%d/24"):format(i) }) end

local function show()
  for _, l in ipairs(links) do
    local st = l:stp()
    print(("  %-6s %s %-10s %s %s"):format(l.name, l.a.name, st[l.a.name], l.b.name, st[l.b.name]))
  end
end

local function link_frames()
  local n = 0
  for _, l in ipairs(links) do
    for _, p in ipairs { l.ports.a, l.ports.b } do
      local st = p:stats()
      n = n + st.rx_frames - st.rx_bpdu
    end
  end
  return n
end

local ok, err = pcall(function()
  lab:start()
  for _, s in ipairs { s1, s2, s3 } do
    if s:stp().is_root then print(("1. the root is %s; the link ends:"):format(s.name)) end
  end
  show()
  local n0 = link_frames()
  assert(lab:pingall() == 0, "pingall dropped pings")
  print(("  frames across the links for it (BPDUs aside): %d"):format(link_frames() - n0))

  local cut
  for _, l in ipairs(links) do
    local st = l:stp()
    if st[l.a.name] == "forwarding" and st[l.b.name] == "forwarding"
      and (l.a.sw:stp().is_root or l.b.sw:stp().is_root) then
      cut = l
      break
    end
  end
  print(("2. link %s cut"):format(cut.name))
  local t0 = luaswitch.monotime()
  cut:down()
  assert(lab:converged(5), "the spanning tree did not settle")
  print(("  settled again in %.2f s:"):format(luaswitch.monotime() - t0))
  show()
  assert(lab:pingall() == 0, "pingall dropped pings")

  print(("3. link %s plugged in again"):format(cut.name))
  cut:up()
  assert(lab:converged(5), "the spanning tree did not settle")
  show()
  assert(lab:pingall() == 0, "pingall dropped pings")
  if arg and arg[1] then
    local path, svg = assert(lab:dot(arg[1]))
    print(("drawing: %s%s"):format(path, svg and (", " .. svg) or " (install graphviz for an SVG)"))
  end
end)

lab:stop()
if not ok then
  io.stderr:write("lab_ring: ", tostring(err), "\n")
  os.exit(1)
end
