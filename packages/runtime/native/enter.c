/* Entering a running sandbox: join its init's namespaces, safely against pid reuse. */
#include "corral-nsenter.h"


/* True when the namespace behind fd is the one this (host) process is in. */
static int same_ns_as_host(int fd, const char *name) {
  char path[64];
  struct stat mine, theirs;
  snprintf(path, sizeof path, "/proc/self/ns/%s", name);
  if (stat(path, &mine) < 0 || fstat(fd, &theirs) < 0) return 1;
  return mine.st_ino == theirs.st_ino && mine.st_dev == theirs.st_dev;
}

/*
 * Join the init's namespaces. `expected_start` (from the state file) closes the pid-reuse race:
 * the handles are opened first and the start time checked after, so they provably belong to the
 * sandbox's init; and a target in the host's own user or network namespace is refused outright.
 */
void join_namespaces(pid_t pid, int with_all, unsigned long long expected_start) {
  static const struct { const char *name; int type; } order[] = {
    {"net", CLONE_NEWNET}, {"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
    {"cgroup", CLONE_NEWCGROUP}, {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS},
  };
  int fds[7];
  int count = with_all ? 7 : 1;
  char path[64];
  for (int i = 0; i < count; i++) {
    snprintf(path, sizeof path, "/proc/%d/ns/%s", pid, order[i].name);
    fds[i] = open(path, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) dief("open", path);
  }
  int rootfd = -1;
  if (with_all) {
    snprintf(path, sizeof path, "/proc/%d/root", pid);
    rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) dief("open", path);
  }
  if (expected_start && start_time(pid) != expected_start) {
    fprintf(stderr, "corral-nsenter: sandbox init %d is gone\n", pid);
    exit(124);
  }
  if (same_ns_as_host(fds[0], "net") || (with_all && same_ns_as_host(fds[1], "user"))) {
    fprintf(stderr, "corral-nsenter: pid %d is not a sandbox init\n", pid);
    exit(124);
  }
  for (int i = 0; i < count; i++) {
    if (setns(fds[i], order[i].type) < 0) dief("setns", order[i].name);
    close(fds[i]);
  }
  if (with_all) {
    if (fchdir(rootfd) < 0 || chroot(".") < 0) die("chroot");
    close(rootfd);
    /* Act as the sandbox's root from here: files (e.g. a pty) created inside are owned by it. */
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) die("setresuid sandbox root");
  }
}
