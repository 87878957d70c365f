-- wrk script: every request asks for the next path of a list (one path per line in the file given
-- after "--"), cycling, so that a benchmark can spread its load over many different resources:
--
--   wrk -t1 -c50 -d10s --latency -H 'Authorization: Bearer <token>' \
--     -s bench/wrk-paths.lua http://127.0.0.1:<port> -- <paths file>
local paths = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then paths[#paths + 1] = line end
  end
  if #paths == 0 then error("no paths in " .. args[1]) end
end
function request()
  i = i % #paths + 1
  return wrk.format(nil, paths[i])
end
