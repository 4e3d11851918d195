"""harness.py — shared helpers of the auth-svc integration suite.

An independent client: Debian's python3-grpcio with stubs generated from proto/ by
grpc_tools.protoc (the `run` script puts them on PYTHONPATH), PyJWT (python3-jwt) to
check tokens, psql to look at the database. Nothing here links the project's C code.

Environment (set by `run`):
  AUTH_IT_ADDR, AUTH_IT_METRICS   gRPC and HTTP addresses of the daemon under test
  AUTH_IT_BIN                     the auth-svc binary (the restart tests start new ones)
  AUTH_IT_WORK                    the suite's temp dir: daemon.args, daemon.pid(s), logs/, secrets.txt
  AUTH_IT_PG_DIR, AUTH_IT_PG_URL  the throwaway PostgreSQL
  AUTH_IT_KEY1                    the file of JWT key "k1"; key "k2" is $AUTH_IT_KEY2
  AUTH_IT_ADMIN_EMAIL             the admin the daemon made; its password is $AUTH_ADMIN_PASSWORD
"""
import base64
import hashlib
import hmac
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import grpc

import health_pb2
import health_pb2_grpc
from tiketi.v1 import auth_pb2 as pb
from tiketi.v1 import auth_pb2_grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
import tk_harness  # noqa: E402  (tests/support, on the path just above)

try:
    import jwt as pyjwt  # PyJWT, Debian python3-jwt
except ImportError:  # pragma: no cover - the run script says so
    pyjwt = None

RPC_TIMEOUT_S = 8.0
ISSUER, AUDIENCE = "tiketi-auth", "tiketi"
_unique = itertools.count(1)
_run_tag = secrets.token_hex(3)


env = tk_harness.env_reader("tests/integration/auth/run")


def unique_email(tag="user"):
    return f"{tag}-{_run_tag}-{next(_unique)}@example.com"


def unique_ip():
    n = next(_unique)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def remember_secret(secret):
    """Lists a password or token the daemon must never log (checked by `run`)."""
    with open(os.path.join(env("AUTH_IT_WORK"), "secrets.txt"), "a") as f:
        f.write(secret + "\n")


def new_password():
    password = "pw-" + secrets.token_urlsafe(12)
    remember_secret(password)
    return password


# ---------------------------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------------------------
class Client:
    def __init__(self, address=None):
        # Short reconnect backoff: a daemon being (re)started is found within 0.1 s, not gRPC's 1-2 s.
        options = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 500), ("grpc.use_local_subchannel_pool", 1)]
        self.channel = grpc.insecure_channel(address or env("AUTH_IT_ADDR"), options=options)
        self.stub = auth_pb2_grpc.AuthStub(self.channel)

    def call(self, method, request, timeout=RPC_TIMEOUT_S):
        return tk_harness.rpc(getattr(self.stub, method), request, timeout)

    def signup(self, email, password, name="Test User"):
        return self.call("SignUp", pb.SignUpRequest(email=email, password=password, name=name))

    def login(self, email, password, client_ip=""):
        result = self.call("Login", pb.LoginRequest(email=email, password=password, client_ip=client_ip))
        if result.ok:
            remember_secret(result.reply.refresh_token)
        return result

    def refresh(self, token):
        result = self.call("Refresh", pb.RefreshRequest(refresh_token=token))
        if result.ok:
            remember_secret(result.reply.refresh_token)
        return result

    def logout(self, refresh_token="", user_id=""):
        return self.call("Logout", pb.LogoutRequest(refresh_token=refresh_token, user_id=user_id))

    def me(self, user_id="", access_token=""):
        return self.call("Me", pb.MeRequest(user_id=user_id, access_token=access_token))

    def health(self, timeout=1.0):
        stub = health_pb2_grpc.HealthStub(self.channel)
        return stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout).status

    def close(self):
        self.channel.close()


def http_get(path):
    """(status, body) of GET http://<metrics address><path>."""
    url = f"http://{env('AUTH_IT_METRICS')}{path}"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


# ---------------------------------------------------------------------------------------------
# Tokens, checked without the daemon's code
# ---------------------------------------------------------------------------------------------
def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_bytes(kid):
    if kid == "k1":
        with open(env("AUTH_IT_KEY1"), "rb") as f:
            return f.read()
    if kid == "k2":
        return env("AUTH_IT_KEY2").encode()
    raise KeyError(kid)


