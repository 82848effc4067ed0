/*
 * amb_echo.c - `amb-echo PORT`: the TCP echo server of
 * ../shared/peer-bench/echo (its README has the contract: serve echo on
 * 127.0.0.1:PORT until killed, hold 10,000 connections), on the public
 * socket API, written as a user would: one handler process per connection
 * (no stack while it waits), its socket in {active, 100} (the cheapest
 * mode on BEAM too, and ours keeps no stack per idle connection), re-armed
 * at {tcp_passive, S}; an acceptor process owning the listener. Schedulers:
 * one per CPU (the default). It raises its fd limit to the hard limit.
 *
 * AMB_ECHO_SPIN_US in the environment sets amb_config.spin_us (the idle
 * spin's bound: "off" for AMB_SPIN_OFF), to measure what the spin before
 * sleep is worth on the 1-connection round trip (docs/perf.md).
 */
#include <ambitious.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int echo_init(amb_proc *self, void *state, void *arg)
{
    (void)self;
    *(amb_socket *)state = (amb_socket)(uintptr_t)arg;
    return 0;
}

static int echo(amb_proc *self, void *state, amb_term msg)
{
    amb_socket s = *(amb_socket *)state;
    const uint8_t *data;
    size_t len;
    if (amb_match(msg, "{tcp,~v,~b}", s, &data, &len) == 0) {
        if (amb_tcp_send(self, s, data, len, 5000, NULL) != 0)
            amb_exit_self(self, AMB_ATOM_NORMAL); /* the client went away */
        return 0;
    }
    if (amb_match(msg, "{tcp_passive,~v}", s) == 0) {
        amb_sock_opts o = {.active = 100};
        return amb_inet_setopts(self, s, &o, AMB_SOCKOPT_ACTIVE);
    }
    amb_exit_self(self, AMB_ATOM_NORMAL); /* tcp_closed, tcp_error */
}

static const amb_handler echo_handler = {
    .state_size = sizeof(amb_socket), .init = echo_init, .handle = echo};

static void acceptor(amb_proc *self, void *arg)
{
    uint16_t port = (uint16_t)(uintptr_t)arg;
    amb_sock_opts lo = {.backlog = 4096, .nodelay = true};
    amb_socket l;
    int rc = amb_tcp_listen(self, "127.0.0.1", port, &lo, &l);
    if (rc != 0) {
        fprintf(stderr, "amb-echo: listen on %u: %s\n", port, amb_strerror(rc));
        amb_rt_halt(amb_proc_rt(self), rc);
        return;
    }
    amb_sock_opts active = {.active = 100};
    for (;;) {
        amb_socket c;
        amb_pid pid;
        rc = amb_tcp_accept(self, l, AMB_INFINITY, &c);
        if (rc == AMB_ESYSLIMIT) {
            amb_sleep(self, 10); /* out of fds: the listener stays, try again */
            continue;
        }
        if (rc != 0)
            continue;
        if (amb_spawn_handler(self, &echo_handler, (void *)(uintptr_t)c, &pid) != 0 ||
            amb_inet_controlling_process(self, c, pid) != 0 ||
            amb_inet_setopts(self, c, &active, AMB_SOCKOPT_ACTIVE) != 0)
            amb_inet_close(self, c);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: amb-echo PORT\n");
        return 2;
    }
    long port = strtol(argv[1], NULL, 10);
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "amb-echo: bad port %s\n", argv[1]);
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    amb_config cfg = {0};
    const char *spin = getenv("AMB_ECHO_SPIN_US");
    if (spin != NULL)
        cfg.spin_us = strcmp(spin, "off") == 0 ? AMB_SPIN_OFF : strtol(spin, NULL, 10);
    int rc = amb_main(&cfg, acceptor, (void *)(uintptr_t)port);
    if (rc != 0)
        fprintf(stderr, "amb-echo: %s\n", amb_strerror(rc));
    return rc == 0 ? 0 : 1;
}
