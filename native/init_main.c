/*
 * tsrun-init: the executable every container-side process starts as (init, exec, hooks).
 *
 * The addon never runs plan steps in a fork of node: its child execs this small static
 * binary at once, from a sealed memfd copy (spawn.cc), so /proc/<pid>/exe of anything the
 * container can reach is that sealed copy, never a writable host executable (the
 * CVE-2019-5736 class), and /proc/<pid>/cmdline shows "tsrun-init", not node's arguments.
 *
 * The same executable is also the per-container monitor when argv[0] is "tsrun-monitor"
 * (monitor.c; its contract is in monitor_protocol.h).
 *
 * Contract with spawn.cc (argv and environment are the whole interface):
 *   argv = { "tsrun-init" }
 *   env  = { "_TSRUN_INIT=<sync fd>,<plan fd>,<parent pid>" }
 * The plan fd is a sealed memfd holding the encoded plan (plan.h); the sync fd is the
 * child's end of the protocol socket (protocol.h). Anything else is refused: a container
 * that runs this binary (e.g. through a "#!/proc/self/exe" script) gets an error and
 * nothing more.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void child_main(const unsigned char* plan, size_t len, int sync_fd, int parent_pid);
int monitor_main(int argc, char** argv); /* monitor.c: the "tsrun-monitor" role */

static int refuse(void) {
  static const char msg[] = "tsrun-init: an internal helper of tsrun, not to be run directly\n";
  (void)!write(2, msg, sizeof msg - 1);
  return 125;
}

/* Parses "<a>,<b>,<c>" of non-negative decimals; 0 on success. */
static int parse3(const char* s, long out[3]) {
  for (int i = 0; i < 3; i++) {
    if (*s < '0' || *s > '9') return -1;
    long v = 0;
    while (*s >= '0' && *s <= '9') {
      v = v * 10 + (*s++ - '0');
      if (v > 0x7fffffff) return -1;
    }
    out[i] = v;
    if (i < 2 && *s++ != ',') return -1;
  }
  return *s ? -1 : 0;
}

int main(int argc, char** argv) {
  if (argc >= 1 && argv[0] && strcmp(argv[0], "tsrun-monitor") == 0) return monitor_main(argc, argv);
  const char* spec = getenv("_TSRUN_INIT");
  long v[3];
  if (argc != 1 || !argv[0] || strcmp(argv[0], "tsrun-init") != 0 || !spec || parse3(spec, v) < 0) return refuse();
  int sync_fd = (int)v[0], plan_fd = (int)v[1];
  struct stat st;
  if (fstat(plan_fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) return refuse();
  void* plan = mmap(0, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, plan_fd, 0);
  if (plan == MAP_FAILED) return refuse();
  close(plan_fd);
  child_main((const unsigned char*)plan, (size_t)st.st_size, sync_fd, (int)v[2]);
  return 1; /* not reached: child_main execs or exits */
}
