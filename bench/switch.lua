-- bench/switch.lua — the luaswitch subject of bench/lsbench.c: one switch, two unix
-- datagram ports with fixed peers (the generator and the sink). Run by the harness as
-- `luaswitch bench/switch.lua DIR`; it serves until SIGTERM.
local luaswitch = require "luaswitch"
local dir = assert(arg[1], "usage: luaswitch bench/switch.lua DIR")
local sw = luaswitch.switch "bench"
assert(sw:port { kind = "unix", name = "a", path = dir .. "/a.sock", peer = dir .. "/gen.sock" })
assert(sw:port { kind = "unix", name = "b", path = dir .. "/b.sock", peer = dir .. "/sink.sock" })
