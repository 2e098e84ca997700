/*
 * The native load generator: one thread, epoll, non-blocking sockets. The driver compiles it into
 * bench/.build/loadgen when a C compiler is present (otherwise bench/loadgen.js does the same work,
 * at a higher CPU cost per request). It drives one server with one workload for a fixed time and
 * prints one JSON line with the same fields as loadgen.js: rate, mbps, p50us, p99us, count, errors,
 * loadgenCpu (its own CPU time over wall time: near 1.0 means the generator may have been the limit).
 *
 *   loadgen <pingpong|pipeline|nest|udp|stream|connrate> <conns> <seconds> <host:port|unix:/path> [echo|burn|proxy] [ramp] [n] [window]
 *
 * It runs `ramp` + `seconds` and counts only the last `seconds` (rates, bytes, latencies).
 *
 * pingpong  keep-alive ping-pong of 64-byte lines (or "burn\n" -> "done\n"), one in flight per connection
 * pipeline  the same with `n` (default 100) 64-byte lines in one write, all their replies awaited; counts lines
 * frames    4-byte big-endian length-prefixed frames of `n` bytes: `window` 1 is ping-pong over `conns`
 *           connections, a larger window streams over one connection as `stream` does
 * nest      the same in NestJS's TCP framing: `<length>#{"pattern":"echo","data":...,"id":...}`
 * udp       one datagram in flight per client socket; a lost one is resent after 200 ms
 * stream    one connection, 64 KiB lines, a window of 8 in flight; MB/s of echoed bytes
 * connrate  connect, send one line, half-close, read the echo to EOF, close; again. With `proxy` for
 *           [echo|burn], a PROXY protocol v1 header goes first, in its own send() as HAProxy sends it
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define WINDOW 8
#define MAXCONN 1024

enum kind { PINGPONG, PIPELINE, FRAMES, NEST, UDP, STREAM, CONNRATE };

struct conn {
  int fd;
  int connected;
  int64_t sent_at;          /* µs, monotonic */
  size_t got;               /* bytes of the current reply */
  size_t nest_len;          /* NestJS framing: 0 while reading the length prefix */
  size_t nest_body;         /* bytes of the body still to skip */
  char nest_prefix[24];
  size_t nest_prefix_len;
  uint64_t seq;
};

static enum kind workload;
static int nconns;
static double seconds;
static int is_unix;
static struct sockaddr_storage addr;
static socklen_t addrlen;
static int burn;
static int proxy_v1; /* connrate: a PROXY v1 header before the line */
static const char PROXY_V1[] = "PROXY TCP4 198.51.100.7 127.0.0.1 40000 6380\r\n";
static int batch = 1; /* lines per request: 1, or the pipeline's batch */
static int ep;
static struct conn conns[MAXCONN];

static uint32_t *lat;
static size_t nlat, caplat;
static uint64_t count, bytes, errors;
static int64_t t_start, t_measure, t_deadline; /* run start, end of the ramp, end */
static double ramp;

