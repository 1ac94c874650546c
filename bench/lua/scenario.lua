-- One wrk script for every scenario of bench/run.sh, chosen by BENCH_SCENARIO. The seeded data
-- (token, clinic ids, a sample of patients with their ETags) comes from the Lua table file
-- BENCH_DATA that bench/prepare.py wrote. Every scenario, the baseline's too, builds its request
-- in request(), so both sides pay the same client cost.
local D = dofile(os.getenv("BENCH_DATA"))
local scenario = os.getenv("BENCH_SCENARIO")
local nonce = tonumber(os.getenv("BENCH_NONCE") or "1")

local auth = { ["Authorization"] = "Bearer " .. D.token }
local json = { ["Authorization"] = auth.Authorization, ["Content-Type"] = "application/json" }
local n_sample = #D.ids
local counter = 0

local function pick() return math.random(n_sample) end

-- A number as syllables ("kobamiru"): distinct numbers give distinct names.
local C, V = "bdfgklmnprstvz", "aeiou"
local function syllables(n)
  local s = ""
  repeat
    local d = n % 70
    local c, v = math.floor(d / 5) + 1, d % 5 + 1
    s = s .. C:sub(c, c) .. V:sub(v, v)
    n = math.floor(n / 70)
  until n == 0
  return s
end
local function cap(s) return s:sub(1, 1):upper() .. s:sub(2) end

local function get_patient()
  return wrk.format("GET", "/v1/patients/" .. D.ids[pick()], auth)
end

local function create_patient()
  counter = counter + 1
  local body = string.format(
    '{"clinic_id":"%s","given_name":"%s","family_name":"%s","date_of_birth":"19%02d-%02d-%02d",'
      .. '"sex":"%s","phone":"+4367%09d"}',
    D.big, cap(syllables(counter)), cap(syllables(nonce) .. syllables(counter)),
    counter % 100, counter % 12 + 1, counter % 28 + 1,
    counter % 2 == 0 and "female" or "male", counter)
  return wrk.format("POST", "/v1/patients", json, body)
end

local function issue_ticket()
  local body = string.format('{"patient_id":"%s"}', D.ids[pick()])
  return wrk.format("POST", "/v1/clinics/" .. D.big .. "/queue/tickets", json, body)
end

local function call_next()
  return wrk.format("POST", "/v1/clinics/" .. D.big .. "/queue/call-next", json, '{"counter":"1"}')
end

local builders = {
  baseline_get = get_patient,
  baseline_post = create_patient,
  get_patient = get_patient,
  get_patient_304 = function()
    local i = math.random(#D.etags)
    local h = { ["Authorization"] = auth.Authorization, ["If-None-Match"] = D.etags[i] }
    return wrk.format("GET", "/v1/patients/" .. D.ids[i], h)
  end,
  search_name = function()
    return wrk.format("GET", "/v1/patients?q=" .. D.prefixes[pick()], auth)
  end,
  -- Many clients typing one common given name at once ("ro", "rob", "robe"; about one patient
  -- in forty has a given name starting "Ro"), 20 per page as a typing search asks.
  search_common = function()
    local typed = { "ro", "rob", "robe" }
    return wrk.format("GET", "/v1/patients?limit=20&q=" .. typed[math.random(3)], auth)
  end,
  search_mrn = function()
    return wrk.format("GET", "/v1/patients?mrn=" .. D.mrns[pick()], auth)
  end,
  search_dob = function()
    return wrk.format("GET", "/v1/patients?date_of_birth=" .. D.dobs[pick()], auth)
  end,
  list_page = function()
    return wrk.format("GET", "/v1/patients?limit=50", auth)
  end,
  create_patient = create_patient,
  issue_ticket = issue_ticket,
  call_next = call_next,
  queue_304 = function()
    local h = { ["Authorization"] = auth.Authorization, ["If-None-Match"] = D.queue_etag }
    return wrk.format("GET", "/v1/clinics/" .. D.small .. "/queue", h)
  end,
  -- A front desk's day: mostly reads, then creates, tickets issued and called.
  mixed = function()
    local r = math.random(100)
    if r <= 55 then return get_patient()
    elseif r <= 75 then return create_patient()
    elseif r <= 90 then return issue_ticket()
    else return call_next() end
  end,
}

local build = builders[scenario]
if build == nil then error("unknown BENCH_SCENARIO " .. tostring(scenario)) end

function init(args)
  math.randomseed(nonce)
end

function request()
  return build()
end

-- Status counts, only when asked (BENCH_STATUSES=1): wrk then hands every response to Lua.
if os.getenv("BENCH_STATUSES") == "1" then
  local threads = {}
  statuses = {}
  function setup(thread) table.insert(threads, thread) end
  function response(status) statuses[status] = (statuses[status] or 0) + 1 end
  function done()
    local total = {}
    for _, t in ipairs(threads) do
      for code, n in pairs(t:get("statuses")) do total[code] = (total[code] or 0) + n end
    end
    local parts = {}
    for code, n in pairs(total) do table.insert(parts, code .. "=" .. n) end
    table.sort(parts)
    io.write("Statuses: " .. table.concat(parts, " ") .. "\n")
  end
end
