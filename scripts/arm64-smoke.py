#!/usr/bin/env python3
"""The deployed arm64 bootstraps, run under qemu against a stand-in Lambda
Runtime API and moto, each with its function's IAM user (CE_IAM_USERS), must
answer the sample events of tests/events/ as the native x86_64 build does.

  arm64-smoke.py SAM_BUILD_DIR X86_BIN_DIR ENV   # ENV: K=V,K2=V2 for every function

Per function: init time (exec until the first /invocation/next, median of 5
runs; under qemu the arm64 figure is emulated, not what Lambda's Graviton
gives), then one process per build answers every event of the function.
Same answer: the same status code and the same JSON keys (ids and dates
differ between runs).
"""
import http.server, json, os, queue, re, socketserver, statistics, subprocess, sys, tempfile, threading, time

QEMU = ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"]
# provided.al2023 has glibc 2.34; qemu here loads Debian's newer one, so a
# binary needing more would run here and fail on Lambda: checked apart.
LAMBDA_GLIBC = (2, 34)
# function: (template logical id, [(event file, expected status or key)]), as scripts/lambda-smoke.sh.
FUNCTIONS = {
    "instances": ("InstancesFunction", [("instances-apigw-v2-list.json", 200),
                                        ("instances-apigw-v1-list.json", 200),
                                        ("instances-apigw-v1-unauthorized.json", 401),
                                        ("instances-apigw-v2-create.json", 200)]),
    "webhooks": ("WebhooksFunction", [("webhooks-apigw-v2-one-unknown-instance.json", 404),
                                      ("webhooks-apigw-v1-woocommerce-ping.json", 200)]),
    "dispatcher": ("DispatcherFunction", [("dispatcher-dynamodb-stream.json", "batchItemFailures"),
                                          ("dispatcher-eventbridge-scheduled.json", "due")]),
    "poller": ("PollerFunction", [("poller-scheduled-interval.json", "polled"),
                                  ("poller-continuation.json", "polled")]),
    "console": ("ConsoleFunction", [("console-apigw-v2-index.json", 200)]),
}


class Runtime:
    """A stand-in Lambda Runtime API: hands out queued events, collects answers."""

    def __init__(self):
        self.events, self.answers, self.ready = queue.Queue(), {}, threading.Event()
        self.answered = threading.Condition()
        rt = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.endswith("/runtime/invocation/next"):
                    rt.ready.set()
                    item = rt.events.get()
                    if item is None:  # no more work: the process is killed meanwhile
                        time.sleep(30)
                        return
                    rid, body = item
                    self.send_response(200)
                    for k, v in {"Lambda-Runtime-Aws-Request-Id": rid,
                                 "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 120_000),
                                 "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:smoke",
                                 "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
                                 "Content-Type": "application/json"}.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.split("/")
                with rt.answered:
                    if "invocation" in parts:
                        rid, kind = parts[-2], parts[-1]
                        rt.answers[rid] = (kind, body)
                    else:  # /runtime/init/error
                        rt.answers["init"] = ("init-error", body)
                    rt.answered.notify_all()
                self.send_response(202)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def wait(self, rid, timeout):
        with self.answered:
            self.answered.wait_for(lambda: rid in self.answers or "init" in self.answers, timeout)
            return self.answers.get(rid) or self.answers.get("init")


def start(cmd, env, rt, log):
    env = dict(env, AWS_LAMBDA_RUNTIME_API=rt.address)
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=log)


def init_times(cmd, env, runs=5):
    samples = []
    for _ in range(runs):
        rt = Runtime()
        with tempfile.TemporaryFile() as log:
            t0 = time.perf_counter()
            p = start(cmd, env, rt, log)
            ok = rt.ready.wait(60)
            samples.append((time.perf_counter() - t0) * 1000 if ok else float("nan"))
            p.kill(); p.wait()
        rt.events.put(None); rt.server.shutdown()
    return samples


