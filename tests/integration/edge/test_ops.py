"""test_ops.py — operations routes, request ids, errors the edge makes itself, the static UI,
and the daemon's own behaviour (--help, --check-config, TIKETI_HTTP_PORT, TLS, SIGTERM)."""
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import EdgeTestCase, api, env, request, start_edge, stop_edge, wait_up


class Operations(EdgeTestCase):
    def test_healthz(self):
        reply = api("GET", "/healthz")
        self.assertStatus(reply, 200)
        self.assertEqual(reply.json(), {"status": "ok"})

    def test_readyz_is_ready_when_the_dependencies_answer(self):
        deadline = time.monotonic() + 10
        while True:
            reply = api("GET", "/readyz")
            if reply.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        self.assertStatus(reply, 200)
        body = reply.json()
        self.assertEqual(body["status"], "ready")
        self.assertEqual(body["dependencies"]["redis"], "up")

    def test_readyz_is_503_with_a_dependency_down(self):
        process, address = start_edge("--auth-addr", "127.0.0.1:1")
        try:
            self.assertTrue(wait_up(address, process))
            time.sleep(1.5)  # one readiness round
            reply = request(f"http://{address}", "GET", "/readyz")
            problem = self.assertProblem(reply, 503, "not_ready")
            self.assertEqual(problem["dependencies"]["auth-svc"], "down")
        finally:
            self.assertEqual(stop_edge(process), 0)

    def test_metrics_are_prometheus_text(self):
        api("GET", "/healthz")
        reply = api("GET", "/metrics")
        self.assertStatus(reply, 200)
        self.assertTrue(reply.header("content-type").startswith("text/plain"))
        text = reply.body.decode()
        for name in ("tiketi_edge_http_requests_total{route=\"healthz\",code=\"2xx\"}",
                     "tiketi_edge_http_request_duration_seconds_bucket", "tiketi_edge_connections ",
                     "tiketi_edge_websockets ", "tiketi_edge_rate_limited_total", "tiketi_edge_dependency_up"):
            self.assertIn(name, text)
        for line in text.splitlines():
            if line and not line.startswith("#"):
                float(line.rsplit(" ", 1)[1])  # every sample has a number

    def test_openapi_is_openapi_3_1(self):
        reply = api("GET", "/openapi.json")
        self.assertStatus(reply, 200)
        doc = reply.json()
        self.assertEqual(doc["openapi"], "3.1.0")
        self.assertIn("/api/v1/events/{event_id}/holds", doc["paths"])
        self.assertIn("Problem", doc["components"]["schemas"])


class RequestIds(EdgeTestCase):
    def test_a_valid_request_id_is_echoed_everywhere(self):
        for path in ("/healthz", "/api/v1/nope", "/", "/no-such-file.js", "/api/v1/events?limit=0"):
            reply = api("GET", path, headers={"X-Request-Id": "edge-it.req-42"})
            self.assertEqual(reply.header("x-request-id"), "edge-it.req-42", reply)

    def test_an_invalid_request_id_is_replaced(self):
        reply = api("GET", "/healthz", headers={"X-Request-Id": "has spaces and / slashes"})
        self.assertRegex(reply.header("x-request-id"), r"^[0-9a-f]{32}$")
        fresh = api("GET", "/healthz")
        self.assertRegex(fresh.header("x-request-id"), r"^[0-9a-f]{32}$")
        self.assertNotEqual(fresh.header("x-request-id"), reply.header("x-request-id"))

    def test_the_request_id_reaches_the_json_access_log(self):
        api("GET", "/api/v1/events/424242424242", headers={"X-Request-Id": "edge-it-log-probe"})
        time.sleep(0.3)
        with open(os.path.join(env("EDGE_WORK"), "logs", "edge-main.log")) as f:
            lines = [json.loads(line) for line in f if "edge-it-log-probe" in line]
        access = [line for line in lines if line.get("msg") == "access"]
        self.assertEqual(len(access), 1, lines)
        self.assertEqual(access[0]["route"], "event_get")
        self.assertEqual(access[0]["status"], 404)
        self.assertEqual(access[0]["path"], "/api/v1/events/424242424242")
        for field in ("ts", "method", "duration_ms", "client_ip", "bytes"):
            self.assertIn(field, access[0])


class Errors(EdgeTestCase):
    def test_unknown_api_path_is_a_404_problem(self):
        self.assertProblem(api("GET", "/api/v1/nope"), 404, "not_found")
        self.assertProblem(api("GET", "/api/v1/events/not-a-number"), 404, "not_found")
        self.assertProblem(api("GET", "/api/v1/events/0012"), 404, "not_found", "ids are canonical")

    def test_wrong_method_is_405_with_allow(self):
        reply = api("PUT", "/api/v1/events")
        self.assertProblem(reply, 405, "method_not_allowed")
        self.assertEqual(reply.header("allow"), "GET")
        reply = api("PATCH", "/api/v1/events/1/queue")
        self.assertEqual(set(reply.header("allow").split(", ")), {"POST", "GET", "DELETE"})

    def test_malformed_json_is_a_400_problem(self):
        self.assertProblem(api("POST", "/api/v1/auth/login", raw=b"{not json"), 400, "invalid_request")
        self.assertProblem(api("POST", "/api/v1/auth/login", raw=b"[1,2]"), 400, "invalid_request")
        self.assertProblem(api("POST", "/api/v1/auth/login", raw=b'{"email":"a@b.c","email":"d@e.f"}'), 400,
                           "invalid_request", "duplicate keys are refused")
        self.assertProblem(api("POST", "/api/v1/auth/login", raw=b""), 400, "invalid_request")


