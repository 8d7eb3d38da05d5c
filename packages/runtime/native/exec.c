/* `exec`: run a command inside a sandbox, relaying its output or a pty, reporting its status. */
#include "corral-nsenter.h"

static volatile pid_t g_child = 0;
static int g_selfpipe[2] = {-1, -1};

static void on_sigchld(int sig) {
  (void)sig;
  int saved = errno;
  if (write(g_selfpipe[1], "c", 1) < 0) {
  }
  errno = saved;
}


/* Copy n bytes to fd; once the reader is gone (EPIPE) keep consuming so the writer never blocks. */
static void write_all(int fd, const char *buf, ssize_t n, int *broken) {
  for (ssize_t off = 0; !*broken && off < n;) {
    ssize_t w = write(fd, buf + off, (size_t)(n - off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) { *broken = 1; break; }
    off += w;
  }
}

/*
 * Relay the child's stdout/stderr until it exits, then drain what it left in the pipes. The
 * streams therefore end when the process exits even if a background process (`server &`)
 * inherited them; such late writers are fed to a small sink so they never see EPIPE.
 */
static int relay_output(pid_t child, int out, int err, uid_t uid, gid_t gid) {
  static char buf[65536];
  int src[2] = {out, err}, dst_broken[2] = {0, 0}, status = 0, exited = 0;
  while (!exited) {
    struct pollfd p[3] = {{.fd = src[0], .events = POLLIN}, {.fd = src[1], .events = POLLIN}, {.fd = g_selfpipe[0], .events = POLLIN}};
    if (poll(p, 3, -1) < 0 && errno != EINTR) die("poll");
    for (int k = 0; k < 2; k++) {
      if (src[k] < 0 || !(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(src[k], buf, sizeof buf);
      if (n > 0) write_all(k + 1, buf, n, &dst_broken[k]);
      else if (n == 0 || errno != EINTR) close(src[k]), src[k] = -1;
    }
    if (p[2].revents & POLLIN) {
      char c[64];
      while (read(g_selfpipe[0], c, sizeof c) > 0) {
      }
    }
    if (waitpid(child, &status, WNOHANG) == child) exited = 1;
  }
  int lingering = 0;
  for (int k = 0; k < 2; k++) {
    if (src[k] < 0) continue;
    fcntl(src[k], F_SETFL, O_NONBLOCK);
    for (;;) {
      ssize_t n = read(src[k], buf, sizeof buf);
      if (n > 0) { write_all(k + 1, buf, n, &dst_broken[k]); continue; }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) lingering = 1;
      else close(src[k]), src[k] = -1;
      break;
    }
  }
  /* Double fork: an orphan is re-parented to the reaper of its dead parent's pid namespace. This
   * process lives in the host's, so a direct child would end up a zombie under the host's pid 1
   * (still charged to the sandbox's pids limit); the intermediate lives in the sandbox's
   * namespace, so the sink is adopted and reaped by the sandbox's init. */
  pid_t middle = lingering ? fork() : -1;
  if (middle > 0) {
    while (waitpid(middle, NULL, 0) < 0 && errno == EINTR) {
    }
  }
  if (middle == 0 && fork() != 0) _exit(0);
  if (middle == 0) {
    prctl(PR_SET_NAME, "corral-sink", 0, 0, 0);
    for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
    for (int fd = 0; fd < 1024; fd++)
      if (fd != src[0] && fd != src[1]) close(fd);
    drop_privileges(uid, gid);
    for (int k = 0; k < 2; k++)
      if (src[k] >= 0) fcntl(src[k], F_SETFL, 0);
    for (int k = 0; k < 2; k++)
      while (src[k] >= 0 && read(src[k], buf, sizeof buf) > 0) {
      }
    _exit(0);
  }
  return status;
}

static void forward_signal(int sig) {
  if (g_child > 0) kill(-g_child, sig);
}

/* ---- pty: a terminal from the sandbox's own devpts, relayed to the caller's terminal ---- */

static volatile sig_atomic_t g_winch = 0;

static void on_sigwinch(int sig) {
  (void)sig;
  g_winch = 1;
  int saved = errno;
  if (write(g_selfpipe[1], "w", 1) < 0) {
  }
  errno = saved;
}

static void copy_winsize(int from, int to) {
  struct winsize ws;
  if (ioctl(from, TIOCGWINSZ, &ws) == 0) ioctl(to, TIOCSWINSZ, &ws);
}

/* Open a pty pair in the sandbox's /dev/pts, owned by the user and group tty (5). */
static int open_sandbox_pty(uid_t uid, int *slave) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) die("open /dev/ptmx");
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) die("unlock pty");
  *slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (*slave < 0) die("open pty peer");
  if (fchown(*slave, uid, 5) < 0) die("chown pty");
  fchmod(*slave, 0620);
  copy_winsize(0, master);
  /* The caller's terminal becomes a raw byte pipe (before the pid is reported, so no input is
   * echoed twice); line discipline and echo happen on the sandbox's pty. */
  struct termios raw;
  if (tcgetattr(0, &raw) == 0) {
    cfmakeraw(&raw);
    tcsetattr(0, TCSANOW, &raw);
  }
  return master;
}

