--- luaswitch.netns: network namespaces, veth pairs and commands inside them.
--
-- Enough to put real kernel network stacks on a switch in specs, examples and labs:
--
--    local netns = require "luaswitch.netns"
--    local h1 = netns.create("h1")                    -- ip netns add h1; lo up
--    local out, status = h1:run("ip -br addr")        -- a command inside, with output and status
--    local link = netns.veth { name = "h1-eth0", netns = h1, peer = "sw-h1",
--                              addresses = { "10.0.0.1/24" } }
--    local srv = h1:spawn("iperf3 -s -1")             -- a background process inside
--    h1:close()                                       -- kill what runs inside, delete it
--
-- Everything created here is removed when closed, when garbage collected, when the Lua
-- state closes, and at process exit (os.exit included): each object registers its own
-- undo command with the C module's exit hook. Requires root (CAP_SYS_ADMIN/NET_ADMIN)
-- and iproute2.
-- @module luaswitch.netns

local core = require "luaswitch.core"

local M = {}

--- Quote a string for /bin/sh.
local function q(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end
M.quote = q

--- Run a shell command; returns its output (stdout and stderr) and exit status.
function M.sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"__luaswitch_rc=$?\""))
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("__luaswitch_rc=(%d+)%s*$")) or 255
  return (out:gsub("__luaswitch_rc=%d+%s*$", "")), rc
end

local function must(cmd)
  local out, rc = M.sh(cmd)
  if rc ~= 0 then return nil, ("%s: %s"):format(cmd, out:gsub("%s+$", "")) end
  return out
end

local function check_name(fname, what, name, max)
  if type(name) ~= "string" or not name:match("^[%w_.%-]+$") or #name > max then
    error(("bad argument to '%s' (%s must be a string of letters, digits, '_', '.', '-', at most %d long, got %s)")
      :format(fname, what, max, type(name) == "string" and ("'" .. name .. "'") or type(name)), 3)
  end
end

--- Does a namespace of that name exist?
function M.exists(name)
  local f = io.open("/run/netns/" .. name)
  if f then f:close() return true end
  return false
end

