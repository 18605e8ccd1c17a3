#!/usr/bin/env python3
"""moto's server CPU per DynamoDB operation, for the calls one event costs.

Run under scripts/with-moto.sh (it reads AWS_ENDPOINT_URL and the server's
MOTO_PID); MOTO_FAST=0 there measures moto without scripts/moto_fast.py:

  MOTO_IAM_ENFORCE=0 scripts/with-moto.sh python3 scripts/moto-op-costs.py [N]

On a table shaped like NotificationsTable (three indexes, a NEW_IMAGE
stream), N times each, one call at a time: the ingest's conditional PutItem
of a notification, a GetItem, the dispatcher's claim (conditional UpdateItem,
ALL_NEW) and completion (conditional UpdateItem with the attempt log), and
ce-load's floor (a conditional PutItem of two attributes). The server's CPU
is read from /proc/MOTO_PID/stat before and after each run of N.
"""
import json
import os
import sys
import time
import uuid

import boto3

S = lambda v: {"S": v}  # noqa: E731
N = lambda v: {"N": str(v)}  # noqa: E731


def server_cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def notification(i):
    """An item like shared/src/store/notifications.rs `to_item` writes."""
    when = "2026-12-07T10:00:00.000Z"
    return {"id": S(f"nt-{i:08d}"), "instance_id": S("instance#42"), "org_id": S("org#o1"),
            "element_key": S("one"), "source": S("webhook"), "status": S("pending"),
            "events": S(json.dumps([{"objectType": "client", "objectId": f"c-{i}",
                                     "eventType": "UPDATED", "eventDate": when}])),
            "dedupe_key": S(f"one:{i}"), "created_at": S(when), "updated_at": S(when),
            "created_key": S(f"{when}#nt-{i}"), "attempts": N(0), "schedule_pos": N(0),
            "next_attempt_at": N(1), "pending_shard": S(f"due#{i % 4}"), "expires_at": N(1900000000),
            "raw": S(json.dumps({"event": "Client logged", "customerId": f"c-{i}"}))}


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    pid = int(os.environ["MOTO_PID"])
    db = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                      region_name=os.environ.get("AWS_REGION", "us-east-1"))
    table = "op-costs-" + uuid.uuid4().hex[:6]
    key = lambda a, t="S": {"AttributeName": a, "AttributeType": t}  # noqa: E731
    index = lambda name, h, r, projection: {  # noqa: E731
        "IndexName": name, "Projection": projection,
        "KeySchema": [{"AttributeName": h, "KeyType": "HASH"}, {"AttributeName": r, "KeyType": "RANGE"}]}
    log = {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status", "attempts"]}
    db.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[key("id"), key("org_id"), key("instance_id"), key("created_key"),
                              key("pending_shard"), key("next_attempt_at", "N")],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[index("by-instance-log", "instance_id", "created_key", log),
                                index("by-org-log", "org_id", "created_key", log),
                                index("by-due", "pending_shard", "next_attempt_at", {"ProjectionType": "KEYS_ONLY"})],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    nid = lambda i: {"id": S(f"nt-{i:08d}")}  # noqa: E731
    calls = {
        "conditional PutItem of a notification": lambda i: db.put_item(
            TableName=table, Item=notification(i), ConditionExpression="attribute_not_exists(id)"),
        "GetItem": lambda i: db.get_item(TableName=table, Key=nid(i), ConsistentRead=True),
        "claim (UpdateItem, ALL_NEW)": lambda i: db.update_item(
            TableName=table, Key=nid(i),
            UpdateExpression="SET lease_until = :lu, lease_owner = :lo, attempts = attempts + :one",
            ConditionExpression="#st = :pending AND next_attempt_at <= :now AND "
                                "(attribute_not_exists(lease_until) OR lease_until < :now)",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues={":pending": S("pending"), ":now": N(5), ":lu": N(100 + i),
                                       ":lo": S(f"owner-{i}"), ":one": N(1)},
            ReturnValues="ALL_NEW"),
        "completion (UpdateItem, attempt log)": lambda i: db.update_item(
            TableName=table, Key=nid(i),
            UpdateExpression="SET #st = :st, updated_at = :now, last_status = :code, "
                             "attempt_log = list_append(if_not_exists(attempt_log, :nolog), :alog) "
                             "REMOVE pending_shard, lease_until, lease_owner, last_error",
            ConditionExpression="lease_owner = :me", ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues={":me": S(f"owner-{i}"), ":now": S("2026-12-07T10:00:01.000Z"),
                                       ":st": S("delivered"), ":code": N(200), ":nolog": {"L": []},
                                       ":alog": {"L": [{"M": {"n": N(1), "status": N(200)}}]}}),
        "floor: conditional PutItem of two attributes": lambda i: db.put_item(
            TableName=table, Item={"id": S(f"floor-{i}"), "attempt": N(1)},
            ConditionExpression="attribute_not_exists(id)"),
    }
    for name, call in calls.items():
        cpu, wall = server_cpu(pid), time.monotonic()
        for i in range(count):
            call(i)
        print(f"{name:46s} server CPU {(server_cpu(pid) - cpu) / count * 1000:5.2f} ms per call, "
              f"wall {(time.monotonic() - wall) / count * 1000:5.2f} ms")


if __name__ == "__main__":
    main()
