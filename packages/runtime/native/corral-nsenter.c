/*
 * corral-nsenter: the local driver's one native helper. Runs as host root, exits quickly, and
 * leaves no daemon behind except each sandbox's tiny init (pid 1 of its pid namespace).
 *
 *   init   --rootfs DIR [--lower L --upper U --work W] [--netns PATH|--new-netns]
 *          [--cgroup PROCS_FILE]... [--hostname H] [--resolv FILE]
 *          Mounts the overlay (when asked), joins/creates the netns, clones pid 1 into new
 *          user(0..65535 -> 100000..), mount, pid, ipc, uts and cgroup namespaces, builds a
 *          minimal /dev, /proc, read-only /sys stub, pivots into the overlay, prints the init's
 *          host pid and exits. The init reaps orphans forever.
 *   exec   --pid INITPID [--cgroup PROCS_FILE]... [--uid N --gid N] [--cwd DIR] [--tty]
 *          [--status-fd N | --status-file PATH] -- CMD ARGS...
 *          Joins the init's namespaces, forks, drops capabilities, installs the seccomp filter,
 *          execs CMD with this process's environment. Reports "pid HOSTPID NSPID" and
 *          "exit CODE SIGNAL" on the status channel; exits with CODE (128+sig if signalled).
 *   relay  --pid INITPID --port N [--status-fd N]
 *          Joins the init's netns, connects to 127.0.0.1:N (then ::1), splices stdin/stdout.
 *   umount PATH   Lazily unmounts PATH (MNT_DETACH).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/loop.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define ID_BASE 100000
#define ID_COUNT 65536
#define MAX_CGROUPS 16

/* The argv block, so the init can blank its host paths out of /proc/1/cmdline. */
static char *g_args_start, *g_args_end;

static void die(const char *what) {
  fprintf(stderr, "corral-nsenter: %s: %s\n", what, strerror(errno));
  exit(125);
}

static void dief(const char *what, const char *arg) {
  fprintf(stderr, "corral-nsenter: %s %s: %s\n", what, arg, strerror(errno));
  exit(125);
}

static int write_file(const char *path, const char *data) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, data, strlen(data));
  int saved = errno;
  close(fd);
  errno = saved;
  return n == (ssize_t)strlen(data) ? 0 : -1;
}

static void join_cgroups(char **files, int count) {
  char pid[32];
  snprintf(pid, sizeof pid, "%d", getpid());
  for (int i = 0; i < count; i++)
    if (write_file(files[i], pid) < 0) dief("cgroup", files[i]);
}

/* ---- seccomp: deny the kernel surfaces a container never needs ---- */

static const int denied_syscalls[] = {
  SYS_mount, SYS_umount2, SYS_pivot_root, SYS_kexec_load, SYS_init_module, SYS_delete_module,
  SYS_bpf, SYS_perf_event_open, SYS_keyctl, SYS_add_key, SYS_request_key, SYS_unshare, SYS_setns,
  SYS_swapon, SYS_swapoff, SYS_reboot, SYS_open_by_handle_at, SYS_userfaultfd, SYS_acct,
  SYS_settimeofday, SYS_clock_settime, SYS_clock_adjtime, SYS_adjtimex, SYS_iopl, SYS_ioperm,
  SYS_lookup_dcookie, SYS_quotactl, SYS_syslog, SYS_vhangup, SYS_uselib, SYS_create_module,
  SYS_get_kernel_syms, SYS_query_module, SYS_sysfs, SYS_ustat, SYS_nfsservctl, SYS_finit_module,
  SYS_kexec_file_load,
#ifdef SYS_fsopen
  SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_move_mount, SYS_open_tree,
#endif
#ifdef SYS_mount_setattr
  SYS_mount_setattr,
#endif
#ifdef SYS_io_uring_setup
  SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register,
#endif
};

#define NS_CLONE_FLAGS (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP)

static void install_seccomp(void) {
  enum { N = sizeof denied_syscalls / sizeof denied_syscalls[0] };
  struct sock_filter f[8 + 2 * N + 8];
  int i = 0;
  const unsigned deny = SECCOMP_RET_ERRNO | EPERM;
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS); /* i386 ABI */
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1); /* x32 ABI */
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
  for (int s = 0; s < N; s++) {
    f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, denied_syscalls[s], 0, 1);
    f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, deny);
  }
  /* clone3 passes flags in memory the filter cannot read: ENOSYS makes libc fall back to clone. */
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 3);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_CLONE_FLAGS, 0, 1);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, deny);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog prog = {.len = (unsigned short)i, .filter = f};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) die("seccomp");
}