/* Relay between the caller's terminal (fd 0/1, put in raw mode) and the sandbox pty until the child exits. */
static int relay_pty(pid_t child, int master) {
  static char buf[65536];
  int in_open = 1, status = 0, exited = 0;
  while (!exited) {
    struct pollfd p[3] = {{.fd = in_open ? 0 : -1, .events = POLLIN}, {.fd = master, .events = POLLIN}, {.fd = g_selfpipe[0], .events = POLLIN}};
    if (poll(p, 3, -1) < 0 && errno != EINTR) die("poll");
    if (in_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(0, buf, sizeof buf);
      int broken = 0;
      if (n > 0) write_all(master, buf, n, &broken);
      else if (n == 0 || errno != EINTR) in_open = 0;
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(master, buf, sizeof buf);
      int broken = 0;
      if (n > 0) write_all(1, buf, n, &broken);
    }
    if (p[2].revents & POLLIN) {
      char c[64];
      while (read(g_selfpipe[0], c, sizeof c) > 0) {
      }
    }
    if (g_winch) {
      g_winch = 0;
      copy_winsize(0, master);
    }
    if (waitpid(child, &status, WNOHANG) == child) exited = 1;
  }
  fcntl(master, F_SETFL, O_NONBLOCK);
  for (;;) {
    ssize_t n = read(master, buf, sizeof buf);
    int broken = 0;
    if (n <= 0) break;
    write_all(1, buf, n, &broken);
  }
  return status;
}

/* KEY=VALUE entries separated by NUL, to EOF; an empty environment without a source. */
static char **read_env(int fd) {
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  if (!buf) die("malloc");
  while (fd >= 0) {
    if (len == cap && !(buf = realloc(buf, cap *= 2))) die("realloc");
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("read env");
    if (n == 0) break;
    len += (size_t)n;
  }
  if (fd >= 0) close(fd);
  size_t count = 0;
  for (size_t k = 0; k < len; k++) count += buf[k] == 0;
  char **env = calloc(count + 2, sizeof *env);
  if (!env) die("calloc");
  size_t at = 0, e = 0;
  for (size_t k = 0; k < len; k++) {
    if (buf[k] != 0) continue;
    if (strchr(buf + at, '=')) env[e++] = buf + at;
    at = k + 1;
  }
  env[e] = NULL;
  return env;
}


