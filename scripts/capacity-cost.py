#!/usr/bin/env python3
"""Requests, capacity units and cost per million delivered events.

  capacity-cost.py            # the markdown tables of docs/capacity.md, from docs/capacity/inputs.json
  capacity-cost.py --check    # exit 1 when docs/capacity.md does not hold exactly what this prints

Every figure is a formula over docs/capacity/inputs.json: the requests and
capacity units each path makes per event (requests measured by the
stores' meters, issue 17; units by DynamoDB's sizing rules), Lambda time and memory, and AWS's list prices. Nothing is
rounded down: capacity units round up per item as DynamoDB bills them, and
costs are printed rounded up to the cent.
"""
import json
import math
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
INPUTS = os.path.join(ROOT, "docs", "capacity", "inputs.json")
DOC = os.path.join(ROOT, "docs", "capacity.md")
BEGIN, END = "<!-- capacity-cost.py: begin -->", "<!-- capacity-cost.py: end -->"


def up(x, step=0.01):
    """Rounded up to `step` (a cent): never in our favour."""
    return math.ceil(round(x / step, 9)) * step


class Event:
    """One delivered event: its payload and how many events share its notification."""

    def __init__(self, inputs, payload, per_notification, source):
        s = inputs["sizes"]
        self.s, self.payload, self.per_n, self.source = s, payload, per_notification, source
        raw = payload if source == "webhook" else per_notification * payload + s["poll_raw_overhead_bytes"]
        self.raw = raw
        self.out_of_line = raw > s["inline_raw_max_bytes"]
        self.parts = math.ceil(raw / s["raw_part_bytes"]) if self.out_of_line else 0
        self.notification_bytes = s["notification_overhead_bytes"] + (0 if self.out_of_line else raw)

    def bytes_of(self, units):
        s = self.s
        return {
            "notification": self.notification_bytes,
            # The completion writes the item with its attempt log entry.
            "notification_with_attempt": self.notification_bytes + s["delivery_record_bytes"],
            "instance": s["instance_item_bytes"],
            "delivery_record": s["delivery_record_bytes"],
            "marker": s["marker_bytes"],
        }[units]

    def units(self, op):
        """Capacity units of one op, per event."""
        kb = self.s["kb"]
        u = op["units"]
        if u == "raw_part":
            # Each part is billed on its own size; the last one is partial.
            sizes = [self.s["raw_part_bytes"]] * (self.parts - 1) + [
                self.raw - self.s["raw_part_bytes"] * (self.parts - 1)]
            sizes = [b + self.s["raw_part_overhead_bytes"] for b in sizes]
            step = kb if op["kind"] == "write" else 4 * kb
            n = sum(math.ceil(b / step) for b in sizes)
        elif isinstance(u, str):
            step = kb if op["kind"] == "write" else 4 * kb
            n = math.ceil(self.bytes_of(u) / step)
        else:
            n = u
        if op.get("tx"):
            n *= 2
        return n / (self.per_n if op.get("per", "event") == "notification" else 1)

    def applies(self, op):
        return op.get("only") != "out_of_line" or self.out_of_line

    def requests(self, op):
        if op.get("request") is False or not self.applies(op):
            return 0.0
        per = op.get("request_per", op.get("per", "event"))
        if op["units"] == "raw_part" and op["kind"] == "write":
            return self.parts / self.per_n
        return 1 / self.per_n if per == "notification" else 1.0


def paths_for(source):
    return ["webhook_ingest", "delivery"] if source == "webhook" else ["poll_ingest", "delivery"]


def totals(inputs, ev):
    """Requests, WRU, RRU per event, per path."""
    out = {}
    for path in paths_for(ev.source):
        req = wru = rru = 0.0
        for op in inputs["ops"][path]:
            if not ev.applies(op):
                continue
            req += ev.requests(op)
            if op["kind"] == "write":
                wru += ev.units(op)
            else:
                rru += ev.units(op)
        out[path] = (req, wru, rru)
    return out


