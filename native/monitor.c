/*
 * tsrun-monitor: one per container, conmon's job in one small single-threaded process.
 * The protocol with the engine, the files it writes and the attach framing are in
 * monitor_protocol.h; this file is the implementation.
 *
 * Why a role of the static tsrun-init binary and not a program of its own: it is started
 * from the same sealed memfd copy (so the container can never reach a writable host
 * executable through it), it is a fresh single-threaded process that may allocate, and it
 * starts the init exactly as the addon does (clone3 into the cgroup, execveat of the sealed
 * copy), so the init is its child: the monitor is the one process that can wait for it,
 * whatever happens to the CLI. Memory: a static binary without libraries or threads, one
 * poll loop, 8 KiB buffers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "monitor_protocol.h"
#include "protocol.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 16
#define MAX_EXIT_ARGS 64
#define EARLY_EXITS 64
#define DRAIN_MS 2000
#define BUF 8192

struct client {
  int fd;
  unsigned char in[ATTACH_HEADER + ATTACH_MAX_PAYLOAD];
  size_t have;
};

static struct {
  const char* id;
  const char* log_name;
  long long max_size;
  int max_files;
  int stdin_open;
  char* exit_argv[MAX_EXIT_ARGS + 1];
  int nexit;
} opt = {0, "ctr.log", 0, 1, 0, {0}, 0};

static int ctl = -1, exec_fd = -1, plan_fd = -1, sync_fd = -1, cgroup_fd = -1, dir_fd = -1, console = -1;
static int fg_in = -1, fg_out = -1, fg_err = -1;
static int out_r = -1, err_r = -1, in_w = -1, master = -1, listen_fd = -1, sig_fd = -1, log_fd = -1;
static long long log_size;
static pid_t stage1, init_pid;
static int detached, owner_lost, exited, exit_status = -1, exit_signal;
static struct client clients[MAX_CLIENTS];
static struct {
  pid_t pid;
  int status;
} early[EARLY_EXITS];
static int nearly;

static void send_ctl(int type, int step, int err, int value) {
  if (ctl < 0) return;
  struct sync_msg m = {type, step, err, value};
  if (send(ctl, &m, sizeof m, MSG_NOSIGNAL) < 0) {
    close(ctl);
    ctl = -1;
  }
}

/* After setup nobody reads our stderr: a failure goes to monitor.err in the container dir. */
static void note(const char* what, int err) {
  if (dir_fd < 0) return;
  int fd = openat(dir_fd, "monitor.err", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  dprintf(fd, "tsrun-monitor %s: %s: %s\n", opt.id, what, strerror(err));
  close(fd);
}

static void die(const char* what, int err) {
  note(what, err);
  send_ctl(MON_FAILED, 0, err, 0);
  if (stage1 > 0) kill(stage1, SIGKILL);
  if (init_pid > 0) kill(init_pid, SIGKILL);
  _exit(1);
}

static int parse_fds(const char* s, int* out, int n) {
  for (int i = 0; i < n; i++) {
    int neg = 0;
    if (*s == '-') {
      neg = 1;
      s++;
    }
    if (*s < '0' || *s > '9') return -1;
    long v = 0;
    while (*s >= '0' && *s <= '9') {
      v = v * 10 + (*s++ - '0');
      if (v > 0x7fffffff) return -1;
    }
    out[i] = neg ? -(int)v : (int)v;
    if (out[i] < -1) return -1;
    if (i < n - 1 && *s++ != ',') return -1;
  }
  return *s ? -1 : 0;
}

static int parse_options(int argc, char** argv) {
  for (int i = 2; i < argc; i++) {
    char* a = argv[i];
    if (!strncmp(a, "log=", 4) && a[4] && !strchr(a + 4, '/'))
      opt.log_name = a + 4;
    else if (!strncmp(a, "log-max-size=", 13))
      opt.max_size = atoll(a + 13);
    else if (!strncmp(a, "log-max-files=", 14))
      opt.max_files = atoi(a + 14);
    else if (!strcmp(a, "stdin=1"))
      opt.stdin_open = 1;
    else if (!strncmp(a, "exit-arg=", 9) && opt.nexit < MAX_EXIT_ARGS)
      opt.exit_argv[opt.nexit++] = a + 9;
    else
      return -1;
  }
  if (opt.max_files < 1) opt.max_files = 1;
  return 0;
}

/* ---- time ---- */

static void rfc3339(char* out, size_t len) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, ts.tv_nsec);
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- log ---- */

