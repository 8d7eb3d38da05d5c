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
#ifndef CORRAL_NSENTER_H
#define CORRAL_NSENTER_H

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

/* common.c */
extern char *g_args_start, *g_args_end;
_Noreturn void die(const char *what);
_Noreturn void dief(const char *what, const char *arg);
int write_file(const char *path, const char *data);
void join_cgroups(char **files, int count);
void report(int fd, const char *path, const char *line, int truncate_file);
unsigned long long start_time(pid_t pid);

/* security.c */
void drop_privileges(uid_t uid, gid_t gid);
void drop_all_privileges(void);

/* enter.c */
void join_namespaces(pid_t pid, int with_all, unsigned long long expected_start);

/* the commands */
int cmd_init(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_relay(int argc, char **argv);
int cmd_mountimg(const char *image, const char *target);
int cmd_umount(const char *path, int lazy);

#endif
