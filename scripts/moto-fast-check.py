#!/usr/bin/env python3
"""Checks scripts/moto_fast.py: moto answers the same with its fast paths as without.

Starts two servers through scripts/moto-iam.py (IAM not enforced), one with
MOTO_FAST=0 and one with the fast paths in verify mode (MOTO_FAST_VERIFY=1:
moto's own parser and serializer run beside each fast path and any
difference is a 500). The same corpus of DynamoDB calls goes to both: every
operation the fast paths take, every attribute type (binary included, which
must fall back), ReturnValues, conditions that fail, paging, transactions
that are cancelled, and update expressions that repeat (parsed once) or are
malformed (never kept). Every answer, status and body, must be equal.
Prints 'moto fast paths: N passed, N failed'; exits 1 on any failure.
"""
import json
import re
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(fast):
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="inf",
               MOTO_FAST="1" if fast else "0", MOTO_FAST_VERIFY="1" if fast else "0")
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "moto-iam.py"), "server",
                             "-H", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=log)
    proc.log = log
    for _ in range(150):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None:
                sys.exit("moto did not start: " + server_log(proc))
            time.sleep(0.1)
    sys.exit("moto did not start in time")


def server_log(proc):
    proc.log.seek(0)
    return proc.log.read().decode(errors="replace")


def call(endpoint, action, body, target="DynamoDB_20120810"):
    """One raw DynamoDB call: (status, parsed body without request-specific fields)."""
    body = {k: v for k, v in body.items() if v is not None}
    req = urllib.request.Request(endpoint + "/", data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": f"{target}.{action}",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20261207/us-east-1/dynamodb/aws4_request, "
                         "SignedHeaders=host, Signature=0",
    })
    try:
        with urllib.request.urlopen(req) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        out = json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")[:300]
    if isinstance(out, dict) and "TableDescription" in out:
        for key in ("CreationDateTime", "LatestStreamLabel", "LatestStreamArn"):
            out["TableDescription"].pop(key, None)
    return status, out


S = lambda v: {"S": v}
N = lambda v: {"N": str(v)}