--- Names of existing namespaces.
function M.list()
  local out = M.sh("ip netns list")
  local names = {}
  for line in out:gmatch("[^\n]+") do names[#names + 1] = line:match("^(%S+)") end
  return names
end

local NS = {}
NS.__index = NS
NS.__name = "luaswitch.netns"

local function ns_kill_all(name)
  return ("ip netns pids %s 2>/dev/null | xargs -r kill -9 2>/dev/null; ip netns del %s 2>/dev/null")
    :format(q(name), q(name))
end

local function first_error(errs)
  local name, msg = next(errs)
  return name and ("netns %s: %s"):format(name, msg)
end

local function wrap(name)
  local self = setmetatable({ name = name, procs = {} }, NS)
  self.exit_id = core.atexit(ns_kill_all(name))
  return self
end

--- Create a network namespace with its loopback interface up (what `ip netns add` and
-- `ip link set lo up` do, with no process).
-- @tparam string name
-- @tparam[opt] table opts `reuse = true`: take over an existing namespace of that name
--   (it is still deleted on close)
-- @return ns, or nil, message
function M.create(name, opts)
  check_name("create", "name", name, 200)
  opts = opts or {}
  if M.exists(name) then
    if not opts.reuse then return nil, ("netns %s already exists"):format(name), "EEXIST" end
    local self = wrap(name)
    local _, err = must(("ip -n %s link set lo up"):format(q(name)))
    if err then self:close() return nil, err, "EIO" end
    return self
  end
  local err = first_error(core.netns_add({ name }, 1))
  if err then return nil, err, "EIO" end
  return wrap(name)
end

--- Create many namespaces at once (on several threads: creating one is mostly waiting in
-- the kernel), each with its loopback interface up. All or nothing: if one cannot be
-- created, those that were are deleted again.
-- @tparam {string,...} names
-- @return a list of ns in the order of names, or nil, message
function M.create_many(names)
  for i, name in ipairs(names) do
    check_name("create_many", ("name %d"):format(i), name, 200)
    if M.exists(name) then return nil, ("netns %s already exists"):format(name), "EEXIST" end
  end
  local errs = core.netns_add(names)
  local err = first_error(errs)
  if err then
    local made = {}
    for _, name in ipairs(names) do
      if not errs[name] then made[#made + 1] = name end
    end
    core.netns_del(made)
    return nil, err, "EIO"
  end
  local list = {}
  for i, name in ipairs(names) do list[i] = wrap(name) end
  return list
end

function NS:__tostring()
  return ("luaswitch.netns %q%s"):format(self.name, self.closed and " (closed)" or "")
end

local function check_open(self, fname)
  if getmetatable(self) ~= NS then error(("calling '%s' on bad self (netns expected)"):format(fname), 3) end
  if self.closed then error(("calling '%s' on bad self (netns '%s' is closed)"):format(fname, self.name), 3) end
end

--- Run a shell command inside; returns output (stdout+stderr) and exit status.
function NS:run(cmd)
  check_open(self, "run")
  return M.sh(("ip netns exec %s sh -c %s"):format(q(self.name), q(cmd)))
end

--- Run a shell command inside; returns its output, raises if it fails.
function NS:check(cmd)
  local out, rc = self:run(cmd)
  if rc ~= 0 then error(("netns %s: '%s' failed (exit %d): %s"):format(self.name, cmd, rc, out), 2) end
  return out
end

local Proc = {}
Proc.__index = Proc

--- Start a command in the background inside; returns a process with :alive(),
-- :kill([signal]), :wait([timeout]) and :output() (what it printed so far).
function NS:spawn(cmd)
  check_open(self, "spawn")
  local log = os.tmpname()
  local p = assert(io.popen(("ip netns exec %s sh -c %s >%s 2>&1 </dev/null & echo $!")
    :format(q(self.name), q("exec " .. cmd), q(log))))
  local pid = tonumber(p:read("l"))
  p:close()
  local proc = setmetatable({ pid = pid, log = log, cmd = cmd }, Proc)
  self.procs[#self.procs + 1] = proc
  return proc
end

--- Is it still running? A process that exited but was not reaped (a zombie: its
-- parent, the shell that started it, is gone, and whoever inherited it has not waited
-- for it yet) counts as gone.
function Proc:alive()
  local f = io.open("/proc/" .. self.pid .. "/stat")
  if not f then return false end
  local stat = f:read("l") or ""
  f:close()
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

--- Send the process a signal (default TERM; "KILL", "INT", ... or a number).
function Proc:kill(sig)
  os.execute(("kill -%s %d 2>/dev/null"):format(sig or "TERM", self.pid))
end

--- Wait until the process has exited (true) or the timeout passed (false).
function Proc:wait(timeout)
  local deadline = core.monotime() + (timeout or 5)
  while self:alive() do
    if core.monotime() > deadline then return false end
    core.wait(0.01)
  end
  return true
end

--- What the process has written so far (stdout and stderr, from its log file).
function Proc:output()
  local f = io.open(self.log)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

--- Kill the process if it still runs (SIGKILL, then wait up to 1 s) and remove its log.
function Proc:cleanup()
  if self:alive() then self:kill("KILL") self:wait(1) end
  os.remove(self.log)
end

--- Kill every process inside and delete the namespace (and what lives only there:
-- its veth ends, TAP devices). Idempotent.
function NS:close()
  if self.closed then return end
  self.closed = true
  for _, proc in ipairs(self.procs) do proc:cleanup() end
  core.netns_kill({ self.name })
  core.netns_del({ self.name })
  core.atexit_cancel(self.exit_id)
end
NS.__gc = NS.close
NS.__close = NS.close

--- Close several namespaces at once (one pass over /proc for their processes, the
-- deletions on several threads): kill what runs inside each, delete them. Closed ones in
-- the list are skipped.
-- @tparam {netns,...} list
function M.close_all(list)
  local names, ids = {}, {}
  for _, ns in ipairs(list) do
    if getmetatable(ns) == NS and not ns.closed then
      ns.closed = true
      names[#names + 1] = ns.name
      ids[#ids + 1] = ns.exit_id
    end
  end
  if #names == 0 then return end
  core.netns_kill(names)
  core.netns_del(names)
  for _, ns in ipairs(list) do
    if getmetatable(ns) == NS then
      for _, proc in ipairs(ns.procs) do os.remove(proc.log) end
    end
  end
  for _, id in ipairs(ids) do core.atexit_cancel(id) end
end

local Veth = {}
Veth.__index = Veth
Veth.__name = "luaswitch.veth"

local function nsname(ns)
  if ns == nil then return nil end
  if type(ns) == "string" then return ns end
  if getmetatable(ns) == NS then return ns.name end
  error("bad option 'netns' (netns object or name expected)", 4)
end

local function ip_in(ns)
  return ns and ("ip -n " .. q(ns) .. " ") or "ip "
end

local function setup_end(ns, ifname, e)
  local ip = ip_in(ns)
  if e.mtu then
    local _, err = must(("%slink set %s mtu %d"):format(ip, q(ifname), e.mtu))
    if err then return err end
  end
  if e.mac then
    local _, err = must(("%slink set %s address %s"):format(ip, q(ifname), q(e.mac)))
    if err then return err end
  end
  for _, a in ipairs(e.addresses or {}) do
    local _, err = must(("%saddr add %s dev %s"):format(ip, q(a), q(ifname)))
    if err then return err end
  end
  if e.up ~= false then
    local _, err = must(("%slink set %s up"):format(ip, q(ifname)))
    if err then return err end
  end
end

--- Create a veth pair. `name` lives in `netns` (a netns or its name; nil = here) and its
-- peer `peer` in `peer_netns`. Options for each end: `addresses` / `peer_addresses`
-- (lists of "10.0.0.1/24"), `mtu`, `mac` / `peer_mac`, `up` (default true for both).
-- @return veth with :close(), or nil, message
function M.veth(opts)
  check_name("veth", "name", opts.name, 15)
  check_name("veth", "peer", opts.peer, 15)
  local ns, pns = nsname(opts.netns), nsname(opts.peer_netns)
  local cmd = ("ip link add %s%s type veth peer name %s%s"):format(q(opts.name),
    ns and (" netns " .. q(ns)) or "", q(opts.peer), pns and (" netns " .. q(pns)) or "")
  local _, err = must(cmd)
  if err then return nil, err, "EIO" end
  local self = setmetatable({ name = opts.name, peer = opts.peer, netns = ns, peer_netns = pns }, Veth)
  self.exit_id = core.atexit(("%slink del %s 2>/dev/null"):format(ip_in(ns), q(opts.name)))
  err = setup_end(ns, opts.name, { addresses = opts.addresses, mtu = opts.mtu, mac = opts.mac, up = opts.up })
    or setup_end(pns, opts.peer, { addresses = opts.peer_addresses, mtu = opts.mtu, mac = opts.peer_mac,
                                  up = opts.up })
  if err then self:close() return nil, err, "EIO" end
  return self
end

--- Delete the pair (deleting either end removes both). Idempotent.
function Veth:close()
  if self.closed then return end
  self.closed = true
  M.sh(("%slink del %s 2>/dev/null"):format(ip_in(self.netns), q(self.name)))
  core.atexit_cancel(self.exit_id)
end
Veth.__gc = Veth.close
Veth.__close = Veth.close
function Veth:__tostring()
  return ("luaswitch.veth %s <-> %s%s"):format(self.name, self.peer, self.closed and " (closed)" or "")
end

return M
