"""Python's socketserver for the bench: python3 py_server.py <TCPServer|ThreadingTCPServer|ForkingTCPServer|UDPServer> <echo|burn>"""
import json, socketserver, sys, time

kind, body = sys.argv[1], sys.argv[2]

def burn(ms):
    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        pass

class Stream(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            if body == 'burn':
                burn(20)
                self.wfile.write(b'done\n')
            else:
                self.wfile.write(line)

class Datagram(socketserver.DatagramRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.read())

class Server(getattr(socketserver, kind)):
    allow_reuse_address = True
    request_queue_size = 511
    daemon_threads = True
    max_children = 64

server = Server(('127.0.0.1', 0), Datagram if kind == 'UDPServer' else Stream)
print(json.dumps({'host': '127.0.0.1', 'port': server.server_address[1]}), flush=True)
try:
    server.serve_forever(poll_interval=0.05)
except KeyboardInterrupt:
    pass
