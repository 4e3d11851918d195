#!/usr/bin/python3
"""scan_logs.py — no secret of the run appears in any log of the stack.

    scan_logs.py SECRETS_TSV LOG_DIR_OR_FILE...

SECRETS_TSV has one "what<TAB>value" a line: the JWT key, the admission-token key and the
database password (written by `run`), and every user password, access, refresh and admission
token and card number the tests used (appended by them). Each is searched for as it is and, for
the keys, in the encodings a careless log line could use (hex, base64, base64url). Only the
kind of secret and the file are printed, never the secret. Before the real scan the scanner
checks itself on a file it plants, so a scanner that can no longer find anything fails."""
import base64
import os
import sys
import tempfile


def forms(what, value):
    raw = value.encode()
    out = {raw}
    if "key" in what or "password" in what:
        out |= {raw.hex().encode(), raw.hex().upper().encode(), base64.b64encode(raw).rstrip(b"="),
                base64.urlsafe_b64encode(raw).rstrip(b"=")}
    return out


def files(paths):
    for path in paths:
        if os.path.isdir(path):
            for root, _, names in os.walk(path):
                for name in sorted(names):
                    yield os.path.join(root, name)
        elif os.path.isfile(path):
            yield path


def scan(secrets, paths):
    found = []
    for path in files(paths):
        with open(path, "rb") as f:
            data = f.read()
        for what, value in secrets:
            if any(form in data for form in forms(what, value)):
                found.append((what, path))
    return found


def main(secrets_file, paths):
    with open(secrets_file) as f:
        secrets = sorted({tuple(line.rstrip("\n").split("\t", 1)) for line in f if "\t" in line})
    secrets = [(what, value) for what, value in secrets if len(value) >= 8]  # too short to be one
    key = [s for s in secrets if s[0] == "jwt key"]
    with tempfile.TemporaryDirectory() as planted:
        with open(os.path.join(planted, "planted.log"), "w") as f:
            f.write(f"config: key={base64.b64encode(key[0][1].encode()).decode() if key else ''}\n")
        if scan(secrets, [planted]) != [("jwt key", os.path.join(planted, "planted.log"))]:
            print("scan_logs: the scanner does not find a planted secret")
            return 1
    kinds = sorted({what for what, _ in secrets})
    scanned = list(files(paths))
    print(f"scan_logs: {len(secrets)} secrets ({', '.join(kinds)}) in {len(scanned)} log files")
    found = scan(secrets, paths)
    for what, path in sorted(set(found)):
        print(f"scan_logs: {what} found in {path}")
    return 1 if found or not scanned else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