/* ---- capabilities: Docker's default set for root, minus NET_RAW ---- */

static const int kept_caps[] = {
  CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID, CAP_SETUID,
  CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_MKNOD, CAP_AUDIT_WRITE, CAP_SETFCAP,
};

static int cap_kept(int cap) {
  for (size_t i = 0; i < sizeof kept_caps / sizeof kept_caps[0]; i++)
    if (kept_caps[i] == cap) return 1;
  return 0;
}

static void drop_bounding_set(void) {
  for (int cap = 0; cap < 64; cap++) {
    if (cap_kept(cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) die("capbset drop");
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

static void set_root_caps(void) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  for (size_t i = 0; i < sizeof kept_caps / sizeof kept_caps[0]; i++) {
    int c = kept_caps[i];
    data[c / 32].effective |= 1u << (c % 32);
    data[c / 32].permitted |= 1u << (c % 32);
  }
  if (syscall(SYS_capset, &hdr, data) < 0) die("capset");
}

/* Supplementary groups of `uid` from the sandbox's own /etc/group (no NSS modules loaded). */
static int sandbox_groups(uid_t uid, gid_t gid, gid_t *out, int max) {
  int n = 0;
  out[n++] = gid;
  if (uid == 0) return n;
  char name[64] = "";
  FILE *pw = fopen("/etc/passwd", "re");
  if (pw) {
    char line[1024];
    while (fgets(line, sizeof line, pw)) {
      char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
      if (!c2 || (uid_t)atol(c2 + 1) != uid) continue;
      size_t len = (size_t)(c1 - line);
      if (len < sizeof name) memcpy(name, line, len), name[len] = 0;
      break;
    }
    fclose(pw);
  }
  FILE *gr = name[0] ? fopen("/etc/group", "re") : NULL;
  if (!gr) return n;
  char line[4096];
  while (fgets(line, sizeof line, gr) && n < max) {
    line[strcspn(line, "\n")] = 0;
    char *f[4] = {line, NULL, NULL, NULL};
    for (int k = 1; k < 4; k++) {
      f[k] = strchr(f[k - 1], ':');
      if (!f[k]) break;
      *f[k]++ = 0;
    }
    if (!f[3]) continue;
    for (char *m = strtok(f[3], ","); m; m = strtok(NULL, ","))
      if (strcmp(m, name) == 0) out[n++] = (gid_t)atol(f[2]);
  }
  fclose(gr);
  return n;
}

/* ---- init ---- */

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

/* The init only reaps: it keeps no capability and the same seccomp filter, so a sandbox process
 * that manages to ptrace it gains nothing. */
static void drop_all_privileges(void) {
  for (int cap = 0; cap < 64; cap++)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) die("capbset drop");
  install_seccomp();
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &hdr, data) < 0) die("capset");
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

