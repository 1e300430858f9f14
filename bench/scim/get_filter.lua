-- GET /scim/v2/Users?filter=userName eq "<random seeded user>" (in upper case half the time:
-- userName compares case-insensitively).
local users = tonumber(os.getenv("USERS") or "100000")
local token = os.getenv("TOKEN")
-- BASE: the SCIM base path of the server under test (peers serve elsewhere than /scim/v2).
local base = os.getenv("BASE") or "/scim/v2"
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  local name = string.format("user%07d@bench.example", math.random(1, users))
  if math.random() < 0.5 then name = name:upper() end
  local path = base .. "/Users?filter=userName+eq+%22" .. name:gsub("@", "%%40") .. "%22"
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
