-- wrk script: every request POSTs the next pre-signed delivery of a file, cycling, for webhooks whose
-- signature is an HMAC of the body (wrk's Lua cannot compute one). bench/lib/inbound.ts writes the file,
-- one delivery per line: the signature header's value, a TAB, the body (JSON, no newline in it).
--
--   wrk -t1 -c50 -d10s --latency -s bench/wrk-signed.lua \
--     http://127.0.0.1:<port>/webhooks/whatsapp/<inbox id> -- <deliveries file> X-Hub-Signature-256
--
-- Every request is formatted once in init() (not in the measured window): request() only picks the
-- next one. After the run, done() prints "signed deliveries: <made> requests made from <n> distinct";
-- made > n means the list wrapped and the deliveries after the n-th were repeats.
local list = {}
local threads = {}
made = 0
distinct = 0

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  local header = args[2] or "X-Hub-Signature-256"
  for line in io.lines(args[1]) do
    local tab = string.find(line, "\t", 1, true)
    if tab then
      local headers = { ["Content-Type"] = "application/json", [header] = string.sub(line, 1, tab - 1) }
      list[#list + 1] = wrk.format("POST", nil, headers, string.sub(line, tab + 1))
    end
  end
  distinct = #list
  if distinct == 0 then error("no deliveries in " .. args[1]) end
end

function request()
  made = made + 1
  return list[(made - 1) % distinct + 1]
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write(string.format("signed deliveries: %d requests made from %d distinct\n", t:get("made"), t:get("distinct")))
  end
end
