/*
 * The TLS load generator of bench/edge.js: a client that costs the server's machine as little CPU per
 * handshake as OpenSSL allows, so that the handshake rows measure the servers (a Node tls client spends
 * about as much per handshake as the server it drives, and was the bottleneck of those rows).
 *
 *   tlsgen handshakes <conns> <seconds> <host:port> [ramp seconds]
 *       each of <conns> threads loops: connect, a full TLS handshake (no session resumption), one 64-byte
 *       line, its echo, close. Rate: connections per second.
 *   tlsgen pingpong <conns> <seconds> <host:port> [ramp seconds]
 *       <conns> keep-alive TLS connections, each sending one 64-byte line and waiting for its echo, in a loop.
 *       Rate: round trips per second.
 *
 * Prints one JSON line: {"rate": r, "count": n, "errors": e, "seconds": s}; counts start after the ramp
 * (default 0.1 s). The certificate is not verified (the bench measures the server, not a client's checks).
 * Built by bench/native-loadgen.js with -lssl -lcrypto when OpenSSL's headers are there.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXTHREADS 256
#define LINE_LEN 64

static SSL_CTX *ctx;
static struct sockaddr_in addr;
static int64_t t_measure, t_deadline;
static atomic_ullong count, errors;
static char line[LINE_LEN];

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/** A TCP connection with TLS on it (a full handshake: the context caches no session), or NULL. */
static SSL *open_tls(int *fd_out) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return NULL;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    close(fd);
    return NULL;
  }
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  if (SSL_connect(ssl) != 1) {
    SSL_free(ssl);
    close(fd);
    return NULL;
  }
  *fd_out = fd;
  return ssl;
}

/** One line written and its echo read whole: 1, else 0. */
static int round_trip(SSL *ssl) {
  if (SSL_write(ssl, line, LINE_LEN) != LINE_LEN) return 0;
  char buf[LINE_LEN];
  int got = 0;
  while (got < LINE_LEN) {
    int r = SSL_read(ssl, buf + got, LINE_LEN - got);
    if (r <= 0) return 0;
    got += r;
  }
  return 1;
}

static void close_tls(SSL *ssl, int fd) {
  SSL_free(ssl); /* no close_notify: the connection ends with a FIN, as edge-client.js's destroy() does */
  close(fd);
}

static void *handshakes(void *arg) {
  (void)arg;
  while (now_us() < t_deadline) {
    int fd;
    SSL *ssl = open_tls(&fd);
    if (!ssl) {
      atomic_fetch_add(&errors, 1);
      usleep(1000);
      continue;
    }
    int ok = round_trip(ssl);
    close_tls(ssl, fd);
    if (!ok) atomic_fetch_add(&errors, 1);
    else if (now_us() >= t_measure) atomic_fetch_add(&count, 1);
  }
  return NULL;
}

static void *pingpong(void *arg) {
  (void)arg;
  int fd;
  SSL *ssl = open_tls(&fd);
  if (!ssl) {
    atomic_fetch_add(&errors, 1);
    return NULL;
  }
  while (now_us() < t_deadline) {
    if (!round_trip(ssl)) {
      atomic_fetch_add(&errors, 1);
      break;
    }
    if (now_us() >= t_measure) atomic_fetch_add(&count, 1);
  }
  close_tls(ssl, fd);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: tlsgen <handshakes|pingpong> <conns> <seconds> <host:port> [ramp seconds]\n");
    return 2;
  }
  int is_pingpong = strcmp(argv[1], "pingpong") == 0;
  if (!is_pingpong && strcmp(argv[1], "handshakes") != 0) {
    fprintf(stderr, "tlsgen: unknown workload %s\n", argv[1]);
    return 2;
  }
  int n = atoi(argv[2]);
  double seconds = atof(argv[3]);
  double ramp = argc > 5 ? atof(argv[5]) : 0.1;
  if (n < 1 || n > MAXTHREADS || !(seconds > 0)) {
    fprintf(stderr, "tlsgen: 1..%d connections and a positive time\n", MAXTHREADS);
    return 2;
  }
  char host[256];
  const char *colon = strrchr(argv[4], ':');
  if (!colon || (size_t)(colon - argv[4]) >= sizeof host) {
    fprintf(stderr, "tlsgen: target is host:port\n");
    return 2;
  }
  memcpy(host, argv[4], (size_t)(colon - argv[4]));
  host[colon - argv[4]] = 0;
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    fprintf(stderr, "tlsgen: an IPv4 address, not %s\n", host);
    return 2;
  }
  memset(line, 'x', LINE_LEN - 1);
  line[LINE_LEN - 1] = '\n';

  ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);

  int64_t start = now_us();
  t_measure = start + (int64_t)(ramp * 1e6);
  t_deadline = t_measure + (int64_t)(seconds * 1e6);
  pthread_t threads[MAXTHREADS];
  for (int i = 0; i < n; i++) pthread_create(&threads[i], NULL, is_pingpong ? pingpong : handshakes, NULL);
  for (int i = 0; i < n; i++) pthread_join(threads[i], NULL);
  double measured = (double)(now_us() - t_measure) / 1e6;
  unsigned long long c = atomic_load(&count);
  printf("{\"rate\":%.1f,\"count\":%llu,\"errors\":%llu,\"seconds\":%.3f}\n", (double)c / measured, c,
         (unsigned long long)atomic_load(&errors), measured);
  SSL_CTX_free(ctx);
  return 0;
}
