-- Entra-style PATCH: "Replace" active with the string "False", then "True", on random users
-- created through SCIM (ids read from IDS_FILE).
local token = os.getenv("TOKEN")
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
local flip = false
request = function()
  flip = not flip
  local value = flip and "False" or "True"
  local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
    '"Operations":[{"op":"Replace","path":"active","value":"' .. value .. '"}]}'
  return wrk.format("PATCH", "/scim/v2/Users/" .. ids[math.random(1, #ids)],
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/scim+json"}, body)
end