static void open_log(int trunc) {
  log_fd = openat(dir_fd, opt.log_name, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | (trunc ? O_TRUNC : 0), 0640);
  if (log_fd < 0) die("open the log", errno);
  struct stat st;
  log_size = fstat(log_fd, &st) == 0 ? st.st_size : 0;
}

/* name -> name.1 -> ... -> name.(max_files-1); the oldest falls off. Never truncates in place. */
static void rotate_log(void) {
  char from[300], to[300];
  close(log_fd);
  for (int i = opt.max_files - 1; i >= 1; i--) {
    if (i == 1)
      snprintf(from, sizeof from, "%s", opt.log_name);
    else
      snprintf(from, sizeof from, "%s.%d", opt.log_name, i - 1);
    snprintf(to, sizeof to, "%s.%d", opt.log_name, i);
    renameat(dir_fd, from, dir_fd, to);
  }
  open_log(1);
}

static void write_all(int fd, const void* p, size_t n) {
  const char* c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    c += w;
    n -= (size_t)w;
  }
}

/* One CRI line per newline-terminated piece; a trailing piece without one is a P line. */
static void log_chunk(const char* stream, const char* data, size_t n) {
  if (log_fd < 0 || !n) return;
  char ts[64];
  rfc3339(ts, sizeof ts);
  size_t start = 0;
  while (start < n) {
    const char* nl = memchr(data + start, '\n', n - start);
    size_t len = nl ? (size_t)(nl - (data + start)) : n - start;
    char head[80];
    int hl = snprintf(head, sizeof head, "%s %s %c ", ts, stream, nl ? 'F' : 'P');
    long long need = hl + (long long)len + 1;
    if (opt.max_size > 0 && log_size > 0 && log_size + need > opt.max_size) rotate_log();
    struct iovec v[3] = {{head, (size_t)hl}, {(void*)(data + start), len}, {"\n", 1}};
    ssize_t w = writev(log_fd, v, 3);
    if (w > 0) log_size += w;
    start += len + (nl ? 1 : 0);
  }
}

/* ---- attach clients ---- */

static void drop_client(int i) {
  close(clients[i].fd);
  clients[i].fd = -1;
  clients[i].have = 0;
}

static void send_frame(int i, int type, const void* data, uint32_t len) {
  unsigned char h[ATTACH_HEADER] = {(unsigned char)type, (unsigned char)len, (unsigned char)(len >> 8),
                                    (unsigned char)(len >> 16), (unsigned char)(len >> 24)};
  struct iovec v[2] = {{h, sizeof h}, {(void*)data, len}};
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = v;
  mh.msg_iovlen = len ? 2 : 1;
  ssize_t w = sendmsg(clients[i].fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (w != (ssize_t)(sizeof h + len)) drop_client(i); /* full or gone: never wait for a client */
}

static void broadcast(int type, const void* data, uint32_t len) {
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (clients[i].fd >= 0) send_frame(i, type, data, len);
}

static void set_winsize(int rows, int cols) {
  if (master < 0 || rows <= 0 || cols <= 0 || rows > 10000 || cols > 10000) return;
  struct winsize ws;
  memset(&ws, 0, sizeof ws);
  ws.ws_row = (unsigned short)rows;
  ws.ws_col = (unsigned short)cols;
  ioctl(master, TIOCSWINSZ, &ws);
}

/* Input for the container waits here until its stdin takes it: a container that does not read
   its stdin must never block the monitor (nor lose what was typed). No more input is read
   while some is pending, so the buffer never holds more than one read or one frame. */
static unsigned char pending[2 * ATTACH_MAX_PAYLOAD];
static size_t npending;
static int stdin_eof;

static int stdin_fd(void) {
  return master >= 0 ? master : in_w;
}

static void close_stdin(void) {
  if (npending) {
    stdin_eof = 1; /* after what is pending */
    return;
  }
  if (in_w >= 0) {
    close(in_w);
    in_w = -1;
  }
}

static void flush_stdin(void) {
  int fd = stdin_fd();
  while (npending && fd >= 0) {
    ssize_t w = write(fd, pending, npending);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) return;
    if (w <= 0) {
      npending = 0; /* the container closed its stdin */
      break;
    }
    memmove(pending, pending + w, npending - (size_t)w);
    npending -= (size_t)w;
  }
  if (fd < 0) npending = 0;
  if (!npending && stdin_eof) {
    stdin_eof = 0;
    close_stdin();
  }
}

