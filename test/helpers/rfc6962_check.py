#!/usr/bin/env python3
"""Independent checker of a plugin delivery's RFC 6962 proof (issue 11 item 7).

Reads one delivery body (JSON) on stdin and prints {"valid": true|false, "reason": ...}. It shares
no code with the TypeScript implementation: canonical JSON, the leaf hash and the audit-path fold
are written here from RFC 8785, DESIGN section 4 and RFC 9162 section 2.1.3.2.

Checks, as src/client/verify-delivery.ts does:
  - a proof is present; proof.leaf_index == version - 1 < proof.tree_size;
  - with an event: its ids equal the body's, event.hash == proof.leaf_hash, and, unless the payload
    is null (extensions-only, where only the path can be checked), SHA-256(0x00 || JCS(record minus
    hash and merkle_root)) == event.hash;
  - the path folds from proof.leaf_hash to proof.root; with an event and tree_size == version,
    proof.root == event.merkle_root.
No trusted root is taken: this shows the delivery is consistent with itself.

Canonical JSON limitations (RFC 8785): keys are sorted by UTF-16 code units and strings escaped as
ECMAScript's JSON.stringify does; numbers go through Python's shortest round-trip repr rewritten in
ECMAScript Number::toString form, which matches for integers and ordinary finite doubles. Not
handled: lone surrogates in strings (Python cannot encode them as UTF-8; JS writes U+FFFD), and
duplicate object keys (json.loads keeps the last, as JSON.parse does, but the input is then not
what was hashed). Tests use integers and simple strings.

Exit status: 0 when valid, 1 when not, 2 when stdin is not JSON.
"""
import hashlib
import json
import re
import sys

HEX64 = re.compile(r"^[0-9a-f]{64}$")
ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def jcs_string(s):
    out = ['"']
    for ch in s:
        if ch in ESCAPES:
            out.append(ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def jcs_number(x):
    if isinstance(x, int) and abs(x) < 2**53:
        return str(x)
    x = float(x)  # JSON.parse reads every number as a double
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("canonical JSON cannot hold NaN or Infinity")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    point = len(whole) + (int(exp) if exp else 0)  # value = 0.digits * 10**point
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    k, n = len(digits), point
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        text = (digits if k == 1 else digits[0] + "." + digits[1:]) + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + text


def jcs(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return jcs_number(value)
    if isinstance(value, str):
        return jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))  # big-endian bytes sort as code units
        return "{" + ",".join(jcs_string(k) + ":" + jcs(value[k]) for k in keys) + "}"
    raise ValueError("not a JSON value")


def leaf_hash(record):
    body = {k: v for k, v in record.items() if k not in ("hash", "merkle_root")}
    return hashlib.sha256(b"\x00" + jcs(body).encode("utf-8")).hexdigest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + bytes.fromhex(left) + bytes.fromhex(right)).hexdigest()


def folds_to_root(leaf, index, size, path, root):
    """RFC 9162 section 2.1.3.2."""
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check(body):
    if not isinstance(body, dict):
        return "not a delivery body"
    proof = body.get("proof")
    if not isinstance(proof, dict):
        return "no proof"
    leaf, index, size, root, path = (proof.get(k) for k in ("leaf_hash", "leaf_index", "tree_size", "root", "path"))
    if not (isinstance(leaf, str) and HEX64.match(leaf) and isinstance(root, str) and HEX64.match(root)):
        return "malformed proof hashes"
    if not (isinstance(path, list) and all(isinstance(p, str) and HEX64.match(p) for p in path)):
        return "malformed audit path"
    if not (is_int(index) and is_int(size) and 0 <= index < size):
        return "leaf_index outside the tree"
    version = body.get("version")
    if not is_int(version) or index != version - 1:
        return "leaf_index is not version - 1"
    event = body.get("event")
    if event is not None:
        if not isinstance(event, dict) or not isinstance(event.get("metadata"), dict):
            return "malformed event"
        for key in ("aggregate_type", "aggregate_id", "version", "event_type"):
            if event.get(key) != body.get(key):
                return "event.%s differs from the body" % key
        if event["metadata"].get("event_id") != body.get("event_id"):
            return "event.metadata.event_id differs from the body"
        if event.get("hash") != leaf:
            return "event.hash differs from proof.leaf_hash"
        if event.get("payload") is not None and leaf_hash(event) != event.get("hash"):
            return "the event does not hash to event.hash"
    if not folds_to_root(leaf, index, size, path, root):
        return "the audit path does not lead to proof.root"
    if event is not None and size == version and event.get("merkle_root") != root:
        return "proof.root differs from event.merkle_root"
    return None


def main():
    try:
        body = json.loads(sys.stdin.read())
    except ValueError:
        print(json.dumps({"valid": False, "reason": "stdin is not JSON"}))
        return 2
    try:
        reason = check(body)
    except (ValueError, TypeError) as err:
        reason = "cannot check: %s" % err
    print(json.dumps({"valid": True} if reason is None else {"valid": False, "reason": reason}))
    return 0 if reason is None else 1


if __name__ == "__main__":
    sys.exit(main())