static char line[64];
static char reqbuf[256];
static char *batchbuf; /* pipeline: `batch` lines; frames: one frame of `framelen` bytes, its prefix included */
static size_t framelen;
static int window = WINDOW; /* stream and frames: units in flight */
static size_t reqlen, replylen;
static char chunk[CHUNK];
static char rbuf[CHUNK];

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void record(int64_t us) {
  if (nlat == caplat) {
    caplat = caplat ? caplat * 2 : 65536;
    lat = realloc(lat, caplat * sizeof *lat);
    if (!lat) { perror("realloc"); exit(2); }
  }
  lat[nlat++] = (uint32_t)(us < 0 ? 0 : us);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* A non-blocking connect has completed: 0 when it succeeded, else its errno. */
static int connect_error(int fd) {
  int err = 0;
  socklen_t el = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
  return err;
}

static void drop(int i);
static void watch(int i, uint32_t events, int op);

/*
 * After the measurement: half-close every connection and read it to EOF (bounded, 2 s), so servers
 * see a clean end of input, not a reset of a connection with a reply still on its way.
 */
static void drain(void) {
  if (workload == UDP) return;
  int open = 0;
  for (int i = 0; i < nconns; i++) {
    struct conn *c = &conns[i];
    if (c->fd < 0) continue;
    if (c->connected) {
      shutdown(c->fd, SHUT_WR);
      watch(i, EPOLLIN, EPOLL_CTL_MOD);
    } else {
      watch(i, EPOLLOUT | EPOLLIN, EPOLL_CTL_MOD);
    }
    open++;
  }
  int64_t until = now_us() + 2000000;
  struct epoll_event evs[MAXCONN];
  while (open > 0 && now_us() < until) {
    int n = epoll_wait(ep, evs, MAXCONN, 50);
    for (int e = 0; e < n; e++) {
      int i = (int)evs[e].data.u32;
      struct conn *c = &conns[i];
      if (c->fd < 0) continue;
      if (!c->connected) {
        if (connect_error(c->fd)) { drop(i); open--; continue; }
        c->connected = 1;
        shutdown(c->fd, SHUT_WR);
        watch(i, EPOLLIN, EPOLL_CTL_MOD);
        continue;
      }
      for (;;) {
        ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
        if (r > 0) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        drop(i);
        open--;
        break;
      }
    }
  }
}

static void finish(void) {
  int64_t t_end = now_us();
  double wall = (t_end - t_measure) / 1e6;    /* the counted part */
  double total = (t_end - t_start) / 1e6;     /* the CPU share is over the whole run */
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  qsort(lat, nlat, sizeof *lat, cmp_u32);
  char p50[32] = "null", p99[32] = "null";
  if (nlat) {
    size_t i50 = (size_t)(nlat * 0.50), i99 = (size_t)(nlat * 0.99);
    if (i50 >= nlat) i50 = nlat - 1;
    if (i99 >= nlat) i99 = nlat - 1;
    snprintf(p50, sizeof p50, "%u", lat[i50]);
    snprintf(p99, sizeof p99, "%u", lat[i99]);
  }
  printf("{\"rate\":%.1f,\"mbps\":%.2f,\"p50us\":%s,\"p99us\":%s,\"count\":%llu,\"errors\":%llu,\"loadgenCpu\":%.3f,\"loadgen\":\"c\"}\n",
         count / wall, bytes / wall / 1e6, p50, p99, (unsigned long long)count, (unsigned long long)errors, cpu / total);
  fflush(stdout);
  drain();
  exit(0);
}

static void parse_target(const char *t) {
  memset(&addr, 0, sizeof addr);
  if (strncmp(t, "unix:", 5) == 0) {
    struct sockaddr_un *un = (struct sockaddr_un *)&addr;
    un->sun_family = AF_UNIX;
    strncpy(un->sun_path, t + 5, sizeof un->sun_path - 1);
    addrlen = sizeof *un;
    is_unix = 1;
    return;
  }
  const char *colon = strrchr(t, ':');
  if (!colon) { fprintf(stderr, "loadgen: bad target %s\n", t); exit(2); }
  char host[128];
  size_t hl = (size_t)(colon - t);
  if (hl >= sizeof host) hl = sizeof host - 1;
  memcpy(host, t, hl);
  host[hl] = 0;
  int port = atoi(colon + 1);
  struct sockaddr_in *in4 = (struct sockaddr_in *)&addr;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(port);
    addrlen = sizeof *in4;
  } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    addrlen = sizeof *in6;
  } else {
    fprintf(stderr, "loadgen: bad host %s\n", host);
    exit(2);
  }
}