static void to_stdin(const void* data, size_t n) {
  if (stdin_fd() < 0) return;
  if (n > sizeof pending - npending) n = sizeof pending - npending; /* cannot happen: see above */
  memcpy(pending + npending, data, n);
  npending += n;
  flush_stdin();
}

static void client_frames(int i) {
  struct client* c = &clients[i];
  for (;;) {
    if (c->have < ATTACH_HEADER) return;
    uint32_t len = c->in[1] | (uint32_t)c->in[2] << 8 | (uint32_t)c->in[3] << 16 | (uint32_t)c->in[4] << 24;
    if (len > ATTACH_MAX_PAYLOAD) {
      drop_client(i);
      return;
    }
    if (c->have < ATTACH_HEADER + len) return;
    unsigned char* p = c->in + ATTACH_HEADER;
    if (c->in[0] == ATTACH_STDIN)
      to_stdin(p, len);
    else if (c->in[0] == ATTACH_STDIN_EOF)
      close_stdin();
    else if (c->in[0] == ATTACH_RESIZE && len == 4)
      set_winsize(p[0] | p[1] << 8, p[2] | p[3] << 8);
    memmove(c->in, c->in + ATTACH_HEADER + len, c->have - ATTACH_HEADER - len);
    c->have -= ATTACH_HEADER + len;
  }
}

static void accept_client(void) {
  int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return;
  for (int i = 0; i < MAX_CLIENTS; i++) {
    if (clients[i].fd < 0) {
      clients[i].fd = fd;
      clients[i].have = 0;
      return;
    }
  }
  close(fd);
}

static void listen_attach(void) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  /* Through the dir fd: the container dir's path may not fit in sun_path (108 bytes). */
  snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/attach", dir_fd);
  unlinkat(dir_fd, "attach", 0);
  listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  mode_t old = umask(0077);
  if (listen_fd < 0 || bind(listen_fd, (struct sockaddr*)&sa, sizeof sa) < 0 || listen(listen_fd, 16) < 0)
    die("attach socket", errno);
  umask(old);
}

/* ---- output ---- */

static void forward(int* fd, const char* data, size_t n) {
  if (*fd < 0) return;
  const char* c = data;
  while (n) {
    ssize_t w = write(*fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) { /* the CLI's terminal may be non-blocking (Node sets it so) */
      struct pollfd p = {*fd, POLLOUT, 0};
      if (poll(&p, 1, 5000) > 0) continue;
    }
    if (w <= 0) {
      *fd = -1; /* the foreground CLI's terminal or pipe is gone: keep logging */
      return;
    }
    c += w;
    n -= (size_t)w;
  }
}

/* One read from a container stream; 0 at EOF (or EIO of a pty whose slave side closed). */
static int pump(int* fd, int is_err) {
  char buf[BUF];
  ssize_t n = read(*fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
  if (n <= 0) {
    close(*fd);
    *fd = -1;
    return 0;
  }
  log_chunk(is_err ? "stderr" : "stdout", buf, (size_t)n);
  forward(is_err ? &fg_err : &fg_out, buf, (size_t)n);
  broadcast(is_err ? ATTACH_STDERR : ATTACH_STDOUT, buf, (uint32_t)n);
  return 1;
}

static void recv_console(void) {
  char name[64];
  struct iovec iov = {name, sizeof name};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  ssize_t n = recvmsg(console, &mh, MSG_CMSG_CLOEXEC);
  struct cmsghdr* cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
  if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) memcpy(&master, CMSG_DATA(cm), sizeof(int));
  close(console);
  console = -1;
  if (master >= 0) fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
}

/* ---- exit ---- */

