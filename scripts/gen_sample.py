#!/usr/bin/env python3
"""Deterministic sample inputs for the quickstart, the shipped dataset samples and tests.

    scripts/gen_sample.py orders   --rows N > orders.csv      (quickstart: CSV with a header)
    scripts/gen_sample.py lineitem --rows N > lineitem.tbl    (TPC-H-shaped, '|'-delimited, no header)
    scripts/gen_sample.py events   --rows N > events.ndjson   (nested objects, zoned timestamps)

Same arguments, same bytes: the ledger's checksum sees a regenerated file as the same input.
"""
import argparse
import datetime as dt
import json
import random
import sys

NAMES = ["Ann", "Bob", "Chloé", "Dmitri", "Eșref", "Fatima", "Gao Yàn", "Hélène", "Ivan", "José",
         "O'Brien, Jo", "Zoë \"Z\" Smith", "Łukasz", "Mårten", "Ngozi", "Priya"]
STATUS = ["new", "paid", "shipped", "delivered", "returned"]
NOTES = ["", "gift", "leave at door, ring twice", "fragile\nhandle with care", "urgent!", "¿mañana?"]


def orders(n, out):
    r = random.Random(42)
    out.write("order_id,customer,order_date,amount,status,shipped_at,note\n")
    start = dt.date(2023, 1, 1)
    for i in range(1, n + 1):
        day = start + dt.timedelta(days=r.randrange(730))
        amount = f"{r.randrange(100, 5_000_000) / 100:.2f}"
        status = STATUS[r.randrange(len(STATUS))]
        if status in ("new", "paid"):
            shipped = ""
        else:
            h = r.randrange(24 * 60)
            off = r.choice(["+00", "+02", "-05", "+05:30"])
            shipped = f"{day + dt.timedelta(days=r.randrange(1, 5))} {h // 60:02}:{h % 60:02}:{r.randrange(60):02}{off}"
        note = NOTES[r.randrange(len(NOTES))]
        note = '""' if note == "" and r.random() < 0.3 else ('"' + note.replace('"', '""') + '"' if note else "")
        cust = NAMES[r.randrange(len(NAMES))]
        cust = '"' + cust.replace('"', '""') + '"' if any(c in cust for c in ',"') else cust
        out.write(f"{i},{cust},{day},{amount},{status},{shipped},{note}\n")


def lineitem(n, out):
    r = random.Random(7)
    instr = ["DELIVER IN PERSON", "COLLECT COD", "NONE", "TAKE BACK RETURN"]
    modes = ["REG AIR", "AIR", "RAIL", "SHIP", "TRUCK", "MAIL", "FOB"]
    words = ["furiously", "carefully", "final", "ironic", "pending", "deposits", "accounts", "requests",
             "blithely", "quickly", "regular", "express", "packages", "slyly", "bold", "theodolites"]
    order, line = 1, 0
    for _ in range(n):
        line += 1
        if line > r.randrange(1, 8):
            order += r.randrange(1, 4)
            line = 1
        qty = r.randrange(1, 51)
        price = qty * r.randrange(90000, 200000) / 100
        ship = dt.date(1992, 1, 2) + dt.timedelta(days=r.randrange(2526))
        commit = ship + dt.timedelta(days=r.randrange(-60, 60))
        receipt = ship + dt.timedelta(days=r.randrange(1, 31))
        flag = "R" if receipt < dt.date(1995, 6, 17) and r.random() < 0.5 else ("A" if receipt < dt.date(1995, 6, 17) else "N")
        status = "F" if ship < dt.date(1995, 6, 17) else "O"
        comment = " ".join(r.choice(words) for _ in range(r.randrange(2, 6)))[:43]
        out.write(
            f"{order}|{r.randrange(1, 200001)}|{r.randrange(1, 10001)}|{line}|{qty}|{price:.2f}|"
            f"0.{r.randrange(0, 11):02}|0.{r.randrange(0, 9):02}|{flag}|{status}|{ship}|{commit}|{receipt}|"
            f"{r.choice(instr)}|{r.choice(modes)}|{comment}|\n"
        )


def events(n, out):
    r = random.Random(3)
    kinds = ["view", "click", "purchase", "signup"]
    base = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    for i in range(n):
        tz = dt.timezone(dt.timedelta(minutes=r.choice([0, 120, -300, 330])))
        ts = (base + dt.timedelta(seconds=r.randrange(30 * 86400), microseconds=r.randrange(1_000_000))).astimezone(tz)
        uid = r.getrandbits(128)
        h = f"{uid:032x}"
        ev = {
            "event_id": f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}",
            "ts": ts.isoformat(),
            "kind": kinds[r.randrange(len(kinds))],
            "user": {"id": r.randrange(1, 5000), "name": NAMES[r.randrange(len(NAMES))], "vip": r.random() < 0.1},
            "tags": [r.choice(["mobile", "web", "promo", "a/b", "beta"]) for _ in range(r.randrange(0, 4))],
            "amount": round(r.random() * 200, 2) if r.random() < 0.3 else None,
        }
        out.write(json.dumps(ev, ensure_ascii=False) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=["orders", "lineitem", "events"])
    p.add_argument("--rows", type=int, default=1000)
    a = p.parse_args()
    out = open(sys.stdout.fileno(), "w", encoding="utf-8", newline="\n", buffering=1 << 20, closefd=False)
    {"orders": orders, "lineitem": lineitem, "events": events}[a.kind](a.rows, out)
    out.flush()


if __name__ == "__main__":
    main()
