# Init time of a Lambda bootstrap: from exec until it first asks the Runtime
# API for an invocation (which it does once its init is done).
import http.server, os, socketserver, statistics, subprocess, sys, threading, time
fn, env_extra = sys.argv[1], dict(kv.split("=", 1) for kv in sys.argv[2].split(","))
ready = threading.Event()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if "/runtime/invocation/next" in self.path:
            ready.set()
            time.sleep(0.2)
        self.send_response(500); self.end_headers()
    def log_message(self, *a): pass
srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H); srv.daemon_threads = True
threading.Thread(target=srv.serve_forever, daemon=True).start()
samples = []
for _ in range(7):
    ready.clear()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{srv.server_address[1]}", AWS_LAMBDA_FUNCTION_NAME=fn,
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256", AWS_LAMBDA_FUNCTION_VERSION="1", **env_extra)
    t0 = time.perf_counter()
    p = subprocess.Popen([f"target/lambda/{fn}/bootstrap"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = ready.wait(30)
    samples.append((time.perf_counter() - t0) * 1000 if ok else float("nan"))
    p.kill(); p.wait()
print(f"{fn}: init median {statistics.median(samples):.1f} ms (min {min(samples):.1f}, max {max(samples):.1f}, 7 runs)")