def lambda_gb_s(inputs, ms, fn):
    lam = inputs["lambda"]
    gb = lam["memory_mb"][fn] / 1024
    return gb * (lam["ms"][ms] + lam["cold_start_share"] * lam["init_ms"]) / 1000


def cost_per_million(inputs, ev):
    """Dollars per million delivered events, by component."""
    p, s, lam = inputs["prices"], inputs["sizes"], inputs["lambda"]
    t = totals(inputs, ev)
    wru = sum(v[1] for v in t.values())
    rru = sum(v[2] for v in t.values())
    m = 1e6
    c = {}
    c["DynamoDB requests"] = (wru * p["dynamodb_wru_per_million"] + rru * p["dynamodb_rru_per_million"])
    # Storage while retained: items, their index entries, and PITR on the same bytes.
    gb = 1024 ** 3
    months = s["retention_months"]
    stored = (ev.notification_bytes + 3 * s["index_entry_bytes"]) * months["notification"] / ev.per_n
    stored += s["delivery_record_bytes"] * months["delivery_record"] / ev.per_n
    if ev.out_of_line:
        stored += (ev.raw + ev.parts * s["raw_part_overhead_bytes"]) * months["raw_part"] / ev.per_n
    if ev.source == "polling":
        stored += s["marker_bytes"] * months["marker"]
    c["DynamoDB storage + PITR"] = stored * m / gb * (p["dynamodb_storage_gb_month"] + p["dynamodb_pitr_gb_month"])
    # Lambda: requests and GB-s (arm64), INIT billed on the cold share.
    invocations = 0.0
    gbs = 0.0
    if ev.source == "webhook":
        invocations += 1
        gbs += lambda_gb_s(inputs, "webhook_ingest", "webhooks")
    else:
        gbs += lambda_gb_s(inputs, "poll_notification", "poller") / ev.per_n
    # The dispatcher: one invocation per new notification's stream record
    # (the claim's own record is filtered out by the event source, issue 17).
    invocations += 1 / ev.per_n
    gbs += lambda_gb_s(inputs, "delivery", "dispatcher") / ev.per_n
    c["Lambda"] = invocations * p["lambda_requests_per_million"] + gbs * m * p["lambda_arm64_gb_second"]
    c["API Gateway (HTTP API)"] = 0.0
    if ev.source == "webhook":
        c["API Gateway (HTTP API)"] = math.ceil(ev.payload / p["http_api_metering_bytes"]) * p["http_api_requests_per_million"]
    c["CloudWatch Logs"] = invocations * lam["log_bytes_per_invocation"] * m / gb * p["cloudwatch_logs_ingest_per_gb"]
    # The callback leaves AWS: its body carries the raw payload once per notification.
    c["Data transfer out (callbacks)"] = (ev.raw + 1024) / ev.per_n * m / gb * p["data_transfer_out_per_gb"]
    return c, invocations, gbs, t


def cases(inputs):
    for payload in inputs["sizes"]["payloads_bytes"]:
        yield Event(inputs, payload, 1, "webhook")
        for e in inputs["polling"]["events_per_notification"]:
            yield Event(inputs, payload, e, "polling")


def label(ev):
    kb = ev.payload // 1024
    if ev.source == "webhook":
        return f"webhook, {kb} KB"
    return f"polling, {kb} KB, {ev.per_n} event{'s' if ev.per_n > 1 else ''}/notification"


def fmt(x, digits=2):
    return f"{x:.{digits}f}"


