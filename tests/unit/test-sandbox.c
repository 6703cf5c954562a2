/*
 * The seccomp allowlists (util/sandbox.c), role by role, each in a child
 * that installs the role's filter as its thread would: what the role needs
 * works, and a call no role allows (socket, execve) ends the child with
 * EXIT_STATUS_SECCOMP and one line naming the role and the call.
 *
 * The children fork from the test, so a trapped call ends only them.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/suites.h"
#include "util/exit-status.h"
#include "util/sandbox.h"

typedef struct Child {
    int status;    /* as waitpid() reports it */
    char err[512]; /* its stderr */
} Child;

/* A file the children may use: opening one is not on any list. */
static int scratch_fd = -1;

static void *nothing(void *opaque)
{
    return opaque;
}

/*
 * Run @body in a child sandboxed as @role. @body returns 0 when what it
 * tried behaved as the test expects; the child exits with that, or with
 * whatever the sandbox made of it.
 */
static void run_as(Child *c, SandboxRole role, int (*body)(void))
{
    int pipefd[2];
    ssize_t n;
    pid_t pid;

    char path[] = "/var/tmp/minivmm-sandbox-XXXXXX";
    pthread_t t;

    scratch_fd = mkstemp(path);
    ck_assert_int_ge(scratch_fd, 0);
    unlink(path);
    ck_assert_int_eq(pipe(pipefd), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        /*
         * glibc sets up its own signals at a process's first thread, as
         * minivmm's first (a vCPU or the qtest thread) starts before any
         * filter.
         */
        if (pthread_create(&t, NULL, nothing, NULL) || pthread_join(t, NULL) ||
            sandbox_setup(true) < 0) {
            _exit(100);
        }
        sandbox_enter(role);
        _exit(body());
    }
    close(pipefd[1]);
    ck_assert_int_eq(waitpid(pid, &c->status, 0), pid);
    n = read(pipefd[0], c->err, sizeof(c->err) - 1);
    c->err[n > 0 ? n : 0] = '\0';
    close(pipefd[0]);
    close(scratch_fd);
}

static void assert_exited(const Child *c, int code)
{
    ck_assert_msg(WIFEXITED(c->status), "child died of signal %d; stderr: %s",
                  WIFSIGNALED(c->status) ? WTERMSIG(c->status) : 0, c->err);
    ck_assert_msg(WEXITSTATUS(c->status) == code,
                  "child exited %d, expected %d; stderr: %s",
                  WEXITSTATUS(c->status), code, c->err);
}

static void assert_trapped(const Child *c, SandboxRole role, int nr)
{
    char want[128];

    assert_exited(c, EXIT_STATUS_SECCOMP);
    snprintf(want, sizeof(want),
             "minivmm: seccomp: the %s thread made "
             "system call %d,",
             sandbox_role_name(role), nr);
    ck_assert_msg(strstr(c->err, want), "stderr: '%s', expected '%s'", c->err,
                  want);
}

/* ---- What every role does ------------------------------------------------ */

/* Memory, a lock, a kick of an eventfd, a log line, a clock. */
static int everyday_calls(void)
{
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    void *big = malloc(8 << 20); /* mmap and munmap */
    uint64_t one = 1;
    struct timespec ts;
    int efd = eventfd(0, EFD_CLOEXEC);

    if (!big || efd < 0) {
        return 10;
    }
    free(big);
    pthread_mutex_lock(&lock);
    pthread_mutex_unlock(&lock);
    if (write(efd, &one, sizeof(one)) != sizeof(one)) {
        return 11;
    }
    fprintf(stderr, "a log line\n");
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 0;
}

START_TEST(test_role_allows_everyday_calls)
{
    Child c;

    run_as(&c, (SandboxRole)_i, everyday_calls);
    /* Making an eventfd (an irqfd, an ioeventfd) is not a worker's job. */
    if (_i == SANDBOX_BLK_WORKER) {
        assert_trapped(&c, (SandboxRole)_i, SYS_eventfd2);
    } else {
        assert_exited(&c, 0);
        ck_assert_str_eq(c.err, "a log line\n");
    }
}
END_TEST

