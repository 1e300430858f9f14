-- Entra-style PATCH: "Replace" active with the string "False", then "True", on random users
-- created through SCIM (ids read from IDS_FILE). PATCH_FORM=rfc sends RFC 7643's JSON booleans
-- (`"op":"replace"`, `false`/`true`) instead, for servers that refuse Entra's form.
local token = os.getenv("TOKEN")
-- BASE: the SCIM base path of the server under test (peers serve elsewhere than /scim/v2).
local base = os.getenv("BASE") or "/scim/v2"
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
local flip = false
local rfc = os.getenv("PATCH_FORM") == "rfc"
request = function()
  flip = not flip
  local op
  if rfc then
    op = '{"op":"replace","path":"active","value":' .. (flip and "false" or "true") .. '}'
  else
    op = '{"op":"Replace","path":"active","value":"' .. (flip and "False" or "True") .. '"}'
  end
  local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[' .. op .. ']}'
  return wrk.format("PATCH", base .. "/Users/" .. ids[math.random(1, #ids)],
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/scim+json"}, body)
end
