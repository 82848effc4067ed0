/*
 * demo.c - processes talking: what `make demo` runs.
 *
 * A registered "bank" process keeps balances in a handler process (no stack
 * while it waits). Clients are stackful processes that call it with a fresh
 * reference and wait for the reply with a selective receive, so a client's
 * other messages are never disturbed. A timer sends the bank a report
 * request after 50 ms; a client that waits too long gets a timeout.
 */
#include <ambitious.h>
#include <stdio.h>
#include <string.h>

typedef struct bank {
    int64_t balance[4];
    int64_t requests;
} bank;

/* The bank: {deposit, From, Ref, Account, Amount} -> {Ref, NewBalance}. */
static int bank_handle(amb_proc *self, void *state, amb_term msg)
{
    bank *b = state;
    amb_term from, ref;
    int account;
    int64_t amount;
    if (amb_match(msg, "{deposit, ~p, ~w, ~i, ~l}", &from, &ref, &account, &amount) ==
            0 &&
        account >= 0 && account < 4) {
        b->balance[account] += amount;
        b->requests++;
        amb_heap *h = amb_proc_heap(self);
        amb_send(self, from, AMB_TUPLE(h, ref, amb_int(h, b->balance[account])));
        amb_heap_reset(h); /* the reply was copied into the client's mailbox */
    } else if (amb_match(msg, "report") == 0) {
        printf("bank: %lld requests so far; balances %lld %lld %lld %lld\n",
               (long long)b->requests, (long long)b->balance[0], (long long)b->balance[1],
               (long long)b->balance[2], (long long)b->balance[3]);
    } else if (amb_match(msg, "stop") == 0) {
        amb_exit_self(self, AMB_ATOM_NORMAL);
    }
    return 0;
}

static const amb_handler bank_handler = {
    .state_size = sizeof(bank),
    .handle = bank_handle,
};

/* The reply to one request: {Ref, Balance} for exactly our Ref. */
static bool is_reply(amb_term msg, void *ref)
{
    return amb_tuple_arity(msg) == 2 &&
           amb_equal(amb_tuple_get(msg, 0), *(amb_term *)ref);
}

static void client(amb_proc *self, void *arg)
{
    int account = (int)(intptr_t)arg;
    amb_heap *h = amb_proc_heap(self);
    amb_pid bank_pid;
    if (amb_whereis(self, amb_atom("bank"), &bank_pid) != 0)
        return;
    int64_t last = 0;
    for (int i = 1; i <= 1000; i++) {
        amb_term ref = amb_make_ref(self);
        amb_recv_mark mark = amb_receive_mark(self);
        amb_send(
            self, bank_pid,
            amb_pack(h, "{deposit, ~p, ~w, ~i, ~i}", amb_self(self), ref, account, i));
        amb_term reply;
        if (amb_receive_if_after(self, mark, is_reply, &ref, 1000, &reply) != 0) {
            printf("client %d: no reply\n", account);
            return;
        }
        amb_get_int64(amb_tuple_get(reply, 1), &last);
        amb_heap_reset(h);
    }
    printf("client %d: 1000 deposits done, balance %lld\n", account, (long long)last);
}

static void main_process(amb_proc *self, void *arg)
{
    (void)arg;
    amb_pid bank_pid;
    amb_spawn_opts opts = {.handler = &bank_handler, .name = amb_atom("bank")};
    if (amb_spawn_opt(self, NULL, NULL, &opts, &bank_pid) != 0)
        return;
    printf("bank started as ");
    amb_fprint(stdout, bank_pid);
    printf("\n");

    amb_send_after(self, 50, amb_atom("bank"), amb_atom("report"), NULL);
    for (int account = 0; account < 4; account++)
        amb_spawn(self, client, (void *)(intptr_t)account, NULL);

    /* Nobody sends us anything: this receive ends by its timeout. */
    amb_term msg;
    int rc = amb_receive(self, 200, &msg);
    printf("main: receive with 200 ms timeout -> %s\n", amb_err_name(rc));
    amb_send(self, bank_pid, amb_atom("report"));
    amb_send(self, bank_pid, amb_atom("stop"));
}

int main(void)
{
    int rc = amb_main(NULL, main_process, NULL);
    if (rc != 0) {
        fprintf(stderr, "demo: %s\n", amb_strerror(rc));
        return 1;
    }
    printf("all processes ended\n");
    return 0;
}
