-- examples/lab_vms.lua — a switch ready for QEMU VMs, over each socket transport.
--
-- Switch s1 has a host h1 (a namespace, 10.0.0.1/24) and three VM ports: vm1 over unix
-- datagram sockets (QEMU -netdev dgram), vm2 over a unix stream socket (QEMU -netdev
-- stream), vm3 over a socketpair whose other end is an inherited file descriptor (QEMU
-- -netdev dgram,local.type=fd). It prints the exact QEMU command line of each. Then:
--
--   build/luaswitch examples/lab_vms.lua
--       stands in for the three VMs with luaswitch endpoints speaking each framing (as
--       QEMU would): each asks for h1's MAC with ARP and h1's kernel answers; then exits.
--   build/luaswitch examples/lab_vms.lua serve [COMMAND]
--       serves real VMs until Ctrl-C: start vm1 and vm2 with the printed lines. vm3's file
--       descriptor only exists in this process, so QEMU must be its child: COMMAND (a QEMU
--       command line without -netdev/-device) is started with vm3's arguments appended.
--
-- Everything (namespace, socket files, processes) is removed at the end and on Ctrl-C.
-- (As root; QEMU itself is not needed for the stand-ins.)

local luaswitch = require "luaswitch"
local frame = require "luaswitch.frame"
local Lab = require "luaswitch.lab"

local serve = arg and arg[1] == "serve"
local lab = Lab.new { name = "vms" }
local s1 = lab:switch "s1"
lab:host("h1", { switch = s1, ip = "10.0.0.1/24" })
local vms = {
  lab:vm("vm1", { switch = s1, kind = "unix" }),
  lab:vm("vm2", { switch = s1, kind = "stream" }),
  lab:vm("vm3", { switch = s1, kind = "socketpair" }),
}

-- An ARP request "who has `ip`? tell `src_ip`" from `mac`.
local function arp_request(mac, src_ip, ip)
  local function ip4(s) return string.char(s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")) end
  local payload = string.pack(">I2I2BBI2", 1, 0x0800, 6, 4, 1) .. frame.mac_bytes(mac) .. ip4(src_ip) ..
    string.rep("\0", 6) .. ip4(ip)
  return frame.ethernet { dst = frame.BROADCAST, src = mac, type = 0x0806, payload = payload, size = 60 }
end

-- Wait on endpoint ep for an ARP reply to `mac`; returns the replying MAC.
local function arp_reply(ep, mac, timeout)
  local deadline = luaswitch.monotime() + timeout
  while luaswitch.monotime() < deadline do
    local f = ep:recv(0.1)
    local p = f and frame.parse(f)
    if p and p.type == 0x0806 and p.dst == mac and p.payload:byte(8) == 2 then return p.src end
  end
end

local ok, err = pcall(function()
  lab:start()
  print(("lab %s: switch s1, host h1 (10.0.0.1/24, netns %s), three VM ports:"):format(lab.name, lab.h1.netns))
  for _, vm in ipairs(vms) do
    print(("%s (%s):\n  %s"):format(vm.name, vm.transport, vm:command { image = vm.name .. ".qcow2" }))
  end
  io.stdout:flush()

  if serve then
    if arg[2] then
      local cmd = arg[2] .. " " .. vms[3].qemu
      print("starting for vm3: " .. cmd)
      vms[3]:spawn(cmd)
      vms[3].port:release_peer() -- the child holds it now: its exit takes the port down
    end
    s1:on("learn", function(ev) print(("learned %s on %s"):format(ev.mac, ev.port.name)) io.stdout:flush() end)
    s1:on("port", function(ev)
      print(("port %s %s (%s)"):format(ev.port.name, ev.state, ev.reason)) io.stdout:flush()
    end)
    print("serving until Ctrl-C") io.stdout:flush()
    luaswitch.run()
    return
  end

  print("standing in for the VMs (luaswitch endpoints, the same framing as QEMU):")
  for i, vm in ipairs(vms) do
    local ep = assert(vm:endpoint())
    ep:drain()
    ep:send(arp_request(vm.mac, "10.0.0." .. (100 + i), "10.0.0.1"))
    local who = arp_reply(ep, vm.mac, 3)
    assert(who == lab.h1.mac, ("%s: no ARP reply from h1"):format(vm.name))
    print(("  %s (%s, MAC %s): h1 answered its ARP request from %s"):format(vm.name, vm.transport, vm.mac, who))
  end
  print("s1's MAC table:")
  for _, e in ipairs(s1:fdb()) do print(("  %s on %s"):format(e.mac, e.port.name)) end
end)

lab:stop()
if not ok and not tostring(err):match("interrupted!") then
  io.stderr:write("lab_vms: ", tostring(err), "\n")
  os.exit(1)
end
if not ok then print("interrupted: lab removed") end
