-- wrk script for a request with a method and a body (wrk alone only sends GETs without a body).
-- bench/lib/load.ts runs it when a benchmark gives a method or a body:
--
--   wrk -t1 -c50 -d10s --latency -H 'Content-Type: application/json' -H 'Authorization: Bearer <token>' \
--     -s bench/wrk-post.lua http://127.0.0.1:<port>/api/v1/channels/<id>/messages -- POST '{"body":"..."}'
--
-- The arguments after "--" are the method and the body. wrk builds the request once per thread after
-- init(), so every request carries the same bytes, as in a plain GET run: no per-request Lua.
function init(args)
  wrk.method = args[1] or "POST"
  if args[2] ~= nil and args[2] ~= "" then
    wrk.body = args[2]
  end
end
