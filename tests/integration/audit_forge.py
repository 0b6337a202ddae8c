#!/usr/bin/env python3
"""Audit logs made and tampered with outside the C code.

An independent implementation of docs/AUDIT.md (hash chain, HMAC, record
layout) used by tests/integration/audit_verify.sh: logs written here must
pass `primusctl audit verify`, and every way of tampering with a log (here
or with a log written by the provider) must be caught.  It shares no code
with p11core, so the two cross-check each other's reading of the spec.

  audit_forge.py gen OUT [--key KEYFILE] [--streams N] [--records N]
                 [--open N] [--seed N] [--fork]
      a log of N interleaved streams (processes); --open leaves the last N
      streams without stream-end; --fork makes the last stream a forked
      child of the first.  Prints nothing.
  audit_forge.py expect LOG
      what an intact log's summary must say (JSON: records, streams,
      events, results, keys), computed independently of primusctl
  audit_forge.py where LOG LINE
      "STREAM SEQ" of a line
  audit_forge.py find LOG STREAM_INDEX SEQ
      the line number of record SEQ of the N-th stream (1-based, in order
      of first appearance)
  audit_forge.py pick LOG MIN
      the index (as for find) of the first ended stream with at least MIN
      records
  audit_forge.py tamper IN OUT OP ARGS...  (lines are 1-based)
      edit LINE MEMBER JSON        replace one member's value in place
      rechain LINE MEMBER JSON [KEYFILE]
                                   edit, then recompute the prev of every
                                   later record of that stream (the attack a
                                   keyless chain cannot see); the stale macs
                                   stay (with KEYFILE: recomputed with that
                                   key, i.e. a forger who has a key)
      delete LINE                  remove a line
      duplicate LINE AT            insert a copy of LINE before line AT
      insert-after LINE [KEYFILE]  forge the next record of LINE's stream
                                   (right seq and prev; a mac with KEYFILE,
                                   else none) and put it after LINE; later
                                   records keep their seq
      swap LINE1 LINE2             exchange two lines
      truncate-lines N             keep the first N lines
      truncate-bytes N             drop the last N bytes (cut mid-line)
      strip-mac LINE               remove LINE's mac member
      drop-newline                 remove the final newline only
"""
import hashlib
import hmac
import json
import os
import random
import sys

ZERO = "0" * 64
MAC_TAIL = ',"mac":"'


def dumps(obj):
    # Compact, members in insertion order, UTF-8 (as jansson's JSON_COMPACT).
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def read_key(path):
    with open(path, "rb") as f:
        key = f.read()
    # The key is the file's bytes exactly (docs/AUDIT.md).
    return key


def line_hash(line):
    return hashlib.sha256(line).hexdigest()


def add_mac(body, key):
    """body: bytes of the line without mac, ending with '}'."""
    mac = hmac.new(key, body, hashlib.sha256).hexdigest()
    return body[:-1] + (MAC_TAIL + mac + '"}').encode()


def split_mac(line):
    """(body, mac) when line ends with a well-formed mac member, else (line, None)."""
    tail = len(MAC_TAIL) + 64 + 2
    if len(line) > tail and line[-tail:-tail + len(MAC_TAIL)] == MAC_TAIL.encode() \
            and line.endswith(b'"}'):
        mac = line[-tail + len(MAC_TAIL):-2].decode()
        if all(c in "0123456789abcdef" for c in mac):
            return line[:-tail] + b"}", mac
    return line, None


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    return data


def split_lines(data):
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def write_lines(path, lines, final_newline=True):
    with open(path, "wb") as f:
        f.write(b"\n".join(lines) + (b"\n" if final_newline and lines else b""))


# ---- gen -----------------------------------------------------------------

