"""Python's socketserver for the bench.

    python3 py_server.py <TCPServer|ThreadingTCPServer|ForkingTCPServer|UDPServer> <echo|burn>
    python3 py_server.py --calibrate [ms]     # iterations of burn() that take ms of CPU time

Prints {"host", "port"} once listening; SIGTERM ends it (and its forked children, by the driver's
process-group kill). burn() does BENCH_BURN_ITERS_PY iterations, calibrated by the driver.
"""
import json, os, signal, socketserver, sys, time

ITERS = int(os.environ.get('BENCH_BURN_ITERS_PY') or 400000)
sink = 1


def work(iters):
    global sink
    x = sink
    for i in range(iters):
        x = ((x ^ (x >> 15)) * 0x2c1b3c6d + i) & 0xffffffff
    sink = x | 1
    return x


def calibrate(ms):
    probe = 200000
    work(probe)
    best = float('inf')
    for _ in range(5):
        t0 = time.process_time()
        work(probe)
        best = min(best, time.process_time() - t0)
    return round(probe * ms / 1000 / best)


class Stream(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            if body == 'burn':
                work(ITERS)
                self.wfile.write(b'done\n')
            else:
                self.wfile.write(line)


class Datagram(socketserver.DatagramRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.read())


if __name__ == '__main__':
    if sys.argv[1] == '--calibrate':
        print(calibrate(float(sys.argv[2]) if len(sys.argv) > 2 else 20))
        sys.exit(0)
    kind, body = sys.argv[1], sys.argv[2]

    class Server(getattr(socketserver, kind)):
        allow_reuse_address = True
        request_queue_size = 511
        daemon_threads = True
        max_children = 64

    server = Server(('127.0.0.1', 0), Datagram if kind == 'UDPServer' else Stream)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(json.dumps({'host': '127.0.0.1', 'port': server.server_address[1]}), flush=True)
    server.serve_forever(poll_interval=0.05)
