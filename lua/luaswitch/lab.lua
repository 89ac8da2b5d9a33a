--- luaswitch.lab: Mininet-style labs — declare a topology, start it, test it, stop it.
--
-- Switches are luaswitch switches; hosts are network namespaces whose `eth0` is a TAP port
-- of a switch (a real kernel stack); routers are namespaces with IP forwarding on and one
-- TAP interface per leg; VMs are socket ports (unix datagram, stream, socketpair) with the
-- QEMU command line to plug into them; links join two switches with a pair of patch ports
-- (a cable inside the data plane, impairable per direction, optionally a VLAN trunk) or a
-- VXLAN tunnel across two namespaces. `Lab.new { stp = true }` runs the spanning tree on
-- every switch (lab timers; host ports are edge ports) so that switches may be wired in
-- rings; `lab:start()` then returns once the tree has settled.
--
--    local Lab = require "luaswitch.lab"
--    local lab = Lab.new { name = "demo" }
--    local s1, s2 = lab:switch "s1", lab:switch "s2"
--    lab:link(s1, s2, { delay = 0.01 })                 -- 10 ms each way
--    lab:host("h1", { switch = s1, ip = "10.0.0.1/24" })
--    lab:host("h2", { switch = s2, ip = "10.0.0.2/24" })
--    lab:start()
--    lab:pingall()                                       -- prints the matrix; returns the drop %
--    print(lab.h1:ping(lab.h2))
--    lab:stop()
--
-- Names: every namespace is `PREFIX .. node name`, with a prefix unique to the process
-- and the lab (`lab4242.1-h1`), so labs running at the same time never collide; a host's
-- interface is `eth0` inside its own namespace, so nothing of a lab appears in the root
-- namespace. Socket files of VMs live in a directory of the lab's own.
--
-- Teardown: `lab:stop()` closes the switches, kills every process in the lab's
-- namespaces, deletes them (with their interfaces) and removes the socket files. It also
-- happens when `lab:start()` fails halfway, when the lab object is closed (`<close>`),
-- when the Lua state closes (a running lab is held until then, as switches are), and at
-- process exit: a lab registers its undo command with the module's exit hook before it
-- creates anything. So a Ctrl-C (SIGINT) during `lab:start()` or while traffic runs —
-- under the `luaswitch` executable or stock `lua5.4`, both of which turn it into an
-- "interrupted!" error and close the state — leaves nothing behind. Needs root and iproute2; `pingall` needs ping, `iperf` iperf3,
-- `dot(path)` graphviz for the SVG.
-- @module luaswitch.lab

local luaswitch = require "luaswitch"
local netns = require "luaswitch.netns"

local core = luaswitch.core
local q, sh = netns.quote, netns.sh

local M = {}

local Lab, Switch, Host, Router, VM, Link = {}, {}, {}, {}, {}, {}
Lab.__name, Switch.__name, Host.__name = "luaswitch.lab", "luaswitch.lab.switch", "luaswitch.lab.host"
Router.__name, VM.__name, Link.__name = "luaswitch.lab.router", "luaswitch.lab.vm", "luaswitch.lab.link"

-- Labs started and not yet stopped: held here so that dropping the last reference does
-- not tear a running lab down (as with switches); finalized when the Lua state closes.
local running = {}
local start_live -- defined with the start-up code below
local labs_made = 0

--- Spanning tree timers for labs (`Lab.new { stp = true }`): exact in 1/256 s, as BPDUs
-- carry them; a ring of three switches converges in under a second with them.
M.STP = { hello = 0.125, forward_delay = 0.25, max_age = 0.75 }

-- ---- small helpers -------------------------------------------------------------------------

-- ---- the kernel's neighbour tables ----------------------------------------------------------
--
-- The ARP and IPv6 neighbour tables are one table each for all network namespaces of the
-- machine, and by default hold at most 1,024 dynamic entries (gc_thresh3) between them: an
-- all-pairs ping of 64 hosts needs 4,032 (one per host and neighbour), and past the limit
-- the kernel refuses to resolve ("neighbour table overflow") and the echo request is lost
-- at its source. So a verdict of loss would be the table's, not the network's. While labs
-- of this process run, the limits are raised to fit them (gc_thresh2 to the entries the
-- labs can make, gc_thresh3 to twice that), and put back when the last one stops, unless
-- someone changed them meanwhile; an exit hook puts them back if the process exits first.
-- `Lab.new { neigh_limits = false }` leaves them alone.

local NEIGH_DIRS = { "/proc/sys/net/ipv4/neigh/default/", "/proc/sys/net/ipv6/neigh/default/" }
local neigh = { need = {}, saved = nil, set = nil, exit_id = nil }

local function read_num(path)
  local f = io.open(path)
  if not f then return nil end
  local v = tonumber(f:read("l"))
  f:close()
  return v
end

local function write_num(path, v)
  local f = io.open(path, "w")
  if not f then return false end
  local ok = f:write(("%d\n"):format(v))
  return (f:close() and ok) ~= nil
end

-- Neighbour entries a lab's hosts and routers can make: one per interface and every other
-- address it can reach on its segments (an upper bound: every other interface of the lab).
local function neigh_entries(self)
  local n = #self.hosts
  for _, r in ipairs(self.routers) do n = n + #r.interfaces end
  return n * (n - 1)
end

-- Set the limits to fit the labs of this process that run now (need: lab -> entries).
local function neigh_apply(log)
  local total = 0
  for _, v in pairs(neigh.need) do total = total + v end
  if total == 0 then -- the last lab stopped: put back what we found
    if neigh.saved then
      local cmds = {}
      for i, dir in ipairs(NEIGH_DIRS) do
        for _, k in ipairs { "gc_thresh2", "gc_thresh3" } do
          if read_num(dir .. k) == neigh.set[i][k] then write_num(dir .. k, neigh.saved[i][k]) end
        end
      end
      if neigh.exit_id then core.atexit_cancel(neigh.exit_id) end
      neigh.saved, neigh.set, neigh.exit_id = nil, nil, nil
    end
    return
  end
  local want = total + 1024 -- and room for what the rest of the machine holds
  if not neigh.saved then
    local saved = {}
    for i, dir in ipairs(NEIGH_DIRS) do
      saved[i] = { gc_thresh2 = read_num(dir .. "gc_thresh2"), gc_thresh3 = read_num(dir .. "gc_thresh3") }
    end
    if not saved[1].gc_thresh3 or saved[1].gc_thresh3 >= 2 * want then return end -- big enough, or no such file
    neigh.saved, neigh.set = saved, {}
  end
  local undo = {}
  for i, dir in ipairs(NEIGH_DIRS) do
    local orig = neigh.saved[i]
    if orig.gc_thresh3 then
      local set = { gc_thresh2 = math.max(orig.gc_thresh2 or 0, want), gc_thresh3 = math.max(orig.gc_thresh3, 2 * want) }
      -- keep gc_thresh2 <= gc_thresh3 at every step
      if set.gc_thresh3 >= (read_num(dir .. "gc_thresh3") or 0) then
        write_num(dir .. "gc_thresh3", set.gc_thresh3)
        write_num(dir .. "gc_thresh2", set.gc_thresh2)
      else
        write_num(dir .. "gc_thresh2", set.gc_thresh2)
        write_num(dir .. "gc_thresh3", set.gc_thresh3)
      end
      neigh.set[i] = set
      for _, k in ipairs { "gc_thresh2", "gc_thresh3" } do
        undo[#undo + 1] = ("[ \"$(cat %s%s 2>/dev/null)\" = %d ] && echo %d > %s%s"):format(dir, k, set[k], orig[k], dir, k)
      end
      if i == 1 then log(("*** kernel neighbour tables: limits raised to %d/%d entries (were %d/%d) while the lab runs")
        :format(set.gc_thresh2, set.gc_thresh3, orig.gc_thresh2 or 0, orig.gc_thresh3)) end
    end
  end
  if neigh.exit_id then core.atexit_cancel(neigh.exit_id) end
  neigh.exit_id = core.atexit(table.concat(undo, "; ") .. "; true")
end

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

local function argerr(fname, n, level, fmt, ...)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, fmt:format(...)), level + 1)
end

local function opterr(fname, key, level, fmt, ...)
  error(("%s: bad option '%s' (%s)"):format(fname, key, fmt:format(...)), level + 1)
end

local function describe(v)
  local mt = getmetatable(v)
  if type(mt) == "table" and mt.__name and type(v) == "table" and v.kind and v.name then
    return ("%s '%s'"):format(v.kind, v.name)
  end
  if type(v) == "string" then return ("'%s'"):format(v) end
  return type(v)
end

local function my_pid()
  local f = assert(io.open("/proc/self/stat"))
  local s = f:read("l")
  f:close()
  return tonumber(s:match("^(%d+)"))
end

-- Is process pid running (not gone, not a zombie waiting for a parent that never reaps)?
local function pid_alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local s = f:read("l") or ""
  f:close()
  local state = s:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

local function have(cmd)
  return os.execute("command -v " .. cmd .. " >/dev/null 2>&1") == true
end

-- Run a shell command; raise with its output if it fails (a runtime failure: the message
-- says what failed, no position in this file).
local function must(cmd, what)
  local out, rc = sh(cmd)
  if rc ~= 0 then error(("%s: %s"):format(what, (out:gsub("%s+$", ""))), 0) end
  return out
end

-- Wait for a process to exit, dispatching events meanwhile (so handlers run and Ctrl-C
-- interrupts); false after the timeout.
local function wait_exit(pid, timeout)
  local deadline = core.monotime() + timeout
  while pid_alive(pid) do
    if core.monotime() > deadline then return false end
    luaswitch.dispatch(0.02)
  end
  return true
end

-- ---- addresses -----------------------------------------------------------------------------

