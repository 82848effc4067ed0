/*
 * echo.c - the README's first example, compiled and run by the test suite so
 * that it stays true: a process answers {echo, From, Payload} with
 * {echoed, Payload}, found with a selective receive, in a loop that keeps
 * its heap bounded, until nobody has asked for a second.
 */
#include <ambitious.h>
#include <stdio.h>

static void echo(amb_proc *self, void *arg)
{
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h); /* every round starts from here */
    amb_term msg;
    amb_pid from;
    while (amb_receive_match(self, 1000, &msg, "{echo, ~p, _}", &from) == 0) {
        amb_heap_rewind(h, top); /* drops what the last round built */
        amb_send(self, from, amb_pack(h, "{echoed, ~w}", amb_tuple_elem(msg, 2)));
    }
}

static void main_process(amb_proc *self, void *arg)
{
    amb_heap *h = amb_proc_heap(self);
    amb_heap_mark top = amb_heap_save(h);
    amb_pid pid;
    amb_spawn(self, echo, NULL, &pid);
    for (int i = 1; i <= 3; i++) {
        amb_heap_rewind(h, top);
        amb_send(self, pid, amb_pack(h, "{echo, ~p, [~s, ~i]}", amb_self(self), "hi", i));
        amb_term reply;
        if (amb_receive(self, 1000, &reply) == 0)           /* 1 s timeout */
            amb_fprint_ex(reply, AMB_PRINT_PRETTY, stdout); /* {echoed,["hi",1]} */
        printf("\n");
    }
}

int main(void)
{
    return amb_main(NULL, main_process, NULL);
}