static int cmd_init(int argc, char **argv) {
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

/* ---- exec ---- */

static volatile pid_t g_child = 0;
static int g_selfpipe[2] = {-1, -1};

static void on_sigchld(int sig) {
  (void)sig;
  int saved = errno;
  if (write(g_selfpipe[1], "c", 1) < 0) {
  }
  errno = saved;
}

/* Everything a sandbox process gives up before exec: capabilities, privileges, syscalls. */
static void drop_privileges(uid_t uid, gid_t gid) {
  gid_t groups[64];
  int ng = sandbox_groups(uid, gid, groups, 64);
  drop_bounding_set();
  install_seccomp();
  if (setgroups((size_t)ng, groups) < 0) die("setgroups");
  if (setresgid(gid, gid, gid) < 0) die("setresgid");
  if (setresuid(uid, uid, uid) < 0) die("setresuid");
  if (uid == 0) set_root_caps();
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
  if (lingering && fork() == 0) {
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

static void report(int fd, const char *path, const char *line, int truncate_file) {
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

static unsigned long long start_time(pid_t pid);

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
static void join_namespaces(pid_t pid, int with_all, unsigned long long expected_start) {
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

/* Field 22 of /proc/<pid>/stat (start time in ticks since boot): with the pid, a unique identity. */
static unsigned long long start_time(pid_t pid) {
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

static int cmd_exec(int argc, char **argv) {
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

/* ---- relay ---- */

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

static int cmd_relay(int argc, char **argv) {
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

/* ---- mountimg: attach an ext4 image to a free loop device (autoclear) and mount it ---- */

/*
 * A loop device still backed by `image` (its ext4 superblock alive in some mount namespace that
 * copied the host's mounts, e.g. another container's), or -1. Mounting that device again shares
 * the live superblock; attaching a second loop device would run two ext4 instances on one file
 * and corrupt it.
 */
static int find_attached_loop(const struct stat *img, char *dev, size_t devlen) {
  DIR *dir = opendir("/sys/block");
  if (!dir) return -1;
  struct dirent *e;
  int found = -1;
  while (found < 0 && (e = readdir(dir))) {
    if (strncmp(e->d_name, "loop", 4) != 0) continue;
    snprintf(dev, devlen, "/dev/%s", e->d_name);
    int fd = open(dev, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    struct loop_info64 info;
    if (ioctl(fd, LOOP_GET_STATUS64, &info) == 0 && info.lo_inode == img->st_ino && info.lo_device == img->st_dev)
      found = fd;
    else
      close(fd);
  }
  closedir(dir);
  return found;
}

static int cmd_mountimg(const char *image, const char *target) {
  int img = open(image, O_RDWR | O_CLOEXEC);
  if (img < 0) dief("open", image);
  struct stat st;
  if (fstat(img, &st) < 0) dief("stat", image);
  char attached[300];
  int live = find_attached_loop(&st, attached, sizeof attached);
  if (live >= 0) {
    if (mount(attached, target, "ext4", MS_NODEV | MS_NOSUID, "") < 0) dief("mount", target);
    close(live);
    return 0;
  }
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) die("open /dev/loop-control");
  for (int attempt = 0; attempt < 64; attempt++) {
    int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) die("LOOP_CTL_GET_FREE");
    char dev[32];
    snprintf(dev, sizeof dev, "/dev/loop%d", n);
    int loop = open(dev, O_RDWR | O_CLOEXEC);
    if (loop < 0) dief("open", dev);
    struct loop_config config;
    memset(&config, 0, sizeof config);
    config.fd = (unsigned)img;
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (ioctl(loop, LOOP_CONFIGURE, &config) < 0) {
      close(loop);
      if (errno == EBUSY) continue; /* raced with another attach */
      die("LOOP_CONFIGURE");
    }
    if (mount(dev, target, "ext4", MS_NODEV | MS_NOSUID, "") < 0) {
      int e = errno;
      ioctl(loop, LOOP_CLR_FD, 0);
      errno = e;
      dief("mount", target);
    }
    /* The mount holds the device now; AUTOCLEAR detaches it at unmount. */
    close(loop);
    return 0;
  }
  fprintf(stderr, "corral-nsenter: no free loop device\n");
  return 125;
}

/*
 * Unmount for real (ext4 flushed, loop device released) before the image can be mounted again:
 * a lazy detach would leave the old superblock alive next to a new one on the same file. The
 * sandbox's dying mount namespace may hold the mount for a moment, so EBUSY is retried ~3 s.
 */
static int cmd_umount(const char *path, int lazy) {
  if (lazy) {
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) dief("umount", path);
    return 0;
  }
  for (int i = 0; i < 300; i++) {
    if (umount2(path, 0) == 0 || errno == EINVAL || errno == ENOENT) return 0;
    if (errno != EBUSY) dief("umount", path);
    usleep(10000);
  }
  dief("umount (still busy)", path);
  return 125;
}

int main(int argc, char **argv) {
  g_args_start = argv[0];
  g_args_end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
  if (argc < 2) { fprintf(stderr, "usage: corral-nsenter init|exec|relay|umount ...\n"); return 125; }
  if (!strcmp(argv[1], "init")) return cmd_init(argc - 2, argv + 2);
  if (!strcmp(argv[1], "exec")) return cmd_exec(argc - 2, argv + 2);
  if (!strcmp(argv[1], "relay")) return cmd_relay(argc - 2, argv + 2);
  if (!strcmp(argv[1], "mountimg") && argc == 4) return cmd_mountimg(argv[2], argv[3]);
  if (!strcmp(argv[1], "umount") && (argc == 3 || argc == 4)) return cmd_umount(argv[2], argc == 4 && !strcmp(argv[3], "--lazy"));
  fprintf(stderr, "corral-nsenter: unknown command %s\n", argv[1]);
  return 125;
}
