/*
 * hload: a minimal HTTP/1.1 keep-alive load generator for the benchmark harness.
 *
 * wrk 4.1 cannot measure HEAD: its response parser waits for the Content-Length body that a
 * HEAD response announces but never sends (wg/wrk#198), so every connection stalls.  This tool
 * fills that gap: one epoll thread, C connections, one request in flight per connection, a fixed
 * request, and per-request latencies kept exactly (sorted at the end for the percentiles).
 *
 *   hload -c 32 -d 5 -w 1 -m HEAD -H 'Accept: x/y' http://127.0.0.1:PORT/path
 *
 * Prints one JSON object: requests, errors, non2xx, seconds, rps, bytes, p50_ms, p90_ms,
 * p99_ms, max_ms.  Loopback only; it runs for the given duration and stops by itself.
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
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define BUF_MAX (1 << 20)

typedef struct {
    int fd;
    int connecting;
    int has_headers;
    int head_only; /* response carries no body */
    int chunked;
    int close_after;
    int status;
    size_t len;       /* bytes in buf */
    size_t hdr_end;   /* offset of the body in buf */
    uint64_t remaining; /* Content-Length body bytes still to come */
    uint64_t started;
    char *buf;
} conn_t;

static struct sockaddr_in addr;
static char request[8192];
static size_t request_len;
static int is_head;
static int epfd;
static uint64_t *samples;
static size_t nsamples, cap_samples;
static uint64_t requests, errors, non2xx, bytes_read;
static int recording;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg) {
    perror(msg);
    exit(2);
}

static void record(uint64_t latency) {
    if (!recording) return;
    if (nsamples == cap_samples) {
        cap_samples = cap_samples ? cap_samples * 2 : 65536;
        samples = realloc(samples, cap_samples * sizeof(uint64_t));
        if (!samples) die("realloc");
    }
    samples[nsamples++] = latency;
}

static void send_request(conn_t *c) {
    c->len = 0;
    c->has_headers = 0;
    c->started = now_ns();
    size_t off = 0;
    while (off < request_len) { /* small request into an empty socket buffer: never blocks long */
        ssize_t n = write(c->fd, request + off, request_len - off);
        if (n < 0 && errno == EAGAIN) continue;
        if (n < 0) return; /* the read side sees the error */
        off += (size_t)n;
    }
}

static void open_conn(conn_t *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->connecting = 1;
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS)
        die("connect");
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
}

static void reopen(conn_t *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    open_conn(c);
}

/* Parse the status line and headers once "\r\n\r\n" has arrived. */
static int parse_headers(conn_t *c) {
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) return 0;
    c->hdr_end = (size_t)(end - c->buf) + 4;
    c->status = (c->len > 12) ? atoi(c->buf + 9) : 0;
    c->chunked = 0;
    c->close_after = 0;
    uint64_t content_length = 0;
    int has_length = 0;
    char *line = memchr(c->buf, '\n', c->hdr_end);
    while (line && line + 1 < c->buf + c->hdr_end - 2) {
        line++;
        if (strncasecmp(line, "content-length:", 15) == 0) {
            content_length = strtoull(line + 15, NULL, 10);
            has_length = 1;
        } else if (strncasecmp(line, "transfer-encoding:", 18) == 0) {
            c->chunked = memmem(line, 64, "chunked", 7) != NULL;
        } else if (strncasecmp(line, "connection:", 11) == 0) {
            c->close_after = memmem(line, 32, "close", 5) != NULL;
        }
        line = memchr(line, '\n', (size_t)(c->buf + c->hdr_end - line));
    }
    c->head_only = is_head || c->status == 204 || c->status == 304 || c->status < 200;
    if (c->head_only) c->chunked = 0;
    if (!c->head_only && !c->chunked && !has_length) c->close_after = 1;
    c->remaining = (c->head_only || c->chunked) ? 0 : content_length;
    c->has_headers = 1;
    /* Content-Length bodies are counted, not kept. */
    if (!c->chunked) {
        size_t body = c->len - c->hdr_end;
        c->remaining = body >= c->remaining ? 0 : c->remaining - body;
        c->len = c->hdr_end;
    }
    return 1;
}

/* 1 when a chunked body is complete in buf. */
static int chunked_done(conn_t *c) {
    size_t pos = c->hdr_end;
    for (;;) {
        char *eol = memmem(c->buf + pos, c->len - pos, "\r\n", 2);
        if (!eol) return 0;
        unsigned long size = strtoul(c->buf + pos, NULL, 16);
        pos = (size_t)(eol - c->buf) + 2;
        if (size == 0) return memmem(c->buf + pos, c->len - pos, "\r\n", 2) != NULL;
        pos += size + 2;
        if (pos > c->len) return 0;
    }
}