def corpus():
    t = "fastcheck"
    yield "CreateTable", {
        "TableName": t, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"},
                                 {"AttributeName": "g", "AttributeType": "S"},
                                 {"AttributeName": "r", "AttributeType": "N"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [{"IndexName": "by-g", "KeySchema": [
            {"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "r", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status"]}}],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}}
    every_type = {"s": S("x"), "n": N("1.50"), "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]},
                  "m": {"M": {"k": S("v"), "l": {"L": [N(1), {"BOOL": True}, {"NULL": True}]}}},
                  "l": {"L": []}, "t": {"BOOL": False}, "z": {"NULL": True}, "e": S('{"B": "not binary"}')}
    for i in range(12):
        yield "PutItem", {"TableName": t, "Item": {"id": S(f"i{i}"), "g": S(f"g{i % 2}"), "r": N(i),
                                                   "status": S("pending"), "attempts": N(0), **every_type},
                          "ConditionExpression": "attribute_not_exists(id)",
                          "ReturnConsumedCapacity": "TOTAL"}
    yield "PutItem", {"TableName": t, "Item": {"id": S("i0")}, "ConditionExpression": "attribute_not_exists(id)"}
    yield "PutItem", {"TableName": t, "Item": {"id": S("bin"), "b": {"B": "AAEC"}, "bs": {"BS": ["AQ==", "Ag=="]}},
                      "ReturnValues": "ALL_OLD"}
    yield "PutItem", {"TableName": t, "Item": {"id": S("bin"), "b": {"B": "AwQ="}}, "ReturnValues": "ALL_OLD"}
    yield "GetItem", {"TableName": t, "Key": {"id": S("bin")}, "ConsistentRead": True}
    yield "GetItem", {"TableName": t, "Key": {"id": S("i3")}, "ConsistentRead": True,
                      "ReturnConsumedCapacity": "TOTAL"}
    yield "GetItem", {"TableName": t, "Key": {"id": S("missing")}}
    yield "GetItem", {"TableName": t, "Key": {"id": S("i3")}, "ProjectionExpression": "#s, m.l[1], n",
                      "ExpressionAttributeNames": {"#s": "status"}}
    # Plain names, a NULL before a map (moto's merge drops it), one missing, one twice.
    yield "GetItem", {"TableName": t, "Key": {"id": S("i3")}, "ProjectionExpression": "z, m, #s, missing, z, ss",
                      "ExpressionAttributeNames": {"#s": "status"}}
    yield "Query", {"TableName": t, "IndexName": "by-g", "KeyConditionExpression": "g = :g",
                    "ExpressionAttributeValues": {":g": S("g0")}, "ProjectionExpression": "r, id, #s",
                    "ExpressionAttributeNames": {"#s": "status"}}
    claim = "SET lease_owner = :lo, attempts = attempts + :one"
    for i, ret in enumerate(["ALL_NEW", "UPDATED_NEW", "ALL_OLD", "UPDATED_OLD", "NONE", "ALL_NEW"]):
        # The same expression each time: parsed once, then from the cache.
        yield "UpdateItem", {"TableName": t, "Key": {"id": S(f"i{i}")}, "UpdateExpression": claim,
                             "ConditionExpression": "#st = :pending AND (attribute_not_exists(lease_owner) OR lease_owner <> :lo)",
                             "ExpressionAttributeNames": {"#st": "status"},
                             "ExpressionAttributeValues": {":pending": S("pending"), ":lo": S(f"o{i}"), ":one": N(1)},
                             "ReturnValues": ret, "ReturnConsumedCapacity": "TOTAL"}
    yield "UpdateItem", {"TableName": t, "Key": {"id": S("i0")}, "UpdateExpression": claim,
                         "ConditionExpression": "lease_owner = :other",
                         "ExpressionAttributeValues": {":other": S("nobody"), ":lo": S("x"), ":one": N(1)},
                         "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    done = ("SET #st = :st, alog = list_append(if_not_exists(alog, :none), :entry) "
            "REMOVE lease_owner, g")
    for i in range(3):
        yield "UpdateItem", {"TableName": t, "Key": {"id": S(f"i{i}")}, "UpdateExpression": done,
                             "ExpressionAttributeNames": {"#st": "status"},
                             "ExpressionAttributeValues": {":st": S("delivered"), ":none": {"L": []},
                                                           ":entry": {"L": [{"M": {"a": N(i)}}]}},
                             "ReturnValues": "ALL_NEW"}
    yield "UpdateItem", {"TableName": t, "Key": {"id": S("new")}, "UpdateExpression": "ADD c :one",
                         "ExpressionAttributeValues": {":one": N(1)}, "ReturnValues": "ALL_NEW"}
    for _ in range(2):  # a malformed expression fails the same way twice
        yield "UpdateItem", {"TableName": t, "Key": {"id": S("i1")}, "UpdateExpression": "SET = :v",
                             "ExpressionAttributeValues": {":v": N(1)}}
    yield "UpdateItem", {"TableName": t, "Key": {"id": S("i1")}, "UpdateExpression": "SET a = :missing"}
    # What the validator's walks check and compute, errors first (each must
    # be the same error as moto's own walk raises).
    for expression in ["SET a = :v SET b = :v", "SET a = :v REMOVE b REMOVE c", "SET a = :v, a = :v",
                       "SET m.k = :v REMOVE m", "SET #n = :v, #n = :v", "SET id = :v", "ADD g :v",
                       "SET m.k = :v, m.n = :w, l = list_append(l, :l) ADD ns :ns DELETE ss :ss REMOVE t",
                       "SET n = n + :w, r = if_not_exists(nothing, :w) - :w, m.l[0] = :v",
                       "SET m.missing.deeper = :v", "SET l[5] = :v"]:
        values = {":v": S("v"), ":w": N(2), ":l": {"L": [N(9)]}, ":ns": {"NS": ["7"]}, ":ss": {"SS": ["a"]}}
        yield "UpdateItem", {"TableName": t, "Key": {"id": S("i4")}, "UpdateExpression": expression,
                             "ExpressionAttributeNames": {"#n": "n"} if "#n" in expression else None,
                             "ExpressionAttributeValues": {k: v for k, v in values.items()
                                                           if re.search(re.escape(k) + r"\b", expression)},
                             "ReturnValues": "ALL_NEW"}
    yield "UpdateItem", {"TableName": t, "Key": {"id": S("bin")}, "UpdateExpression": "SET b2 = :b",
                         "ExpressionAttributeValues": {":b": {"B": "BQY="}}, "ReturnValues": "ALL_NEW"}
    yield "Query", {"TableName": t, "IndexName": "by-g", "KeyConditionExpression": "g = :g AND r <= :r",
                    "ExpressionAttributeValues": {":g": S("g1"), ":r": N(9)}, "Limit": 2,
                    "ReturnConsumedCapacity": "TOTAL"}
    yield "Query", {"TableName": t, "IndexName": "by-g", "KeyConditionExpression": "g = :g",
                    "ExpressionAttributeValues": {":g": S("g1")}, "Limit": 2,
                    "ExclusiveStartKey": {"id": S("i3"), "g": S("g1"), "r": N(3)}, "ScanIndexForward": False}
    yield "Query", {"TableName": t, "KeyConditionExpression": "id = :id", "Select": "COUNT",
                    "ExpressionAttributeValues": {":id": S("i4")}}
    yield "Scan", {"TableName": t, "FilterExpression": "attempts > :z",
                   "ExpressionAttributeValues": {":z": N(0)}, "Limit": 5}
    yield "Scan", {"TableName": t}
    yield "BatchGetItem", {"RequestItems": {t: {"Keys": [{"id": S("i5")}, {"id": S("i6")}, {"id": S("nope")}],
                                                "ConsistentRead": True}}, "ReturnConsumedCapacity": "TOTAL"}
    yield "BatchGetItem", {"RequestItems": {t: {"Keys": [{"id": S("bin")}]}}}
    yield "BatchWriteItem", {"RequestItems": {t: [{"PutRequest": {"Item": {"id": S("bw1"), "n": N(1)}}},
                                                  {"DeleteRequest": {"Key": {"id": S("i11")}}}]},
                             "ReturnConsumedCapacity": "TOTAL"}
    yield "TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": t, "Item": {"id": S("tx1")}, "ConditionExpression": "attribute_not_exists(id)"}},
        {"Update": {"TableName": t, "Key": {"id": S("i7")}, "UpdateExpression": claim,
                    "ExpressionAttributeValues": {":lo": S("tx"), ":one": N(1)}}}]}
    yield "TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": t, "Item": {"id": S("tx2")}}},
        {"ConditionCheck": {"TableName": t, "Key": {"id": S("i8")}, "ConditionExpression": "attempts > :big",
                            "ExpressionAttributeValues": {":big": N(100)}}}]}
    yield "TransactGetItems", {"TransactItems": [{"Get": {"TableName": t, "Key": {"id": S("tx1")}}},
                                                 {"Get": {"TableName": t, "Key": {"id": S("tx2")}}}]}
    yield "DeleteItem", {"TableName": t, "Key": {"id": S("i9")}, "ReturnValues": "ALL_OLD"}
    yield "DeleteItem", {"TableName": t, "Key": {"id": S("i9")}, "ConditionExpression": "attribute_exists(id)"}
    yield "Scan", {"TableName": t}