static int oom_killed(void) {
  if (cgroup_fd < 0) return 0;
  int fd = openat(cgroup_fd, "memory.events", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[512];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char* p = strstr(buf, "oom_kill ");
  return p && atoll(p + 9) > 0;
}

static void write_exit_record(void) {
  char ts[64], body[256];
  rfc3339(ts, sizeof ts);
  int code = WIFEXITED(exit_status) ? WEXITSTATUS(exit_status) : 128 + WTERMSIG(exit_status);
  exit_signal = WIFSIGNALED(exit_status) ? WTERMSIG(exit_status) : 0;
  int len = snprintf(body, sizeof body, "{\"exitCode\":%d,\"signal\":%d,\"oomKilled\":%s,\"finishedAt\":\"%s\"}\n", code,
                     exit_signal, oom_killed() ? "true" : "false", ts);
  int fd = openat(dir_fd, "exit.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("write exit.json", errno);
  write_all(fd, body, (size_t)len);
  fsync(fd);
  close(fd);
  if (renameat(dir_fd, "exit.json.tmp", dir_fd, "exit.json") < 0) die("rename exit.json", errno);
  fsync(dir_fd);
  exit_status = code;
}

static void run_exit_command(void) {
  if (!opt.nexit) return;
  opt.exit_argv[opt.nexit] = NULL;
  pid_t p = fork();
  if (p == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setsid();
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
    }
    char* envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    execve(opt.exit_argv[0], opt.exit_argv, envp);
    _exit(127);
  }
}

static void finish(void) {
  /* Drain: whatever the container wrote before it died, for a bounded time (a daemonized
     grandchild may hold the pipe: conmon #632). */
  long long deadline = now_ms() + DRAIN_MS;
  while ((out_r >= 0 || err_r >= 0 || master >= 0) && now_ms() < deadline) {
    struct pollfd p[3];
    int n = 0;
    int* which[3];
    if (out_r >= 0) p[n].fd = out_r, p[n].events = POLLIN, which[n++] = &out_r;
    if (err_r >= 0) p[n].fd = err_r, p[n].events = POLLIN, which[n++] = &err_r;
    if (master >= 0) p[n].fd = master, p[n].events = POLLIN, which[n++] = &master;
    int r = poll(p, (nfds_t)n, (int)(deadline - now_ms()));
    if (r <= 0) break;
    for (int i = 0; i < n; i++)
      if (p[i].revents) pump(which[i], which[i] == &err_r);
  }
  if (log_fd >= 0) fsync(log_fd);
  write_exit_record();
  int32_t st = exit_status;
  unsigned char le[4] = {(unsigned char)st, (unsigned char)(st >> 8), (unsigned char)(st >> 16), (unsigned char)(st >> 24)};
  broadcast(ATTACH_EXIT, le, 4);
  /* A foreground CLI still connected cleans up itself; otherwise the exit command does. */
  if (ctl >= 0 && !detached)
    send_ctl(MON_EXITED, 0, 0, exit_status);
  else
    run_exit_command();
  unlinkat(dir_fd, "attach", 0);
  _exit(0);
}

static void child_exited(pid_t pid, int status) {
  if (init_pid && pid == init_pid) {
    exited = 1;
    exit_status = status;
  } else if (!init_pid && pid != stage1 && nearly < EARLY_EXITS) {
    early[nearly].pid = pid;
    early[nearly++].status = status;
  } else if (!init_pid && pid == stage1) {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    /* Stage 1 failing before the init exists: the engine reads the error on the sync socket;
       nothing left to watch once it has hung up (handled by the ctl EOF path). */
    (void)code;
  }
}

static void reap(void) {
  struct signalfd_siginfo si;
  while (read(sig_fd, &si, sizeof si) == sizeof si) {
    if (si.ssi_signo == SIGCHLD) continue;
    if (init_pid) kill(init_pid, (int)si.ssi_signo); /* TERM, INT, QUIT, HUP: the container's */
  }
  for (;;) {
    int status;
    pid_t p = waitpid(-1, &status, WNOHANG);
    if (p <= 0) break;
    child_exited(p, status);
  }
}

static void on_ctl(void) {
  struct sync_msg m;
  ssize_t n = recv(ctl, &m, sizeof m, 0);
  if (n < 0 && errno == EINTR) return;
  if (n != sizeof m) {
    close(ctl);
    ctl = -1;
    if (!init_pid) die("the engine went away during setup", ECONNRESET);
    if (!detached) owner_lost = 1;
    return;
  }
  switch (m.type) {
    case MON_INIT:
      init_pid = m.value;
      for (int i = 0; i < nearly; i++)
        if (early[i].pid == init_pid) child_exited(init_pid, early[i].status);
      break;
    case MON_DETACH:
      detached = 1;
      break;
    case MON_RESIZE:
      set_winsize((m.value >> 16) & 0xffff, m.value & 0xffff);
      break;
    case MON_SIGNAL:
      if (init_pid && m.value > 0 && m.value < 65) kill(init_pid, m.value);
      break;
  }
}

static void on_fg_in(void) {
  char buf[BUF];
  ssize_t n = read(fg_in, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    fg_in = -1;
    if (master < 0) close_stdin();
    return;
  }
  to_stdin(buf, (size_t)n);
}

static void on_client(int i) {
  struct client* c = &clients[i];
  ssize_t n = read(c->fd, c->in + c->have, sizeof c->in - c->have);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    drop_client(i);
    return;
  }
  c->have += (size_t)n;
  client_frames(i);
}