def answers(cmd, env, events):
    """Every event through one process: [(answer kind, parsed answer)], and its log."""
    rt = Runtime()
    out = []
    with tempfile.TemporaryFile() as log:
        p = start(cmd, env, rt, log)
        for i, (name, _) in enumerate(events):
            rid = f"req-{i}"
            rt.events.put((rid, open(os.path.join("tests/events", name), "rb").read()))
            got = rt.wait(rid, 120) or ("timeout", b"null")
            try:
                out.append((got[0], json.loads(got[1] or b"null")))
            except ValueError:
                out.append((got[0], got[1].decode(errors="replace")))
        rt.events.put(None)
        p.kill(); p.wait()
        log.seek(0)
        text = log.read().decode(errors="replace")
    rt.server.shutdown()
    return out, text


def shape(answer):
    """What must match between builds: status code and JSON keys."""
    kind, value = answer
    if isinstance(value, dict) and "statusCode" in value:
        try:
            body = json.loads(value.get("body") or "null")
        except ValueError:
            body = None
        return kind, value["statusCode"], sorted(body) if isinstance(body, dict) else type(body).__name__
    return kind, sorted(value) if isinstance(value, dict) else type(value).__name__


def glibc_needed(path):
    """The newest GLIBC_x.y symbol version the binary needs (readelf -V)."""
    out = subprocess.run(["readelf", "-V", "--wide", path], capture_output=True, text=True, check=True).stdout
    versions = [tuple(map(int, v)) for v in re.findall(r"Name: GLIBC_(\d+)\.(\d+)", out)]
    return max(versions, default=(0, 0))


def meets(answer, expect):
    kind, value = answer
    if kind != "response" or not isinstance(value, dict):
        return False
    return value.get("statusCode") == expect if isinstance(expect, int) else expect in value


def main():
    build_dir, x86_dir, env_arg = sys.argv[1:4]
    users = json.load(open(os.environ["CE_IAM_USERS"]))["functions"]
    base = dict(os.environ, **dict(kv.split("=", 1) for kv in env_arg.split(",")),
                AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256", AWS_LAMBDA_FUNCTION_VERSION="1")
    passed = failed = 0
    rows = []
    for fn, (logical, events) in FUNCTIONS.items():
        user = users[logical]
        env = dict(base, AWS_LAMBDA_FUNCTION_NAME=fn, AWS_ACCESS_KEY_ID=user["access_key_id"],
                   AWS_SECRET_ACCESS_KEY=user["secret_access_key"])
        arm = QEMU + [os.path.join(build_dir, f"{logical}", "bootstrap")]
        x86 = [os.path.join(x86_dir, fn)]
        need = glibc_needed(arm[-1])
        ok = need <= LAMBDA_GLIBC
        passed, failed = passed + ok, failed + (not ok)
        print(f"{'ok  ' if ok else 'FAIL'} {fn} arm64 needs glibc {need[0]}.{need[1]} "
              f"(provided.al2023 has {LAMBDA_GLIBC[0]}.{LAMBDA_GLIBC[1]})")
        arm_init, x86_init = init_times(arm, env), init_times(x86, env)
        arm_out, arm_log = answers(arm, env, events)
        x86_out, _ = answers(x86, env, events)
        fn_failed = False
        for (name, expect), a, x in zip(events, arm_out, x86_out):
            ok = meets(a, expect) and shape(a) == shape(x)
            fn_failed |= not ok
            passed, failed = passed + ok, failed + (not ok)
            print(f"{'ok  ' if ok else 'FAIL'} {fn} arm64 {name} -> {shape(a)}" +
                  ("" if ok else f"\n     expected {expect!r}, x86_64 answered {shape(x)}; arm64 answer {a}"))
        if fn_failed:
            print(f"     {fn} arm64 log (last 2000 chars):\n{arm_log[-2000:]}")
        size = os.path.getsize(arm[-1]) / 1e6
        rows.append(f"{fn:<11} {size:5.2f} MB  init arm64 (emulated, qemu) median {statistics.median(arm_init):7.1f} ms "
                    f"(min {min(arm_init):.1f}, max {max(arm_init):.1f}) | x86_64 native debug median "
                    f"{statistics.median(x86_init):6.1f} ms")
    print("\n".join(rows))
    print(f"arm64 smoke: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