class StaticUi(EdgeTestCase):
    def test_root_serves_the_ui_with_caching_headers(self):
        reply = api("GET", "/")
        self.assertStatus(reply, 200)
        self.assertTrue(reply.header("content-type").startswith("text/html"))
        self.assertEqual(reply.header("cache-control"), "no-cache")
        etag = reply.header("etag")
        if etag:  # the real UI (h2o's file handler); the placeholder has none
            self.assertStatus(api("GET", "/", headers={"If-None-Match": etag}), 304)

    def test_a_missing_file_is_a_404_problem(self):
        self.assertProblem(api("GET", "/no-such-file.js"), 404, "not_found")


class Daemon(EdgeTestCase):
    def run_edge(self, *args, extra_env=None):
        process_env = dict(os.environ)
        process_env.pop("TIKETI_HTTP_PORT", None)
        process_env.update(extra_env or {})
        return subprocess.run([env("EDGE_BIN")] + list(args), capture_output=True, text=True, timeout=10,
                              env=process_env)

    def test_help_lists_every_setting_with_its_environment_variable(self):
        result = self.run_edge("--help")
        self.assertEqual(result.returncode, 0)
        for flag, variable in (("--listen", "EDGE_LISTEN"), ("--port", "TIKETI_HTTP_PORT"),
                               ("--jwt-keys", "EDGE_JWT_KEYS"), ("--tls-cert", "EDGE_TLS_CERT"),
                               ("--rate-ip-per-s", "EDGE_RATE_IP_PER_S"), ("--ws-max", "EDGE_WS_MAX"),
                               ("--body-max-bytes", "EDGE_BODY_MAX_BYTES"), ("--redis-url", "EDGE_REDIS_URL")):
            self.assertRegex(result.stdout, f"{flag} +{variable}")

    def test_check_config(self):
        key = f"k1={env('JWT_KEY_FILE')}"
        ok = self.run_edge("--check-config", "--jwt-keys", key)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn("configuration ok", ok.stdout)
        by_env = self.run_edge("--check-config", extra_env={"EDGE_JWT_KEYS": key, "EDGE_THREADS": "4"})
        self.assertEqual(by_env.returncode, 0, by_env.stderr)
        for bad in (["--listen", "nowhere"], ["--threads", "0"], ["--redis-url", "http://x"],
                    ["--tls-cert", "/nonexistent.pem"], ["--body-max-bytes", "1"]):
            result = self.run_edge("--check-config", "--jwt-keys", key, *bad)
            self.assertEqual(result.returncode, 2, f"{bad}: {result.stdout} {result.stderr}")
            self.assertTrue(result.stderr.strip(), bad)
        missing = self.run_edge("--check-config")
        self.assertEqual(missing.returncode, 2)
        self.assertIn("jwt-keys", missing.stderr)
        short_key = self.run_edge("--check-config", "--jwt-keys", "k1=env:EDGE_IT_SHORT", extra_env={"EDGE_IT_SHORT": "x"})
        self.assertEqual(short_key.returncode, 2)

    def test_tiketi_http_port_sets_the_port(self):
        process, address = start_edge(listen=False)
        try:
            self.assertTrue(wait_up(address, process), "the edge listens on TIKETI_HTTP_PORT")
            self.assertStatus(request(f"http://{address}", "GET", "/healthz"), 200)
        finally:
            self.assertEqual(stop_edge(process), 0)

    def test_sigterm_finishes_requests_then_exits_0(self):
        process, address = start_edge()
        try:
            self.assertTrue(wait_up(address, process))
            conn = http.client.HTTPConnection(*address.rsplit(":", 1), timeout=5)
            conn.request("GET", "/healthz")
            self.assertEqual(conn.getresponse().read(), b'{"status":"ok"}')
        finally:
            started = time.monotonic()
            self.assertEqual(stop_edge(process), 0)
            self.assertLess(time.monotonic() - started, 5)

    def test_tls_with_http2_by_alpn(self):
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
                                   cert, "-days", "1", "-subj", "/CN=127.0.0.1"], capture_output=True)
            if made.returncode != 0:
                self.skipTest("skipped: openssl could not make a certificate")
            process, address = start_edge("--tls-cert", cert, "--tls-key", key)
            try:
                self.assertTrue(wait_up(address, process))
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                context.set_alpn_protocols(["h2", "http/1.1"])
                with socket.create_connection(tuple(address.rsplit(":", 1)), timeout=5) as raw:
                    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                        self.assertEqual(tls.selected_alpn_protocol(), "h2")
                context.set_alpn_protocols(["http/1.1"])
                conn = http.client.HTTPSConnection(*address.rsplit(":", 1), timeout=5, context=context)
                conn.request("GET", "/healthz")
                reply = conn.getresponse()
                self.assertEqual((reply.status, reply.read()), (200, b'{"status":"ok"}'))
                self.assertTrue(reply.getheader("x-request-id"))
            finally:
                self.assertEqual(stop_edge(process), 0)


if __name__ == "__main__":
    unittest.main()
