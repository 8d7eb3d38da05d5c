#include "corral-nsenter.h"

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

