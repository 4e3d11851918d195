#!/usr/bin/python3
"""make_seeds.py — seed inputs for fuzz_jwt and fuzz_proto_requests, made by
independent encoders (python3-jwt, python3-protobuf) rather than our own code,
so the seeds are what real peers send, not what our encoder happens to produce.

    tests/fuzz/make_seeds.py CORPUS_DIR PROTO_GEN_PY_DIR

PROTO_GEN_PY_DIR holds the Python modules grpc_tools.protoc made from proto/
(tests/fuzz/run makes them). Writes only missing files, so it is safe to rerun.
The fuzz_jwt seeds are signed with the key and times fuzz_jwt.c uses (the key
comes from that file), so one of them is accepted and the fuzzer starts from a
token that reaches every claim check; the others are the classic forgeries
(alg none, wrong key, expired, other audience), one step from acceptance."""
import hashlib
import importlib
import os
import re
import sys

import jwt

HERE = os.path.dirname(os.path.abspath(__file__))


def write(path, data):
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)


def jwt_seeds(out):
    source = open(os.path.join(HERE, "services", "fuzz_jwt.c")).read()
    key = re.search(r'setenv\("FUZZ_JWT_KEY", "([^"]+)"', source).group(1).encode()
    now = int(re.search(r"svc_jwt_verify\(&set, token, (\d+)", source).group(1))
    claims = {"iss": "tiketi", "aud": "tiketi-api", "sub": "42", "role": "user", "email": "a@b.test",
              "iat": now - 60, "nbf": now - 60, "exp": now + 600, "jti": "j1"}
    head = {"kid": "k1", "typ": "JWT"}
    os.makedirs(out, exist_ok=True)
    write(f"{out}/valid", jwt.encode(claims, key, algorithm="HS256", headers=head).encode())
    write(f"{out}/admin", jwt.encode({**claims, "role": "admin"}, key, algorithm="HS256", headers=head).encode())
    write(f"{out}/wrong-key", jwt.encode(claims, b"x" * 40, algorithm="HS256", headers=head).encode())
    write(f"{out}/expired", jwt.encode({**claims, "exp": now - 1}, key, algorithm="HS256", headers=head).encode())
    write(f"{out}/other-audience", jwt.encode({**claims, "aud": "other"}, key, algorithm="HS256",
                                              headers=head).encode())
    write(f"{out}/alg-none", jwt.encode(claims, None, algorithm="none", headers=head).encode())
    write(f"{out}/hs512", jwt.encode(claims, key, algorithm="HS512", headers=head).encode())


def sample(message, depth=0):
    """Fills every field of message with a plausible value (two levels deep)."""
    for field in message.DESCRIPTOR.fields:
        repeated = field.label == field.LABEL_REPEATED
        if field.type == field.TYPE_MESSAGE:
            if depth > 1 or field.message_type.GetOptions().map_entry:
                continue
            child = getattr(message, field.name).add() if repeated else getattr(message, field.name)
            sample(child, depth + 1)
            continue
        if field.type == field.TYPE_STRING:
            value = "7" if field.name.endswith("_id") or field.name.endswith("_ids") else f"{field.name}-text"
        elif field.type == field.TYPE_BYTES:
            value = hashlib.sha256(field.name.encode()).digest()
        elif field.type == field.TYPE_BOOL:
            value = True
        elif field.type == field.TYPE_ENUM:
            value = field.enum_type.values[-1].number
        elif field.type in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
            value = 1.5
        else:
            value = 7
        if repeated:
            getattr(message, field.name).extend([value, value])
        else:
            setattr(message, field.name, value)


def proto_seeds(out, gen):
    sys.path.insert(0, gen)
    source = open(os.path.join(HERE, "rpc", "fuzz_proto_requests.c")).read()
    table = source[source.index("requests[] = {"):source.index("};", source.index("requests[] = {"))]
    names = re.findall(r"tiketi__v1__(\w+?)__descriptor", table)
    modules = [importlib.import_module(f"tiketi.v1.{m}_pb2")
               for m in ("auth", "event", "payment", "queue", "reservation", "seatcore")]
    os.makedirs(out, exist_ok=True)
    for index, snake in enumerate(names):
        camel = "".join(part.capitalize() for part in snake.split("_"))
        cls = next(getattr(m, camel) for m in modules if hasattr(m, camel))
        message = cls()
        sample(message)
        write(f"{out}/{snake}", bytes([index]) + message.SerializeToString())
        write(f"{out}/{snake}-empty", bytes([index]))


if __name__ == "__main__":
    corpus, gen = sys.argv[1], sys.argv[2]
    jwt_seeds(os.path.join(corpus, "fuzz_jwt"))
    proto_seeds(os.path.join(corpus, "fuzz_proto_requests"), gen)
