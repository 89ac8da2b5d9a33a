-- bench/tap_bench.lua — two network namespaces joined by luaswitch (TAP ports) against the
-- same two namespaces joined by the Linux bridge (veth pairs), measured in one run.
--
--   build/luaswitch bench/tap_bench.lua [runs=3] [seconds=4]      (root; iperf3 installed)
--
-- For each setup and run: iperf3 TCP (Gbit/s at the receiver) and iperf3 UDP with 18-byte
-- payloads, i.e. 64-byte Ethernet frames (frames/s at the receiver, and the loss). Medians
-- over the runs, and luaswitch / bridge ratios. Everything it creates is removed at the
-- end (and at exit if interrupted).

local luaswitch = require "luaswitch"
local netns = require "luaswitch.netns"

local runs = tonumber(arg and arg[1]) or 3
local secs = tonumber(arg and arg[2]) or 4
local tag = ("lsb%d"):format(math.random(1000, 9999))

local function median(t)
  table.sort(t)
  local n = #t
  if n == 0 then return 0 end
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

local function wait_listen(ns)
  for _ = 1, 100 do
    local _, rc = ns:run("ss -ltn | grep -q ':5201 '")
    if rc == 0 then return end
    luaswitch.core.wait(0.05)
  end
  error("iperf3 server did not start")
end

local function iperf(cli, srv, ip, udp)
  local server = srv:spawn("iperf3 -s -1")
  wait_listen(srv)
  local cmd = udp and ("iperf3 -c %s -t %d -u -b 0 -l 18 -J"):format(ip, secs)
    or ("iperf3 -c %s -t %d -J"):format(ip, secs)
  local out = cli:check(cmd)
  server:wait(3)
  server:cleanup()
  if udp then
    local sum = out:match('"sum_received"%s*:%s*(%b{})')
    local packets = tonumber(sum:match('"packets"%s*:%s*(%d+)'))
    local lost = tonumber(sum:match('"lost_packets"%s*:%s*(%d+)')) or 0
    local seconds = tonumber(sum:match('"seconds"%s*:%s*([%d.]+)')) or secs
    return (packets - lost) / seconds, lost / math.max(packets, 1)
  end
  local recv = out:match('"sum_received"%s*:%s*(%b{})')
  return tonumber(recv:match('"bits_per_second"%s*:%s*([%d.e+]+)')) / 1e9
end

local function measure(name, h1, h2)
  local tcp, udp, loss = {}, {}, {}
  for r = 1, runs do
    tcp[r] = iperf(h1, h2, "10.55.0.2", false)
    udp[r], loss[r] = iperf(h1, h2, "10.55.0.2", true)
  end
  local res = { tcp = median(tcp), udp = median(udp), loss = median(loss) }
  print(("%-10s TCP %6.2f Gbit/s   UDP 64-byte %9.0f frames/s (loss %.2f%%)"):format(
    name, res.tcp, res.udp, res.loss * 100))
  return res
end

local made = {}
local function keep(o) made[#made + 1] = assert(o) return o end
local ok, err = pcall(function()
  print(("tap_bench: %d runs of %d s each, medians"):format(runs, secs))
  -- luaswitch: two hosts on TAP ports
  local a1, a2 = keep(netns.create(tag .. "a1")), keep(netns.create(tag .. "a2"))
  local sw = luaswitch.switch "bench"
  assert(sw:port { kind = "tap", name = "h1", ifname = "eth0", netns = a1.name, addresses = { "10.55.0.1/24" } })
  assert(sw:port { kind = "tap", name = "h2", ifname = "eth0", netns = a2.name, addresses = { "10.55.0.2/24" } })
  a1:check("ping -c 2 -i 0.2 -W 2 10.55.0.2")
  local ls = measure("luaswitch", a1, a2)
  sw:close()
  -- Linux bridge: two hosts on veth pairs enslaved to br0, in a namespace of its own
  local b1, b2, br = keep(netns.create(tag .. "b1")), keep(netns.create(tag .. "b2")), keep(netns.create(tag .. "br"))
  br:check("ip link add br0 type bridge && ip link set br0 up")
  keep(netns.veth { name = "eth0", netns = b1, peer = "p1", peer_netns = br, addresses = { "10.55.0.1/24" } })
  keep(netns.veth { name = "eth0", netns = b2, peer = "p2", peer_netns = br, addresses = { "10.55.0.2/24" } })
  br:check("ip link set p1 master br0 && ip link set p2 master br0")
  b1:check("ping -c 2 -i 0.2 -W 2 10.55.0.2")
  local kb = measure("bridge", b1, b2)
  print(("ratio      TCP %.2f x bridge   UDP %.2f x bridge"):format(ls.tcp / kb.tcp, ls.udp / kb.udp))
end)
for i = #made, 1, -1 do made[i]:close() end
if not ok then
  io.stderr:write("tap_bench: ", tostring(err), "\n")
  os.exit(1)
end