class Stream:
    def __init__(self, rnd, pid, process, uid, key, clock, parent=None):
        self.id = "%032x" % rnd.getrandbits(128)
        self.seq = 0
        self.prev = ZERO
        self.pid, self.process, self.uid = pid, process, uid
        self.key = key
        self.clock = clock
        self.parent = parent

    def record(self, event, **fields):
        self.seq += 1
        self.clock[0] += 137
        us = self.clock[0]
        t = "2026-11-24T%02d:%02d:%02d.%06dZ" % (
            1 + us // 3600000000, us // 60000000 % 60, us // 1000000 % 60, us % 1000000)
        rec = {"v": 1, "stream": self.id, "seq": self.seq, "time": t, "pid": self.pid,
               "process": self.process, "uid": self.uid, "event": event}
        order = ["partition", "member", "key", "key_id", "mechanism", "result", "latency_us",
                 "detail", "parent", "lost", "records"]
        for name in order:
            if name in fields:
                rec[name] = fields[name]
        rec["prev"] = self.prev
        line = dumps(rec).encode()
        if self.key is not None:
            line = add_mac(line, self.key)
        self.prev = line_hash(line)
        return line


KEYS = [
    ("pkcs11:token=PART1;object=tls-ec;type=private", "b2", "CKM_ECDSA"),
    ("pkcs11:token=PART1;object=tls-rsa;type=private", "a1", "CKM_RSA_PKCS_PSS"),
    ("pkcs11:token=PART2;object=sig%20%22q%22;type=private", "c3", "CKM_EDDSA"),
]
RESULTS = ["CKR_OK"] * 8 + ["CKR_DEVICE_ERROR", "CKR_KEY_FUNCTION_NOT_PERMITTED"]


def gen(args):
    out = args[0]
    opts = {"--key": None, "--streams": "4", "--records": "40", "--open": "0", "--seed": "1"}
    fork = False
    i = 1
    while i < len(args):
        if args[i] == "--fork":
            fork = True
            i += 1
            continue
        opts[args[i]] = args[i + 1]
        i += 2
    rnd = random.Random(int(opts["--seed"]))
    key = read_key(opts["--key"]) if opts["--key"] else None
    nstreams, nrecords, nopen = int(opts["--streams"]), int(opts["--records"]), int(opts["--open"])
    clock = [0]
    names = ["nginx", "nginx", "httpd", "openssl", "wörker \"q\"", "primusctl"]
    streams = []
    for n in range(nstreams):
        parent = None
        if fork and n == nstreams - 1 and n > 0:
            parent = streams[0]
        streams.append(Stream(rnd, 4000 + n, names[n % len(names)], 33 if n % 2 else 0, key,
                              clock, parent))
    # Each stream's records, then a random interleaving in file order.
    pending = []
    for n, s in enumerate(streams):
        recs = []
        if s.parent is not None:
            recs.append(("stream-start", {"detail": "forked from stream " + s.parent.id,
                                          "parent": {"stream": s.parent.id, "seq": 3}}))
        else:
            recs.append(("stream-start", {}))
        recs.append(("config-load", {"detail": "openssl.cnf, primus-audit-policy fail-closed"}))
        recs.append(("login", {"partition": "PART1", "member": "slot 0 serial 1a2b",
                               "result": "CKR_OK", "latency_us": 812}))
        for r in range(nrecords):
            uri, kid, mech = KEYS[rnd.randrange(len(KEYS))]
            event = rnd.choice(["sign", "sign", "sign", "decrypt", "derive", "verify"])
            fields = {"partition": "PART1", "member": "slot 0 serial 1a2b", "key": uri,
                      "key_id": kid, "mechanism": mech, "result": rnd.choice(RESULTS),
                      "latency_us": rnd.randrange(100, 5000)}
            if r == 5:
                # Text that looks like the members the verifier cuts on.
                fields["detail"] = 'odd text: ,"mac":"' + "0" * 64 + '"} {"seq":1}'
            recs.append((event, fields))
            if r == 7 and n == 0:
                recs.append(("failover", {"partition": "PART1", "detail": "from m1 to m2"}))
                recs.append(("records-lost", {"lost": 3, "detail": "disk full"}))
        if n < nstreams - nopen:
            recs.append(("stream-end", {"records": len(recs) + 1}))
        pending.append(recs)
    lines = []
    cursors = [0] * nstreams
    # The forked child starts after its parent's third record.
    while any(cursors[n] < len(pending[n]) for n in range(nstreams)):
        live = [n for n in range(nstreams) if cursors[n] < len(pending[n])
                and not (streams[n].parent is not None and cursors[0] < 3)]
        n = rnd.choice(live)
        event, fields = pending[n][cursors[n]]
        cursors[n] += 1
        lines.append(streams[n].record(event, **fields))
    write_lines(out, lines)


# ---- expect / where / find -----------------------------------------------

def expect(args):
    lines = split_lines(read_lines(args[0]))
    events, results, keys, streams = {}, {}, {}, []
    first = last = None
    with_mac = 0
    for line in lines:
        rec = json.loads(line)
        events[rec["event"]] = events.get(rec["event"], 0) + 1
        if "result" in rec:
            results[rec["result"]] = results.get(rec["result"], 0) + 1
        if "key" in rec:
            by = keys.setdefault(rec["key"], {})
            res = rec.get("result", "(no result)")
            by[res] = by.get(res, 0) + 1
        if rec["stream"] not in streams:
            streams.append(rec["stream"])
        t = rec.get("time")
        if t:
            first = t if first is None or t < first else first
            last = t if last is None or t > last else last
        if "mac" in rec:
            with_mac += 1
    print(json.dumps({"records": len(lines), "streams": len(streams), "events": events,
                      "results": results, "keys": keys, "first_time": first,
                      "last_time": last, "records_with_mac": with_mac,
                      "stream_ids": streams}))


def where(args):
    lines = split_lines(read_lines(args[0]))
    rec = json.loads(lines[int(args[1]) - 1])
    print(rec["stream"], rec["seq"])


def find(args):
    lines = split_lines(read_lines(args[0]))
    order = []
    want_stream, want_seq = int(args[1]), int(args[2])
    for n, line in enumerate(lines, 1):
        rec = json.loads(line)
        if rec["stream"] not in order:
            order.append(rec["stream"])
        if order.index(rec["stream"]) + 1 == want_stream and rec["seq"] == want_seq:
            print(n)
            return
    sys.exit("no such record")


def pick(args):
    lines = split_lines(read_lines(args[0]))
    order, counts, ended = [], {}, set()
    for line in lines:
        rec = json.loads(line)
        if rec["stream"] not in counts:
            order.append(rec["stream"])
        counts[rec["stream"]] = counts.get(rec["stream"], 0) + 1
        if rec["event"] == "stream-end":
            ended.add(rec["stream"])
    for n, stream in enumerate(order, 1):
        if counts[stream] >= int(args[1]) and stream in ended:
            print(n)
            return
    sys.exit("no stream with %s records" % args[1])


# ---- tamper --------------------------------------------------------------

def replace_member(line, member, value_json):
    """The line with one member's value replaced, every other byte kept."""
    text = line.decode()
    tag = '"%s":' % member
    dec = json.JSONDecoder()
    pos = 1
    # Walk the top-level members so that text inside strings never matches.
    while True:
        while text[pos] in " ,":
            pos += 1
        name, end = dec.raw_decode(text, pos)
        colon = end + 1
        value, vend = dec.raw_decode(text, colon)
        if name == member:
            return (text[:colon] + value_json + text[vend:]).encode()
        pos = vend
        if text[pos] == "}":
            raise SystemExit("no member %s in line" % tag)


def rechain(lines, start, key):
    """Recompute prev (and mac, with key) of the records after line index
    start in its stream, as a forger would after editing it."""
    stream = json.loads(lines[start])["stream"]
    prev = line_hash(lines[start])
    for i in range(start + 1, len(lines)):
        rec = json.loads(lines[i])
        if rec["stream"] != stream:
            continue
        body, mac = split_mac(lines[i])
        body = replace_member(body, "prev", json.dumps(prev))
        lines[i] = add_mac(body, key) if key is not None else (
            body[:-1] + (MAC_TAIL + mac + '"}').encode() if mac else body)
        prev = line_hash(lines[i])


def tamper(args):
    src, dst, op, rest = args[0], args[1], args[2], args[3:]
    data = read_lines(src)
    lines = split_lines(data)
    final_newline = True
    if op == "edit":
        i = int(rest[0]) - 1
        lines[i] = replace_member(lines[i], rest[1], rest[2])
    elif op == "rechain":
        i = int(rest[0]) - 1
        key = read_key(rest[3]) if len(rest) > 3 else None
        body, mac = split_mac(lines[i])
        body = replace_member(body, rest[1], rest[2])
        if key is not None:
            lines[i] = add_mac(body, key)
        elif mac:
            lines[i] = body[:-1] + (MAC_TAIL + mac + '"}').encode()
        else:
            lines[i] = body
        rechain(lines, i, key)
    elif op == "delete":
        del lines[int(rest[0]) - 1]
    elif op == "duplicate":
        lines.insert(int(rest[1]) - 1, lines[int(rest[0]) - 1])
    elif op == "insert-after":
        i = int(rest[0]) - 1
        key = read_key(rest[1]) if len(rest) > 1 else None
        rec = json.loads(lines[i])
        rec.pop("mac", None)
        rec["seq"] += 1
        rec["event"] = "sign"
        rec["result"] = "CKR_OK"
        rec.pop("records", None)
        rec.pop("prev")
        rec["prev"] = line_hash(lines[i])
        line = dumps(rec).encode()
        if key is not None:
            line = add_mac(line, key)
        lines.insert(i + 1, line)
    elif op == "swap":
        a, b = int(rest[0]) - 1, int(rest[1]) - 1
        lines[a], lines[b] = lines[b], lines[a]
    elif op == "truncate-lines":
        lines = lines[:int(rest[0])]
    elif op == "truncate-bytes":
        with open(dst, "wb") as f:
            f.write(data[:len(data) - int(rest[0])])
        return
    elif op == "strip-mac":
        i = int(rest[0]) - 1
        body, mac = split_mac(lines[i])
        if mac is None:
            raise SystemExit("line has no mac")
        lines[i] = body
    elif op == "drop-newline":
        final_newline = False
    else:
        raise SystemExit("unknown tamper operation " + op)
    write_lines(dst, lines, final_newline)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    {"gen": gen, "expect": expect, "where": where, "find": find, "pick": pick,
     "tamper": tamper}[cmd](args)


if __name__ == "__main__":
    main()
