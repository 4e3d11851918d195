"""The daemon's shape: --help, --check-config, refused settings (exit 2 naming the setting),
health over gRPC and HTTP, /metrics, JSON log lines."""
import json
import os
import subprocess
import unittest
import urllib.request

import grpc

import health_pb2
import health_pb2_grpc
from harness import EventsTestCase, env

OWN_SETTINGS = ["DATABASE_URL", "REDIS_URL", "SEATCORED_SHARDS", "MIGRATE", "MIGRATIONS_DIR", "ENGINE_TIMEOUT_MS",
                "CREATE_TIMEOUT_MS", "CACHE_TTL_S", "RECONCILE_INTERVAL_S", "MAX_MESSAGE_BYTES", "LISTEN",
                "METRICS_LISTEN", "WORKERS", "GRACE_MS", "LOG_LEVEL"]


def binary():
    with open(os.path.join(env("EVENT_WORK"), "cmd", "event-svc.args")) as f:
        return f.readline().strip()


def run(*args, extra_env=None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EVENT_")}
    environment.update(extra_env or {})
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=20, env=environment)


REQUIRED = ["--database-url", "postgresql://nobody@127.0.0.1:1/x", "--redis-url", "redis://127.0.0.1:1",
            "--seatcored-shards", "127.0.0.1:1,127.0.0.1:2"]


class DaemonTest(EventsTestCase):
    def test_help_lists_every_setting_with_its_environment_variable(self):
        out = run("--help")
        self.assertEqual(out.returncode, 0, out.stderr)
        for name in OWN_SETTINGS:
            self.assertIn(f"EVENT_{name}", out.stdout)

    def test_check_config(self):
        out = run("--check-config", *REQUIRED)
        self.assertEqual((out.returncode, out.stdout.strip()), (0, "event-svc: configuration ok (2 engine shard(s))"))
        out = run("--check-config", extra_env={"EVENT_DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
                                                 "EVENT_REDIS_URL": "redis://127.0.0.1:1",
                                                 "EVENT_SEATCORED_SHARDS": "127.0.0.1:1"})
        self.assertEqual(out.returncode, 0, "settings from the environment: " + out.stderr)

    def test_bad_settings_are_refused_by_name(self):
        cases = [
            (["--check-config"], "--database-url"),
            (["--check-config", *REQUIRED, "--seatcored-shards", "a:1,,b:2"], "--seatcored-shards"),
            (["--check-config", *REQUIRED, "--seatcored-shards", "nocolon"], "is not host:port"),
            (["--check-config", *REQUIRED, "--cache-ttl-s", "0"], "--cache-ttl-s"),
            (["--check-config", *REQUIRED, "--listen", "nowhere"], "--listen"),
            (["--check-config", *REQUIRED, "--no-such-flag"], "--no-such-flag"),
        ]
        for args, mentions in cases:
            with self.subTest(mentions):
                out = run(*args)
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn(mentions, out.stderr)
        out = run("--check-config", *REQUIRED, extra_env={"EVENT_WORKERS": "0"})
        self.assertEqual(out.returncode, 2)
        self.assertIn("EVENT_WORKERS", out.stderr)

    def test_unreachable_database_is_a_clear_start_failure(self):
        out = run(*REQUIRED, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
        self.assertEqual(out.returncode, 1)
        self.assertIn("PostgreSQL", out.stderr)
        self.assertNotIn("postgresql://", out.stderr, "the URL (it may carry a password) is never echoed")

    def test_health_and_http_endpoints(self):
        stub = health_pb2_grpc.HealthStub(self.channel)
        for service in ("", "tiketi.v1.Events"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            self.assertEqual(reply.status, health_pb2.HealthCheckResponse.SERVING)
        with self.assertRaises(grpc.RpcError):
            stub.Check(health_pb2.HealthCheckRequest(service="tiketi.v1.Nope"), timeout=5)
        for path in ("/healthz", "/readyz", "/metrics"):
            with urllib.request.urlopen(f"http://{env('EVENT_METRICS')}{path}", timeout=5) as reply:
                self.assertEqual(reply.status, 200, path)
                if path == "/metrics":
                    text = reply.read().decode()
                    for name in ("tiketi_event_seatmap_cache_hits_total", "tiketi_event_seatmap_cache_misses_total",
                                 "tiketi_event_created_total"):
                        self.assertIn(f"# TYPE {name} counter", text)

    def test_logs_are_json_lines(self):
        with open(os.path.join(env("EVENT_WORK"), "logs", "event-svc.log")) as f:
            lines = [line for line in f if line.strip()]
        self.assertGreater(len(lines), 0)
        for line in lines:
            record = json.loads(line)
            self.assertEqual(record["component"], "event-svc")
            self.assertIn(record["level"], ("debug", "info", "warn", "error"))


if __name__ == "__main__":
    unittest.main()
