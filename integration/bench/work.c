/* Micro-workloads for the rsentry benchmark. Usage: work MODE ITERS [ARG]
 * Prints one number on stdout: nanoseconds per operation, or MB/s for "seqread" and
 * "tcp" (ITERS MiB sent over a loopback TCP connection).
 * Each mode times only its loop, so process start-up is not counted. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void *thread_fn(void *arg) { return arg; }

static void pingpong(int a[2], int b[2], long iters, int use_socket) {
    char c = 'x';
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        for (long i = 0; i < iters; i++) {
            if (read(a[0], &c, 1) != 1) _exit(3);
            if (write(b[1], &c, 1) != 1) _exit(3);
        }
        _exit(0);
    }
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        if (write(a[1], &c, 1) != 1) die("write");
        if (read(b[0], &c, 1) != 1) die("read");
    }
    double t1 = now_ns();
    int st;
    waitpid(pid, &st, 0);
    (void)use_socket;
    printf("%.1f\n", (t1 - t0) / iters);
}

/* A connected TCP pair over 127.0.0.1 (kernel-chosen port): *c the client, *d the
 * accepted end. */
static void tcp_pair(int *c, int *d) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) die("socket");
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1)) die("bind/listen");
    if (getsockname(l, (struct sockaddr *)&a, &al)) die("getsockname");
    *c = socket(AF_INET, SOCK_STREAM, 0);
    if (*c < 0 || connect(*c, (struct sockaddr *)&a, sizeof a)) die("connect");
    *d = accept(l, NULL, NULL);
    if (*d < 0) die("accept");
    close(l);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: work MODE ITERS [ARG]\n");
        return 2;
    }
    const char *mode = argv[1];
    long iters = atol(argv[2]);
    const char *arg = argc > 3 ? argv[3] : "";
    if (iters <= 0) return 2;
    double t0, t1;

    if (!strcmp(mode, "getpid")) {
        t0 = now_ns();
        for (long i = 0; i < iters; i++) syscall(SYS_getpid);
        t1 = now_ns();
    } else if (!strcmp(mode, "openclose")) {
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            int fd = open(arg, O_RDONLY);
            if (fd < 0) die("open");
            close(fd);
        }
        t1 = now_ns();
    } else if (!strcmp(mode, "stat")) {
        struct stat st;
        t0 = now_ns();
        for (long i = 0; i < iters; i++)
            if (stat(arg, &st) != 0) die("stat");
        t1 = now_ns();
    } else if (!strcmp(mode, "read4k")) {
        char buf[4096];
        int fd = open(arg, O_RDONLY);
        if (fd < 0) die("open");
        t0 = now_ns();
        for (long i = 0; i < iters; i++)
            if (pread(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf) die("pread");
        t1 = now_ns();
        close(fd);
    } else if (!strcmp(mode, "seqread")) {
        static char buf[1 << 16];
        double bytes = 0;
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            int fd = open(arg, O_RDONLY);
            if (fd < 0) die("open");
            ssize_t n;
            while ((n = read(fd, buf, sizeof buf)) > 0) bytes += n;
            if (n < 0) die("read");
            close(fd);
        }
        t1 = now_ns();
        printf("%.1f\n", bytes / ((t1 - t0) / 1e9) / 1e6);
        return 0;
    } else if (!strcmp(mode, "pipe")) {
        int a[2], b[2];
        if (pipe(a) || pipe(b)) die("pipe");
        pingpong(a, b, iters, 0);
        return 0;
    } else if (!strcmp(mode, "unix")) {
        int s[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, s)) die("socketpair");
        int a[2] = {s[1], s[0]}, b[2] = {s[0], s[1]};
        pingpong(a, b, iters, 1);
        return 0;
    } else if (!strcmp(mode, "tcp")) {
        int c, d;
        tcp_pair(&c, &d);
        static char buf[1 << 16];
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            close(d);
            memset(buf, 'x', sizeof buf);
            for (long i = 0; i < iters * 16; i++) {
                size_t off = 0;
                while (off < sizeof buf) {
                    ssize_t n = write(c, buf + off, sizeof buf - off);
                    if (n <= 0) _exit(3);
                    off += n;
                }
            }
            close(c);
            _exit(0);
        }
        close(c);
        double bytes = 0;
        ssize_t n;
        t0 = now_ns();
        while ((n = read(d, buf, sizeof buf)) > 0) bytes += n;
        t1 = now_ns();
        if (n < 0) die("read");
        int st;
        waitpid(pid, &st, 0);
        if (bytes != (double)iters * (1 << 20)) die("short transfer");
        printf("%.1f\n", bytes / ((t1 - t0) / 1e9) / 1e6);
        return 0;
    } else if (!strcmp(mode, "tcprr")) {
        int c, d, one = 1;
        tcp_pair(&c, &d);
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(d, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int a[2] = {d, c}, b[2] = {c, d};
        pingpong(a, b, iters, 1);
        return 0;
    } else if (!strcmp(mode, "forkwait")) {
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            pid_t p = fork();
            if (p < 0) die("fork");
            if (p == 0) _exit(0);
            int st;
            if (waitpid(p, &st, 0) != p) die("waitpid");
        }
        t1 = now_ns();
    } else if (!strcmp(mode, "forkexec")) {
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            pid_t p = fork();
            if (p < 0) die("fork");
            if (p == 0) {
                char *const av[] = {(char *)arg, NULL};
                execv(arg, av);
                _exit(127);
            }
            int st;
            if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) die("exec child");
        }
        t1 = now_ns();
    } else if (!strcmp(mode, "thread")) {
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            pthread_t th;
            if (pthread_create(&th, NULL, thread_fn, NULL)) die("pthread_create");
            pthread_join(th, NULL);
        }
        t1 = now_ns();
    } else if (!strcmp(mode, "mmap1")) {
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) die("mmap");
            p[0] = 1;
            munmap(p, 4096);
        }
        t1 = now_ns();
    } else if (!strcmp(mode, "touch64m")) {
        size_t len = 64u << 20;
        t0 = now_ns();
        for (long i = 0; i < iters; i++) {
            char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) die("mmap");
            for (size_t off = 0; off < len; off += 4096) p[off] = 1;
            munmap(p, len);
        }
        t1 = now_ns();
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("%.1f\n", (t1 - t0) / iters);
    return 0;
}
