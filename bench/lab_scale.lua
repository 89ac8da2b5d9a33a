-- bench/lab_scale.lua — labs at scale: trees of hosts started, pinged all-pairs, stopped,
-- against Mininet building and pinging the same trees in the same run.
--
--   build/luaswitch bench/lab_scale.lua [sizes=16,64,256] [mininet=auto|no] [arp=auto|static|dynamic]   (root)
--
-- A tree of F x F hosts is one core switch, F edge switches linked to it (patch links) and
-- F hosts on each (Mininet's `--topo tree,depth=2,fanout=F`); a size N is rounded to the
-- nearest F x F. For each tree it prints the time to start, the all-pairs pingall (pairs
-- sampled above 256 hosts: 20 per host) with its verdict checked against `ping -c 1` run
-- for each pair of a sample on its own, the time to stop, and memory per host (this
-- process's RSS, and the machine's MemAvailable, which counts the kernel's namespaces
-- too). arp: `static` starts each lab with `static_arp = true` (Mininet's --arp),
-- `dynamic` lets hosts ARP, `auto` (the default) is static above 256 hosts, where
-- flooded ARPs of an all-pairs ping are most of the work. Where Mininet is installed
-- (`apt-get install mininet bridge-utils`) it runs `mn --switch lxbr --controller none
-- --topo tree,depth=2,fanout=F --test none` (start and stop) and, up to 64 hosts,
-- `--test pingall` (its pingall is one ping after another), and prints the ratio
-- luaswitch / Mininet of the same work (Mininet only up to LAB_SCALE_MN_MAX hosts,
-- default 256: its 1,024-host tree takes many minutes). With LAB_SCALE_TSV=file each row
-- is also appended there as tab-separated values, for bench/lab_scale_plot.sh.
-- Everything is removed at the end (and at exit if interrupted).

local luaswitch = require "luaswitch"
local Lab = require "luaswitch.lab"

local sizes = {}
for n in (arg and arg[1] or "16,64,256"):gmatch("%d+") do sizes[#sizes + 1] = tonumber(n) end
local want_mn = arg and arg[2] or "auto"
local arp = arg and arg[3] or "auto"
assert(arp == "auto" or arp == "static" or arp == "dynamic", "arp: auto, static or dynamic expected")

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  p:close()
  return out
end

local function meminfo(key)
  for line in io.lines("/proc/meminfo") do
    local v = line:match("^" .. key .. ":%s+(%d+)")
    if v then return tonumber(v) end
  end
end

local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local v = line:match("^VmRSS:%s+(%d+)")
    if v then return tonumber(v) end
  end
end

local have_mn = want_mn ~= "no" and sh("command -v mn"):match("%S") ~= nil
local mn_max = tonumber(os.getenv("LAB_SCALE_MN_MAX") or "") or 256
local tsv = os.getenv("LAB_SCALE_TSV")

local function tree(F)
  local static = arp == "static" or (arp == "auto" and F * F > 256)
  local lab = Lab.new { name = "scale" .. F * F, static_arp = static }
  local core = lab:switch "c0"
  local n = 0
  for k = 1, F do
    local e = lab:switch("e" .. k)
    lab:link(core, e)
    for _ = 1, F do
      n = n + 1
      lab:host("h" .. n, { switch = e })
    end
  end
  return lab, n
end

local function ours(F)
  local lab, n = tree(F)
  local r = { hosts = n, arp = lab.static_arp and "static" or "dynamic" }
  local mem0, rss0 = meminfo("MemAvailable"), rss_kb()
  local t = luaswitch.monotime()
  lab:start()
  r.start = luaswitch.monotime() - t
  r.rss = (rss_kb() - rss0) / n
  r.mem = (mem0 - meminfo("MemAvailable")) / n
  t = luaswitch.monotime()
  local pairs_ = n <= 256 and "all" or 20 * n
  local drop, res = lab:pingall { quiet = true, pairs = pairs_ }
  r.pingall, r.pairs, r.drop = luaswitch.monotime() - t, res.sent, drop
  -- ground truth on a sample of the pairs pinged: each pair pinged on its own
  local tried_pairs = {}
  for a, row in pairs(res) do
    if type(row) == "table" and lab[a] then
      for b, v in pairs(row) do
        if type(v) == "boolean" then tried_pairs[#tried_pairs + 1] = { a, b, v } end
      end
    end
  end
  local bad, tried = 0, 0
  for _ = 1, math.min(32, #tried_pairs) do
    local p = table.remove(tried_pairs, math.random(#tried_pairs))
    tried = tried + 1
    if lab[p[1]]:ping(lab[p[2]], { count = 1, timeout = 1 }) ~= p[3] then bad = bad + 1 end
  end
  r.truth = ("%d/%d"):format(bad, tried)
  t = luaswitch.monotime()
  lab:stop()
  r.stop = luaswitch.monotime() - t
  return r
end

local function mn_run(F, test)
  local t = luaswitch.monotime()
  local out = sh(("mn --switch lxbr --controller none --topo tree,depth=2,fanout=%d --test %s"):format(F, test))
  local took = luaswitch.monotime() - t
  local drop = out:match("Results: (%d+)%% dropped")
  return took, drop and tonumber(drop)
end

-- Mininet's start + stop of the tree (`--test none`), and up to 64 hosts its whole
-- start + pingall + stop (`--test pingall`: one ping after another, slow past that)
local function mininet(F)
  local m = { none = mn_run(F, "none") }
  if F * F <= 64 then m.pingall, m.drop = mn_run(F, "pingall") end
  return m
end

print(("%-6s %-7s %8s %9s %8s %8s %7s %8s %9s %9s %s"):format("hosts", "arp", "start s", "pingall s", "pairs", "lost %",
  "truth", "stop s", "RSS/host", "mem/host", have_mn and "| Mininet (same tree)" or ""))
for _, size in ipairs(sizes) do
  local F = math.max(2, math.floor(math.sqrt(size) + 0.5))
  local r = ours(F)
  local line = ("%-6d %-7s %8.2f %9.2f %8d %8.1f %7s %8.2f %6.0f kB %6.0f kB"):format(r.hosts, r.arp, r.start, r.pingall, r.pairs,
    r.drop, r.truth, r.stop, r.rss, r.mem)
  local m
  if have_mn and F * F <= mn_max then
    m = mininet(F)
    line = line .. (" | mn start+stop %.1f s: ours %.2fx"):format(m.none, (r.start + r.stop) / m.none)
    if m.pingall then
      local mine = r.start + r.pingall + r.stop
      line = line .. ("; start+pingall+stop %.1f s (%s%% lost): ours %.1f s = %.2fx"):format(m.pingall,
        m.drop and tostring(m.drop) or "?", mine, mine / m.pingall)
    end
  end
  print(line)
  io.stdout:flush()
  if tsv then
    local f = assert(io.open(tsv, "a"))
    f:write(table.concat({ r.hosts, r.arp, ("%.3f"):format(r.start), ("%.3f"):format(r.pingall), r.pairs,
      ("%.2f"):format(r.drop), ("%.3f"):format(r.stop), ("%.0f"):format(r.rss), ("%.0f"):format(r.mem),
      m and ("%.3f"):format(m.none) or "-", m and m.pingall and ("%.3f"):format(m.pingall) or "-" }, "\t"), "\n")
    f:close()
  end
end
