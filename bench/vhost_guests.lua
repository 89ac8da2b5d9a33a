-- bench/vhost_guests.lua — two QEMU guests on one switch through vhost-user ports.
--
-- Makes a switch with two "vhost-user" ports, boots the tiny guest of spec/guest twice
-- (QEMU, TCG) with its virtio-net NIC on those ports, and waits until each has pinged the
-- other (LS-PING-OK on both serial consoles), then prints the console lines, the port
-- events and counters, and stops everything.
--
--   build/luaswitch bench/vhost_guests.lua              shared guest memory: pings pass
--   build/luaswitch bench/vhost_guests.lua noshare      memory-backend-memfd,share=off:
--       the ports refuse the guest memory (error "add share=on ...") and stay down
--   build/luaswitch bench/vhost_guests.lua client       QEMU listens (server=on), the
--       ports connect to it (client = true)
--   build/luaswitch bench/vhost_guests.lua restart      (or client-restart) then queues a
--       burst of frames to vm2, kills its QEMU (-9) with them in flight, checks the port
--       went down and released the guest's memory, boots vm2 again and waits for its ping
--
-- LUASWITCH_VHOST_MSIX=1 leaves MSI-X on (see the vectors=0 note below; fine with KVM).
-- Needs qemu-system-x86_64 and the guest (spec/guest/build.sh builds it once).
-- LUASWITCH_GUEST_TIMEOUT (seconds, default 240) bounds the wait; TCG boots take a while.

local luaswitch = require "luaswitch"

local mode = arg and arg[1] or "share"
local timeout = tonumber(os.getenv("LUASWITCH_GUEST_TIMEOUT") or "") or 240
local here = (arg and arg[0] or "bench/vhost_guests.lua"):match("^(.*)/bench/[^/]*$") or "."

local function sh(cmd)
  local f = assert(io.popen(cmd))
  local out = f:read("a")
  f:close()
  return (out:gsub("%s+$", ""))
end

local guest = sh(here .. "/spec/guest/build.sh")
assert(guest ~= "", "spec/guest/build.sh failed")
local dir = sh("mktemp -d /tmp/lsvhost.XXXXXX")
local share = mode == "noshare" and "off" or "on"
local client = mode == "client" or mode == "client-restart"
local restart = mode == "restart" or mode == "client-restart"

local function qemu_cmd(i, path, log)
  local chardev = ("-chardev socket,id=c0,path=%s%s"):format(path, client and ",server=on,wait=off" or "")
  return table.concat({
    "qemu-system-x86_64 -M q35 -m 256 -display none -no-reboot -nodefaults",
    "-serial file:" .. log,
    "-kernel " .. guest .. "/vmlinuz -initrd " .. guest .. "/initrd.img",
    ("-append 'console=ttyS0 quiet ls.ip=10.0.0.%d/24 ls.peers=10.0.0.%d ls.deadline=120'"):format(i, 3 - i),
    "-object memory-backend-memfd,id=mem,size=256M,share=" .. share,
    "-numa node,memdev=mem",
    chardev,
    "-netdev vhost-user,id=n0,chardev=c0",
    -- vectors=0 (INTx, no MSI-X): QEMU 7.2 under TCG crashes (SIGSEGV in
    -- msix_set_vector_notifiers, from vhost_net_start) when a vhost-user NIC uses MSI-X
    -- without KVM irqfds, before it sends the back-end anything but the first messages.
    ("-device virtio-net-pci,netdev=n0,mac=52:54:00:00:00:%02d%s"):format(i,
      os.getenv("LUASWITCH_VHOST_MSIX") and "" or ",vectors=0"),
  }, " ")
end

local sw = luaswitch.switch { name = "vhost" }
sw:on("port", function(ev)
  print(("[%.1fs] port %s %s (%s)"):format(luaswitch.monotime() % 1000, ev.port.name, ev.state, ev.reason))
end)
sw:on("error", function(ev)
  print(("[%.1fs] error on %s: %s (%s, where %s)"):format(luaswitch.monotime() % 1000,
    ev.port and ev.port.name or "?", ev.message, ev.code, ev.where))
end)

