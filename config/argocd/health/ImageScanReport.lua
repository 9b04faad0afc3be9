-- Argo CD health of an ImageScanReport (palisade.dev/v1alpha1).
--
-- The operator scans the image digest and writes status.phase: Pending (queued), Scanned
-- (summary and findings current) or Failed (message says why; retried with backoff). A
-- report that lists vulnerabilities is Healthy: findings are data, and ScanPolicies decide
-- what they mean for admission. The message carries the counts by severity.
--
-- Lua 5.1 with only what Argo CD opens by default (the base and table libraries).
hs = {}

local status = obj.status
local image = obj.metadata.name
if obj.spec ~= nil and obj.spec.image ~= nil then
  image = obj.spec.image
end

local function count(summary, severity)
  if summary == nil then
    return 0
  end
  return tonumber(summary[severity]) or 0
end

local function counts(s)
  local summary = s.summary
  local total = count(summary, "critical") + count(summary, "high") + count(summary, "medium")
    + count(summary, "low") + count(summary, "unknown")
  local packages = ""
  if s.packages ~= nil then
    packages = " in " .. tostring(s.packages) .. " packages"
  end
  if total == 0 then
    return "no known vulnerabilities" .. packages
  end
  local noun = " vulnerabilities"
  if total == 1 then
    noun = " vulnerability"
  end
  local text = tostring(total) .. noun .. packages
    .. " (Critical " .. tostring(count(summary, "critical"))
    .. ", High " .. tostring(count(summary, "high"))
    .. ", Medium " .. tostring(count(summary, "medium"))
    .. ", Low " .. tostring(count(summary, "low"))
    .. ", Unknown " .. tostring(count(summary, "unknown"))
  if s.fixable ~= nil then
    local fixable = count(s.fixable, "critical") + count(s.fixable, "high")
      + count(s.fixable, "medium") + count(s.fixable, "low") + count(s.fixable, "unknown")
    text = text .. "; " .. tostring(fixable) .. " fixable"
  end
  return text .. ")"
end

if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to scan " .. image
elseif status.phase == "Pending" then
  hs.status = "Progressing"
  hs.message = status.message or ("queued for a scan: " .. image)
elseif status.phase == "Scanned" then
  hs.status = "Healthy"
  if status.summary ~= nil then
    hs.message = counts(status)
  else
    hs.message = status.message or "scanned"
  end
  -- Zero findings from a scan that could not see everything are not a clean bill: say so.
  if status.coverage == "None" or status.coverage == "Partial" then
    local why = {}
    if status.gaps ~= nil then
      for _, gap in ipairs(status.gaps) do
        table.insert(why, gap.message or gap.reason or "")
      end
    end
    local prefix = "not judged"
    if status.coverage == "Partial" then
      prefix = "partly judged"
    end
    if #why > 0 then
      prefix = prefix .. " (" .. table.concat(why, "; ") .. ")"
    end
    hs.message = prefix .. ": " .. hs.message
  end
elseif status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = "scan failed: " .. (status.message or "no reason given")
  local failures = tonumber(status.failures)
  if failures ~= nil and failures > 1 then
    hs.message = hs.message .. " (" .. tostring(failures) .. " failures in a row; retried with backoff)"
  end
else
  hs.status = "Unknown"
  hs.message = "phase " .. tostring(status.phase) .. " is not known to this health check"
end
return hs