def stream_records(endpoint):
    """Every record of the corpus table's stream, as GetRecords answers it,
    with what differs between two servers (ids, times, sizes, ARNs) masked."""
    streams = "DynamoDBStreams_20120810"
    _, table = call(endpoint, "DescribeTable", {"TableName": "fastcheck"})
    arn = table["Table"]["LatestStreamArn"]
    _, stream = call(endpoint, "DescribeStream", {"StreamArn": arn}, streams)
    shard = stream["StreamDescription"]["Shards"][0]["ShardId"]
    _, it = call(endpoint, "GetShardIterator", {"StreamArn": arn, "ShardId": shard,
                                                "ShardIteratorType": "TRIM_HORIZON"}, streams)
    pages, iterator = [], it["ShardIterator"]
    for limit in (7, 1000, 1000):  # a short page, the rest, then an empty one
        status, page = call(endpoint, "GetRecords", {"ShardIterator": iterator, "Limit": limit}, streams)
        iterator = page.pop("NextShardIterator", None) if isinstance(page, dict) else None
        for record in page.get("Records", []) if isinstance(page, dict) else []:
            record["eventID"] = "masked"
            # moto sizes a record by its JSON, creation time included (StreamRecord)
            record["dynamodb"]["SizeBytes"] = "masked"
            when = record["dynamodb"].get("ApproximateCreationDateTime")
            record["dynamodb"]["ApproximateCreationDateTime"] = type(when).__name__
        pages.append((status, page, iterator is not None))
        if iterator is None:
            break
    return pages


def main():
    import moto

    sys.path.insert(0, HERE)
    import moto_fast

    if moto.__version__ != moto_fast.MOTO_VERSION:
        # The fast server would run unpatched, and the check would compare moto with itself.
        sys.exit(f"moto fast paths: moto {moto.__version__} is installed, the patches are for "
                 f"{moto_fast.MOTO_VERSION} (scripts/ensure-tools.sh installs it)")
    servers = [start(False), start(True)]
    passed = failed = 0
    try:
        for action, body in corpus():
            plain, fast = (call(endpoint, action, body) for _, endpoint in servers)
            if plain == fast and plain[0] != 500:
                passed += 1
            else:
                failed += 1
                print(f"FAILED {action} {json.dumps(body)[:200]}\n  moto:      {plain}\n  fast path: {fast}")
        plain, fast = (stream_records(endpoint) for _, endpoint in servers)
        if plain == fast and all(status == 200 for status, _, _ in plain):
            passed += 1
        else:
            failed += 1
            print(f"FAILED GetRecords\n  moto:      {plain}\n  fast path: {fast}")
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait()
    if failed:
        print("the fast-path server's log:\n" + server_log(servers[1][0])[-3000:])
    print(f"moto fast paths: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
