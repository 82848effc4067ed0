#!/usr/bin/env escript
%% -*- erlang -*-
%%! -noshell
-mode(compile).
%%
%% dist_tls.escript - the Erlang side of dist_tls.sh: this escript is a
%% real erl node over inet_tls_dist (dist_tls.sh runs it with ERL_FLAGS
%% "-proto_dist inet_tls -ssl_dist_optfile good.conf") that starts C nodes
%% (dist_node_helper with --tls-cert/--tls-key/--tls-ca, node.h's tls_*
%% options) and other erl nodes (subprocesses: with another CA's
%% certificate, and plain TCP), and checks:
%%
%%   erl -> C over TLS: ping, gen_server:call, 4 MB both ways, monitor
%%   with a real reason; C -> erl over TLS: the C node connects first, a
%%   call from C; a C node with another CA's certificate refused both ways;
%%   an erl node with another CA's certificate refused by a good C node
%%   both ways (the C side's own verification); a plain-TCP C node and a
%%   TLS erl refuse each other both ways, a plain-TCP erl and a TLS C node
%%   too; every node still up and answering afterwards.
%%
%%   escript dist_tls.escript HELPER COOKIE CERTDIR
%%
%% CERTDIR holds ca.pem, node.pem/.key (signed by ca), bad.pem/.key (signed
%% by other_ca), good.conf, bad.conf (ssl_dist_optfile files). Every wait
%% has a deadline; helpers are stopped by OS pid. Prints PASS/FAIL per
%% check and "dist_tls: N passed, M failed"; exits 1 on any failure.

main([Helper, Cookie0, Dir]) ->
    Me = list_to_atom("erl_" ++ os:getpid() ++ "@localhost"),
    case net_kernel:start([Me, shortnames]) of
        {ok, _} -> ok;
        Error -> io:format("FAIL distribution did not start: ~p~n", [Error]), halt(1)
    end,
    erlang:set_cookie(node(), list_to_atom(Cookie0)),
    put(helper, Helper),
    put(cookie, Cookie0),
    put(dir, Dir),
    put(results, []),
    process_flag(trap_exit, true),
    try
        all()
    catch
        throw:{stop, Why} -> check(io_lib:format("~p", [Why]), false);
        C:E:S -> check(io_lib:format("crashed ~p:~p ~p", [C, E, S]), false)
    end,
    [catch stop_os(P) || P <- procs()],
    Results = get(results),
    Failed = length([x || false <- Results]),
    io:format("dist_tls: ~p passed, ~p failed~n", [length(Results) - Failed, Failed]),
    halt(if Failed =:= 0, Results =/= [] -> 0; true -> 1 end);
main(_) ->
    io:format("usage: dist_tls.escript HELPER COOKIE CERTDIR~n"),
    halt(2).

%% ---------------------------------------------------------------------------
%% Helpers
%% ---------------------------------------------------------------------------

check(What, true) ->
    io:format("PASS ~s~n", [What]),
    put(results, [true | get(results)]);
check(What, Other) ->
    io:format("FAIL ~s (~p)~n", [What, Other]),
    put(results, [false | get(results)]).

procs() ->
    case get(procs) of undefined -> []; L -> L end.

file(Name) -> filename:join(get(dir), Name).

%% Certificate options of a C node: good (signed by the trusted CA), bad
%% (another CA's), plain (no TLS).
tls_args(good) -> ["--tls-cert", file("node.pem"), "--tls-key", file("node.key"),
                   "--tls-ca", file("ca.pem")];
tls_args(bad) -> ["--tls-cert", file("bad.pem"), "--tls-key", file("bad.key"),
                  "--tls-ca", file("ca.pem")];
tls_args(plain) -> [].

%% Starts a C node; returns {Node, Port, ConnectResult} (ConnectResult:
%% pong | pang with {connect, Node} in Opts, else none).
cnode(Alive0, Kind, Opts) ->
    Name = Alive0 ++ "_" ++ os:getpid() ++ "@localhost",
    Connect = case lists:keyfind(connect, 1, Opts) of
                  {connect, N} -> ["--connect", atom_to_list(N)];
                  false -> []
              end,
    Port = open_os(get(helper), [Name, get(cookie)] ++ tls_args(Kind) ++ Connect),
    CR = case Connect of
             [] -> none;
             _ -> case wait_line(Port, "CONNECT ", 20000) of
                      {ok, R} -> list_to_atom(R);
                      Other -> throw({stop, {no_connect_line, Name, Other}})
                  end
         end,
    case wait_line(Port, "READY ", 15000) of
        {ok, Rest} -> {list_to_atom(Rest), Port, CR};
        Other2 -> throw({stop, {no_ready, Name, Other2}})
    end.

%% An erl subprocess with the given distribution flags: pings Target,
%% prints "PING pong|pang", then waits for a line on stdin and halts.
%% Returns {Node, Port, PingResult}.
enode(Alive0, Flags, Target) ->
    Alive = Alive0 ++ "_" ++ os:getpid(),
    Node = list_to_atom(Alive ++ "@localhost"),
    Code = lists:flatten(io_lib:format(
             "io:format(\"PING ~~p~~n\", [net_adm:ping('~s')]), "
             "io:get_line(\"\"), halt().", [Target])),
    %% Not this node's ERL_FLAGS (its TLS flags): only Flags.
    Port = open_os(os:find_executable("erl"),
                   ["-noshell", "-sname", atom_to_list(Node), "-setcookie", get(cookie)]
                   ++ Flags ++ ["-eval", Code], [{env, [{"ERL_FLAGS", false}]}]),
    case wait_line(Port, "PING ", 30000) of
        {ok, R} -> {Node, Port, list_to_atom(R)};
        Other -> throw({stop, {no_ping_line, Node, Other}})
    end.

%% Ends an erl subprocess through its stdin: true when it halted with 0.
enode_stop(Port) ->
    port_command(Port, "stop\n"),
    wait_exit(Port, 15000) =:= {exited, 0}.

open_os(Exe, Args) -> open_os(Exe, Args, []).
open_os(Exe, Args, Extra) ->
    Port = open_port({spawn_executable, Exe},
                     [{args, Args}, {line, 8192}, exit_status, use_stdio,
                      stderr_to_stdout | Extra]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    put(procs, [{Port, OsPid} | procs()]),
    Port.

%% The next line of Port starting with Prefix (earlier ones are printed).
wait_line(Port, Prefix, Timeout) ->
    receive
        {Port, {data, {eol, Line}}} ->
            case lists:prefix(Prefix, Line) of
                true -> {ok, lists:nthtail(length(Prefix), Line)};
                false -> io:format("  | ~s~n", [Line]), wait_line(Port, Prefix, Timeout)
            end;
        {Port, {exit_status, S}} -> {exited, S}
    after Timeout -> timeout
    end.

wait_exit(Port, Timeout) ->
    case wait_line(Port, "\n", Timeout) of
        {exited, S} -> {exited, S};
        Other -> Other
    end.

%% True while Port's OS process runs (no exit_status arrived).
running(Port) ->
    receive {Port, {exit_status, S}} -> self() ! {Port, {exit_status, S}}, false
    after 0 -> erlang:port_info(Port) =/= undefined
    end.

stop_os({Port, OsPid}) ->
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    receive {Port, {exit_status, _}} -> ok after 5000 -> ok end.

ask(Node, Cmd) ->
    Ref = make_ref(),
    {agent, Node} ! {self(), Ref, Cmd},
    receive {Ref, R} -> R
    after 30000 -> {no_answer, Cmd}
    end.

blob(N) -> list_to_binary([I rem 251 || I <- lists:seq(0, N - 1)]).

calc() ->
    receive
        {'$gen_call', From, {add, A, B}} -> gen_server:reply(From, A + B), calc();
        _ -> calc()
    end.

%% ---------------------------------------------------------------------------
%% The checks
%% ---------------------------------------------------------------------------

all() ->
    register(calc, spawn_link(fun calc/0)),
    Good = ["-proto_dist", "inet_tls", "-ssl_dist_optfile", file("good.conf")],
    Bad = ["-proto_dist", "inet_tls", "-ssl_dist_optfile", file("bad.conf")],

    %% erl -> C over TLS.
    {C, _, _} = cnode("c", good, []),
    check("erl pings a TLS C node -> pong", net_adm:ping(C) =:= pong),
    check("erl gen_server:call to the C node over TLS",
          gen_server:call({cgs, C}, {echo, tls}, 10000) =:= {ok_from_c, tls}),
    Big = blob(4000000),
    check("4 MB erl -> C -> erl over TLS",
          gen_server:call({cgs, C}, {echo, Big}, 30000) =:= {ok_from_c, Big}),
    check("4 MB made by the C node over TLS", ask(C, {blob, 4000000}) =:= Big),
    check("C gen_server:call to erl over the same connection",
          ask(C, {call, {calc, node()}, {add, 1, 2}}) =:= {ok, 3}),
    {ok, W} = ask(C, {spawn, none, false}),
    MRef = erlang:monitor(process, W),
    W ! {die, {shutdown, tls}},
    check("a monitor across TLS gets the real reason",
          receive {'DOWN', MRef, process, W, {shutdown, tls}} -> true
          after 10000 -> timeout end),

    %% C -> erl over TLS: the C node connects first.
    {CI, _, CR} = cnode("ci", good, [{connect, node()}]),
    check("a TLS C node connects to erl first -> pong", CR =:= pong),
    check("erl sees the C node connected", lists:member(CI, nodes(connected))),
    check("C gen_server:call to erl over its own connection",
          ask(CI, {call, {calc, node()}, {add, 20, 22}}) =:= {ok, 42}),

    %% A C node with another CA's certificate: refused both ways.
    {CB, CBPort, CBR} = cnode("cbad", bad, [{connect, node()}]),
    check("a C node with another CA's certificate connecting -> refused", CBR =:= pang),
    check("erl pings a C node with another CA's certificate -> pang",
          net_adm:ping(CB) =:= pang),
    check("the refused C node is still running", running(CBPort)),

    %% An erl node with another CA's certificate and a good C node: the C
    %% node's own verification refuses it, both ways.
    {EB, EBPort, EBR} = enode("ebad", Bad, C),
    check("erl with another CA's certificate pings the TLS C node -> pang", EBR =:= pang),
    check("the TLS C node pings erl with another CA's certificate -> pang",
          ask(C, {ping, EB}) =:= pang),
    check("that erl node halts normally afterwards", enode_stop(EBPort)),

    %% Plain TCP against TLS, every way.
    {P, PPort, PR} = cnode("plain", plain, [{connect, node()}]),
    check("a plain-TCP C node connecting to a TLS erl -> refused", PR =:= pang),
    check("a TLS erl pings a plain-TCP C node -> pang", net_adm:ping(P) =:= pang),
    check("the plain C node is still running", running(PPort)),
    {EP, EPPort, EPR} = enode("eplain", [], C),
    check("a plain-TCP erl pings a TLS C node -> pang", EPR =:= pang),
    check("the TLS C node pings a plain-TCP erl -> pang", ask(C, {ping, EP}) =:= pang),
    check("the plain erl node halts normally afterwards", enode_stop(EPPort)),

    %% Nobody crashed: the good C nodes still answer over TLS.
    check("the TLS C node still answers after the refusals",
          gen_server:call({cgs, C}, {echo, still}, 10000) =:= {ok_from_c, still}),
    check("the other TLS C node too", ask(CI, {ping, node()}) =:= pong),
    {_, EGPort, EGR} = enode("egood", Good, C),
    check("a good TLS erl subprocess still gets pong from the C node", EGR =:= pong),
    check("that erl node halts normally afterwards", enode_stop(EGPort)).