local function is_ipv4(s)
  local o = { s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$") }
  if #o ~= 4 then return false end
  for _, x in ipairs(o) do
    if #x > 3 or tonumber(x) > 255 then return false end
  end
  return true
end

local function is_ipv6(s)
  if not s:match("^[%x:]+$") or not s:find(":") or s:find(":::") then return false end
  local _, doubles = s:gsub("::", "")
  if doubles > 1 then return false end
  if (s:match("^:[^:]") or s:match("[^:]:$")) then return false end
  local groups = 0
  for g in s:gmatch("[^:]+") do
    if #g > 4 then return false end
    groups = groups + 1
  end
  if doubles == 0 then return groups == 8 end
  return groups <= 7
end

--- The family of an address without prefix length: 4, 6, or nil.
local function family(s)
  if type(s) ~= "string" then return nil end
  if is_ipv4(s) then return 4 end
  if is_ipv6(s) then return 6 end
  return nil
end

--- An address with a prefix length ("10.0.0.1/24"): address, family; or nil.
local function cidr(s)
  if type(s) ~= "string" then return nil end
  local a, len = s:match("^([^/]+)/(%d+)$")
  local fam = family(a)
  if not fam or #len > 3 or tonumber(len) > (fam == 4 and 32 or 128) then return nil end
  return a, fam
end

-- Addresses of a host or router leg: a string or a list of them, each with a prefix length.
local function check_addresses(fname, key, v, level)
  if v == nil or v == false then return {} end
  local list = type(v) == "string" and { v } or v
  if type(list) ~= "table" then
    opterr(fname, key, level + 1, "an address like 10.0.0.1/24 or a list of them expected, got %s", type(v))
  end
  for i, a in ipairs(list) do
    if not cidr(a) then
      opterr(fname, key, level + 1, "%san address with a prefix length like 10.0.0.1/24 or fd00::1/64 expected, got %s",
        #list > 1 and ("item %d: "):format(i) or "", type(a) == "string" and ("'" .. a .. "'") or type(a))
    end
  end
  return copy(list)
end

-- Routes: { "10.1.0.0/16 via 10.0.0.254", ... } or { ["10.1.0.0/16"] = "10.0.0.254" };
-- normalised to { { dst =, via = }, ... } in a stable order.
local function check_routes(fname, routes, level)
  if routes == nil then return {} end
  if type(routes) ~= "table" then
    opterr(fname, "routes", level + 1, "a list like { \"10.1.0.0/16 via 10.0.0.254\" } expected, got %s", type(routes))
  end
  local list = {}
  local function add(dst, via, what)
    if type(dst) ~= "string" or not (dst == "default" or cidr(dst)) then
      opterr(fname, "routes", level + 2, "%s: a destination like 10.1.0.0/16 or default expected, got %s", what,
        type(dst) == "string" and ("'" .. dst .. "'") or type(dst))
    end
    if not family(via) then
      opterr(fname, "routes", level + 2, "%s: a gateway address like 10.0.0.254 expected, got %s", what,
        type(via) == "string" and ("'" .. via .. "'") or type(via))
    end
    list[#list + 1] = { dst = dst, via = via }
  end
  for i, r in ipairs(routes) do
    local dst, via
    if type(r) == "string" then dst, via = r:match("^%s*(%S+)%s+via%s+(%S+)%s*$") end
    if not dst then
      opterr(fname, "routes", level + 1, "item %d: 'DESTINATION via GATEWAY' expected, got %s", i,
        type(r) == "string" and ("'" .. r .. "'") or type(r))
    end
    add(dst, via, "item " .. i)
  end
  local keys = {}
  for k in pairs(routes) do
    if math.type(k) ~= "integer" then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do add(k, routes[k], ("'%s'"):format(tostring(k))) end
  return list
end

local function check_vlan(fname, v, level)
  if v == nil then return nil end
  if math.type(v) == "integer" then
    if v < 1 or v > 4094 then opterr(fname, "vlan", level + 1, "a VLAN between 1 and 4094 expected, got %d", v) end
    return v
  end
  if type(v) == "table" then return copy(v) end -- a port VLAN setting, checked by the port
  opterr(fname, "vlan", level + 1, "a VLAN number or a port VLAN table expected, got %s", tostring(v))
end

local function check_mac(fname, v, level)
  if v == nil then return nil end
  if type(v) ~= "string" or not v:match("^%x%x:%x%x:%x%x:%x%x:%x%x:%x%x$") then
    opterr(fname, "mac", level + 1, "a MAC address like 02:00:00:00:00:01 expected, got %s",
      type(v) == "string" and ("'" .. v .. "'") or type(v))
  end
  if tonumber(v:sub(1, 2), 16) & 1 == 1 then
    opterr(fname, "mac", level + 1, "'%s' is a group address; a host needs a unicast one", v)
  end
  return v:lower()
end

local function check_options(fname, opts, known, level)
  for k in pairs(opts) do
    if not known[k] then
      local list = {}
      for name in pairs(known) do
        if type(name) == "string" then list[#list + 1] = name end
      end
      table.sort(list)
      error(("%s: unknown option '%s' (known: %s)"):format(fname, tostring(k), table.concat(list, ", ")), level + 1)
    end
  end
end

local function set(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

local IMPAIR_KEYS = { "loss", "gilbert", "dup", "reorder", "reorder_delay", "corrupt", "delay", "jitter", "rate",
  "limit", "mtu", "seed", "down" }
local IMPAIR = set(IMPAIR_KEYS)

-- ---- the lab -------------------------------------------------------------------------------

--- Create a lab (nothing exists until `lab:start()`).
-- @tparam[opt] table|string opts a name, or a table: `name` (default "lab"), `prefix` (of
--   namespace names; default unique per process and lab, e.g. "lab4242.1-"), `dir` (for
--   VM socket files; default a fresh directory under /tmp, removed at stop), `verbose`
--   (print what happens), `log` (a function called with each progress line instead),
--   `stp` (run the spanning tree on every switch: `true` for lab timers — hello 0.125 s,
--   forward delay 0.25 s, max age 0.75 s — or a table of `sw:stp` settings; a switch's own
--   `stp` option wins, `stp = false` leaves it out; see `lab:start()`),
--   `neigh_limits` (false: leave the kernel's neighbour-table limits alone; by default
--   they are raised to fit the lab while it runs),
--   `static_arp` (true: fill every host's and router's neighbour table with the lab's
--   other addresses on its subnets at start, as Mininet's `--arp`, so that nothing ARPs;
--   what a large all-pairs `pingall` wants)
-- @treturn lab
function M.new(opts)
  if type(opts) == "string" then opts = { name = opts } end
  if opts ~= nil and type(opts) ~= "table" then
    argerr("new", 1, 2, "a table of options or a name expected, got %s", type(opts))
  end
  opts = opts or {}
  check_options("lab.new", opts, set { "name", "prefix", "dir", "verbose", "log", "stp", "neigh_limits", "static_arp" }, 2)
  for _, k in ipairs { "neigh_limits", "static_arp" } do
    if opts[k] ~= nil and type(opts[k]) ~= "boolean" then
      opterr("lab.new", k, 2, "a boolean expected, got %s", describe(opts[k]))
    end
  end
  local name = opts.name or "lab"
  if type(name) ~= "string" or not name:match("^[%w_.%-]+$") or #name > 64 then
    opterr("lab.new", "name", 2, "letters, digits, '_', '.', '-', at most 64, expected, got %s", describe(name))
  end
  labs_made = labs_made + 1
  local prefix = opts.prefix or ("lab%d.%d-"):format(my_pid(), labs_made)
  if type(prefix) ~= "string" or not prefix:match("^[%w_.%-]*$") or #prefix > 100 then
    opterr("lab.new", "prefix", 2, "letters, digits, '_', '.', '-', at most 100, expected, got %s", describe(prefix))
  end
  if opts.dir ~= nil and (type(opts.dir) ~= "string" or opts.dir == "" or #opts.dir > 80) then
    opterr("lab.new", "dir", 2, "a directory path of at most 80 bytes expected, got %s", describe(opts.dir))
  end
  if opts.log ~= nil and type(opts.log) ~= "function" then
    opterr("lab.new", "log", 2, "a function expected, got %s", type(opts.log))
  end
  local stp = opts.stp
  if stp == true then
    stp = copy(M.STP)
  elseif stp == false then
    stp = nil
  elseif stp ~= nil and type(stp) ~= "table" then
    opterr("lab.new", "stp", 2, "true, false or a table of spanning tree settings expected, got %s", type(stp))
  end
  local log = opts.log or (opts.verbose and function(line) print(line) io.stdout:flush() end) or function() end
  return setmetatable({
    name = name, prefix = prefix, state = "declared", log = log, stp = stp and copy(stp),
    dir = opts.dir or ("/tmp/luaswitch-%s"):format(prefix:gsub("%-$", "")), own_dir = opts.dir == nil,
    nodes = {}, switches = {}, hosts = {}, routers = {}, vms = {}, links = {}, link_names = {},
    undo_id = false, started = false, neigh_limits = opts.neigh_limits ~= false,
    static_arp = opts.static_arp == true, seq = { host = 0, vm = 0, link = 0 }, schedules = {},
  }, Lab)
end

function Lab.__index(self, k)
  local m = Lab[k]
  if m ~= nil then return m end
  return rawget(self, "nodes")[k] -- lab.h1: a node by name
end

-- "3 switches, 2 links, 6 hosts"
local function counts(self)
  local t = {}
  for _, c in ipairs { { self.switches, "switch", "switches" }, { self.links, "link", "links" },
                       { self.hosts, "host", "hosts" }, { self.routers, "router", "routers" },
                       { self.vms, "VM", "VMs" } } do
    if #c[1] > 0 then t[#t + 1] = ("%d %s"):format(#c[1], #c[1] == 1 and c[2] or c[3]) end
  end
  return #t > 0 and table.concat(t, ", ") or "nothing"
end

function Lab:__tostring()
  return ("luaswitch.lab %q (%s; %s)"):format(self.name, counts(self), self.state)
end

local function check_lab(self, fname)
  if getmetatable(self) ~= Lab then
    error(("calling '%s' on bad self (luaswitch.lab expected, got %s)"):format(fname, type(self)), 3)
  end
end

-- Declaring is possible before start and while the lab runs (the node is then created at
-- once, see start_live); not while it starts or stops. Returns true when live.
local function declaring(self, fname)
  check_lab(self, fname)
  if self.state == "starting" then
    error(("%s: lab '%s' is starting; declare before lab:start() or once it runs"):format(fname, self.name), 3)
  end
  return self.state == "running"
end

local function running_only(self, fname, level)
  if self.state ~= "running" then
    error(("%s: lab '%s' is not running (call lab:start() first)"):format(fname, self.name), level + 1)
  end
end

local function check_name(self, fname, name, level)
  if type(name) ~= "string" or not name:match("^[%a][%w_.%-]*$") or #name > 40 then
    argerr(fname, 1, level + 1, "a name of letters, digits, '_', '.', '-' (starting with a letter, at most 40) expected, got %s",
      describe(name))
  end
  local other = self.nodes[name]
  if other then argerr(fname, 1, level + 1, "name '%s' is already used by %s", name, describe(other)) end
  if Lab[name] ~= nil then
    argerr(fname, 1, level + 1, "'%s' is the name of a lab method; choose another", name)
  end
end

-- A switch of this lab from a switch object or its name.
local function find_switch(self, v, bad)
  if type(v) == "string" then
    local n = self.nodes[v]
    if n and n.kind == "switch" then return n end
    if n then bad("%s is not a switch", describe(n)) end
    bad("no switch named '%s' in lab '%s'", v, self.name)
  end
  if getmetatable(v) == Switch then
    if v.lab ~= self then bad("switch '%s' belongs to lab '%s', not '%s'", v.name, v.lab.name, self.name) end
    return v
  end
  if type(v) == "table" and type(v.kind) == "string" and getmetatable(v) then
    bad("a switch or its name expected, got %s", describe(v))
  end
  bad("a switch or its name expected, got %s", type(v))
end

local function add_node(self, node, list)
  self.nodes[node.name] = node
  list[#list + 1] = node
  return node
end

--- Declare a switch.
-- @tparam string name
-- @tparam[opt] table opts passed to `luaswitch.switch` as they are (`aging`, `max_macs`,
--   `vlan_aware`, `stp`, ...); a switch carrying a VLAN of a host or a trunk is made
--   VLAN-aware unless it says `vlan_aware = false`; `stp = false` keeps a switch out of
--   the lab's spanning tree
-- @return switch (its methods are those of the luaswitch switch once the lab runs:
--   `s1:fdb()`; `s1:on(event, fn)` may be called before)
function Lab:switch(name, opts)
  local live = declaring(self, "switch")
  check_name(self, "switch", name, 2)
  if opts ~= nil and type(opts) ~= "table" then
    argerr("switch", 2, 2, "a table of switch options expected, got %s", type(opts))
  end
  opts = copy(opts)
  if opts.name ~= nil then opterr("switch", "name", 2, "the name is argument #1") end
  local s = add_node(self, setmetatable({ lab = self, name = name, kind = "switch", opts = opts, handlers = {},
    port_names = {}, vlans = false }, Switch), self.switches)
  if live then start_live(self, s, "switch", 2) end
  return s
end

local function port_name(sw, want)
  local name, i = want, 1
  while sw.port_names[name] do
    i = i + 1
    name = ("%s.%d"):format(want, i)
  end
  sw.port_names[name] = true
  return name
end

local function needs_vlans(sw, fname, key, level)
  if sw.opts.vlan_aware == false then
    opterr(fname, key, level + 1, "switch '%s' is declared with vlan_aware = false", sw.name)
  end
  sw.vlans = true
end

local function check_port_opts(fname, v, level)
  if v == nil then return {} end
  if type(v) ~= "table" then opterr(fname, "port", level + 1, "a table of port options expected, got %s", type(v)) end
  for _, k in ipairs { "kind", "name", "netns", "ifname", "peer", "path", "listen", "connect" } do
    if v[k] ~= nil then opterr(fname, "port", level + 1, "the lab sets '%s' itself", k) end
  end
  return copy(v)
end

local HOST_OPTS = set { "switch", "ip", "gateway", "routes", "vlan", "mac", "mtu", "port" }

--- Declare a host: a network namespace whose `eth0` is a TAP port of a switch.
-- @tparam string name
-- @tparam table opts `switch` (a switch or its name; required), `ip` (an address with
--   prefix length or a list of them, IPv4 and/or IPv6; default 10.0.0.N/8, N = the host's
--   number, as Mininet; `false` for none), `gateway` (the default route's next hop),
--   `routes` (`{ "10.1.0.0/16 via 10.0.0.254" }` or `{ ["10.1.0.0/16"] = "10.0.0.254" }`),
--   `vlan` (its access port's VLAN, or a port VLAN table), `mac`, `mtu`, `port` (more
--   options for its TAP port: flags, `max_macs`, ...)
-- @return host: after start `host.ns` (luaswitch.netns), `host.port`, `host.ip`, `host.mac`
function Lab:host(name, opts)
  local live = declaring(self, "host")
  check_name(self, "host", name, 2)
  if type(opts) ~= "table" then argerr("host", 2, 2, "a table of host options with a 'switch' expected, got %s", type(opts)) end
  check_options("host", opts, HOST_OPTS, 2)
  if opts.switch == nil then opterr("host", "switch", 2, "every host needs the switch it is plugged into") end
  local sw = find_switch(self, opts.switch, function(fmt, ...) opterr("host", "switch", 4, fmt, ...) end)
  self.seq.host = self.seq.host + 1
  local n = self.seq.host
  local ip = opts.ip
  if ip == nil then ip = ("10.%d.%d.%d/8"):format(n >> 16 & 255, n >> 8 & 255, n & 255) end
  local h = setmetatable({ lab = self, name = name, kind = "host", switch = sw, number = n,
    addresses = check_addresses("host", "ip", ip, 2), routes = check_routes("host", opts.routes, 2),
    vlan = check_vlan("host", opts.vlan, 2), mac = check_mac("host", opts.mac, 2), mtu = opts.mtu,
    port_opts = check_port_opts("host", opts.port, 2), netns = self.prefix .. name }, Host)
  if opts.gateway ~= nil then
    if not family(opts.gateway) then
      opterr("host", "gateway", 2, "an address like 10.0.0.254 expected, got %s", describe(opts.gateway))
    end
    table.insert(h.routes, 1, { dst = "default", via = opts.gateway })
  end
  if opts.mtu ~= nil and (math.type(opts.mtu) ~= "integer" or opts.mtu < 68 or opts.mtu > 65514) then
    opterr("host", "mtu", 2, "an integer between 68 and 65514 expected, got %s", tostring(opts.mtu))
  end
  if h.vlan then needs_vlans(sw, "host", "vlan", 2) end
  h.ip = h.addresses[1] and h.addresses[1]:match("^[^/]+")
  for _, a in ipairs(h.addresses) do -- the first IPv4 address is the one to ping
    if a:find("^%d+%.") then h.ip = a:match("^[^/]+") break end
  end
  h.port_name = port_name(sw, name)
  add_node(self, h, self.hosts)
  if live then start_live(self, h, "host", 2) end
  return h
end

local IFACE_OPTS = set { "switch", "ip", "vlan", "mac", "mtu", "port", 1, 2 }

--- Declare a router: a namespace with IP forwarding on and an interface (eth0, eth1, ...)
-- on each switch it is plugged into, as a TAP port.
-- @tparam string name
-- @tparam table opts `interfaces` (or the list part of opts): each `{ switch =, ip =,
--   vlan =, mac =, mtu =, port = }`, or shortly `{ s1, "10.0.1.254/24" }`; `routes`,
--   `gateway` as for a host
-- @return router: after start `router.ns`, `router.ports` (one per interface)
function Lab:router(name, opts)
  local live = declaring(self, "router")
  check_name(self, "router", name, 2)
  if type(opts) ~= "table" then
    argerr("router", 2, 2, "a table with the router's interfaces expected, got %s", type(opts))
  end
  local list = opts.interfaces or opts
  local known = set { "interfaces", "routes", "gateway" }
  for k in pairs(opts) do
    if not (known[k] or (math.type(k) == "integer" and opts.interfaces == nil)) then
      error(("router: unknown option '%s' (known: interfaces, routes, gateway, or a list of interfaces)")
        :format(tostring(k)), 2)
    end
  end
  if type(list) ~= "table" or #list == 0 then
    opterr("router", "interfaces", 2, "a router needs at least one interface, like { s1, \"10.0.1.254/24\" }")
  end
  local r = setmetatable({ lab = self, name = name, kind = "router", interfaces = {},
    routes = check_routes("router", opts.routes, 2), netns = self.prefix .. name }, Router)
  if opts.gateway ~= nil then
    if not family(opts.gateway) then
      opterr("router", "gateway", 2, "an address like 10.0.0.254 expected, got %s", describe(opts.gateway))
    end
    table.insert(r.routes, 1, { dst = "default", via = opts.gateway })
  end
  local names = {}
  for i, it in ipairs(list) do
    local what = ("router: interface %d"):format(i)
    if type(it) ~= "table" then
      error(("%s: a table like { s1, \"10.0.1.254/24\" } expected, got %s"):format(what, type(it)), 2)
    end
    check_options(what, it, IFACE_OPTS, 2)
    local sw = find_switch(self, it.switch or it[1], function(fmt, ...) opterr(what, "switch", 4, fmt, ...) end)
    local iface = { switch = sw, ifname = "eth" .. (i - 1), addresses = check_addresses(what, "ip", it.ip or it[2], 2),
      vlan = check_vlan(what, it.vlan, 2), mac = check_mac(what, it.mac, 2), mtu = it.mtu,
      port_opts = check_port_opts(what, it.port, 2) }
    if iface.vlan then needs_vlans(sw, what, "vlan", 2) end
    names[#names + 1] = sw
    r.interfaces[i] = iface
  end
  for _, iface in ipairs(r.interfaces) do
    iface.port_name = port_name(iface.switch, name .. "-" .. iface.ifname)
  end
  for _, iface in ipairs(r.interfaces) do
    for _, a in ipairs(iface.addresses) do
      if not r.ip and a:find("^%d+%.") then r.ip = a:match("^[^/]+") end
    end
  end
  add_node(self, r, self.routers)
  if live then start_live(self, r, "router", 2) end
  return r
end

local VM_KINDS = { unix = true, stream = true, socketpair = true, udp = true, vde = true, ["vhost-user"] = true }

--- Declare a VM endpoint: a port for QEMU (or vfkit, libkrun, passt's peers, ...).
-- @tparam string name
-- @tparam table opts `switch` (required), `kind` ("unix": datagrams on a pair of socket
--   files, the default; "stream": length-prefixed frames on a listening socket;
--   "socketpair": an inherited file descriptor; "udp": datagrams on loopback, QEMU's
--   `-netdev dgram` inet, the VM's address learned from its first datagram; "vde": the
--   switch side of a VDE plug directory, QEMU's `-netdev vde`; "vhost-user": the guest's
--   virtqueues in shared memory, QEMU's `-netdev vhost-user`, with the shared memory
--   backend in `vm.qemu`), `memory` (MiB of guest memory, 512; a vhost-user VM's memory
--   backend is made that size, so `vm:command` uses it), `vlan`, `mac` (default a unique
--   52:54:00:xx:xx:xx), `port` (more port options)
-- @return vm: after start `vm.qemu` (the `-netdev ... -device ...` arguments), `vm.port`,
--   `vm:endpoint()` (a stand-in speaking the same framing), `vm:spawn(cmd)`
function Lab:vm(name, opts)
  local live = declaring(self, "vm")
  check_name(self, "vm", name, 2)
  if type(opts) ~= "table" then argerr("vm", 2, 2, "a table of VM options with a 'switch' expected, got %s", type(opts)) end
  check_options("vm", opts, set { "switch", "kind", "vlan", "mac", "port", "memory" }, 2)
  if opts.switch == nil then opterr("vm", "switch", 2, "every VM needs the switch it is plugged into") end
  local sw = find_switch(self, opts.switch, function(fmt, ...) opterr("vm", "switch", 4, fmt, ...) end)
  local kind = opts.kind or "unix"
  if not VM_KINDS[kind] then
    opterr("vm", "kind", 2, "\"unix\", \"stream\", \"socketpair\", \"udp\", \"vde\" or \"vhost-user\" expected, got %s",
      describe(kind))
  end
  if opts.memory ~= nil and (math.type(opts.memory) ~= "integer" or opts.memory < 64 or opts.memory > 1048576) then
    opterr("vm", "memory", 2, "MiB of guest memory (64 to 1048576) expected, got %s", describe(opts.memory))
  end
  self.seq.vm = self.seq.vm + 1
  local n = self.seq.vm
  local v = setmetatable({ lab = self, name = name, kind = "vm", transport = kind, switch = sw,
    vlan = check_vlan("vm", opts.vlan, 2), port_opts = check_port_opts("vm", opts.port, 2), memory = opts.memory or 512,
    mac = check_mac("vm", opts.mac, 2) or ("52:54:00:%02x:%02x:%02x"):format(my_pid() >> 8 & 255,
      (my_pid() + labs_made) & 255, n & 255), procs = {}, endpoints = {} }, VM)
  if v.vlan then needs_vlans(sw, "vm", "vlan", 2) end
  v.port_name = port_name(sw, name)
  add_node(self, v, self.vms)
  if live then start_live(self, v, "vm", 2) end
  return v
end

local LINK_OPTS = set { "kind", "name", "trunk", "native", "vni", "port", table.unpack(IMPAIR_KEYS) }

--- Declare a link between two switches: a pair of patch ports (a cable inside the data
-- plane), or with `kind = "vxlan"` a VXLAN tunnel between two vxlan ports whose sockets
-- live in two namespaces of their own joined by a veth pair (the underlay).
-- @param a a switch or its name
-- @param b another switch or its name
-- @tparam[opt] table opts `kind` ("patch" or "vxlan"), `name` (default "a-b"), `trunk` (a
--   list of VLANs and ranges, `{ 10, "20-29" }`: both ends become trunks), `native`,
--   `vni` (vxlan; default 100 + the link's number), `port` (more options for both
--   ports), and impairments for both directions (`delay`, `jitter`, `loss`, `rate`, ...,
--   as `port:impair`)
-- @return link, with `link:impair(dir, opts)` and after start `link.ports` `{ a =, b = }`
function Lab:link(a, b, opts)
  local live = declaring(self, "link")
  local sa = find_switch(self, a, function(fmt, ...) argerr("link", 1, 4, fmt, ...) end)
  local sb = find_switch(self, b, function(fmt, ...) argerr("link", 2, 4, fmt, ...) end)
  if sa == sb then argerr("link", 2, 2, "a link joins two different switches, got '%s' twice", sa.name) end
  if opts ~= nil and type(opts) ~= "table" then argerr("link", 3, 2, "a table of link options expected, got %s", type(opts)) end
  opts = opts or {}
  check_options("link", opts, LINK_OPTS, 2)
  local kind = opts.kind or "patch"
  if kind ~= "patch" and kind ~= "vxlan" then
    opterr("link", "kind", 2, "\"patch\" or \"vxlan\" expected, got %s", describe(kind))
  end
  local name = opts.name or (sa.name .. "-" .. sb.name)
  if type(name) ~= "string" or not name:match("^[%a][%w_.%-]*$") or #name > 40 then
    opterr("link", "name", 2, "a name of letters, digits, '_', '.', '-' expected, got %s", describe(name))
  end
  if self.link_names[name] then
    if opts.name then opterr("link", "name", 2, "a link named '%s' exists already", name) end
    local i = 2
    while self.link_names[("%s.%d"):format(name, i)] do i = i + 1 end
    name = ("%s.%d"):format(name, i)
  end
  local trunk
  if opts.trunk ~= nil then
    if type(opts.trunk) ~= "table" or #opts.trunk == 0 then
      opterr("link", "trunk", 2, "a list of VLANs like { 10, 20, \"30-39\" } expected, got %s", describe(opts.trunk))
    end
    for i, v in ipairs(opts.trunk) do
      if not ((math.type(v) == "integer" and v >= 1 and v <= 4094) or (type(v) == "string" and v:match("^%d+%-%d+$"))) then
        opterr("link", "trunk", 2, "item %d: a VLAN (1-4094) or a range like \"20-29\" expected, got %s", i, describe(v))
      end
    end
    trunk = copy(opts.trunk)
    needs_vlans(sa, "link", "trunk", 2)
    needs_vlans(sb, "link", "trunk", 2)
  elseif opts.native ~= nil then
    opterr("link", "native", 2, "a native VLAN needs a trunk")
  end
  if opts.vni ~= nil then
    if kind ~= "vxlan" then opterr("link", "vni", 2, "only a vxlan link has a VNI") end
    if math.type(opts.vni) ~= "integer" or opts.vni < 0 or opts.vni > 16777215 then
      opterr("link", "vni", 2, "an integer between 0 and 16777215 expected, got %s", tostring(opts.vni))
    end
  end
  local imp
  for _, k in ipairs(IMPAIR_KEYS) do
    if opts[k] ~= nil then
      imp = imp or {}
      imp[k] = opts[k]
    end
  end
  self.seq.link = self.seq.link + 1
  local n = self.seq.link
  local l = setmetatable({ lab = self, name = name, kind = "link", transport = kind, a = sa, b = sb, trunk = trunk,
    native = opts.native, vni = opts.vni or (100 + n), port_opts = check_port_opts("link", opts.port, 2),
    impair_opts = { [sa] = imp, [sb] = imp } }, Link)
  if kind == "vxlan" then l.underlay = { self.prefix .. name .. "-u1", self.prefix .. name .. "-u2" } end
  l.port_names = { [sa] = port_name(sa, (kind == "vxlan" and "vx-" or "to-") .. sb.name),
                   [sb] = port_name(sb, (kind == "vxlan" and "vx-" or "to-") .. sa.name) }
  self.link_names[name] = true
  self.links[#self.links + 1] = l
  if live then start_live(self, l, "link", 2) end
  return l
end

--- A node (switch, host, router, VM) by name; `lab.NAME` works too.
function Lab:get(name)
  check_lab(self, "get")
  return self.nodes[name]
end

-- ---- starting and stopping -------------------------------------------------------------------

local function namespaces_of(self)
  local list = {}
  for _, h in ipairs(self.hosts) do list[#list + 1] = h.netns end
  for _, r in ipairs(self.routers) do list[#list + 1] = r.netns end
  for _, l in ipairs(self.links) do
    if l.underlay then
      list[#list + 1] = l.underlay[1]
      list[#list + 1] = l.underlay[2]
    end
  end
  return list
end

-- The shell command that removes everything of the lab, registered with the exit hook
-- before anything is created.
local function undo_command(self)
  local names = {}
  for i, n in ipairs(namespaces_of(self)) do names[i] = q(n) end
  local cmd = ""
  if #names > 0 then
    cmd = ("for n in %s; do ip netns pids \"$n\" 2>/dev/null | xargs -r kill -9 2>/dev/null; ip netns del \"$n\" 2>/dev/null; done; ")
      :format(table.concat(names, " "))
  end
  if self.own_dir and (#self.vms > 0 or self.made_dir) then cmd = cmd .. ("rm -rf %s; "):format(q(self.dir)) end
  return cmd .. "true"
end

local function ok_or_fail(what, v, err)
  if v == nil then error(("%s: %s"):format(what, tostring(err)), 0) end
  return v
end

local function port_opts(base, extra)
  local o = copy(base)
  for k, v in pairs(extra) do o[k] = v end
  return o
end

-- An interface's addresses, by rtnetlink from here (no process); returns its MAC.
local function configure(ns, ifname, addresses)
  local what = ("configuring %s in %s"):format(ifname, ns)
  for _, a in ipairs(addresses) do ok_or_fail(what, core.netns_addr(ns, ifname, a)) end
  return ok_or_fail(what, core.netns_mac(ns, ifname))
end

-- A node's routes (after its addresses, so each gateway is reachable), by rtnetlink.
local function add_routes(ns, routes)
  for _, r in ipairs(routes) do
    ok_or_fail("routes", core.netns_route(ns, r.dst, r.via)) -- the message names route and namespace
  end
end

local function vlan_port(v)
  if v == nil then return nil end
  return type(v) == "table" and copy(v) or v
end

local function start_switch(self, s)
  local o = copy(s.opts)
  o.name = s.name
  if s.vlans and o.vlan_aware == nil then o.vlan_aware = true end
  if o.stp == nil and self.stp then o.stp = copy(self.stp) end
  if o.stp == false then o.stp = nil end
  s.stp_on = o.stp ~= nil
  local ok, sw = pcall(luaswitch.switch, o)
  if not ok then error(("switch '%s': %s"):format(s.name, tostring(sw)), 0) end
  s.sw = sw
  for _, h in ipairs(s.handlers) do
    local good, err = pcall(sw.on, sw, h[1], h[2])
    if not good then error(("switch '%s': %s"):format(s.name, tostring(err)), 0) end
  end
end

local function start_switches(self)
  for _, s in ipairs(self.switches) do start_switch(self, s) end
  self.log(("*** switches: %s"):format(table.concat((function()
    local t = {}
    for i, s in ipairs(self.switches) do t[i] = s.name end
    return t
  end)(), " ")))
end

local function start_link(self, l)
  local pa, pb
  local trunk = l.trunk and { mode = "trunk", allowed = copy(l.trunk), native = l.native } or nil
  local function opts(sw, extra)
    local o = port_opts(l.port_opts, extra)
    o.name = l.port_names[sw]
    o.vlan = trunk and copy(trunk) or o.vlan
    return o
  end
  if l.transport == "patch" then
    pa = ok_or_fail(("link %s"):format(l.name), l.a.sw:port(opts(l.a, { kind = "patch" })))
    pb = ok_or_fail(("link %s"):format(l.name), l.b.sw:port(opts(l.b, { kind = "patch", peer = pa })))
  else
    local u1 = ok_or_fail(("link %s: underlay"):format(l.name), netns.create(l.underlay[1]))
    local u2 = ok_or_fail(("link %s: underlay"):format(l.name), netns.create(l.underlay[2]))
    l.ns = { u1, u2 }
    l.veth = ok_or_fail(("link %s: underlay"):format(l.name), netns.veth { name = "u0", netns = u1, peer = "u0",
      peer_netns = u2, addresses = { "10.255.0.1/24" }, peer_addresses = { "10.255.0.2/24" }, mtu = 1600 })
    pa = ok_or_fail(("link %s"):format(l.name), l.a.sw:port(opts(l.a, { kind = "vxlan", vni = l.vni,
      bind = "10.255.0.1:4789", remotes = { "10.255.0.2" }, netns = u1.name, mtu = 1500 })))
    pb = ok_or_fail(("link %s"):format(l.name), l.b.sw:port(opts(l.b, { kind = "vxlan", vni = l.vni,
      bind = "10.255.0.2:4789", remotes = { "10.255.0.1" }, netns = u2.name, mtu = 1500 })))
  end
  l.ports = { a = pa, b = pb, [l.a] = pa, [l.b] = pb }
  for _, sw in ipairs { l.a, l.b } do
    if l.impair_opts[sw] then l.ports[sw]:impair(copy(l.impair_opts[sw])) end
  end
end

local function describe_impair(o)
  if not o then return nil end
  local t = {}
  if o.delay then t[#t + 1] = ("delay %g ms"):format(o.delay * 1000) end
  if o.jitter then t[#t + 1] = ("jitter %g ms"):format(o.jitter * 1000) end
  if o.loss then t[#t + 1] = ("loss %g%%"):format(o.loss * 100) end
  if o.rate then t[#t + 1] = ("rate %s"):format(tostring(o.rate)) end
  if o.dup then t[#t + 1] = ("dup %g%%"):format(o.dup * 100) end
  if o.reorder then t[#t + 1] = ("reorder %g%%"):format(o.reorder * 100) end
  if o.corrupt then t[#t + 1] = ("corrupt %g%%"):format(o.corrupt * 100) end
  if o.gilbert then t[#t + 1] = "gilbert loss" end
  if o.mtu then t[#t + 1] = ("mtu %d"):format(o.mtu) end
  if o.down then t[#t + 1] = "down" end
  return #t > 0 and table.concat(t, ", ") or nil
end

local function link_summary(l)
  local t = { l.transport == "vxlan" and ("vxlan %d"):format(l.vni) or "patch" }
  if l.trunk then
    local v = {}
    for i, x in ipairs(l.trunk) do v[i] = tostring(x) end
    t[#t + 1] = "trunk " .. table.concat(v, ",")
  end
  local ia, ib = describe_impair(l.impair_opts[l.a]), describe_impair(l.impair_opts[l.b])
  if ia and ia == ib then
    t[#t + 1] = ia .. " each way"
  else
    if ia then t[#t + 1] = ("%s->%s %s"):format(l.a.name, l.b.name, ia) end
    if ib then t[#t + 1] = ("%s->%s %s"):format(l.b.name, l.a.name, ib) end
  end
  return table.concat(t, ", ")
end

-- Ports to hosts, routers and VMs of a switch running STP are edge ports (forwarding at
-- once, no topology change when they come and go) unless their options say otherwise.
local function edge(sw, o)
  if sw.stp_on and o.stp_edge == nil then o.stp_edge = true end
end

-- A lab interface with no IPv6 address has IPv6 off: otherwise each one, coming up, sends
-- router solicitations, duplicate address detection and MLD reports that every host of
-- its segment receives, which makes starting N hosts cost N x N frames (most of a 1,000-
-- host start). Interfaces are made with the namespace's default turned off, then those
-- with an IPv6 address are turned on, and the default is put back for what the user adds.
local IPV6_DEFAULT = "net/ipv6/conf/default/disable_ipv6"

local function ipv6_off(ns, what)
  ok_or_fail(what, core.netns_sysctl(ns, IPV6_DEFAULT, "1"))
end

local function ipv6_on(ns, ifname, addresses, what)
  for _, a in ipairs(addresses) do
    if a:find(":") then
      -- no duplicate address detection (as for the addresses, added nodad): the link-local
      -- address is usable at once, so the first neighbour solicitation is not held a second
      ok_or_fail(what, core.netns_sysctl(ns, ("net/ipv6/conf/%s/accept_dad"):format(ifname), "0"))
      ok_or_fail(what, core.netns_sysctl(ns, ("net/ipv6/conf/%s/disable_ipv6"):format(ifname), "0"))
      break
    end
  end
end

local function start_host(self, h)
  h.ns = h.ns or ok_or_fail(("host %s"):format(h.name), netns.create(h.netns))
  local what = ("host %s"):format(h.name)
  ipv6_off(h.netns, what)
  local o = port_opts(h.port_opts, { kind = "tap", name = h.port_name, ifname = "eth0", netns = h.netns,
    mac = h.mac, mtu = h.mtu, vlan = vlan_port(h.vlan) })
  edge(h.switch, o)
  h.port = ok_or_fail(what, h.switch.sw:port(o))
  ok_or_fail(what, core.netns_sysctl(h.netns, IPV6_DEFAULT, "0"))
  ipv6_on(h.netns, "eth0", h.addresses, what)
  h.mac = configure(h.netns, "eth0", h.addresses)
  add_routes(h.netns, h.routes)
end

local function start_router(self, r)
  r.ns = r.ns or ok_or_fail(("router %s"):format(r.name), netns.create(r.netns))
  r.ports = {}
  local what = ("router %s"):format(r.name)
  ipv6_off(r.netns, what)
  for i, it in ipairs(r.interfaces) do
    local o = port_opts(it.port_opts, { kind = "tap", name = it.port_name, ifname = it.ifname, netns = r.netns,
      mac = it.mac, mtu = it.mtu, vlan = vlan_port(it.vlan) })
    edge(it.switch, o)
    r.ports[i] = ok_or_fail(what, it.switch.sw:port(o))
  end
  ok_or_fail(what, core.netns_sysctl(r.netns, IPV6_DEFAULT, "0"))
  for _, it in ipairs(r.interfaces) do ipv6_on(r.netns, it.ifname, it.addresses, what) end
  ok_or_fail(what, core.netns_sysctl(r.netns, "net/ipv4/ip_forward", "1"))
  ok_or_fail(what, core.netns_sysctl(r.netns, "net/ipv6/conf/all/forwarding", "1"))
  for _, it in ipairs(r.interfaces) do it.mac = configure(r.netns, it.ifname, it.addresses) end
  add_routes(r.netns, r.routes)
end

local function start_vm(self, v)
  local o = port_opts(v.port_opts, { kind = v.transport, name = v.port_name, vlan = vlan_port(v.vlan) })
  edge(v.switch, o)
  local id = v.name
  if v.transport == "unix" then
    v.sw_path, v.vm_path = ("%s/%s.sw.sock"):format(self.dir, v.name), ("%s/%s.vm.sock"):format(self.dir, v.name)
    o.path, o.peer = v.sw_path, v.vm_path
    v.netdev = ("-netdev dgram,id=%s,local.type=unix,local.path=%s,remote.type=unix,remote.path=%s")
      :format(id, v.vm_path, v.sw_path)
  elseif v.transport == "stream" then
    v.path = ("%s/%s.sock"):format(self.dir, v.name)
    o.listen = v.path
    v.netdev = ("-netdev stream,id=%s,server=off,addr.type=unix,addr.path=%s"):format(id, v.path)
  elseif v.transport == "udp" then
    o.bind = "127.0.0.1:0" -- a port the kernel picks; the VM's address is learned from its first datagram
  elseif v.transport == "vde" then
    v.path = ("%s/%s.vde"):format(self.dir, v.name)
    o.path = v.path
    v.netdev = ("-netdev vde,id=%s,sock=%s"):format(id, v.path)
  elseif v.transport == "vhost-user" then
    -- the switch listens; the guest's memory must be a shared memfd of the VM's size
    v.path = ("%s/%s.vhost"):format(self.dir, v.name)
    o.path = v.path
    v.netdev = ("-object memory-backend-memfd,id=%s-mem,size=%dM,share=on -numa node,memdev=%s-mem "
      .. "-chardev socket,id=%s-chr,path=%s -netdev vhost-user,id=%s,chardev=%s-chr"):format(id, v.memory, id, id,
      v.path, id, id)
  end
  v.port = ok_or_fail(("vm %s"):format(v.name), v.switch.sw:port(o))
  if v.transport == "udp" then
    v.udp = v.port:info().path
    local host, port = v.udp:match("^(.*):(%d+)$")
    v.netdev = ("-netdev dgram,id=%s,local.type=inet,local.host=127.0.0.1,local.port=0,remote.type=inet,remote.host=%s,remote.port=%s")
      :format(id, host, port)
  end
  if v.transport == "socketpair" then
    v.fd = v.port:peer_fd()
    v.netdev = ("-netdev dgram,id=%s,local.type=fd,local.str=%d"):format(id, v.fd)
  end
  v.device = ("-device virtio-net-pci,netdev=%s,mac=%s"):format(id, v.mac)
  -- QEMU 7.2 without KVM crashes starting a vhost-user NIC that uses MSI-X: INTx instead
  if v.transport == "vhost-user" then v.device = v.device .. ",vectors=0" end
  v.qemu = v.netdev .. " " .. v.device
end

-- Lab.new { static_arp = true }: every host and router interface gets a permanent
-- neighbour entry for each other lab address on its subnets (Mininet's --arp), so no
-- ARP or neighbour solicitation is flooded; one batched rtnetlink call per address.

-- The interfaces of hosts and routers (all of the lab's, or those of the given nodes):
-- { ns, ifname, addresses, mac } each.
local function interfaces_of(self, nodes)
  local list = {}
  for _, n in ipairs(nodes or self.hosts) do
    if n.kind == "host" and n.mac then list[#list + 1] = { n.netns, "eth0", n.addresses, n.mac } end
  end
  for _, n in ipairs(nodes or self.routers) do
    if n.kind == "router" then
      for _, it in ipairs(n.interfaces) do
        if it.mac then list[#list + 1] = { n.netns, it.ifname, it.addresses, it.mac } end
      end
    end
  end
  return list
end

-- The (address, MAC) pairs of these interfaces, flat, as core.netns_neigh takes them.
local function neighbour_list(ifaces)
  local flat = {}
  for _, it in ipairs(ifaces) do
    for _, a in ipairs(it[3]) do flat[#flat + 1], flat[#flat + 2] = a:match("^[^/]+"), it[4] end
  end
  return flat
end

-- Entries on each interface of `into` for the addresses in `flat` on its subnets (or
-- deleted, mode "del"); returns how many.
local function fill_neighbours(into, flat, mode)
  local n = 0
  if #flat == 0 then return 0 end
  for _, it in ipairs(into) do
    if netns.exists(it[1]) then
      for _, a in ipairs(it[3]) do
        n = n + ok_or_fail(("static neighbour entries for %s in %s"):format(it[2], it[1]),
          core.netns_neigh(it[1], it[2], a, flat, mode))
      end
    end
  end
  return n
end

-- A host's or router's interfaces, and those of every other node of the lab.
local function node_and_others(self, node)
  local others = {}
  for _, it in ipairs(interfaces_of(self)) do
    if it[1] ~= node.netns then others[#others + 1] = it end
  end
  return interfaces_of(self, { node }), others
end

local function static_neighbours(self)
  local ifaces = interfaces_of(self)
  local entries = fill_neighbours(ifaces, neighbour_list(ifaces))
  self.log(("*** static neighbour entries: %d (static_arp)"):format(entries))
end

local function start_all(self)
  if #self.vms > 0 then
    must(("mkdir -p -m 0700 %s"):format(q(self.dir)), "lab directory")
    self.made_dir = true
  end
  start_switches(self)
  -- every host's and router's namespace in one batch (created on several threads)
  local nodes, names = {}, {}
  for _, list in ipairs { self.hosts, self.routers } do
    for _, n in ipairs(list) do
      nodes[#nodes + 1], names[#names + 1] = n, n.netns
    end
  end
  local made = ok_or_fail("namespaces", netns.create_many(names))
  for i, n in ipairs(nodes) do n.ns = made[i] end
  for _, l in ipairs(self.links) do
    start_link(self, l)
    self.log(("*** link %s: %s <-> %s (%s)"):format(l.name, l.a.name, l.b.name, link_summary(l)))
  end
  for _, h in ipairs(self.hosts) do
    start_host(self, h)
    self.log(("*** host %s: %s on %s%s, netns %s"):format(h.name, #h.addresses > 0 and
      table.concat(h.addresses, " ") or "no address", h.switch.name,
      h.vlan and (" (VLAN " .. tostring(type(h.vlan) == "table" and (h.vlan.pvid or "table") or h.vlan) .. ")") or "",
      h.netns))
  end
  for _, r in ipairs(self.routers) do
    start_router(self, r)
    local legs = {}
    for i, it in ipairs(r.interfaces) do
      legs[i] = ("%s %s on %s"):format(it.ifname, table.concat(it.addresses, " "), it.switch.name)
    end
    self.log(("*** router %s: %s, netns %s"):format(r.name, table.concat(legs, "; "), r.netns))
  end
  if self.static_arp then static_neighbours(self) end
  for _, v in ipairs(self.vms) do
    start_vm(self, v)
    self.log(("*** vm %s (%s on %s): qemu-system-x86_64 ... %s"):format(v.name, v.transport, v.switch.name, v.qemu))
  end
end

-- Is the spanning tree of every switch running it settled: each port forwarding, blocked
-- as an alternate, or disabled, and the two ends of every link agreeing on the root?
local function stp_settled(self)
  for _, s in ipairs(self.switches) do
    if s.stp_on and s.sw and not s.sw.closed then
      for _, p in ipairs(s.sw:stp().ports) do
        local settled = p.state == "forwarding" or p.state == "disabled"
          or (p.state == "blocking" and p.role == "alternate")
        if not settled then return false end
      end
    end
  end
  for _, l in ipairs(self.links) do
    if l.a.stp_on and l.b.stp_on and l.a.sw and l.b.sw and l.ports then
      local pa, pb = l.ports.a, l.ports.b
      if not pa.closed and not pb.closed and pa:state() == "up" and pb:state() == "up"
        and l.a.sw:stp().root_id ~= l.b.sw:stp().root_id then
        return false
      end
    end
  end
  return true
end

-- Time the slowest switch's tree needs to settle from scratch, with a margin.
local function stp_budget(self)
  local t = 0
  for _, s in ipairs(self.switches) do
    if s.stp_on and s.sw then
      local st = s.sw:stp()
      t = math.max(t, 2 * st.forward_delay + 2 * st.max_age)
    end
  end
  return t + 5
end

--- Has the spanning tree settled? True when no switch runs STP, or every port of the
-- switches that do is forwarding, blocked (an alternate port) or disabled, and the two
-- ends of each link agree on the root.
-- @tparam[opt] number timeout wait up to this many seconds for it (dispatching events),
--   rather than answer at once
-- @treturn boolean
function Lab:converged(timeout)
  check_lab(self, "converged")
  running_only(self, "converged", 2)
  if timeout == nil then return stp_settled(self) end
  if type(timeout) ~= "number" or timeout < 0 then
    argerr("converged", 1, 2, "a number of seconds expected, got %s", describe(timeout))
  end
  return luaswitch.wait_until(function() return stp_settled(self) end, timeout) and true or false
end

--- Create everything: switches, links, namespaces with their interfaces, addresses and
-- routes, VM ports. When switches run the spanning tree, it returns once the tree has
-- settled (see `lab:converged()`; an error if it does not within twice the forward
-- delay and max age plus 5 s), so a ring of switches is loop-free and every host can
-- reach every other at once. On an error (or Ctrl-C) halfway, what was created is removed
-- again and the error is raised.
-- @return the lab
function Lab:start()
  check_lab(self, "start")
  if self.state == "running" then error(("start: lab '%s' is running already"):format(self.name), 2) end
  local t0 = core.monotime()
  self.state = "starting"
  running[self] = true
  self.undo_id = core.atexit(undo_command(self))
  self.log(("*** lab %s: starting %s"):format(self.name, counts(self)))
  if self.neigh_limits then
    neigh.need[self] = neigh_entries(self)
    neigh_apply(self.log)
  end
  local ok, err = pcall(function()
    start_all(self)
    local stp = {}
    for _, s in ipairs(self.switches) do
      if s.stp_on then stp[#stp + 1] = s.name end
    end
    if #stp > 0 then
      local budget, t1 = stp_budget(self), core.monotime()
      if not luaswitch.wait_until(function() return stp_settled(self) end, budget) then
        error(("the spanning tree did not settle within %g s"):format(budget), 0)
      end
      self.log(("*** spanning tree (%s): settled in %.2f s"):format(table.concat(stp, " "), core.monotime() - t1))
    end
  end)
  if not ok then
    pcall(self.stop, self)
    error(("start: lab '%s': %s"):format(self.name, tostring(err)), 2)
  end
  self.state = "running"
  self.started = core.monotime()
  self.log(("*** lab %s: started in %.2f s"):format(self.name, core.monotime() - t0))
  luaswitch.dispatch(0)
  return self
end

local function close_all(objs)
  for i = #objs, 1, -1 do pcall(objs[i].close, objs[i]) end
end

-- A VM's stand-in endpoints closed, the processes started for it killed (QEMU, say).
local function stop_vm_procs(v)
  close_all(v.endpoints)
  for _, p in ipairs(v.procs) do
    os.execute(("kill -9 %d 2>/dev/null"):format(p.pid))
    core.atexit_cancel(p.exit_id)
    os.remove(p.log)
  end
  v.endpoints, v.procs = {}, {}
end

--- Remove everything the lab created: switches (and their ports and socket files),
-- processes, namespaces and their interfaces, the socket directory. Idempotent; the lab
-- can be started again afterwards.
function Lab:stop()
  check_lab(self, "stop")
  if self.state ~= "running" and self.state ~= "starting" then return self end
  local t0 = core.monotime()
  for _, sc in ipairs(self.schedules) do sc:cancel() end
  self.schedules = {}
  for _, v in ipairs(self.vms) do stop_vm_procs(v) end
  -- The namespaces go first: the kernel then removes their TAP devices in one batch as it
  -- frees them, where closing each TAP port first would unregister its device alone (about
  -- 20 ms each, mostly waiting); the ports see their devices go and close quietly after.
  local spaces = {}
  for _, n in ipairs(self.hosts) do spaces[#spaces + 1] = n.ns end
  for _, n in ipairs(self.routers) do spaces[#spaces + 1] = n.ns end
  for _, l in ipairs(self.links) do
    if l.veth then pcall(l.veth.close, l.veth) end
    for _, n in ipairs(l.ns or {}) do spaces[#spaces + 1] = n end
    l.ns, l.veth = nil, nil
  end
  pcall(netns.close_all, spaces)
  for _, s in ipairs(self.switches) do
    if s.sw and not s.sw.closed then pcall(s.sw.close, s.sw) end
    s.sw = nil
  end
  for _, l in ipairs(self.links) do l.ports = nil end
  -- what the netns objects did not cover (created but not yet registered when interrupted),
  -- as the exit hook's command would, without a shell
  local left = {}
  for _, n in ipairs(namespaces_of(self)) do
    if netns.exists(n) then left[#left + 1] = n end
  end
  if #left > 0 then
    core.netns_kill(left)
    core.netns_del(left)
  end
  if self.own_dir and self.made_dir then sh(("rm -rf %s"):format(q(self.dir))) end
  self.made_dir = nil
  if self.undo_id then core.atexit_cancel(self.undo_id) end
  self.undo_id = false
  for _, h in ipairs(self.hosts) do h.ns, h.port = nil, nil end
  for _, r in ipairs(self.routers) do r.ns, r.ports = nil, nil end
  for _, v in ipairs(self.vms) do v.port, v.fd = nil, nil end
  running[self] = nil
  if neigh.need[self] then
    neigh.need[self] = nil
    neigh_apply(self.log)
  end
  local was = self.state
  self.state = "stopped"
  if was == "running" then self.log(("*** lab %s: stopped in %.2f s"):format(self.name, core.monotime() - t0)) end
  return self
end

function Lab:__gc()
  if self.state == "running" or self.state == "starting" then pcall(Lab.stop, self) end
end
Lab.__close = Lab.__gc

-- ---- changing a running lab ------------------------------------------------------------------

local function unlist(list, x)
  for i, y in ipairs(list) do
    if y == x then
      table.remove(list, i)
      return true
    end
  end
  return false
end

-- The exit hook's command covers the lab's namespaces as they are now.
local function refresh_undo(self)
  if self.state ~= "running" then return end
  if self.undo_id then core.atexit_cancel(self.undo_id) end
  self.undo_id = core.atexit(undo_command(self))
end

local function refresh_neigh(self)
  if self.neigh_limits and neigh.need[self] then
    neigh.need[self] = neigh_entries(self)
    neigh_apply(self.log)
  end
end

-- Take down what a node (or link) has created, leaving its declaration.
local function teardown(self, node)
  local k = node.kind
  if k == "host" or k == "router" then
    if node.ns then pcall(node.ns.close, node.ns) end
    if netns.exists(node.netns) then
      core.netns_kill({ node.netns })
      core.netns_del({ node.netns })
    end
    for _, p in ipairs(k == "host" and { node.port } or node.ports or {}) do
      if not p.closed then pcall(p.close, p) end
    end
    node.ns, node.port, node.ports = nil, nil, nil
    if k == "host" then node.mac = node.declared_mac else
      for _, it in ipairs(node.interfaces) do it.mac = it.declared_mac end
    end
  elseif k == "vm" then
    stop_vm_procs(node)
    if node.port and not node.port.closed then pcall(node.port.close, node.port) end
    for _, f in ipairs { node.sw_path, node.vm_path, node.path } do os.remove(f) end
    node.port, node.fd = nil, nil
  elseif k == "link" then
    if node.veth then pcall(node.veth.close, node.veth) end
    close_all(node.ns or {})
    for _, p in pairs(node.ports or {}) do
      if not p.closed then pcall(p.close, p) end
    end
    node.ns, node.veth, node.ports = nil, nil, nil
  elseif k == "switch" then
    if node.sw and not node.sw.closed then pcall(node.sw.close, node.sw) end
    node.sw = nil
  end
end

-- Forget a declaration (after teardown).
local function undeclare(self, node)
  local k = node.kind
  if k == "link" then
    unlist(self.links, node)
    self.link_names[node.name] = nil
    node.a.port_names[node.port_names[node.a]] = nil
    node.b.port_names[node.port_names[node.b]] = nil
  else
    self.nodes[node.name] = nil
    unlist(k == "switch" and self.switches or k == "host" and self.hosts or k == "router" and self.routers
      or self.vms, node)
    if k == "host" or k == "vm" then node.switch.port_names[node.port_name] = nil end
    if k == "router" then
      for _, it in ipairs(node.interfaces) do it.switch.port_names[it.port_name] = nil end
    end
  end
  node.removed = true
end

-- Create a node declared on a running lab, now; on failure nothing of it is left (not
-- even its declaration) and the error is raised from the declaring call.
start_live = function(self, node, fname, level)
  local ok, err = pcall(function()
    local k = node.kind
    if k == "host" or k == "router" then
      if k == "host" then node.declared_mac = node.mac else
        for _, it in ipairs(node.interfaces) do it.declared_mac = it.mac end
      end
      refresh_undo(self) -- before the namespace exists, so a crash now removes it too
      refresh_neigh(self)
      node.ns = ok_or_fail(("%s %s"):format(k, node.name), netns.create(node.netns))
      if k == "host" then start_host(self, node) else start_router(self, node) end
      if self.static_arp then
        local mine, others = node_and_others(self, node)
        fill_neighbours(mine, neighbour_list(others))
        fill_neighbours(others, neighbour_list(mine))
      end
    elseif k == "switch" then
      start_switch(self, node)
    elseif k == "vm" then
      if not self.made_dir then
        must(("mkdir -p -m 0700 %s"):format(q(self.dir)), "lab directory")
        self.made_dir = true
        refresh_undo(self)
      end
      start_vm(self, node)
    elseif k == "link" then
      if node.underlay then refresh_undo(self) end
      start_link(self, node)
    end
  end)
  if not ok then
    teardown(self, node)
    undeclare(self, node)
    refresh_undo(self)
    refresh_neigh(self)
    error(("%s: %s"):format(fname, tostring(err)), level + 1)
  end
  self.log(("*** %s %s added to the running lab"):format(node.kind, node.name))
  luaswitch.dispatch(0)
end

-- Remove a node or link: what it created (if the lab runs) and its declaration.
local function remove(self, fname)
  local lab = self.lab
  if self.removed then return self end
  if lab.state == "starting" then
    error(("%s: lab '%s' is starting"):format(fname, lab.name), 3)
  end
  local live = lab.state == "running"
  if live and lab.static_arp and (self.kind == "host" or self.kind == "router") then
    local mine, others = node_and_others(lab, self)
    pcall(fill_neighbours, others, neighbour_list(mine), "del")
  end
  teardown(lab, self)
  undeclare(lab, self)
  if live then
    refresh_undo(lab)
    refresh_neigh(lab)
    lab.log(("*** %s %s removed from the running lab"):format(self.kind, self.name))
    luaswitch.dispatch(0)
  end
  return self
end

--- Remove the host or router: its namespace (and every process in it), its ports, and
-- its declaration; other hosts' static neighbour entries for it go too. On a running lab
-- it happens at once (pingall and the spanning tree see the change); on a declared one
-- it only drops the declaration. Its name can be used again.
-- @return the removed node
function Host:remove()
  return remove(self, "remove")
end
Router.remove = Host.remove

--- Remove the VM: its processes and stand-in endpoints, its port and socket files.
-- @return the removed VM
function VM:remove()
  return remove(self, "remove")
end

--- Remove the link: both ports (and a vxlan link's underlay namespaces). The spanning
-- tree reconverges around it.
-- @return the removed link
function Link:remove()
  return remove(self, "remove")
end

--- Remove the switch and everything plugged into it: its links, hosts and VMs. A switch
-- that a router has an interface on cannot be removed before the router (an error naming
-- it; nothing is changed).
-- @return the removed switch
function Switch:remove()
  local lab = self.lab
  if self.removed then return self end
  for _, r in ipairs(lab.routers) do
    for _, it in ipairs(r.interfaces) do
      if it.switch == self then
        error(("remove: router '%s' has an interface on switch '%s'; remove the router first"):format(r.name,
          self.name), 2)
      end
    end
  end
  for _, list in ipairs { lab.links, lab.hosts, lab.vms } do
    local mine = {}
    for _, x in ipairs(list) do
      if x.switch == self or x.a == self or x.b == self then mine[#mine + 1] = x end
    end
    for _, x in ipairs(mine) do remove(x, "remove") end
  end
  return remove(self, "remove")
end

-- ---- switches ------------------------------------------------------------------------------

function Switch.__index(self, k)
  local m = Switch[k]
  if m ~= nil then return m end
  local sw = rawget(self, "sw")
  if sw then
    local v = sw[k]
    if type(v) == "function" then return function(_, ...) return v(sw, ...) end end
    return v
  end
  return nil
end

function Switch:__tostring()
  return ("luaswitch.lab.switch %q%s"):format(self.name, rawget(self, "sw") and "" or " (not running)")
end

--- A handler for this switch's events (see `sw:on`); may be registered before the lab
-- runs (it is then checked and attached by `lab:start()`).
function Switch:on(event, fn)
  if rawget(self, "sw") then return self.sw:on(event, fn) end
  if type(event) ~= "string" then argerr("on", 1, 2, "event name expected, got %s", type(event)) end
  if type(fn) ~= "function" then argerr("on", 2, 2, "function expected, got %s", type(fn)) end
  self.handlers[#self.handlers + 1] = { event, fn }
  return fn
end

-- ---- hosts and routers ---------------------------------------------------------------------

local Node = {}

local function node_ns(self, fname)
  if not self.ns then
    error(("%s: %s '%s' is not running (call lab:start() first)"):format(fname, self.kind, self.name), 3)
  end
  return self.ns
end

--- Run a shell command in the node's namespace; returns its output (stdout and stderr)
-- and exit status.
function Node:run(cmd)
  return node_ns(self, "run"):run(cmd)
end

--- Run a shell command in the node's namespace; returns its output, raises if it fails.
function Node:check(cmd)
  local out, rc = node_ns(self, "check"):run(cmd)
  if rc ~= 0 then error(("%s: '%s' failed (exit %d): %s"):format(self.name, cmd, rc, out), 2) end
  return out
end

--- Start a command in the background in the node's namespace (killed at lab:stop()):
-- a process with `alive()`, `kill([sig])`, `wait([timeout])`, `output()`.
function Node:spawn(cmd)
  return node_ns(self, "spawn"):spawn(cmd)
end

local function target_address(lab, other, fname, level)
  if type(other) == "string" then
    if family(other) then return other end
    local n = lab.nodes[other]
    if not n then argerr(fname, 1, level + 1, "no node or address '%s' in lab '%s'", other, lab.name) end
    other = n
  end
  if type(other) == "table" and (getmetatable(other) == Host or getmetatable(other) == Router) then
    if not other.ip then argerr(fname, 1, level + 1, "%s has no address", describe(other)) end
    return other.ip, other
  end
  argerr(fname, 1, level + 1, "a host, a router, a name or an address expected, got %s", describe(other))
end

--- Ping another node (host, router, name) or an address.
-- @param other a host, a router, a node's name or an address
-- @tparam[opt] table opts `count` (1), `interval` (0.2 s), `timeout` (1 s per reply)
-- @treturn boolean every ping answered
-- @treturn table `sent`, `received`, `loss` (%), `rtt_min`, `rtt_avg`, `rtt_max` (ms), `output`
function Node:ping(other, opts)
  local ns = node_ns(self, "ping")
  local addr = target_address(self.lab, other, "ping", 2)
  opts = opts or {}
  local count = opts.count or 1
  local out = ns:run(("ping -n -q -c %d -i %g -W %g %s"):format(count, opts.interval or 0.2, opts.timeout or 1, q(addr)))
  local sent, received = out:match("(%d+) packets transmitted, (%d+) received")
  local r = { sent = tonumber(sent) or count, received = tonumber(received) or 0, output = out }
  r.loss = r.sent > 0 and 100 * (r.sent - r.received) / r.sent or 100
  local mn, avg, mx = out:match("= ([%d.]+)/([%d.]+)/([%d.]+)")
  r.rtt_min, r.rtt_avg, r.rtt_max = tonumber(mn), tonumber(avg), tonumber(mx)
  luaswitch.dispatch(0) -- the events it caused (learning), in order with what the script prints
  return r.received == r.sent and r.sent > 0, r
end

for k, fn in pairs(Node) do
  Host[k], Router[k] = fn, fn
end
Host.__index, Router.__index = Host, Router

function Host:__tostring()
  return ("luaswitch.lab.host %q (%s on %s%s)"):format(self.name, self.ip or "no address", self.switch.name,
    self.ns and "" or ", not running")
end

function Router:__tostring()
  return ("luaswitch.lab.router %q (%d interfaces%s)"):format(self.name, #self.interfaces,
    self.ns and "" or ", not running")
end

-- ---- VMs -----------------------------------------------------------------------------------

VM.__index = VM

function VM:__tostring()
  return ("luaswitch.lab.vm %q (%s on %s%s)"):format(self.name, self.transport, self.switch.name,
    self.port and "" or ", not running")
end

--- A luaswitch endpoint on the VM's side of its port, speaking the framing QEMU would:
-- for a test to stand in for the VM. Closed at lab:stop().
function VM:endpoint()
  if not self.port then error(("endpoint: vm '%s' is not running (call lab:start() first)"):format(self.name), 2) end
  local ep, err
  if self.transport == "unix" then
    ep, err = luaswitch.endpoint { path = self.vm_path, peer = self.sw_path }
  elseif self.transport == "stream" then
    ep, err = luaswitch.endpoint { connect = self.path }
  elseif self.transport == "udp" then
    ep, err = luaswitch.endpoint { udp = "127.0.0.1:0", peer = self.udp }
  elseif self.transport == "vde" then
    return nil, ("vm %s: no stand-in endpoint speaks the VDE plug protocol (use vde_plug %s)"):format(self.name, self.path)
  elseif self.transport == "vhost-user" then
    return nil, ("vm %s: no stand-in endpoint speaks vhost-user (boot a guest: vm:command)"):format(self.name)
  else
    ep, err = self.port:endpoint()
  end
  if ep then self.endpoints[#self.endpoints + 1] = ep end
  return ep, err
end

--- A whole QEMU command line for the VM (x86-64, virtio NIC, serial console; a virtio
-- disk, or a kernel booted directly).
-- @tparam[opt] table opts `image` (disk image, default "NAME.qcow2"), or `kernel` with
--   `initrd` and `append` (boot that kernel instead, no disk); `memory` (MiB, 512),
--   `qemu` (the program, "qemu-system-x86_64"), `serial` (where the console goes: a file
--   path, written with `-serial file:`; default the terminal, `-nographic`), `accel`
--   ("kvm:tcg": KVM where it works, else emulation; "tcg" where /dev/kvm exists but
--   does not work, as in nested VMs)
function VM:command(opts)
  if not self.port then error(("command: vm '%s' is not running (call lab:start() first)"):format(self.name), 2) end
  if opts ~= nil and type(opts) ~= "table" then argerr("command", 1, 2, "a table of options expected, got %s", type(opts)) end
  opts = opts or {}
  check_options("command", opts, set { "image", "kernel", "initrd", "append", "memory", "qemu", "serial", "accel" }, 2)
  if opts.kernel and opts.image then opterr("command", "image", 2, "a disk image or a kernel, not both") end
  local boot
  if opts.kernel then
    boot = ("-kernel %s"):format(q(opts.kernel))
    if opts.initrd then boot = boot .. (" -initrd %s"):format(q(opts.initrd)) end
    if opts.append then boot = boot .. (" -append %s"):format(q(opts.append)) end
  else
    boot = ("-drive file=%s,if=virtio"):format(q(opts.image or (self.name .. ".qcow2")))
  end
  if opts.memory and self.transport == "vhost-user" and opts.memory ~= self.memory then
    opterr("command", "memory", 2, "vm '%s' shares %d MiB with the switch (lab:vm's memory option); got %d", self.name,
      self.memory, opts.memory)
  end
  local console = opts.serial and ("-display none -serial %s"):format(q("file:" .. opts.serial)) or "-nographic"
  return ("%s -machine q35,accel=%s -m %d %s -no-reboot %s %s"):format(opts.qemu or "qemu-system-x86_64",
    opts.accel or "kvm:tcg", opts.memory or self.memory, console, boot, self.qemu)
end

--- Start a command (QEMU, say) in the background in the root namespace; for a socketpair
-- VM it inherits the file descriptor `vm.fd` named in `vm.qemu`. Killed at lab:stop().
-- @return a process with `pid`, `alive()`, `wait([timeout])`, `output()`, `kill([sig])`
function VM:spawn(cmd)
  if not self.port then error(("spawn: vm '%s' is not running (call lab:start() first)"):format(self.name), 2) end
  local log = os.tmpname()
  local p = assert(io.popen(("sh -c %s >%s 2>&1 </dev/null & echo $!"):format(q("exec " .. cmd), q(log))))
  local pid = tonumber(p:read("l"))
  p:close()
  local proc = { pid = pid, log = log, cmd = cmd, exit_id = core.atexit(("kill -9 %d 2>/dev/null"):format(pid)) }
  function proc.alive() return pid_alive(pid) end
  function proc.wait(_, timeout) return wait_exit(pid, timeout or 5) end
  function proc.kill(_, sig) os.execute(("kill -%s %d 2>/dev/null"):format(sig or "TERM", pid)) end
  function proc.output()
    local f = io.open(log)
    if not f then return "" end
    local s = f:read("a")
    f:close()
    return s
  end
  self.procs[#self.procs + 1] = proc
  return proc
end

-- ---- links ---------------------------------------------------------------------------------

Link.__index = Link

function Link:__tostring()
  return ("luaswitch.lab.link %q (%s <-> %s, %s)"):format(self.name, self.a.name, self.b.name, link_summary(self))
end

--- Impair one direction of the link, or both; live when the lab runs, else from the start.
-- @param dir "both", or the sending side: a switch (or its name) of the link — `s1`
--   means frames from s1 towards the other end
-- @tparam table|nil opts as `port:impair` (`delay`, `jitter`, `loss`, `rate`, `seed`, ...);
--   nil removes the impairment
-- @return the link
function Link:impair(dir, opts)
  local sides
  if dir == "both" then
    sides = { self.a, self.b }
  else
    local sw = dir
    if type(dir) == "string" then sw = self.lab.nodes[dir] end
    if sw ~= self.a and sw ~= self.b then
      argerr("impair", 1, 2, "\"both\" or one of the link's switches ('%s', '%s') expected, got %s", self.a.name,
        self.b.name, describe(dir))
    end
    sides = { sw }
  end
  if opts ~= nil and type(opts) ~= "table" then
    argerr("impair", 2, 2, "a table of impairments or nil expected, got %s", type(opts))
  end
  if opts then check_options("impair", opts, IMPAIR, 2) end
  for _, sw in ipairs(sides) do
    local port = self.ports and self.ports[sw]
    if port then
      local ok, err = pcall(port.impair, port, opts and copy(opts) or nil)
      if not ok then error(tostring(err):gsub("^[^:]*:%d+: ", ""), 2) end
    end
    self.impair_opts[sw] = opts and copy(opts) or nil
  end
  return self
end

local function link_ports(self, fname)
  if not self.ports then
    error(("%s: link '%s' is not running (call lab:start() first)"):format(fname, self.name), 3)
  end
  return self.ports.a, self.ports.b
end

--- Cut the link (both ends administratively down, as pulling the cable): frames and
-- BPDUs stop at once, and a spanning tree reconverges around it.
-- @return the link
function Link:down()
  local a, b = link_ports(self, "down")
  a:down()
  b:down()
  return self
end

--- Plug the link in again after `link:down()`.
-- @return the link
function Link:up()
  local a, b = link_ports(self, "up")
  a:up()
  b:up()
  return self
end

--- The spanning tree state of the link's two ends (after start, on switches running STP):
-- `{ [a.name] = "forwarding", [b.name] = "blocking" }`; nil without STP.
function Link:stp()
  local a, b = link_ports(self, "stp")
  if not (self.a.stp_on or self.b.stp_on) then return nil end
  return { [self.a.name] = a:info().stp_state, [self.b.name] = b:info().stp_state }
end

-- ---- a fault timeline ------------------------------------------------------------------------

local Schedule = {}
Schedule.__index = Schedule

local SCHEDULE_KEYS = set { "at", "link", "down", "up", "impair", "dir", "run" }

local function find_link(self, v, what)
  if getmetatable(v) == Link then
    if v.lab ~= self or v.removed then error(("schedule: %s: link '%s' is not in this lab"):format(what, v.name), 4) end
    return v
  end
  if type(v) == "string" then
    for _, l in ipairs(self.links) do
      if l.name == v then return l end
    end
    error(("schedule: %s: no link named '%s' in lab '%s'"):format(what, v, self.name), 4)
  end
  error(("schedule: %s: bad option 'link' (a link or its name expected, got %s)"):format(what, describe(v)), 4)
end

local function event_text(e)
  if e.action == "run" then return "run" end
  if e.action == "impair" then
    return ("link %s impair %s%s"):format(e.link.name, describe_impair(e.impair) or "cleared",
      e.dir == "both" and "" or (" from " .. e.dir.name))
  end
  return ("link %s %s"):format(e.link.name, e.action)
end

--- A fault timeline: changes to links at given times, on the lab's clock (the runtime
-- clock, `luaswitch.now()`: real time, or the manual clock of a harness spec, where
-- `h:advance()` / `luaswitch.advance()` replays it exactly, each change at its own time).
-- `at` is seconds after this call; each event does one thing:
--
--    lab:schedule {
--      { at = 1.0, link = "s1-s2", down = true },
--      { at = 2.5, link = "s1-s2", up = true },
--      { at = 3, link = "s2-s3", impair = { loss = 0.2 } },      -- both directions
--      { at = 4, link = "s2-s3", impair = { delay = 0.05 }, dir = "s2" }, -- s2 -> s3 only
--      { at = 5, link = "s2-s3", impair = false },               -- clear
--      { at = 6, run = function(lab) lab.h1:remove() end },
--    }
--
-- The whole list is checked first (a bad event raises an error naming it and nothing is
-- scheduled). The changes are made from `dispatch()` (so while the script runs
-- `luaswitch.run`, `wait_until`, `lab:pingall`, ... or the REPL waits); an event that
-- fails (its link removed meanwhile, an error in `run`) is reported and recorded, and the
-- rest go on. `lab:stop()` cancels what has not happened.
-- @tparam table events
-- @return schedule: `sc.applied` (one `{ at =, time =, what =, ok =, err = }` per event done,
--   `time` the runtime clock's seconds since the call), `sc:pending()`, `sc:done()`,
--   `sc:wait([timeout])` (dispatch until done; default the last `at` plus 5 s of real time),
--   `sc:cancel()`
function Lab:schedule(events)
  check_lab(self, "schedule")
  running_only(self, "schedule", 2)
  if type(events) ~= "table" then argerr("schedule", 1, 2, "a list of events expected, got %s", type(events)) end
  local plan = {}
  for i, ev in ipairs(events) do
    local what = ("event %d"):format(i)
    if type(ev) ~= "table" then
      error(("schedule: %s: a table like { at = 1, link = \"s1-s2\", down = true } expected, got %s")
        :format(what, type(ev)), 2)
    end
    for k in pairs(ev) do
      if not SCHEDULE_KEYS[k] then
        error(("schedule: %s: unknown key '%s' (known: at, link, down, up, impair, dir, run)"):format(what,
          tostring(k)), 2)
      end
    end
    if type(ev.at) ~= "number" or ev.at ~= ev.at or ev.at < 0 or ev.at > 1e9 then
      error(("schedule: %s: bad option 'at' (seconds from now, 0 or more, expected, got %s)"):format(what,
        describe(ev.at)), 2)
    end
    local actions = {}
    for _, k in ipairs { "down", "up", "impair", "run" } do
      if ev[k] ~= nil then actions[#actions + 1] = k end
    end
    if #actions ~= 1 then
      error(("schedule: %s: exactly one of down, up, impair, run expected, got %s"):format(what,
        #actions == 0 and "none" or table.concat(actions, ", ")), 2)
    end
    local e = { at = ev.at, action = actions[1] }
    if e.action == "run" then
      if type(ev.run) ~= "function" then
        error(("schedule: %s: bad option 'run' (a function expected, got %s)"):format(what, type(ev.run)), 2)
      end
      if ev.link ~= nil or ev.dir ~= nil then error(("schedule: %s: 'run' takes no link"):format(what), 2) end
      e.fn = ev.run
    else
      if ev.link == nil then error(("schedule: %s: bad option 'link' (which link?)"):format(what), 2) end
      e.link = find_link(self, ev.link, what)
      if (e.action == "down" or e.action == "up") and ev[e.action] ~= true then
        error(("schedule: %s: bad option '%s' (true expected, got %s)"):format(what, e.action,
          describe(ev[e.action])), 2)
      end
      if e.action == "impair" then
        if ev.impair ~= false and type(ev.impair) ~= "table" then
          error(("schedule: %s: bad option 'impair' (a table of impairments or false expected, got %s)"):format(what,
            describe(ev.impair)), 2)
        end
        if ev.impair then check_options(("schedule: %s: impair"):format(what), ev.impair, IMPAIR, 2) end
        e.impair = ev.impair and copy(ev.impair) or nil
        e.dir = "both"
        if ev.dir ~= nil and ev.dir ~= "both" then
          local sw = type(ev.dir) == "string" and self.nodes[ev.dir] or ev.dir
          if sw ~= e.link.a and sw ~= e.link.b then
            error(("schedule: %s: bad option 'dir' (\"both\" or one of the link's switches ('%s', '%s') expected, got %s)")
              :format(what, e.link.a.name, e.link.b.name, describe(ev.dir)), 2)
          end
          e.dir = sw
        end
      elseif ev.dir ~= nil then
        error(("schedule: %s: 'dir' is for impair"):format(what), 2)
      end
    end
    plan[#plan + 1] = e
  end
  local sc = setmetatable({ lab = self, events = plan, applied = {}, timers = {}, t0 = luaswitch.now(),
    last = 0 }, Schedule)
  for i, e in ipairs(plan) do
    sc.last = math.max(sc.last, e.at)
    sc.timers[i] = luaswitch.after(e.at, function()
      local ok, err = pcall(function()
        if e.action == "run" then
          e.fn(self)
        elseif e.action == "impair" then
          e.link:impair(e.dir, e.impair)
        elseif e.link.removed then
          error(("link '%s' was removed"):format(e.link.name), 0)
        else
          e.link[e.action](e.link)
        end
      end)
      local rec = { at = e.at, time = luaswitch.now() - sc.t0, what = event_text(e), ok = ok,
        err = not ok and tostring(err) or nil }
      sc.applied[#sc.applied + 1] = rec
      self.log(("*** t=%.3f s: %s%s"):format(rec.time, rec.what, ok and "" or (" failed: " .. rec.err)))
      if not ok then luaswitch.report(("lab %s: schedule: %s: %s"):format(self.name, rec.what, rec.err)) end
    end)
  end
  self.schedules[#self.schedules + 1] = sc
  return sc
end

--- Events not yet done (neither applied nor cancelled).
function Schedule:pending()
  local n = 0
  for _, t in ipairs(self.timers) do
    if not t.fired and not t.cancelled then n = n + 1 end
  end
  return n
end

--- Is every event done (or cancelled)?
function Schedule:done()
  return self:pending() == 0
end

--- Dispatch until every event is done; false after `timeout` seconds of real time
-- (default: the last `at` plus 5).
function Schedule:wait(timeout)
  return luaswitch.wait_until(function() return self:done() end, timeout or (self.last + 5)) and true or false
end

--- Cancel the events that have not happened.
function Schedule:cancel()
  for _, t in ipairs(self.timers) do t:cancel() end
  return self
end

function Schedule:__tostring()
  return ("luaswitch.lab.schedule (%d events, %d done)"):format(#self.events, #self.applied)
end

-- ---- testing -------------------------------------------------------------------------------

local function pingable(self)
  local list = {}
  for _, h in ipairs(self.hosts) do
    if h.ip then list[#list + 1] = h end
  end
  return list
end

local function fmt_pct(x)
  if x == math.floor(x) then return ("%d"):format(x) end
  return ("%.1f"):format(x)
end

local function find_host(self, v, fname, n)
  if type(v) == "string" then v = self.nodes[v] or v end
  if getmetatable(v) == Host or getmetatable(v) == Router then
    if v.lab ~= self then argerr(fname, n, 3, "%s belongs to another lab", describe(v)) end
    return v
  end
  argerr(fname, n, 3, "a host, a router or its name expected, got %s", describe(v))
end

local PINGALL_OPTS = set { "timeout", "quiet", "pairs", "window", "attempts" }

-- The pairs pingall probes: every ordered pair, a given list, or a sample of n of them.
local function pingall_pairs(self, hosts, spec)
  local index = {}
  for i, h in ipairs(hosts) do index[h] = i end
  local pairs_ = {}
  if spec == nil or spec == "all" then
    for i in ipairs(hosts) do
      for j in ipairs(hosts) do
        if i ~= j then pairs_[#pairs_ + 1] = { i, j } end
      end
    end
  elseif math.type(spec) == "integer" and spec > 0 then
    local n = #hosts
    local total = n * (n - 1)
    if spec >= total then return pingall_pairs(self, hosts, "all") end
    local seen = {}
    while #pairs_ < spec do -- a sample without repeats, each pair equally likely
      local k = math.random(0, total - 1)
      if not seen[k] then
        seen[k] = true
        local i, j = k // (n - 1) + 1, k % (n - 1) + 1
        if j >= i then j = j + 1 end
        pairs_[#pairs_ + 1] = { i, j }
      end
    end
    table.sort(pairs_, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
  elseif type(spec) == "table" then
    for k, pr in ipairs(spec) do
      if type(pr) ~= "table" then opterr("pingall", "pairs", 3, "entry %d: a pair { from, to } expected, got %s", k, describe(pr)) end
      local a, b = find_host(self, pr[1], "pingall", 1), find_host(self, pr[2], "pingall", 1)
      if not index[a] or not index[b] then
        opterr("pingall", "pairs", 3, "entry %d: %s and %s must both have an address", k, a.name, b.name)
      end
      pairs_[#pairs_ + 1] = { index[a], index[b] }
    end
  else
    opterr("pingall", "pairs", 3, "\"all\", a number of pairs to sample or a list of { from, to } expected, got %s", describe(spec))
  end
  return pairs_
end

--- Every host pings every other (as Mininet's pingall); prints a line per host
-- ("h1 -> h2 X h4": X for no reply) and the drop percentage.
--
-- One ICMP socket per host, opened inside its namespace, and one event loop send the
-- echo requests (no process per pair), at most `window` in flight at once, so the verdict
-- is the network's and not that of a storm the prober made; a request unanswered within
-- `timeout` is sent again, `attempts` in all (the first to a neighbour waits on its ARP):
-- a pair is reported unreachable only when none was answered, as `ping -c 1` run for that
-- pair alone would find it.
-- @tparam[opt] table opts `timeout` (seconds to wait for a reply, default 1), `attempts`
--   (default 3), `window` (requests in flight; default 64, or 8,192 / hosts when that is
--   less and the lab has no `static_arp`, at least 4), `pairs` (`"all"`, the default;
--   a number: that many pairs drawn at random; or a list of `{ from, to }` hosts or names),
--   `quiet`
-- @treturn number the percentage of pairs without a reply
-- @treturn table `{ sent =, received =, [src] = { [dst] = true | false }, rtt = { [src] = { [dst] = ms } },
--   elapsed =, probe = }` by host name (`probe`: the prober's counts: `sent`, `replies`, `timeouts`,
--   `stray`, `send_errors` and the last `send_error`)
function Lab:pingall(opts)
  check_lab(self, "pingall")
  running_only(self, "pingall", 2)
  if opts ~= nil and type(opts) ~= "table" then argerr("pingall", 1, 2, "a table of options expected, got %s", type(opts)) end
  opts = opts or {}
  check_options("pingall", opts, PINGALL_OPTS, 2)
  local hosts = pingable(self)
  local list = pingall_pairs(self, hosts, opts.pairs)
  local out = opts.quiet and function() end or function(s) io.stdout:write(s) io.stdout:flush() end
  out("*** Ping: testing ping reachability\n")
  local targets, flat = {}, {}
  for i, h in ipairs(hosts) do targets[i] = { ip = h.ip, netns = h.netns } end
  for _, pr in ipairs(list) do
    flat[#flat + 1], flat[#flat + 2] = pr[1], pr[2]
  end
  -- Without static neighbour entries each new pair's first request waits on an ARP
  -- broadcast that every host of the segment receives: keep the floods in flight at once
  -- to what the hosts' queues take (about 8,192 frames), not a storm of the prober's making.
  local window = opts.window or (self.static_arp and 64 or math.max(4, math.min(64, 8192 // math.max(1, #hosts))))
  local ok, rtts, st = pcall(core.probe, targets, flat, { timeout = opts.timeout, attempts = opts.attempts,
    window = window })
  if not ok then error(("pingall: %s"):format(tostring(rtts):gsub("^bad argument #%d to 'probe' ", "")), 2) end
  if not rtts then error(("pingall: %s"):format(st), 2) end
  local result = { sent = #list, received = 0, elapsed = st.elapsed, probe = st, rtt = {} }
  for _, h in ipairs(hosts) do result[h.name], result.rtt[h.name] = {}, {} end
  for k, pr in ipairs(list) do
    local a, b = hosts[pr[1]], hosts[pr[2]]
    result[a.name][b.name] = rtts[k] ~= false
    if rtts[k] then
      result.rtt[a.name][b.name] = rtts[k]
      result.received = result.received + 1
    end
  end
  local lines = {}
  for k, pr in ipairs(list) do
    local line = lines[pr[1]] or {}
    lines[pr[1]] = line
    line[#line + 1] = rtts[k] and hosts[pr[2]].name or "X"
  end
  for i, h in ipairs(hosts) do
    if lines[i] then out(("%s -> %s\n"):format(h.name, table.concat(lines[i], " "))) end
  end
  local drop = result.sent > 0 and 100 * (result.sent - result.received) / result.sent or 0
  out(("*** Results: %s%% dropped (%d/%d received)\n"):format(fmt_pct(drop), result.received, result.sent))
  luaswitch.dispatch(0)
  return drop, result
end


--- TCP throughput from host a to host b with iperf3 (client on a, server on b).
-- @param a the sending host or router (or its name)
-- @param b the receiving host or router (or its name)
-- @tparam[opt] table opts `seconds` (2), `quiet`
-- @treturn number Gbit/s received, or nil and a message
-- @treturn table iperf3's JSON result
function Lab:iperf(a, b, opts)
  check_lab(self, "iperf")
  running_only(self, "iperf", 2)
  a, b = find_host(self, a, "iperf", 1), find_host(self, b, "iperf", 2)
  opts = opts or {}
  local secs = opts.seconds or 2
  if not b.ip then argerr("iperf", 2, 2, "%s has no address", describe(b)) end
  local server = b:spawn("iperf3 -s -1")
  local listening = luaswitch.wait_until(function()
    local _, rc = b:run("ss -ltnH 'sport = :5201' | grep -q .")
    return rc == 0
  end, 5)
  if not listening then
    server:cleanup()
    return nil, "iperf3 server did not start: " .. server:output()
  end
  local client = a:spawn(("iperf3 -c %s -t %g -J"):format(b.ip, secs))
  local done = wait_exit(client.pid, secs + 15)
  wait_exit(server.pid, 2)
  local text = client:output()
  client:cleanup()
  server:cleanup()
  if not done then return nil, "iperf3 did not finish in time" end
  local res = require("luaswitch.json").decode(text)
  local bps = type(res) == "table" and type(res["end"]) == "table" and type(res["end"].sum_received) == "table"
    and res["end"].sum_received.bits_per_second
  if not bps then return nil, "iperf3 failed: " .. text:sub(1, 400) end
  local gbps = bps / 1e9
  if not opts.quiet then
    io.stdout:write(("*** iperf %s -> %s: %.2f Gbit/s\n"):format(a.name, b.name, gbps))
    io.stdout:flush()
  end
  return gbps, res
end

-- ---- Graphviz ------------------------------------------------------------------------------

local function dq(s)
  return '"' .. tostring(s):gsub('[\\"]', "\\%0"):gsub("\n", "\\n") .. '"'
end

local function vlan_text(v)
  if v == nil then return nil end
  if type(v) == "table" then
    if v.mode == "trunk" then return "trunk" end
    return v.pvid and ("vlan " .. v.pvid) or nil
  end
  return "vlan " .. v
end

--- The topology as Graphviz text (an undirected graph); with a path, also writes it there
-- and, when `dot` is installed, renders an SVG next to it (path with .svg instead of .dot).
-- @tparam[opt] string path
-- @return the text; with a path: the path and the SVG's path (nil without graphviz)
function Lab:dot(path)
  check_lab(self, "dot")
  local t = {}
  local function add(fmt, ...) t[#t + 1] = fmt:format(...) end
  local function edge(a, b, label)
    if label then add("  %s -- %s [label=%s];", dq(a), dq(b), dq(label)) else add("  %s -- %s;", dq(a), dq(b)) end
  end
  add("graph %s {", dq(self.name))
  add('  graph [rankdir=LR, fontname="Helvetica", label=%s, labelloc=t];', dq("lab " .. self.name))
  add('  node [fontname="Helvetica", fontsize=11];')
  add('  edge [fontname="Helvetica", fontsize=9];')
  for _, s in ipairs(self.switches) do
    local opts = {}
    for k, v in pairs(s.opts) do
      if type(v) ~= "table" and type(v) ~= "function" then opts[#opts + 1] = ("%s=%s"):format(k, tostring(v)) end
    end
    if s.vlans and s.opts.vlan_aware == nil then opts[#opts + 1] = "vlan_aware=true" end
    if type(s.opts.stp) == "table" or (s.opts.stp == nil and self.stp) then opts[#opts + 1] = "stp" end
    table.sort(opts)
    add('  %s [shape=box, style="rounded,filled", fillcolor="#cfe2f3", label=%s];', dq(s.name),
      dq(s.name .. (#opts > 0 and ("\n" .. table.concat(opts, " ")) or "")))
  end
  for _, h in ipairs(self.hosts) do
    local lines = { h.name }
    for _, a in ipairs(h.addresses) do lines[#lines + 1] = a end
    for _, r in ipairs(h.routes) do lines[#lines + 1] = ("%s via %s"):format(r.dst, r.via) end
    add("  %s [shape=ellipse, label=%s];", dq(h.name), dq(table.concat(lines, "\n")))
    edge(h.name, h.switch.name, vlan_text(h.vlan))
  end
  for _, r in ipairs(self.routers) do
    add('  %s [shape=octagon, style=filled, fillcolor="#fce5cd", label=%s];', dq(r.name), dq(r.name .. "\nrouter"))
    for _, it in ipairs(r.interfaces) do
      local label = { it.ifname }
      for _, a in ipairs(it.addresses) do label[#label + 1] = a end
      if it.vlan then label[#label + 1] = vlan_text(it.vlan) end
      add("  %s -- %s [label=%s];", dq(r.name), dq(it.switch.name), dq(table.concat(label, "\n")))
    end
  end
  for _, v in ipairs(self.vms) do
    add('  %s [shape=component, style=filled, fillcolor="#d9ead3", label=%s];', dq(v.name),
      dq(("%s\nVM (%s)\n%s"):format(v.name, v.transport, v.mac)))
    edge(v.name, v.switch.name, vlan_text(v.vlan))
  end
  for _, l in ipairs(self.links) do
    local label, style = l.name .. "\n" .. link_summary(l):gsub(", ", "\n"), l.transport == "vxlan" and "dashed" or nil
    local st = l.ports and l:stp() -- a running lab: the ends the spanning tree blocks
    if st then
      for _, sw in ipairs { l.a, l.b } do
        if st[sw.name] == "blocking" then
          label, style = label .. "\nblocked at " .. sw.name, "dotted"
        end
      end
    end
    add("  %s -- %s [label=%s, penwidth=2%s];", dq(l.a.name), dq(l.b.name), dq(label),
      style and (", style=" .. style) or "")
  end
  add("}")
  local text = table.concat(t, "\n") .. "\n"
  if path == nil then return text end
  if type(path) ~= "string" then argerr("dot", 1, 2, "a file path expected, got %s", type(path)) end
  local f, err = io.open(path, "w")
  if not f then return nil, err end
  f:write(text)
  f:close()
  if not have("dot") then return path, nil end
  local svg = (path:match("^(.*)%.dot$") or path:match("^(.*)%.gv$") or path) .. ".svg"
  local out, rc = sh(("dot -Tsvg %s -o %s"):format(q(path), q(svg)))
  if rc ~= 0 then return nil, "dot: " .. out end
  return path, svg
end

--- Labs started in this Lua state and not stopped.
function M.running()
  local list = {}
  for l in pairs(running) do list[#list + 1] = l end
  return list
end

M.Lab, M.Switch, M.Host, M.Router, M.VM, M.Link = Lab, Switch, Host, Router, VM, Link

return M