/* ---- What no role does --------------------------------------------------- */

static int make_socket(void)
{
    return socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 20;
}

static int run_a_program(void)
{
    char *argv[] = {"/bin/true", NULL};

    execv(argv[0], argv);
    return 21;
}

START_TEST(test_role_traps_socket)
{
    Child c;

    run_as(&c, (SandboxRole)_i, make_socket);
    assert_trapped(&c, (SandboxRole)_i, SYS_socket);
}
END_TEST

START_TEST(test_role_traps_execve)
{
    Child c;

    run_as(&c, (SandboxRole)_i, run_a_program);
    assert_trapped(&c, (SandboxRole)_i, SYS_execve);
}
END_TEST

/* A refused open is an error, not a trap: glibc's malloc probes a file. */
static int open_a_file(void)
{
    return open("/etc/hostname", O_RDONLY) < 0 && errno == EACCES ? 0 : 22;
}

START_TEST(test_role_refuses_open)
{
    Child c;

    run_as(&c, (SandboxRole)_i, open_a_file);
    assert_exited(&c, 0);
}
END_TEST

/* ---- A block worker, started under its creator's filter ------------------ */

/* What block/raw-threads.c's worker does before and after its filter. */
static void *worker(void *opaque)
{
    char buf[16];

    (void)opaque;
    pthread_setname_np(pthread_self(), "blk-worker");
    sandbox_enter(SANDBOX_BLK_WORKER);
    if (pwrite(scratch_fd, "minivmm", 7, 0) != 7 || fdatasync(scratch_fd) ||
        pread(scratch_fd, buf, sizeof(buf), 0) != 7) {
        return "the worker's I/O failed";
    }
    return NULL;
}

static int start_a_worker(void)
{
    pthread_t t;
    void *ret;

    if (pthread_create(&t, NULL, worker, NULL) || pthread_join(t, &ret)) {
        return 30;
    }
    return ret ? 31 : 0;
}

START_TEST(test_role_starts_a_block_worker)
{
    Child c;

    run_as(&c, (SandboxRole)_i, start_a_worker);
    if (_i == SANDBOX_BLK_WORKER) {
        /* A worker starts no threads of its own: pthread_create fails. */
        assert_exited(&c, 30);
    } else {
        assert_exited(&c, 0);
    }
}
END_TEST

/* ---- ioctl, by request --------------------------------------------------- */

/*
 * A file is no vCPU, so the kernel answers ENOTTY: what matters is that
 * the call reached it.
 */
static int kvm_run_on_a_file(void)
{
    return ioctl(scratch_fd, KVM_RUN, 0) < 0 && errno == ENOTTY ? 0 : 41;
}

static int create_a_vm(void)
{
    return ioctl(scratch_fd, KVM_CREATE_VM, 0) < 0 ? 0 : 42;
}

START_TEST(test_vcpu_ioctls_by_request)
{
    Child c;

    run_as(&c, SANDBOX_VCPU, kvm_run_on_a_file);
    assert_exited(&c, 0);
    run_as(&c, SANDBOX_VCPU, create_a_vm);
    assert_trapped(&c, SANDBOX_VCPU, SYS_ioctl);
    run_as(&c, SANDBOX_MAIN, kvm_run_on_a_file);
    assert_trapped(&c, SANDBOX_MAIN, SYS_ioctl);
}
END_TEST

Suite *sandbox_suite(void)
{
    Suite *s = suite_create("sandbox");
    TCase *tc = tcase_create("sandbox");

    tcase_add_loop_test(tc, test_role_allows_everyday_calls, 0, SANDBOX_NROLES);
    tcase_add_loop_test(tc, test_role_traps_socket, 0, SANDBOX_NROLES);
    tcase_add_loop_test(tc, test_role_traps_execve, 0, SANDBOX_NROLES);
    tcase_add_loop_test(tc, test_role_refuses_open, 0, SANDBOX_NROLES);
    tcase_add_loop_test(tc, test_role_starts_a_block_worker, 0, SANDBOX_NROLES);
    tcase_add_test(tc, test_vcpu_ioctls_by_request);
    suite_add_tcase(s, tc);
    return s;
}
