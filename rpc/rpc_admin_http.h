/* rpc_admin_http.h — the operations HTTP endpoint of a daemon.
 *
 * GET /metrics (Prometheus text: rpc_metrics_write), GET /healthz (200 while
 * the process runs), GET /readyz (200 while health says SERVING, else 503).
 * One thread, blocking sockets with short timeouts, one request per connection:
 * scrapes and probes are a few per second, so simplicity wins over throughput.
 * A request line or header block over 8 KiB, or slower than 2 s, is cut off. */
#ifndef RPC_ADMIN_HTTP_H
#define RPC_ADMIN_HTTP_H

#include <stdbool.h>
#include <sys/socket.h>

#include "rpc_health.h"
#include "tk_status.h"

struct rpc_admin_http;

/* listen: "127.0.0.1:9100" (port 0: any free port). health may be NULL. */
enum tk_status rpc_admin_http_start(struct rpc_admin_http **out, const char *listen, struct rpc_health *health,
                                    char *err, size_t err_len);
int rpc_admin_http_port(const struct rpc_admin_http *admin);
void rpc_admin_http_stop(struct rpc_admin_http *admin);

/* Splits "host:port" (IPv4 or [IPv6]) into a sockaddr; shared with the daemons' flag parsing. */
bool rpc_parse_host_port(const char *text, struct sockaddr_storage *addr, socklen_t *addr_len);

#endif
