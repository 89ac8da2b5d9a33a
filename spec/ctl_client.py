#!/usr/bin/env python3
"""spec/ctl_client.py — raw clients of the luaswitch control socket, for the specs.

usage: ctl_client.py PATH MODE [ARGS...]

  send LINE...       send each line, print each reply line (as received)
  binary             send bytes that are not text (NUL, 0xff, a Lua bytecode header), print
                     the reply line
  long BYTES         send BYTES bytes without a newline; print the reply line, then
                     "closed" once the server has closed the connection
  shut LINE...       send the lines, then shut down the sending side; print every reply
                     line until the server closes
  half               send half a request (no newline) and disconnect at once
  midway             send a slow request and disconnect before its reply
  many N M           N connections at once, each sending M requests in turn (arithmetic
                     answers checked, FDB dumps and stats() parsed); print "ok TOTAL" or
                     the first problem
Exits 0 unless the socket misbehaved (no reply, malformed JSON, wrong answer).
"""
import json
import socket
import sys
import threading


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(path)
    return s


def read_line(s, buf):
    while b"\n" not in buf[0]:
        chunk = s.recv(65536)
        if not chunk:
            return None
        buf[0] += chunk
    line, _, rest = buf[0].partition(b"\n")
    buf[0] = rest
    return line


def request(s, buf, line):
    s.sendall(line + b"\n")
    reply = read_line(s, buf)
    if reply is None:
        raise RuntimeError("connection closed before a reply to %r" % line[:60])
    return json.loads(reply.decode("utf-8"))


def main():
    path, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if mode == "send":
        s, buf = connect(path), [b""]
        for line in args:
            s.sendall(line.encode() + b"\n")
            reply = read_line(s, buf)
            print(reply.decode("utf-8") if reply is not None else "closed")
        return 0
    if mode == "shut":
        s = connect(path)
        s.sendall(b"".join(line.encode() + b"\n" for line in args) + b"partial line")
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        sys.stdout.write(data.decode("utf-8"))
        print("closed")
        return 0
    if mode == "binary":
        s, buf = connect(path), [b""]
        s.sendall(b"\x00\xff\xfe garbage \x01\x02\x1bLua\x54\x00\n")
        print(json.dumps(json.loads(read_line(s, buf).decode("utf-8"))))
        s.sendall(b"\x1bLua\x54\x00\x19\x93\r\n\x1a\n")
        print(json.dumps(json.loads(read_line(s, buf).decode("utf-8"))))
        return 0
    if mode == "long":
        n = int(args[0])
        s, buf = connect(path), [b""]
        try:
            s.sendall(b"x" * n)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close before it has taken it all
        try:
            reply = read_line(s, buf)
        except ConnectionResetError:
            reply = None
        if reply is not None:
            print(reply.decode("utf-8"))
        try:
            while s.recv(65536):
                pass
        except ConnectionResetError:
            pass
        print("closed")
        return 0
    if mode == "half":
        s = connect(path)
        s.sendall(b"return 1 + ")
        s.close()
        return 0
    if mode == "midway":
        s = connect(path)
        s.sendall(b"local t = luaswitch.monotime() + 0.3; while luaswitch.monotime() < t do end; "
                  b"midway_done = (midway_done or 0) + 1\n")
        s.close()
        return 0
    if mode == "many":
        n, m = int(args[0]), int(args[1])
        problems, done = [], [0]
        lock = threading.Lock()

        def worker(i):
            try:
                s, buf = connect(path), [b""]
                for j in range(m):
                    k = j % 10
                    if k == 0:
                        r = request(s, buf, b"sw:fdb()")
                        assert r["ok"] and isinstance(r["result"], list), r
                        assert all("mac" in e for e in r["result"]), r
                    elif k == 1:
                        r = request(s, buf, b"stats()")
                        assert r["ok"] and "switches" in r["result"], r
                    elif k == 2:
                        r = request(s, buf, b'\\pretty "sw"')
                        assert r["ok"] and r["result"].startswith("luaswitch.switch"), r
                    else:
                        r = request(s, buf, b"return %d * 1000 + %d" % (i, j))
                        assert r == {"ok": True, "result": i * 1000 + j}, r
                    with lock:
                        done[0] += 1
                s.close()
            except Exception as e:  # reported below
                with lock:
                    problems.append("client %d: %r" % (i, e))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if problems:
            print("problems: %d, first: %s" % (len(problems), problems[0]))
            return 1
        print("ok %d" % done[0])
        return 0
    print("unknown mode " + mode, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
