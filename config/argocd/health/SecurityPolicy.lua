-- Argo CD health of a SecurityPolicy (palisade.dev/v1alpha1).
--
-- The operator checks every generation of a policy and writes status.observedGeneration and
-- the Ready condition: True (reason Valid) when that generation is in force, False (reason
-- Invalid, each problem in the message) when it cannot be. An invalid update keeps the last
-- valid generation enforced, and the message says so.
--
-- Lua 5.1 with only what Argo CD opens by default (the base and table libraries).
hs = {}

local generation = tonumber(obj.metadata.generation)
local status = obj.status

if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to check this policy"
  return hs
end

local observed = tonumber(status.observedGeneration)
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to check generation " .. tostring(generation)
    .. " (the status describes generation " .. tostring(observed) .. ")"
  return hs
end

local ready = nil
for _, condition in ipairs(status.conditions or {}) do
  if condition.type == "Ready" then
    ready = condition
  end
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to set the Ready condition"
  return hs
end

local checked = tonumber(ready.observedGeneration)
if generation ~= nil and checked ~= nil and checked < generation then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to check generation " .. tostring(generation)
    .. " (Ready describes generation " .. tostring(checked) .. ")"
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "in force"
elseif ready.status == "False" then
  hs.status = "Degraded"
  hs.message = ready.message or ("not in force (" .. tostring(ready.reason) .. ")")
else
  hs.status = "Progressing"
  hs.message = ready.message or "waiting for the operator: Ready is Unknown"
end
return hs