def render(inputs):
    lines = []
    w = lines.append
    w(BEGIN)
    w("")
    w(f"Inputs: `docs/capacity/inputs.json` ({'measured' if inputs['measured'] else 'counted from the code, not measured'}); "
      f"prices: {inputs['prices']['region']}, {inputs['prices']['date']}. Command: `python3 scripts/capacity-cost.py`.")
    w("")
    w("**Requests and capacity units per delivered event** (first attempt succeeds):")
    w("")
    w("| case | ingest requests | ingest WRU | ingest RRU | delivery requests | delivery WRU | delivery RRU | total requests | total WRU | total RRU |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for ev in cases(inputs):
        t = totals(inputs, ev)
        ing = t[paths_for(ev.source)[0]]
        dl = t["delivery"]
        w(f"| {label(ev)} | {fmt(ing[0])} | {fmt(ing[1])} | {fmt(ing[2])} | {fmt(dl[0])} | {fmt(dl[1])} | {fmt(dl[2])} "
          f"| {fmt(ing[0] + dl[0])} | {fmt(ing[1] + dl[1])} | {fmt(ing[2] + dl[2])} |")
    w("")
    w("**Cost per million delivered events**, US dollars, each component rounded up to the cent:")
    w("")
    comps = list(cost_per_million(inputs, next(cases(inputs)))[0].keys())
    w("| case | " + " | ".join(comps) + " | **total** | Lambda invocations | Lambda GB-s |")
    w("|---|" + "---|" * (len(comps) + 3))
    for ev in cases(inputs):
        c, inv, gbs, _ = cost_per_million(inputs, ev)
        parts = [up(c[k]) for k in comps]
        w(f"| {label(ev)} | " + " | ".join(fmt(x) for x in parts) + f" | **{fmt(sum(parts))}** "
          f"| {inv * 1e6:,.0f} | {up(gbs * 1e6, 1):,.0f} |")
    w("")
    w("**Hosted webhook services, per million messages** (one message = one delivered callback):")
    w("")
    w("| service | plan per month | included | per message beyond | 1,000,000 messages in a month | source |")
    w("|---|---|---|---|---|---|")
    for h in inputs["hosted"]:
        total = h["plan_usd_month"] + max(0, 1e6 - h["included"]) * h["per_message_usd"]
        w(f"| {h['name']} | {h['plan_usd_month']:.2f} | {h['included']:,} | {h['per_message_usd']:.5f} | {up(total):.2f} | {h['source']} |")
    w("")
    w("**Polling's fixed cost per instance**, whether anything changed or not "
      f"({inputs['polling']['resources_per_instance']} resources, one page each, a store call of "
      f"{inputs['lambda']['ms']['poll_store_call']} ms):")
    w("")
    w("| refresh interval | polls per 30-day month | WRU | RRU | Lambda GB-s | dollars per instance-month |")
    w("|---|---|---|---|---|---|")
    p = inputs["prices"]
    r = inputs["polling"]["resources_per_instance"]
    per_poll_w = sum(o["units"] * (r if o.get("per_resource") else 1) for o in inputs["polling"]["per_poll_ops"] if o["kind"] == "write")
    per_poll_r = sum(o["units"] * (r if o.get("per_resource") else 1) for o in inputs["polling"]["per_poll_ops"] if o["kind"] == "read")
    gb = inputs["lambda"]["memory_mb"]["poller"] / 1024
    for minutes in (1, 5, 15, 60):
        polls = 30 * 24 * 60 // minutes
        gbs = polls * gb * r * inputs["lambda"]["ms"]["poll_store_call"] / 1000
        dollars = (polls * per_poll_w * p["dynamodb_wru_per_million"] + polls * per_poll_r * p["dynamodb_rru_per_million"]) / 1e6
        dollars += gbs * p["lambda_arm64_gb_second"]
        w(f"| {minutes} min | {polls:,} | {polls * per_poll_w:,} | {polls * per_poll_r:,} | {gbs:,.0f} | {up(dollars):.2f} |")
    w("")
    w(END)
    return "\n".join(lines) + "\n"


def main():
    inputs = json.load(open(INPUTS))
    out = render(inputs)
    if sys.argv[1:] == ["--check"]:
        doc = open(DOC).read()
        start, end = doc.find(BEGIN), doc.find(END)
        current = doc[start:end + len(END)] + "\n" if start >= 0 and end >= 0 else ""
        if current != out:
            print("docs/capacity.md is not what scripts/capacity-cost.py prints from docs/capacity/inputs.json; "
                  "paste its output between the markers", file=sys.stderr)
            sys.exit(1)
        print("docs/capacity.md: the cost tables match docs/capacity/inputs.json")
        return
    sys.stdout.write(out)


if __name__ == "__main__":
    main()