local vms, pids = {}, {}
local ok, err = pcall(function()
  for i = 1, 2 do
    local vm = { name = "vm" .. i, path = ("%s/vm%d.vhost"):format(dir, i), log = ("%s/vm%d.log"):format(dir, i) }
    vms[i] = vm
    if not client then
      vm.port = assert(sw:port { kind = "vhost-user", name = vm.name, path = vm.path })
    end
  end
  for i, vm in ipairs(vms) do
    vm.cmd = qemu_cmd(i, vm.path, vm.log)
    print(vm.name .. ": " .. vm.cmd)
    pids[i] = sh(("sh -c %q >%s/%s.qemu 2>&1 </dev/null & echo $!"):format("exec " .. vm.cmd, dir, vm.name))
  end
  if client then
    for _, vm in ipairs(vms) do
      vm.port = assert(sw:port { kind = "vhost-user", name = vm.name, path = vm.path, client = true })
    end
  end
  io.stdout:flush()

  local function log_of(vm)
    local f = io.open(vm.log)
    if not f then return "" end
    local s = f:read("a")
    f:close()
    return s
  end
  local function qemu_alive(i) return os.execute("kill -0 " .. pids[i] .. " 2>/dev/null") == true end
  local t0 = luaswitch.monotime()
  luaswitch.wait_until(function()
    local done = 0
    for i, vm in ipairs(vms) do
      if log_of(vm):find("LS%-DONE") or not qemu_alive(i) then done = done + 1 end
    end
    return done == #vms
  end, mode == "noshare" and 20 or timeout)
  print(("after %.1f s:"):format(luaswitch.monotime() - t0))
  for i, vm in ipairs(vms) do
    for line in log_of(vm):gmatch("[^\r\n]+") do
      if line:find("^LS%-") then print(("  %s console: %s"):format(vm.name, line)) end
    end
    local q = sh(("cat %s/%s.qemu"):format(dir, vm.name))
    if q ~= "" then print(("  %s qemu: %s"):format(vm.name, q:gsub("\n", "\n    "))) end
    if not qemu_alive(i) then print(("  %s: QEMU exited"):format(vm.name)) end
  end
  local function guest_maps()
    local n = 0
    for line in io.lines("/proc/self/maps") do
      if line:find("memfd:mem") then n = n + 1 end
    end
    return n
  end
  if restart then
    local vm = vms[2]
    print(("guest memory maps held: %d; queueing 300 frames to vm2, then kill -9 its QEMU"):format(guest_maps()))
    local bcast = ("\255"):rep(6) .. "\2\0\0\0\0\9" .. "\136\181" .. ("x"):rep(46)
    for _ = 1, 300 do vm.port:send(bcast) end
    os.execute("kill -9 " .. pids[2])
    local down = luaswitch.wait_until(function() return vm.port:info().link == "down" end, 5)
    luaswitch.dispatch(0.2)
    print(("vm2 link %s, guest memory maps held: %d"):format(down and "down" or "STILL UP", guest_maps()))
    vm.log = vm.log .. ".2"
    vm.cmd = qemu_cmd(2, vm.path, vm.log)
    pids[2] = sh(("sh -c %q >%s/%s.qemu 2>&1 </dev/null & echo $!"):format("exec " .. vm.cmd, dir, vm.name))
    print("vm2 restarted")
    io.stdout:flush()
    luaswitch.wait_until(function() return log_of(vm):find("LS%-DONE") or not qemu_alive(2) end, timeout)
    for line in log_of(vm):gmatch("[^\r\n]+") do
      if line:find("^LS%-") then print(("  %s console (after restart): %s"):format(vm.name, line)) end
    end
  end
  for _, vm in ipairs(vms) do
    local st, info = vm.port:stats(), vm.port:info()
    print(("  port %s: link %s, peer %s, rx %d frames, tx %d frames, drops rx_error %d tx_error %d bad_request %d tx_full %d"):format(
      vm.name, info.link, tostring(info.peer), st.rx_frames, st.tx_frames,
      st.drops.rx_error, st.drops.tx_error, st.drops.bad_request, st.drops.tx_full))
  end
end)
for i = 1, 2 do
  if pids[i] then os.execute("kill " .. pids[i] .. " 2>/dev/null") end
end
luaswitch.dispatch(0.2)
sw:close()
os.execute("rm -rf " .. dir)
if not ok then error(err, 0) end
