-- reads.lua — wrk script for the GET rows: the request is wrk's own (URL and -H headers);
-- this only prints "result KEY VALUE" lines that perf/edge-bench/run reads.
-- summary.errors.status counts answers that were not 2xx/3xx (a 304 is a success here).
function done(summary, latency, requests)
    local seconds = summary.duration / 1e6
    local ok = summary.requests - summary.errors.status
    io.write(string.format("result seconds %.3f\n", seconds))
    io.write(string.format("result requests %d\n", summary.requests))
    io.write(string.format("result non_2xx %d\n", summary.errors.status))
    io.write(string.format("result socket_errors %d\n", summary.errors.connect + summary.errors.read +
        summary.errors.write + summary.errors.timeout))
    io.write(string.format("result ok_per_s %.1f\n", ok / seconds))
    io.write(string.format("result bytes_per_s %.0f\n", summary.bytes / seconds))
    for _, p in ipairs({ 50, 99 }) do
        io.write(string.format("result p%d_ms %.3f\n", p, latency:percentile(p) / 1000))
    end
end