def token_header(token):
    return json.loads(b64url_decode(token.split(".")[0]))


def decode_access_token(token):
    """Verifies an access token with the key its kid names; returns the claims."""
    kid = token_header(token)["kid"]
    key = key_bytes(kid)
    if pyjwt is not None:
        return pyjwt.decode(token, key, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "jti"]})
    head, payload, sig = token.split(".")
    expected = hmac.new(key, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, b64url_decode(sig)):
        raise ValueError("bad signature")
    claims = json.loads(b64url_decode(payload))
    if claims["iss"] != ISSUER or claims["aud"] != AUDIENCE or claims["exp"] <= time.time():
        raise ValueError("bad claims")
    return claims


def forge_token(header, claims, key):
    """A JWT built by hand: key None leaves the signature empty."""
    head = b64url(json.dumps(header, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}"
    if key is None:
        return signing_input + "."
    return signing_input + "." + b64url(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def refresh_token_hash(token):
    return hashlib.sha256(b64url_decode(token)).hexdigest()


# ---------------------------------------------------------------------------------------------
# The database (psql as the postgres superuser over TCP)
# ---------------------------------------------------------------------------------------------
def sql(statement):
    out = subprocess.run(["psql", env("AUTH_IT_PG_URL"), "-v", "ON_ERROR_STOP=1", "-tAc", statement],
                         capture_output=True, text=True, timeout=20)
    if out.returncode != 0:
        raise RuntimeError(f"psql: {out.stderr.strip()}")
    return out.stdout.strip()


def postgres_pids():
    with open(os.path.join(env("AUTH_IT_PG_DIR"), "data", "postmaster.pid")) as f:
        postmaster = int(f.readline())
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    return [postmaster] + [int(pid) for pid in children]


def signal_postgres(sig):
    for pid in postgres_pids():
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------------------------------------
# The daemon: stop the current one, start another with the same (or changed) arguments
# ---------------------------------------------------------------------------------------------
def daemon_pid():
    with open(os.path.join(env("AUTH_IT_WORK"), "daemon.pid")) as f:
        return int(f.read())


def daemon_log():
    with open(os.path.join(env("AUTH_IT_WORK"), "daemon.log")) as f:
        return f.read().strip()


def stop_daemon(timeout_s=10.0):
    """SIGTERM; returns (stopped in time, log ends with the clean-exit line)."""
    pid, log = daemon_pid(), daemon_log()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while tk_harness.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        os.waitpid(pid, os.WNOHANG)  # ours if an earlier restart started it
    except ChildProcessError:
        pass
    with open(log) as f:
        lines = f.read().strip().splitlines()
    return not tk_harness.pid_alive(pid), bool(lines) and '"msg":"stopped"' in lines[-1]


def daemon_args(overrides=None):
    """The current daemon's arguments with --name value pairs replaced or added."""
    with open(os.path.join(env("AUTH_IT_WORK"), "daemon.args")) as f:
        args = f.read().splitlines()
    for name, value in (overrides or {}).items():
        if name in args:
            args[args.index(name) + 1] = value
        else:
            args += [name, value]
    return args


def start_daemon(args, wait_s=30.0):
    """Starts auth-svc with args (same ports as before); returns the Popen once SERVING."""
    work = env("AUTH_IT_WORK")
    count = len([n for n in os.listdir(os.path.join(work, "logs")) if n.startswith("auth-")])
    log_path = os.path.join(work, "logs", f"auth-{count + 1}.log")
    process = tk_harness.spawn([env("AUTH_IT_BIN")] + args, log_path, work, start_new_session=True)
    for name, value in (("daemon.pid", str(process.pid)), ("daemon.log", log_path)):
        with open(os.path.join(work, name), "w") as f:
            f.write(value)
    with open(os.path.join(work, "daemon.args"), "w") as f:
        f.write("\n".join(args) + "\n")
    if tk_harness.wait_serving(env("AUTH_IT_ADDR"), lambda: process.poll() is None, wait_s):
        return process
    raise AssertionError(f"auth-svc did not become SERVING (exit {process.poll()}); log {log_path}")


def read_log():
    with open(daemon_log()) as f:
        return f.read()