static int new_socket(int type) {
  int fd = socket(addr.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { perror("socket"); exit(2); }
  if (type == SOCK_STREAM && !is_unix) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

static void watch(int i, uint32_t events, int op) {
  struct epoll_event ev = { .events = events, .data.u32 = (uint32_t)i };
  if (epoll_ctl(ep, op, conns[i].fd, &ev) < 0) { perror("epoll_ctl"); exit(2); }
}

/* A connection that failed or that the server closed: it takes no further part. */
static void drop(int i) {
  if (conns[i].fd >= 0) {
    epoll_ctl(ep, EPOLL_CTL_DEL, conns[i].fd, NULL);
    close(conns[i].fd);
    conns[i].fd = -1;
  }
}

static void build_request(struct conn *c) {
  if (workload == NEST) {
    char body[200];
    int bl = snprintf(body, sizeof body, "{\"pattern\":\"echo\",\"data\":\"%.*s\",\"id\":\"%llu\"}", 63, line,
                      (unsigned long long)++c->seq);
    reqlen = (size_t)snprintf(reqbuf, sizeof reqbuf, "%d#%s", bl, body);
  }
}

static void send_request(int i) {
  struct conn *c = &conns[i];
  build_request(c);
  const char *buf = workload == NEST ? reqbuf : workload == PIPELINE || workload == FRAMES ? batchbuf : (burn ? "burn\n" : line);
  size_t len = workload == NEST ? reqlen : workload == PIPELINE ? (size_t)batch * 64 : workload == FRAMES ? framelen : (burn ? 5 : 64);
  c->sent_at = now_us();
  c->got = 0;
  ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
  if (n != (ssize_t)len) { /* a fresh small request on an empty socket buffer always fits */
    if (workload == UDP && n < 0 && (errno == EAGAIN || errno == ECONNREFUSED)) return; /* resent by the timer */
    errors++;
    drop(i);
  }
}

/* NestJS framing: returns how many whole responses the bytes completed. */
static int nest_feed(struct conn *c, const char *p, size_t n) {
  int done = 0;
  while (n > 0) {
    if (c->nest_body > 0) {
      size_t take = n < c->nest_body ? n : c->nest_body;
      c->nest_body -= take;
      p += take;
      n -= take;
      if (c->nest_body == 0) done++;
      continue;
    }
    char ch = *p++;
    n--;
    if (ch == '#') {
      c->nest_prefix[c->nest_prefix_len] = 0;
      c->nest_body = (size_t)strtoull(c->nest_prefix, NULL, 10);
      c->nest_prefix_len = 0;
      if (c->nest_body == 0) done++;
    } else if (c->nest_prefix_len < sizeof c->nest_prefix - 1) {
      c->nest_prefix[c->nest_prefix_len++] = ch;
    }
  }
  return done;
}

static int live(void) { return now_us() < t_deadline; }
/* Counted only after the ramp: a new connection's first round trips (TCP slow start, buffer autotuning) are not the steady state. */
static int counting(int64_t t) { return t >= t_measure; }

static void start_clock(void) {
  t_start = now_us();
  t_measure = t_start + (int64_t)(ramp * 1e6);
  t_deadline = t_measure + (int64_t)(seconds * 1e6);
}

static void connect_blocking_all(int type) {
  for (int i = 0; i < nconns; i++) {
    int fd = socket(addr.ss_family, type | SOCK_CLOEXEC, 0);
    if (fd < 0) { perror("socket"); exit(2); }
    if (connect(fd, (struct sockaddr *)&addr, addrlen) < 0) { perror("connect"); exit(3); }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (type == SOCK_STREAM && !is_unix) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    conns[i].fd = fd;
    conns[i].connected = 1;
    watch(i, EPOLLIN, EPOLL_CTL_ADD);
  }
}

/* ---- keep-alive ping-pong (TCP, Unix, NestJS framing) and UDP ---- */

static void run_pingpong(void) {
  replylen = burn ? 5 : workload == FRAMES ? framelen : (size_t)batch * 64;
  connect_blocking_all(workload == UDP ? SOCK_DGRAM : SOCK_STREAM);
  start_clock();
  for (int i = 0; i < nconns; i++) send_request(i);
  struct epoll_event evs[MAXCONN];
  for (;;) {
    int64_t left = t_deadline - now_us();
    if (left <= 0) break;
    int timeout = (int)(left / 1000) + 1;
    if (workload == UDP && timeout > 50) timeout = 50;
    int n = epoll_wait(ep, evs, MAXCONN, timeout);
    int64_t t = now_us();
    for (int e = 0; e < n; e++) {
      int i = (int)evs[e].data.u32;
      struct conn *c = &conns[i];
      if (c->fd < 0) continue;
      for (;;) {
        ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (r < 0 && workload == UDP && errno == ECONNREFUSED) break;
        if (r <= 0) { errors++; drop(i); break; }
        int done;
        if (workload == UDP) done = 1;
        else if (workload == NEST) done = nest_feed(c, rbuf, (size_t)r);
        else {
          c->got += (size_t)r;
          done = (int)(c->got / replylen);
          c->got %= replylen;
        }
        for (int d = 0; d < done && counting(t); d++) {
          count += (uint64_t)batch; /* a pipelined batch counts its lines; its latency is the batch's */
          if (workload == FRAMES) bytes += framelen;
          record(t - c->sent_at);
        }
        if (done > 0) {
          /* the reply is whole and it was the only request in flight: nothing more to read now */
          if (t < t_deadline) send_request(i);
          break;
        }
      }
    }
    if (workload == UDP) { /* resend a datagram lost for 200 ms */
      for (int i = 0; i < nconns; i++)
        if (conns[i].fd >= 0 && t - conns[i].sent_at > 200000) send_request(i);
    }
  }
  finish();
}

/* ---- streaming ---- */

static void run_stream(void) {
  /* the unit: a 64 KiB line, or (frames) one length-prefixed frame */
  const char *unit = workload == FRAMES ? batchbuf : chunk;
  const uint64_t unitlen = workload == FRAMES ? framelen : CHUNK;
  memset(chunk, 'y', sizeof chunk);
  chunk[CHUNK - 1] = '\n';
  nconns = 1;
  connect_blocking_all(SOCK_STREAM);
  struct conn *c = &conns[0];
  start_clock();
  uint64_t credit = (uint64_t)window * unitlen; /* bytes we may still send */
  uint64_t sent = 0, echoed_mod = 0;
  int want_out = 1;
  watch(0, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
  struct epoll_event evs[4];
  while (live()) {
    int n = epoll_wait(ep, evs, 4, (int)((t_deadline - now_us()) / 1000) + 1);
    for (int e = 0; e < n; e++) {
      if (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (;;) {
          ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
          if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          if (r <= 0) { errors++; finish(); }
          int counted = counting(now_us());
          if (counted) bytes += (uint64_t)r;
          echoed_mod += (uint64_t)r;
          while (echoed_mod >= unitlen) {
            echoed_mod -= unitlen;
            if (counted) count++;
            credit += unitlen;
          }
        }
      }
      if (credit > 0) {
        while (credit > 0) {
          size_t off = (size_t)(sent % unitlen);
          size_t len = (size_t)unitlen - off;
          if (len > credit) len = (size_t)credit;
          ssize_t w = send(c->fd, unit + off, len, MSG_NOSIGNAL);
          if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          if (w <= 0) { errors++; finish(); }
          sent += (uint64_t)w;
          credit -= (uint64_t)w;
        }
      }
      int need_out = credit > 0;
      if (need_out != want_out) {
        want_out = need_out;
        watch(0, EPOLLIN | (want_out ? EPOLLOUT : 0), EPOLL_CTL_MOD);
      }
    }
  }
  finish();
}

/* ---- connection rate ---- */

/* The one request of a connection: (the PROXY header,) the line, then the half-close. */
static void send_once(int fd) {
  if (proxy_v1) send(fd, PROXY_V1, sizeof PROXY_V1 - 1, MSG_NOSIGNAL);
  send(fd, line, 64, MSG_NOSIGNAL);
  shutdown(fd, SHUT_WR);
}

static void conn_start(int i) {
  struct conn *c = &conns[i];
  c->fd = new_socket(SOCK_STREAM);
  c->connected = 0;
  c->got = 0;
  c->sent_at = now_us();
  int r = connect(c->fd, (struct sockaddr *)&addr, addrlen);
  if (r == 0) {
    c->connected = 1;
    send_once(c->fd);
    watch(i, EPOLLIN, EPOLL_CTL_ADD);
  } else if (errno == EINPROGRESS || errno == EAGAIN) {
    watch(i, EPOLLOUT, EPOLL_CTL_ADD);
  } else {
    errors++;
    close(c->fd);
    c->fd = -1;
  }
}

static void run_connrate(void) {
  start_clock();
  for (int i = 0; i < nconns; i++) conn_start(i);
  struct epoll_event evs[MAXCONN];
  while (live()) {
    int n = epoll_wait(ep, evs, MAXCONN, (int)((t_deadline - now_us()) / 1000) + 1);
    for (int e = 0; e < n; e++) {
      int i = (int)evs[e].data.u32;
      struct conn *c = &conns[i];
      if (c->fd < 0) continue;
      if (!c->connected) {
        if (connect_error(c->fd)) { errors++; drop(i); if (live()) conn_start(i); continue; }
        c->connected = 1;
        send_once(c->fd);
        watch(i, EPOLLIN, EPOLL_CTL_MOD);
        continue;
      }
      for (;;) {
        ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (r > 0) { c->got += (size_t)r; continue; }
        /* EOF (or an error): the exchange is over */
        int64_t t = now_us();
        if (r == 0 && c->got >= 64) { if (counting(t)) { count++; record(t - c->sent_at); } }
        else errors++;
        drop(i);
        if (live()) conn_start(i);
        break;
      }
    }
  }
  finish();
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: loadgen <pingpong|pipeline|frames|nest|udp|stream|connrate> <conns> <seconds> <host:port|unix:path> [echo|burn|proxy] [ramp seconds] [n] [window]\n");
    return 2;
  }
  const char *w = argv[1];
  workload = !strcmp(w, "pingpong") ? PINGPONG : !strcmp(w, "pipeline") ? PIPELINE : !strcmp(w, "frames") ? FRAMES : !strcmp(w, "nest") ? NEST : !strcmp(w, "udp") ? UDP
           : !strcmp(w, "stream") ? STREAM : !strcmp(w, "connrate") ? CONNRATE : -1;
  if ((int)workload < 0) { fprintf(stderr, "loadgen: unknown workload %s\n", w); return 2; }
  nconns = atoi(argv[2]);
  if (nconns < 1 || nconns > MAXCONN) { fprintf(stderr, "loadgen: conns must be 1..%d\n", MAXCONN); return 2; }
  seconds = atof(argv[3]);
  parse_target(argv[4]);
  burn = argc > 5 && !strcmp(argv[5], "burn");
  proxy_v1 = argc > 5 && !strcmp(argv[5], "proxy");
  ramp = argc > 6 ? atof(argv[6]) : 0;
  memset(line, 'x', 63);
  line[63] = '\n';
  if (workload == PIPELINE) {
    batch = argc > 7 ? atoi(argv[7]) : 100;
    if (batch < 1 || batch > 1000) { fprintf(stderr, "loadgen: batch must be 1..1000\n"); return 2; }
    batchbuf = malloc((size_t)batch * 64);
    for (int b = 0; b < batch; b++) memcpy(batchbuf + b * 64, line, 64);
  }
  if (workload == FRAMES) {
    long size = argc > 7 ? atol(argv[7]) : 64;
    window = argc > 8 ? atoi(argv[8]) : 1;
    if (size < 0 || size > 16 * 1024 * 1024 || window < 1 || window > 64 || (window > 1 && nconns > 1)) {
      fprintf(stderr, "loadgen: frames need a size of 0..16 MiB and a window of 1..64 (above 1: one connection)\n");
      return 2;
    }
    framelen = 4 + (size_t)size;
    batchbuf = malloc(framelen);
    memset(batchbuf, 'z', framelen);
    batchbuf[0] = (char)(size >> 24);
    batchbuf[1] = (char)(size >> 16);
    batchbuf[2] = (char)(size >> 8);
    batchbuf[3] = (char)size;
  }
  for (int i = 0; i < MAXCONN; i++) conns[i].fd = -1;
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (workload == STREAM || (workload == FRAMES && window > 1)) run_stream();
  else if (workload == CONNRATE) run_connrate();
  else run_pingpong();
  return 0;
}
