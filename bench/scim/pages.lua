-- GET /scim/v2/Users?startIndex=<random>&count=100: pages anywhere in the organisation.
local users = tonumber(os.getenv("USERS") or "100000")
local token = os.getenv("TOKEN")
-- BASE: the SCIM base path of the server under test (peers serve elsewhere than /scim/v2).
local base = os.getenv("BASE") or "/scim/v2"
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  local start = math.random(1, users - 100)
  return wrk.format("GET", base .. "/Users?startIndex=" .. start .. "&count=100",
    {["Authorization"] = "Bearer " .. token})
end