static void loop(void) {
  for (;;) {
    if (exited) finish();
    struct pollfd p[8 + MAX_CLIENTS];
    int kind[8 + MAX_CLIENTS];
    int n = 0;
#define ADD(f, k) (p[n].fd = (f), p[n].events = POLLIN, p[n].revents = 0, kind[n++] = (k))
    ADD(sig_fd, 0);
    if (ctl >= 0) ADD(ctl, 1);
    if (out_r >= 0) ADD(out_r, 2);
    if (err_r >= 0) ADD(err_r, 3);
    if (master >= 0) ADD(master, 4);
    if (console >= 0) ADD(console, 5);
    if (fg_in >= 0 && stdin_fd() >= 0 && !npending) ADD(fg_in, 6);
    ADD(listen_fd, 7);
    if (npending && stdin_fd() >= 0) {
      ADD(stdin_fd(), 8);
      p[n - 1].events = POLLOUT;
    }
    for (int i = 0; i < MAX_CLIENTS; i++)
      if (clients[i].fd >= 0 && !npending) ADD(clients[i].fd, 100 + i);
#undef ADD
    if (poll(p, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll", errno);
    }
    for (int i = 0; i < n; i++) {
      if (!p[i].revents) continue;
      switch (kind[i]) {
        case 0:
          reap();
          break;
        case 1:
          if (ctl >= 0) on_ctl();
          break;
        case 2:
          if (out_r >= 0) pump(&out_r, 0);
          break;
        case 3:
          if (err_r >= 0) pump(&err_r, 1);
          break;
        case 4:
          if (master >= 0) pump(&master, 0);
          break;
        case 5:
          if (console >= 0) recv_console();
          break;
        case 6:
          if (fg_in >= 0) on_fg_in();
          break;
        case 7:
          accept_client();
          break;
        case 8:
          flush_stdin();
          break;
        default:
          if (clients[kind[i] - 100].fd >= 0) on_client(kind[i] - 100);
      }
    }
  }
}

/* ---- start ---- */

static int is_ours(int fd, const int* keep, int nkeep) {
  for (int i = 0; i < nkeep; i++)
    if (keep[i] == fd) return 1;
  return 0;
}

/* The plan's fds went to the init with the clone: our copies go. */
static void close_others(void) {
  int keep[] = {ctl, cgroup_fd, dir_fd, console, fg_in, fg_out, fg_err, out_r, err_r, in_w, sig_fd, log_fd, listen_fd, 0, 1, 2};
  int nkeep = (int)(sizeof keep / sizeof keep[0]);
  DIR* d = opendir("/proc/self/fd");
  if (!d) return;
  int self = dirfd(d);
  int victims[256];
  int nv = 0;
  struct dirent* e;
  while ((e = readdir(d)) && nv < 256) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int fd = atoi(e->d_name);
    if (fd != self && !is_ours(fd, keep, nkeep)) victims[nv++] = fd;
  }
  closedir(d);
  for (int i = 0; i < nv; i++) close(victims[i]);
}

static char old_oom[16] = "0";

static void read_oom_score(void) {
  int fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, old_oom, sizeof old_oom - 1);
  old_oom[n > 0 ? n : 0] = 0;
  /* Never the first to go under memory pressure: the container's record depends on us. */
  (void)!pwrite(fd, "-1000", 5, 0);
  close(fd);
}

