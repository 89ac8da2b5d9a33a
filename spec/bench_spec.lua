-- The benchmarks keep working: build/lsbench and `lsbench --policy` run every subject on a
-- few thousand frames, each row is printed and no luaswitch subject loses a frame. This
-- checks that the benchmarks run and measure what they say (bench/switch.lua checks each
-- policy mode with sw:explain before serving); it asserts no speed — the figures are in
-- the README, measured on a quiet machine.

local BUILD = os.getenv("LUASWITCH_BUILD") or "build"

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"::rc=$?\"")
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("::rc=(%d+)%s*$"))
  return out:gsub("::rc=%d+%s*$", ""), rc
end

-- rows of lsbench's table: { [size] = { [subject] = { rate =, loss = } } }
local function rows(out)
  local t = {}
  for size, subject, rate, loss in out:gmatch("\n(%d+)%s+([%w_]+)%s+(%d+)%s+([%d.]+)%%") do
    t[size] = t[size] or {}
    t[size][subject] = { rate = tonumber(rate), loss = tonumber(loss) }
  end
  return t
end

describe("bench/lsbench", function()
  it("forwards through luaswitch and the bare forwarder, a row per subject and size", function()
    -- --only luaswitch: bare and luaswitch (vde_switch's plugin cannot be loaded under a
    -- sanitizer, and is not ours to test)
    local out, rc = run(BUILD .. "/lsbench --only luaswitch --frames 3000 --runs 1")
    assert.are.equal(0, rc, out)
    local t = rows(out)
    for _, size in ipairs { "64", "1500" } do
      for _, subject in ipairs { "bare", "luaswitch" } do
        local r = t[size] and t[size][subject]
        assert.is_truthy(r, ("no row for %s at %s bytes:\n%s"):format(subject, size, out))
        assert.is_true(r.rate > 0, out)
      end
      assert.are.equal(0, t[size].luaswitch.loss, out)
    end
  end)

  it("--policy runs every policy mode of bench/switch.lua without loss", function()
    local out, rc = run(BUILD .. "/lsbench --policy --frames 3000 --runs 1")
    assert.are.equal(0, rc, out)
    local t = rows(out)
    for _, size in ipairs { "64", "1500" } do
      for _, subject in ipairs { "plain", "rules16", "trunk_access", "access_trunk", "impair0" } do
        local r = t[size] and t[size][subject]
        assert.is_truthy(r, ("no row for %s at %s bytes:\n%s"):format(subject, size, out))
        assert.is_true(r.rate > 0, out)
        assert.are.equal(0, r.loss, out)
      end
    end
  end)
end)
