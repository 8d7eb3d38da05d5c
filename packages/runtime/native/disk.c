/* `mountimg` and `umount`: the size-capped disk images under the upper dirs. */
#include "corral-nsenter.h"

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

int cmd_mountimg(const char *image, const char *target) {
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
int cmd_umount(const char *path, int lazy) {
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