__attribute__((noreturn)) static void exec_init(int in, int out, int err, pid_t monitor) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)!write(fd, old_oom, strlen(old_oom));
    close(fd);
  }
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(1);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != monitor) _exit(1);
  fcntl(sync_fd, F_SETFD, 0);
  fcntl(plan_fd, F_SETFD, 0);
  char env[80];
  snprintf(env, sizeof env, "_TSRUN_INIT=%d,%d,%d", sync_fd, plan_fd, (int)monitor);
  char arg0[] = "tsrun-init";
  char* argv[] = {arg0, NULL};
  char* envp[] = {env, NULL};
  syscall(SYS_execveat, exec_fd, "", argv, envp, AT_EMPTY_PATH);
  struct sync_msg m = {MSG_ERROR, -1, errno, D_INIT_EXEC};
  (void)!send(sync_fd, &m, sizeof m, MSG_NOSIGNAL);
  _exit(1);
}

static void make_pipe(int p[2]) {
  if (pipe2(p, O_CLOEXEC) < 0) die("pipe2", errno);
}

static void start_init(void) {
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) die("open /dev/null", errno);
  int cin = null, cout = null, cerr = null;
  if (console < 0) {
    int po[2], pe[2];
    make_pipe(po);
    make_pipe(pe);
    out_r = po[0], cout = po[1];
    err_r = pe[0], cerr = pe[1];
    if (opt.stdin_open) {
      int pi[2];
      make_pipe(pi);
      cin = pi[0], in_w = pi[1];
      fcntl(in_w, F_SETFL, O_NONBLOCK);
    }
  }
  struct clone_args a;
  memset(&a, 0, sizeof a);
  a.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) {
    a.flags = CLONE_INTO_CGROUP;
    a.cgroup = (uint64_t)cgroup_fd;
  }
  pid_t me = getpid();
  long pid = syscall(SYS_clone3, &a, sizeof a);
  if (pid == 0) exec_init(cin, cout, cerr, me);
  if (pid < 0) die(cgroup_fd >= 0 ? "clone3(CLONE_INTO_CGROUP)" : "clone3", errno);
  stage1 = (pid_t)pid;
  if (cin != null) close(cin);
  if (cout != null) close(cout);
  if (cerr != null) close(cerr);
  close(null);
  if (out_r >= 0) fcntl(out_r, F_SETFL, O_NONBLOCK);
  if (err_r >= 0) fcntl(err_r, F_SETFL, O_NONBLOCK);
  close_others();
  send_ctl(MON_SPAWNED, 0, 0, stage1);
}

int monitor_main(int argc, char** argv) {
  const char* spec = getenv("_TSRUN_MONITOR");
  int f[10];
  if (argc < 2 || !spec || parse_fds(spec, f, 10) < 0 || parse_options(argc, argv) < 0) {
    static const char msg[] = "tsrun-monitor: an internal helper of tsrun, not to be run directly\n";
    (void)!write(2, msg, sizeof msg - 1);
    return 125;
  }
  opt.id = argv[1];
  ctl = f[0], exec_fd = f[1], plan_fd = f[2], sync_fd = f[3], cgroup_fd = f[4], dir_fd = f[5], console = f[6];
  fg_in = f[7], fg_out = f[8], fg_err = f[9];
  for (int i = 0; i < MAX_CLIENTS; i++) clients[i].fd = -1;
  if (ctl < 0 || exec_fd < 0 || plan_fd < 0 || sync_fd < 0 || dir_fd < 0) return 125;
  /* Everything we hold is ours alone from here: nothing leaks into the exit command. */
  int mine[] = {ctl, cgroup_fd, dir_fd, console, fg_in, fg_out, fg_err};
  for (unsigned i = 0; i < sizeof mine / sizeof mine[0]; i++)
    if (mine[i] >= 0) fcntl(mine[i], F_SETFD, FD_CLOEXEC);
  setsid();
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  /* Not dumpable: /proc/<us>/exe, mem and fds need CAP_SYS_PTRACE (the init is made dumpable
     or not by its own plan after exec). */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  read_oom_score();
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGQUIT);
  sigaddset(&set, SIGHUP);
  sigprocmask(SIG_BLOCK, &set, NULL);
  sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sig_fd < 0) die("signalfd", errno);
  open_log(0);
  listen_attach();
  start_init();
  loop();
  return 0;
}
