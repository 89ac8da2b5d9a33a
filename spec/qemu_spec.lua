-- Real QEMU guests through luaswitch (issue 14 item 4): a tiny Linux guest (Debian's cloud
-- kernel and a busybox initramfs, built once and cached by spec/guest/build.sh) is booted
-- under QEMU (TCG) on every VM transport a lab offers — unix (`-netdev dgram`), stream,
-- socketpair (`-netdev dgram,local.type=fd`), udp (`-netdev dgram` inet), vde and
-- vhost-user (the guest's virtqueues in shared memory) — all on one switch at once, and each guest pings every other: every transport carries real
-- virtio-net traffic both ways. The guests report on their serial consoles (LS-UP,
-- LS-PING-OK, LS-DONE: see spec/guest/init); the spec waits for those lines, not for time.
-- Needs qemu-system-x86_64, busybox-static, cpio and apt-get download (.ci/deps installs
-- them; in CI a missing piece is a failure, elsewhere the spec is pending). No root needed.

local luaswitch = require "luaswitch"
local Lab = require "luaswitch.lab"
local S = require "support"

local SRC = os.getenv("LUASWITCH_SOURCE") or "."
local CI = os.getenv("CI") == "true"

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, rc = p:close()
  return out, ok and 0 or rc
end

-- The cached guest (kernel and initramfs), or nil and why not.
local function guest()
  if not S.have("qemu-system-x86_64") then return nil, "qemu-system-x86_64 is not installed" end
  local out, rc = sh(("%s/spec/guest/build.sh"):format(SRC))
  if rc ~= 0 then return nil, "spec/guest/build.sh failed: " .. out end
  return out:match("([^\n]+)\n?$")
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

describe("real QEMU guests", function()
  local lab

  after_each(function()
    if lab then lab:stop() end
    lab = nil
    luaswitch.stop()
    S.cleanup()
  end)

  it("ping each other over every VM transport: unix, stream, socketpair, udp, vde, vhost-user", function()
    local dir, why = guest()
    if not dir then
      if CI then error(why) end
      return pending(why)
    end
    lab = Lab.new { name = "guests" }
    local s1 = lab:switch "s1"
    local kinds = { "unix", "stream", "socketpair", "udp", "vde", "vhost-user" }
    for _, k in ipairs(kinds) do lab:vm("g" .. k, { switch = s1, kind = k, memory = 128 }) end
    lab:start()
    local tmp = S.tmpdir()
    local ips = {}
    for i in ipairs(kinds) do ips[i] = ("10.0.0.%d"):format(i) end
    local procs = {}
    for i, k in ipairs(kinds) do
      local peers = {}
      for j, ip in ipairs(ips) do
        if j ~= i then peers[#peers + 1] = ip end
      end
      local vm = lab["g" .. k]
      local cmd = vm:command { kernel = dir .. "/vmlinuz", initrd = dir .. "/initrd.img", memory = 128,
        accel = os.getenv("LUASWITCH_QEMU_ACCEL") or "tcg",
        serial = ("%s/%s.log"):format(tmp, k),
        append = ("console=ttyS0 quiet panic=-1 ls.ip=%s/24 ls.peers=%s ls.deadline=90"):format(ips[i],
          table.concat(peers, ",")) }
      assert.matches("%-netdev ", cmd)
      procs[k] = vm:spawn(cmd)
    end
    local t0 = luaswitch.monotime()
    local function done(k) return read(("%s/%s.log"):format(tmp, k)):find("LS-DONE", 1, true) ~= nil end
    local all = luaswitch.wait_until(function()
      for _, k in ipairs(kinds) do
        if not done(k) then
          assert(procs[k]:alive(), ("the %s guest's QEMU exited: %s\n%s"):format(k, procs[k]:output(),
            read(("%s/%s.log"):format(tmp, k))))
          return false
        end
      end
      return true
    end, 240)
    local took = luaswitch.monotime() - t0
    local report = {}
    for i, k in ipairs(kinds) do
      local log = read(("%s/%s.log"):format(tmp, k))
      assert.truthy(all, ("guest on %s did not finish within 240 s:\n%s"):format(k, log))
      assert.matches("LS%-UP " .. ips[i]:gsub("%.", "%%.") .. "/24 " .. lab["g" .. k].mac, log)
      local rtts = {}
      for j, ip in ipairs(ips) do
        if j ~= i then
          local ms = log:match("LS%-PING%-OK " .. ip:gsub("%.", "%%.") .. " ([%d.]+)")
          assert.truthy(ms, ("the guest on %s got no reply from the one on %s:\n%s"):format(k, kinds[j], log))
          rtts[#rtts + 1] = ("%s %s ms"):format(kinds[j], ms)
        end
      end
      report[#report + 1] = ("    %-10s -> %s"):format(k, table.concat(rtts, ", "))
      -- frames went both ways on this transport's port
      local c = lab["g" .. k].port:stats()
      assert.is_true(c.rx_frames > 0 and c.tx_frames > 0, k)
    end
    print(("    %d guests booted and pinged each other in %.1f s (first replies wait on ARP and boot):"):format(#kinds, took))
    print(table.concat(report, "\n"))
    lab:stop()
    for _, k in ipairs(kinds) do assert.is_true(procs[k]:wait(5), "QEMU left running: " .. k) end
  end)

  it("vhost-user: guest memory that is not shared is refused with an error that says so", function()
    local dir, why = guest()
    if not dir then
      if CI then error(why) end
      return pending(why)
    end
    lab = Lab.new { name = "noshare" }
    local s1 = lab:switch "s1"
    local vm = lab:vm("g", { switch = s1, kind = "vhost-user", memory = 128 })
    lab:start()
    local errors = {}
    s1:on("error", function(ev) errors[#errors + 1] = ev end)
    local tmp = S.tmpdir()
    local cmd = vm:command { kernel = dir .. "/vmlinuz", initrd = dir .. "/initrd.img", memory = 128,
      accel = os.getenv("LUASWITCH_QEMU_ACCEL") or "tcg", serial = tmp .. "/g.log",
      append = "console=ttyS0 quiet panic=-1 ls.ip=10.0.0.1/24 ls.peers= ls.deadline=5" }
    assert.matches("share=on", cmd)
    local q = vm:spawn((cmd:gsub("share=on", "share=off")))
    -- the port's error text and the error event (dispatched from the event ring) both come
    local refused = luaswitch.wait_until(function() return errors[1] and vm.port:info().error end, 120)
    assert.truthy(refused, "no error on the port; QEMU said: " .. q:output())
    assert.matches("private to QEMU.*add share=on to the guest's memory backend", refused)
    assert.equal("down", vm.port:state())
    assert.truthy(errors[1], "an error event")
    assert.equal(vm.port, errors[1].port)
    q:kill("KILL")
  end)
end)
