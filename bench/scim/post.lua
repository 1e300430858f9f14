-- POST /scim/v2/Users with a new Entra-style user each time.
local token = os.getenv("TOKEN")
-- BASE: the SCIM base path of the server under test (peers serve elsewhere than /scim/v2).
local base = os.getenv("BASE") or "/scim/v2"
local counter = 0
-- `prefix` is set per thread by setup() (a global of the thread's Lua state).

setup = function(thread)
  counter = counter + 1
  thread:set("prefix", string.format("t%d-%d", counter, os.time()))
end
local n = 0
request = function()
  n = n + 1
  local id = prefix .. "-" .. n
  local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User",' ..
    '"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],' ..
    '"externalId":"ext-' .. id .. '","userName":"' .. id .. '@post.example","active":true,' ..
    '"name":{"givenName":"Given","familyName":"Family","formatted":"Given Family"},' ..
    '"emails":[{"primary":true,"type":"work","value":"' .. id .. '@post.example"}],' ..
    '"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Bench"}}'
  return wrk.format("POST", base .. "/Users",
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/scim+json"}, body)
end
