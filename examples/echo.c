/*
 * echo.c - the README's first example, compiled and run by the test suite so
 * that it stays true: a process echoes back the third element of
 * {echo, From, Payload}, found with a selective receive.
 */
#include <ambitious.h>
#include <stdio.h>

static void echo(amb_proc *self, void *arg)
{
    amb_term msg;
    amb_pid from;
    if (amb_receive_match(self, 5000, &msg, "{echo, ~p, _}", &from) == 0)
        amb_send(self, from, amb_tuple_elem(msg, 2)); /* copied to the sender */
}

static void main_process(amb_proc *self, void *arg)
{
    amb_pid pid;
    amb_spawn(self, echo, NULL, &pid);
    amb_send(self, pid,
             amb_pack(amb_proc_heap(self), "{echo, ~p, ~s}", amb_self(self), "hi"));
    amb_term reply;
    if (amb_receive(self, 1000, &reply) == 0)           /* 1 s timeout */
        amb_fprint_ex(reply, AMB_PRINT_PRETTY, stdout); /* "hi" */
    printf("\n");
}

int main(void)
{
    return amb_main(NULL, main_process, NULL);
}
