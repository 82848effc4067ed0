#!/usr/bin/env escript
%% -*- erlang -*-
%%! -noshell
-mode(compile).
%%
%% dist_wire.escript - the Erlang side of dist_wire.sh: a real node that
%% starts dist_wire_helper (a C node made of src/dist's protocol layer over
%% test sockets) and checks, step by step, what crosses the wire:
%%
%%   the C node registers with epmd, lists names, finds us; connects with a
%%   wrong cookie and is refused; connects with the right one; a second
%%   connection under its name is answered alive (it says false); we link,
%%   echo terms of every type through it, send 1 MiB (we fragment, it
%%   reassembles) and get it back (it fragments, we reassemble), monitor a
%%   name it does not have (DOWN noproc with the name), unlink (UNLINK_ID
%%   acknowledged), link again and monitor it, make it crash (EXIT and DOWN
%%   with the real reason), exit it, ping it; it ends the connection
%%   (nodedown). Then we call it: with a wrong cookie (pang; it logs the bad
%%   digest), with the right one (pong), echo, done.
%%
%%   escript dist_wire.escript HELPER CAPTURE_DIR COOKIE
%%
%% The C node's lines arrive on its stdout and are matched by prefix; every
%% wait has a deadline. Prints PASS/FAIL per check and "N passed, M failed";
%% exits 1 on any failure.

main([Helper, Capture, Cookie0]) ->
    Cookie = list_to_atom(Cookie0),
    Me = list_to_atom("erl_" ++ os:getpid()),
    case net_kernel:start([Me, shortnames]) of
        {ok, _} -> ok;
        Error -> io:format("FAIL distribution did not start: ~p~n", [Error]), halt(1)
    end,
    erlang:set_cookie(node(), Cookie),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    register(peer, self()),
    process_flag(trap_exit, true),
    CAlive = "c_" ++ os:getpid(),
    CNode = list_to_atom(CAlive ++ "@" ++ Host),
    Port = open_port({spawn_executable, Helper},
                     [{args, ["node", Capture, Cookie0, CAlive, Host, atom_to_list(node())]},
                      {line, 8192}, exit_status, use_stdio, stderr_to_stdout]),
    put(port, Port),
    put(lines, []),
    put(results, []),
    try
        steps(CNode, Cookie)
    catch
        throw:{stop, Why} -> result(false, Why)
    end,
    Results = get(results),
    Failed = length([x || false <- Results]),
    io:format("dist_wire: ~p passed, ~p failed~n", [length(Results) - Failed, Failed]),
    halt(if Failed =:= 0, Results =/= [] -> 0; true -> 1 end);
main(_) ->
    io:format("usage: dist_wire.escript HELPER CAPTURE_DIR COOKIE~n"),
    halt(2).

