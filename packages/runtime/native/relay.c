/* `relay`: a TCP connection to a port inside the sandbox's netns, spliced to stdio. */
#include "corral-nsenter.h"

static int try_connect(int family, int port) {
  int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  int r;
  if (family == AF_INET) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r = connect(s, (struct sockaddr *)&a, sizeof a);
  } else {
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    a.sin6_addr = in6addr_loopback;
    r = connect(s, (struct sockaddr *)&a, sizeof a);
  }
  if (r < 0) { close(s); return -1; }
  return s;
}

static int pump(int from, int to) {
  ssize_t n = splice(from, NULL, to, NULL, 1 << 16, SPLICE_F_MOVE);
  if (n < 0 && errno == EINVAL) {
    char buf[65536];
    n = read(from, buf, sizeof buf);
    for (ssize_t off = 0; n > 0 && off < n;) {
      ssize_t w = write(to, buf + off, (size_t)(n - off));
      if (w <= 0) return -1;
      off += w;
    }
  }
  return (int)n;
}

int cmd_relay(int argc, char **argv) {
  pid_t init = 0;
  unsigned long long init_start = 0;
  int port = 0, status_fd = -1;
  for (int i = 0; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--pid")) init = (pid_t)atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--pid-start")) init_start = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--status-fd")) status_fd = atoi(argv[i + 1]);
  }
  if (init <= 0 || port <= 0 || port > 65535) { fprintf(stderr, "corral-nsenter: relay needs --pid and --port\n"); return 125; }
  join_namespaces(init, 0, init_start);
  int s = try_connect(AF_INET, port);
  if (s < 0) s = try_connect(AF_INET6, port);
  if (s < 0) {
    report(status_fd, NULL, "refused\n", 0);
    return 3;
  }
  report(status_fd, NULL, "ok\n", 0);
  if (status_fd >= 0) close(status_fd);
  signal(SIGPIPE, SIG_IGN);
  int in_open = 1, out_open = 1;
  while (out_open) {
    struct pollfd p[2] = {{.fd = in_open ? 0 : -1, .events = POLLIN}, {.fd = s, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (in_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (pump(0, s) <= 0) { in_open = 0; shutdown(s, SHUT_WR); }
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (pump(s, 1) <= 0) { out_open = 0; close(1); }
    }
  }
  return 0;
}
