/* What a sandbox process gives up: capabilities, syscalls (seccomp), privileges. */
#include "corral-nsenter.h"

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


/* The init only reaps: it keeps no capability and the same seccomp filter, so a sandbox process
 * that manages to ptrace it gains nothing. */
void drop_all_privileges(void) {
  for (int cap = 0; cap < 64; cap++)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) die("capbset drop");
  install_seccomp();
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &hdr, data) < 0) die("capset");
}

/* Everything a sandbox process gives up before exec: capabilities, privileges, syscalls. */
void drop_privileges(uid_t uid, gid_t gid) {
  gid_t groups[64];
  int ng = sandbox_groups(uid, gid, groups, 64);
  drop_bounding_set();
  install_seccomp();
  if (setgroups((size_t)ng, groups) < 0) die("setgroups");
  if (setresgid(gid, gid, gid) < 0) die("setresgid");
  if (setresuid(uid, uid, uid) < 0) die("setresuid");
  if (uid == 0) set_root_caps();
}