int cmd_exec(int argc, char **argv) {
  pid_t init = 0;
  unsigned long long init_start = 0;
  uid_t uid = 1000;
  gid_t gid = 1000;
  const char *cwd = NULL, *status_file = NULL, *env_file = NULL;
  int tty = 0, status_fd = -1, env_fd = -1, ncg = 0, i;
  char *cgroups[MAX_CGROUPS];
  for (i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--")) { i++; break; }
    if (!strcmp(a, "--tty")) { tty = 1; continue; }
    if (!v) { fprintf(stderr, "corral-nsenter: %s needs a value\n", a); return 125; }
    i++;
    if (!strcmp(a, "--pid")) init = (pid_t)atol(v);
    else if (!strcmp(a, "--pid-start")) init_start = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--uid")) uid = (uid_t)atol(v);
    else if (!strcmp(a, "--gid")) gid = (gid_t)atol(v);
    else if (!strcmp(a, "--cwd")) cwd = v;
    else if (!strcmp(a, "--status-fd")) status_fd = atoi(v);
    else if (!strcmp(a, "--status-file")) status_file = v;
    else if (!strcmp(a, "--env-fd")) env_fd = atoi(v);
    else if (!strcmp(a, "--env-file")) env_file = v;
    else if (!strcmp(a, "--cgroup") && ncg < MAX_CGROUPS) cgroups[ncg++] = (char *)v;
    else { fprintf(stderr, "corral-nsenter: unknown option %s\n", a); return 125; }
  }
  if (init <= 0 || i >= argc) { fprintf(stderr, "corral-nsenter: exec needs --pid and a command\n"); return 125; }
  char **cmd = argv + i;
  if (status_fd >= 0) fcntl(status_fd, F_SETFD, FD_CLOEXEC);
  /* Opened before entering the sandbox: afterwards every path resolves inside its root. */
  if (status_fd < 0 && status_file) {
    status_fd = open(status_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (status_fd < 0) dief("open", status_file);
  }
  /* The command's environment never is this process's own (a host-root process must not honour
   * LD_PRELOAD & co. from the API): it arrives NUL-separated on a pipe or in a file. */
  if (env_file) {
    env_fd = open(env_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (env_fd < 0) dief("open", env_file);
    unlink(env_file);
  }
  char **envp = read_env(env_fd);
  join_cgroups(cgroups, ncg);
  join_namespaces(init, 1, init_start);
  int master = -1, slave = -1;
  if (tty) master = open_sandbox_pty(uid, &slave);
  int pidpipe[2], outp[2] = {-1, -1}, errp[2] = {-1, -1};
  if (pipe2(pidpipe, O_CLOEXEC) < 0) die("pipe");
  if (!tty && (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)) die("pipe");
  if (pipe2(g_selfpipe, O_CLOEXEC | O_NONBLOCK) < 0) die("pipe");
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    close(pidpipe[0]);
    if (!tty) {
      dup2(outp[1], 1);
      dup2(errp[1], 2);
    }
    setsid();
    if (tty) {
      dup2(slave, 0), dup2(slave, 1), dup2(slave, 2);
      if (slave > 2) close(slave);
      if (ioctl(0, TIOCSCTTY, 0) < 0) die("TIOCSCTTY");
    }
    pid_t me = getpid();
    if (write(pidpipe[1], &me, sizeof me) != sizeof me) _exit(125);
    close(pidpipe[1]);
    drop_privileges(uid, gid);
    const char *dir = cwd ? cwd : (uid == 0 ? "/root" : "/home/user");
    if (chdir(dir) < 0) {
      if (cwd) dief("chdir", cwd);
      if (chdir("/") < 0) die("chdir /");
    }
    environ = envp;
    execvp(cmd[0], cmd);
    int e = errno;
    fprintf(stderr, "corral: %s: %s\n", cmd[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  g_child = child;
  close(pidpipe[1]);
  if (!tty) close(outp[1]), close(errp[1]);
  pid_t nspid = 0;
  if (read(pidpipe[0], &nspid, sizeof nspid) != sizeof nspid) nspid = 0;
  close(pidpipe[0]);
  char line[160];
  snprintf(line, sizeof line, "pid %d %d %llu\n", child, nspid, start_time(nspid));
  report(status_fd, status_file, line, 1);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward_signal;
  int fwd[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT, SIGTSTP};
  for (size_t k = 0; k < sizeof fwd / sizeof fwd[0]; k++) sigaction(fwd[k], &sa, NULL);
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  if (tty) {
    sa.sa_handler = on_sigwinch;
    sa.sa_flags = 0;
    sigaction(SIGWINCH, &sa, NULL);
  }
  signal(SIGPIPE, SIG_IGN);
  sigprocmask(SIG_SETMASK, &old, NULL);
  int status = 0;
  if (tty) {
    close(slave);
    status = relay_pty(child, master);
  } else {
    status = relay_output(child, outp[0], errp[0], uid, gid);
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  snprintf(line, sizeof line, "exit %d %d\n", code, sig);
  report(status_fd, status_file, line, 0);
  return code;
}
