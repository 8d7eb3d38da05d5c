/* `init`: mount the overlay, make the namespaces and pid 1, build the root, reap forever. */
#include "corral-nsenter.h"

static void mount_or_die(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
  if (mount(src, dst, type, flags, data) < 0) dief("mount", dst);
}

static void bind_dev(const char *name) {
  char dst[64];
  snprintf(dst, sizeof dst, "dev/%s", name);
  int fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
  if (fd < 0) dief("create", dst);
  close(fd);
  char src[64];
  snprintf(src, sizeof src, "/oldroot/dev/%s", name);
  mount_or_die(src, dst, NULL, MS_BIND, NULL);
}

static void mask_path(const char *path) {
  struct stat st;
  if (lstat(path, &st) < 0) return;
  if (S_ISDIR(st.st_mode))
    mount_or_die("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0");
  else
    mount_or_die("dev/null", path, NULL, MS_BIND, NULL);
}

static void ro_bind(const char *path) {
  struct stat st;
  if (lstat(path, &st) < 0) return;
  mount_or_die(path, path, NULL, MS_BIND | MS_REC, NULL);
  mount_or_die(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

/* Runs as pid 1 of the new namespaces, uid 0 inside, with full capabilities in its userns. */
static void setup_root(int rootfd, const char *hostname, int resolvfd) {
  if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) die("setresuid");
  if (setgroups(0, NULL) < 0) die("setgroups");
  if (hostname && sethostname(hostname, strlen(hostname)) < 0) die("sethostname");
  mount_or_die(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
  /* The host-root parent cloned the overlay into a detached mount (open_tree): a copy inherited
   * with this namespace would be locked (pivot_root refuses it) and the state dir is not
   * traversable by the sandbox's ids. Attach it on /tmp of this private namespace (the host's
   * /tmp is untouched) and pivot into it. */
  if (move_mount(rootfd, "", AT_FDCWD, "/tmp", MOVE_MOUNT_F_EMPTY_PATH) < 0) die("move_mount root");
  if (chdir("/tmp") < 0) die("chdir new root");
  mkdir("oldroot", 0700);
  /* Keep a handle on the host tree until the new /dev and /proc are built. */
  if (syscall(SYS_pivot_root, ".", "oldroot") < 0) die("pivot_root");
  if (chdir("/") < 0) die("chdir /");
  mkdir("proc", 0555);
  mount_or_die("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mkdir("dev", 0755);
  mount_or_die("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k");
  const char *devs[] = {"null", "zero", "full", "random", "urandom", "tty"};
  for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) bind_dev(devs[i]);
  mkdir("dev/pts", 0755);
  mount_or_die("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620,gid=5");
  if (symlink("pts/ptmx", "dev/ptmx") < 0) die("symlink ptmx");
  mkdir("dev/shm", 01777);
  mount_or_die("tmpfs", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k");
  mkdir("dev/mqueue", 01777);
  symlink("/proc/self/fd", "dev/fd");
  symlink("/proc/self/fd/0", "dev/stdin");
  symlink("/proc/self/fd/1", "dev/stdout");
  symlink("/proc/self/fd/2", "dev/stderr");
  symlink("/proc/kcore", "dev/core");
  mkdir("sys", 0555);
  mount_or_die("tmpfs", "sys", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=555");
  if (resolvfd >= 0) {
    int fd = open("etc/resolv.conf", O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd >= 0) close(fd);
    if (move_mount(resolvfd, "", AT_FDCWD, "etc/resolv.conf", MOVE_MOUNT_F_EMPTY_PATH) < 0) die("move_mount resolv.conf");
    mount_or_die(NULL, "etc/resolv.conf", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
  }
  const char *masked[] = {"proc/kcore", "proc/keys", "proc/timer_list", "proc/sched_debug", "proc/acpi", "proc/scsi", "proc/firmware"};
  for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++) mask_path(masked[i]);
  const char *ro[] = {"proc/sys", "proc/sysrq-trigger", "proc/irq", "proc/bus", "proc/fs"};
  for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) ro_bind(ro[i]);
  if (umount2("oldroot", MNT_DETACH) < 0) die("umount oldroot");
  rmdir("oldroot");
}


static _Noreturn void reap_forever(void) {
  sigset_t set;
  sigfillset(&set);
  sigprocmask(SIG_BLOCK, &set, NULL);
  for (;;) {
    siginfo_t info;
    sigwaitinfo(&set, &info);
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
  }
}

static void bring_loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die("SIOCGIFFLAGS");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die("SIOCSIFFLAGS");
  close(s);
}

int cmd_init(int argc, char **argv) {
  const char *rootfs = NULL, *lower = NULL, *upper = NULL, *work = NULL, *netns = NULL;
  const char *hostname = NULL, *resolv = NULL;
  int new_netns = 0, ncg = 0;
  char *cgroups[MAX_CGROUPS];
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--new-netns")) { new_netns = 1; continue; }
    if (!v) { fprintf(stderr, "corral-nsenter: %s needs a value\n", a); return 125; }
    i++;
    if (!strcmp(a, "--rootfs")) rootfs = v;
    else if (!strcmp(a, "--lower")) lower = v;
    else if (!strcmp(a, "--upper")) upper = v;
    else if (!strcmp(a, "--work")) work = v;
    else if (!strcmp(a, "--netns")) netns = v;
    else if (!strcmp(a, "--hostname")) hostname = v;
    else if (!strcmp(a, "--resolv")) resolv = v;
    else if (!strcmp(a, "--cgroup") && ncg < MAX_CGROUPS) cgroups[ncg++] = (char *)v;
    else { fprintf(stderr, "corral-nsenter: unknown option %s\n", a); return 125; }
  }
  if (!rootfs) { fprintf(stderr, "corral-nsenter: --rootfs is required\n"); return 125; }
  if (lower && upper && work) {
    char opts[8192];
    snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
    if (mount("overlay", rootfs, "overlay", MS_NODEV, opts) < 0) dief("mount overlay on", rootfs);
  }
  int rootfd = open_tree(AT_FDCWD, rootfs, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (rootfd < 0) dief("open_tree", rootfs);
  int resolvfd = -1;
  if (resolv && (resolvfd = open_tree(AT_FDCWD, resolv, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)) < 0) dief("open_tree", resolv);
  join_cgroups(cgroups, ncg);
  if (netns) {
    int fd = open(netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) dief("join netns", netns);
    close(fd);
  } else if (new_netns) {
    if (unshare(CLONE_NEWNET) < 0) die("unshare netns");
    bring_loopback_up();
  }
  /* pid 1 should outlive any OOM kill inside (its death takes the whole sandbox down); the clone
   * below inherits this. Best effort: it needs CAP_SYS_RESOURCE, which some hosts withhold. */
  write_file("/proc/self/oom_score_adj", "-1000");
  int go[2], ready[2];
  if (pipe2(go, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0) die("pipe");
  pid_t child = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | SIGCHLD, 0, 0, 0, 0);
  if (child < 0) die("clone");
  if (child == 0) {
    close(go[1]);
    close(ready[0]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(125);
    /* Errors go to the parent through stderr, which it still holds. */
    setup_root(rootfd, hostname, resolvfd);
    close(rootfd);
    if (resolvfd >= 0) close(resolvfd);
    if (write(ready[1], "k", 1) != 1) _exit(125);
    close(ready[1]);
    close(go[0]);
    setsid();
    prctl(PR_SET_NAME, "corral-init", 0, 0, 0);
    drop_all_privileges();
    /* Not dumpable: a sandbox process cannot ptrace or read /proc/1/mem of its init. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    memset(g_args_start, 0, (size_t)(g_args_end - g_args_start));
    strncpy(g_args_start, "corral-init", (size_t)(g_args_end - g_args_start) - 1);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0), dup2(null, 1), dup2(null, 2);
    if (null > 2) close(null);
    reap_forever();
  }
  close(go[0]);
  close(ready[1]);
  char path[64], map[64];
  snprintf(map, sizeof map, "0 %d %d\n", ID_BASE, ID_COUNT);
  snprintf(path, sizeof path, "/proc/%d/uid_map", child);
  if (write_file(path, map) < 0) die("uid_map");
  snprintf(path, sizeof path, "/proc/%d/gid_map", child);
  if (write_file(path, map) < 0) die("gid_map");
  if (write(go[1], "g", 1) != 1) die("sync");
  char c;
  if (read(ready[0], &c, 1) != 1) {
    int status;
    waitpid(child, &status, 0);
    fprintf(stderr, "corral-nsenter: sandbox init failed to start\n");
    return 125;
  }
  printf("%d\n", child);
  return 0;
}
