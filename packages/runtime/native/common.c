/* Shared by every command: errors, small file writes, cgroup joins, the status channel. */
#include "corral-nsenter.h"

/* The argv block, so the init can blank its host paths out of /proc/1/cmdline. */
char *g_args_start, *g_args_end;

_Noreturn void die(const char *what) {
  fprintf(stderr, "corral-nsenter: %s: %s\n", what, strerror(errno));
  exit(125);
}

_Noreturn void dief(const char *what, const char *arg) {
  fprintf(stderr, "corral-nsenter: %s %s: %s\n", what, arg, strerror(errno));
  exit(125);
}

int write_file(const char *path, const char *data) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, data, strlen(data));
  int saved = errno;
  close(fd);
  errno = saved;
  return n == (ssize_t)strlen(data) ? 0 : -1;
}

void join_cgroups(char **files, int count) {
  char pid[32];
  snprintf(pid, sizeof pid, "%d", getpid());
  for (int i = 0; i < count; i++)
    if (write_file(files[i], pid) < 0) dief("cgroup", files[i]);
}

void report(int fd, const char *path, const char *line, int truncate_file) {
  if (fd >= 0) {
    if (write(fd, line, strlen(line)) < 0) {
    }
  } else if (path) {
    int f = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (truncate_file ? O_TRUNC : O_APPEND), 0600);
    if (f >= 0) {
      if (write(f, line, strlen(line)) < 0) {
      }
      close(f);
    }
  }
}

/* Field 22 of /proc/<pid>/stat (start time in ticks since boot): with the pid, a unique identity. */
unsigned long long start_time(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return 0;
  p += 2;
  for (int field = 3; field < 22 && p; field++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  return p ? strtoull(p, NULL, 10) : 0;
}