steps(CNode, Cookie) ->
    %% EPMD, then our refusal of a wrong cookie.
    line("REGISTERED"),
    check("epmd NAMES lists both nodes", line("NAMES") =:= "NAMES ok"),
    line("PORT"),
    check("a wrong cookie from C is refused by erl",
          lists:prefix("HANDSHAKE_FAILED out closed", line("HANDSHAKE_FAILED out"))),
    Up = line("UP out"),
    check("C connects with the right cookie, distribution headers",
          lists:prefix("UP out " ++ atom_to_list(node()) ++ " mode=header", Up)),
    CPid = receive {hello, P, out} -> P after 10000 -> throw({stop, no_hello}) end,
    check("C says hello with a pid of its node", node(CPid) =:= CNode),

    link(CPid),
    check("LINK reaches C", line("MSG out LINK") =/= none),
    Terms = [atom, 'λ_ünï', 1 bsl 100, -(1 bsl 70), -3, 3.14, -0.0, <<1, 2, 3>>, <<1:3>>,
             #{a => [1, 2], "k" => {x}}, {self(), make_ref()}, "str", [], [a | b],
             fun lists:map/2, binary:copy(<<"0123456789">>, 100), list_to_tuple(lists:seq(1, 300))],
    Echoed = [begin CPid ! {echo, self(), T}, msg() end || T <- Terms],
    [io:format("  differs: sent ~P got ~P~n", [T, 20, E, 20])
     || {T, E} <- lists:zip(Terms, Echoed), T =/= E],
    check("terms of every type echo back unchanged", Echoed =:= Terms),

    Big = rand:bytes(1 bsl 20),
    CPid ! {big, self(), Big},
    Reassembled = line("REASSEMBLED out"),
    check("1 MiB from erl arrives in fragments and is reassembled",
          list_to_integer(lists:last(string:split(Reassembled, " ", all))) > 1),
    check("C got all of it", line("BIG out") =:= "BIG out 1048576"),
    Sent = line("SENT_FRAGMENTS out"),
    check("C sends it back in fragments",
          list_to_integer(lists:last(string:split(Sent, " ", all))) > 1),
    check("erl reassembles C's fragments",
          receive {big_back, B} -> B =:= Big after 10000 -> false end),

    CPid ! second_connect,
    check("a second connection under C's name gets status alive, C says false",
          lists:prefix("SECOND failed refused alive", line("SECOND"))),
    CPid ! {echo, self(), still_there},
    check("the first connection lives on", msg() =:= still_there),

    Ref = monitor(process, {nosuch, CNode}),
    check("monitor of an unknown name: DOWN noproc naming it",
          receive {'DOWN', Ref, process, {nosuch, CNode}, noproc} -> true
          after 5000 -> false end),

    unlink(CPid),
    check("unlink sends UNLINK_ID", line("MSG out UNLINK_ID") =/= none),
    link(CPid),
    line("MSG out LINK"),
    MRef = monitor(process, CPid),
    line("MSG out MONITOR_P"),
    CPid ! {crash, {my, reason}},
    line("CRASHED out 1 links 1 monitors"),
    check("C's crash reaches the link as EXIT with its reason",
          receive {'EXIT', CPid, {my, reason}} -> true after 5000 -> false end),
    check("C's crash reaches the monitor as DOWN with its reason",
          receive {'DOWN', MRef, process, CPid, {my, reason}} -> true after 5000 -> false end),
    exit(CPid, bye),
    check("exit/2 reaches C with its reason", lists:member(line("MSG out PAYLOAD_EXIT2"),
                                                           ["MSG out PAYLOAD_EXIT2 bye"])),
    check("net_adm:ping gets pong from C's net_kernel", net_adm:ping(CNode) =:= pong),
    monitor_node(CNode, true),
    CPid ! done,
    check("C ends the connection when told", line("DONE out") =:= "DONE out"),
    check("nodedown follows", receive {nodedown, CNode} -> true after 5000 -> false end),

    %% Now we call C.
    line("LISTENING"),
    erlang:set_cookie(CNode, list_to_atom(atom_to_list(Cookie) ++ "_not")),
    check("erl with a wrong cookie gets pang", net_adm:ping(CNode) =:= pang),
    check("C refuses the wrong digest",
          lists:prefix("HANDSHAKE_FAILED in cookie", line("HANDSHAKE_FAILED in"))),
    erlang:set_cookie(CNode, Cookie),
    check("erl with the right cookie gets pong", net_adm:ping(CNode) =:= pong),
    check("C accepts with pass-through frames (no FRAGMENTS offered)",
          lists:prefix("UP in " ++ atom_to_list(node()) ++ " mode=pass_through", line("UP in"))),
    CPid2 = receive {hello, P2, in} -> P2 after 10000 -> throw({stop, no_hello_in}) end,
    Echoed2 = [begin CPid2 ! {echo, self(), T}, msg() end || T <- Terms],
    check("terms echo through pass-through frames", Echoed2 =:= Terms),
    Big2 = rand:bytes(300000),
    CPid2 ! {big, self(), Big2},
    check("a large message in one pass-through frame, both ways",
          line("BIG in") =:= "BIG in 300000" andalso
              receive {big_back, B2} -> B2 =:= Big2 after 10000 -> false end),
    CPid2 ! done,
    line("DONE in"),
    check("C exits cleanly", exit_status() =:= 0).

%% The next message that is not a line of the C node, within 5 s.
msg() ->
    Port = get(port),
    receive
        X when not is_tuple(X); tuple_size(X) =:= 0; element(1, X) =/= Port -> X
    after 5000 -> timeout
    end.

%% ---- the C node's lines ---------------------------------------------------

%% The first line (seen or to come) that starts with Prefix, within 20 s.
line(Prefix) ->
    case take(Prefix, get(lines), []) of
        {ok, L} -> L;
        none -> wait_line(Prefix, erlang:monotonic_time(millisecond) + 20000)
    end.

take(_, [], _) -> none;
take(Prefix, [L | Ls], Acc) ->
    case lists:prefix(Prefix, L) of
        true -> put(lines, lists:reverse(Acc, Ls)), {ok, L};
        false -> take(Prefix, Ls, [L | Acc])
    end.

wait_line(Prefix, Deadline) ->
    Port = get(port),
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, {eol, L}}} ->
            io:format("  c: ~s~n", [L]),
            case lists:prefix(Prefix, L) of
                true -> L;
                false -> put(lines, get(lines) ++ [L]), wait_line(Prefix, Deadline)
            end;
        {Port, {exit_status, S}} ->
            put(exit_status, S),
            throw({stop, {helper_exited, S, waiting_for, Prefix}})
    after Left ->
        throw({stop, {no_line, Prefix}})
    end.

exit_status() ->
    case get(exit_status) of
        undefined ->
            Port = get(port),
            receive
                {Port, {exit_status, S}} -> S;
                {Port, {data, {eol, L}}} -> io:format("  c: ~s~n", [L]), exit_status()
            after 20000 -> timeout
            end;
        S -> S
    end.

check(Name, true) -> result(true, Name);
check(Name, _) -> result(false, Name).

result(Ok, Name) ->
    io:format("~s ~s~n", [case Ok of true -> "PASS"; false -> "FAIL" end, format(Name)]),
    put(results, [Ok | get(results)]).

format(Name) when is_list(Name) -> Name;
format(Term) -> io_lib:format("~p", [Term]).