static void on_readable(conn_t *c) {
    for (;;) {
        if (c->len == BUF_MAX) { /* only chunked bodies are kept; refuse huge ones */
            fprintf(stderr, "hload: response too large\n");
            exit(2);
        }
        ssize_t n = read(c->fd, c->buf + c->len, BUF_MAX - c->len);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            errors++;
            reopen(c);
            return;
        }
        if (n < 0) return;
        if (recording) bytes_read += (uint64_t)n;
        c->len += (size_t)n;
        if (!c->has_headers && !parse_headers(c)) continue;
        if (!c->chunked) {
            size_t body = c->len - c->hdr_end;
            c->remaining = body >= c->remaining ? 0 : c->remaining - body;
            c->len = c->hdr_end;
        }
        if (c->chunked ? chunked_done(c) : c->remaining == 0) break;
    }
    record(now_ns() - c->started);
    if (recording) {
        requests++;
        if (c->status < 200 || c->status > 399) non2xx++;
    }
    if (c->close_after) {
        reopen(c);
        return;
    }
    send_request(c);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double pct(double p) {
    if (nsamples == 0) return 0;
    size_t rank = (size_t)(p / 100.0 * (double)nsamples + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > nsamples) rank = nsamples;
    return (double)samples[rank - 1] / 1e6;
}

int main(int argc, char **argv) {
    int nconns = 32;
    double duration = 5, warmup = 0;
    const char *method = "GET";
    char headers[4096] = "";
    int opt;
    while ((opt = getopt(argc, argv, "c:d:w:m:H:")) != -1) {
        switch (opt) {
        case 'c': nconns = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'm': method = optarg; break;
        case 'H':
            strncat(headers, optarg, sizeof(headers) - strlen(headers) - 3);
            strcat(headers, "\r\n");
            break;
        default: fprintf(stderr, "usage: hload [-c N] [-d S] [-w S] [-m M] [-H h] URL\n"); return 2;
        }
    }
    if (optind >= argc || nconns < 1 || nconns > MAX_CONNS) return 2;
    char host[256], path[4096] = "/";
    int port = 80;
    if (sscanf(argv[optind], "http://%255[^:/]:%d%4095s", host, &port, path) < 2) {
        fprintf(stderr, "hload: URL must be http://IP:PORT/path\n");
        return 2;
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "hload: host must be an IPv4 address\n");
        return 2;
    }
    is_head = strcmp(method, "HEAD") == 0;
    request_len = (size_t)snprintf(request, sizeof(request),
                                   "%s %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: hload\r\n%s\r\n",
                                   method, path, host, port, headers);
    epfd = epoll_create1(0);
    if (epfd < 0) die("epoll_create1");
    conn_t *conns = calloc((size_t)nconns, sizeof(conn_t));
    for (int i = 0; i < nconns; i++) {
        conns[i].buf = malloc(BUF_MAX);
        open_conn(&conns[i]);
    }
    uint64_t start = now_ns();
    uint64_t measure_from = start + (uint64_t)(warmup * 1e9);
    uint64_t stop_at = measure_from + (uint64_t)(duration * 1e9);
    recording = warmup <= 0;
    struct epoll_event events[MAX_CONNS];
    for (;;) {
        uint64_t t = now_ns();
        if (!recording && t >= measure_from) recording = 1;
        if (t >= stop_at) break;
        if (requests == 0 && errors > 10000) {
            fprintf(stderr, "hload: no successful request, giving up\n");
            return 1;
        }
        int n = epoll_wait(epfd, events, MAX_CONNS, 50);
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (c->connecting) {
                int err = 0;
                socklen_t len = sizeof(err);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    errors++;
                    usleep(1000);
                    reopen(c);
                    continue;
                }
                c->connecting = 0;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                send_request(c);
                continue;
            }
            on_readable(c);
        }
    }
    double seconds = (double)(now_ns() - measure_from) / 1e9;
    qsort(samples, nsamples, sizeof(uint64_t), cmp_u64);
    printf("{\"requests\": %llu, \"errors\": %llu, \"non2xx\": %llu, \"seconds\": %.4f, "
           "\"rps\": %.2f, \"bytes\": %llu, \"p50_ms\": %.4f, \"p90_ms\": %.4f, "
           "\"p99_ms\": %.4f, \"max_ms\": %.4f}\n",
           (unsigned long long)requests, (unsigned long long)errors,
           (unsigned long long)non2xx, seconds, (double)requests / seconds,
           (unsigned long long)bytes_read, pct(50), pct(90), pct(99), pct(100));
    return 0;
}
