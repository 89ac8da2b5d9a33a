#!/usr/bin/env python3
"""fuzz/seeds.py DIR — write frame_path's hand-made seeds into DIR (fuzz/corpus/frame_path).

Each seed is a small scenario in the byte format frame_path.c reads (see its choices):
a switch, its ports, then steps. They show the fuzzer the features worth combining
(VLAN-aware switches, trunks, retagging rules, impairments, clock steps); everything
else it finds by itself.
"""
import os
import sys


def u16(v):
    return bytes([v & 0xFF, v >> 8])


def vid(v):
    """pick_vid: one of the usual few, else any VLAN id as its two bytes."""
    usual = [1, 2, 10, 20, 100, 4094]
    return bytes([usual.index(v)]) if v in usual else bytes([128]) + u16(v)


def switch(aware, aging=0, max_macs=6, evict=1, ad=False, wire=False):
    return bytes([aging, max_macs - 1, evict, int(aware), int(ad), int(wire)])


def ports(n):
    # mtu 1500, txqlen 32, default flags, no cap, not edge
    return bytes([n - 2]) + bytes([3, 31, 0, 0, 0]) * n


def step(port, op):
    return bytes([port, op])


def frame(dst=0, src=1, tag=None, ethertype=0, plen=8):
    """A frame: dst/src pick_mac codes, an optional 802.1Q tag (its VLAN id)."""
    b = bytes([1 if tag is not None else 0, dst, src])
    if tag is not None:
        b += bytes([0, 1, 0]) + vid(tag)  # 802.1Q, priority 0
    b += bytes([ethertype, plen]) + bytes(min(plen, 64))
    return b


def rx(port, f):
    return step(port, 0) + f + bytes([0])


def access(port, v):
    return step(port, 16) + bytes([1]) + vid(v)


def trunk(port, native, allowed):
    b = step(port, 16) + bytes([0])
    b += (bytes([1]) + vid(native)) if native else bytes([0])
    b += bytes([0, len(allowed)])
    for a in allowed:
        b += vid(a) + bytes([0])
    return b


def rule_set_vlan(port, v, direction=0, match=0):
    return step(port, 13) + bytes([1, match, 4]) + vid(v) + bytes([0, direction])


def advance(code):
    return step(0, 18) + bytes([code])


def impair(port, loss=3, delay=3):
    # not off/down-only; random loss; dup 0; reorder 0; corrupt 0; delay; jitter 0; no rate;
    # limit 4; no mtu; seed 0; direction out; set_down no
    return step(port, 15) + bytes([2, 0, loss, 0, 0, 0, delay, 0, 0, 3, 0, 0, 1, 0, 0])


SEEDS = {
    # VLAN-aware, a trunk retagging what it receives into a VLAN its peers are in
    "vlan_retag": switch(True) + ports(2) + trunk(0, 10, [10, 100]) + access(1, 100) +
    rule_set_vlan(0, 100) + rx(0, frame(dst=10, tag=10)) + rx(1, frame(src=2)),
    # plain learning and flooding, then aging on a clock step
    "learn_age": switch(False, aging=1) + ports(2) + rx(0, frame(dst=10, src=1)) +
    rx(1, frame(dst=0, src=2)) + rx(0, frame(dst=1, src=1)) + advance(4) +
    rx(1, frame(dst=0, src=2)),
    # a lossy, delayed output, released by clock steps
    "impaired": switch(False) + ports(2) + impair(1) + rx(0, frame(dst=10)) +
    rx(0, frame(dst=10, src=3)) + advance(3) + advance(4),
    # 802.1ad, tagged frames on trunks
    "qinq": switch(True, ad=True) + ports(3) + trunk(0, 0, [100]) + trunk(1, 0, [100]) +
    access(2, 100) + rx(0, frame(dst=10, tag=100)) + rx(2, frame(dst=1, src=2)),
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, "seed_" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
