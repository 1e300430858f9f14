-- GET /scim/v2/Users?startIndex=<random>&count=100: pages anywhere in the organisation.
local users = tonumber(os.getenv("USERS") or "100000")
local token = os.getenv("TOKEN")
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  local start = math.random(1, users - 100)
  return wrk.format("GET", "/scim/v2/Users?startIndex=" .. start .. "&count=100",
    {["Authorization"] = "Bearer " .. token})
end
