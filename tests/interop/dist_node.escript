#!/usr/bin/env escript
%% -*- erlang -*-
%%! -noshell
-mode(compile).
%%
%% dist_node.escript - the Erlang side of dist_node.sh: a real Erlang node
%% that starts C nodes (dist_node_helper, the public node API) and checks
%% the reference's interop list both ways:
%%
%%   ping; send to a registered name; gen_server:call both ways (the C
%%   server answering OTP's alias tags, an Erlang server answering a C
%%   caller); links and monitors with real reasons both ways (by pid and
%%   by {Name, Node}); the unlink protocol; noproc for a name that is not
%%   there, both ways; exit/2 both ways (kill untrappable); 4 MB and 100 MB
%%   messages both ways (both sides fragment what they send); fragment
%%   sequences of several senders interleaved, both ways; a C sender over
%%   its budget waiting while another C sender's small messages pass its
%%   100 MB message; reconnect after
%%   disconnect_node; noconnection to links and monitors when the C node's
%%   OS process is killed, and when an Erlang node the C node watches is;
%%   tick supervision (a frozen C node dropped after net_ticktime); hidden
%%   and visible; the C node connecting first; a wrong cookie refused and
%%   logged; rpc:call, erpc:call (value, error, throw, exit, undef,
%%   timeout), rex, spawn/spawn_link/spawn_monitor/spawn_request into the C
%%   node, and erpc and spawn_request (link, monitor) from C into erl.
%%
%%   escript dist_node.escript HELPER COOKIE short|long
%%
%% short runs everything with -sname style names; long runs the basics
%% with fully qualified names (x@127.0.0.1). Every wait has a deadline;
%% helpers are stopped by OS pid. Prints PASS/FAIL per check and
%% "dist_node: N passed, M failed"; exits 1 on any failure.

main([Helper, Cookie0, Mode]) ->
    Cookie = list_to_atom(Cookie0),
    Long = Mode =:= "long",
    Me = list_to_atom("erl_" ++ os:getpid() ++ case Long of true -> "@127.0.0.1"; false -> "" end),
    NameType = case Long of true -> longnames; false -> shortnames end,
    %% The third element is the tick interval (net_ticktime / 4) in ms:
    %% net_ticktime 4 s.
    case net_kernel:start([Me, NameType, 1000]) of
        {ok, _} -> ok;
        Error -> io:format("FAIL distribution did not start: ~p~n", [Error]), halt(1)
    end,
    erlang:set_cookie(node(), Cookie),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    put(host, Host),
    put(helper, Helper),
    put(cookie, Cookie0),
    put(long, Long),
    put(results, []),
    put(stash, []),
    process_flag(trap_exit, true),
    try
        case Long of
            true -> long_names();
            false -> all()
        end
    catch
        throw:{stop, Why} -> check(io_lib:format("~p", [Why]), false);
        C:E:S -> check(io_lib:format("crashed ~p:~p ~p", [C, E, S]), false)
    end,
    [catch stop_cnode(P) || P <- get_cnodes()],
    Results = get(results),
    Failed = length([x || false <- Results]),
    io:format("dist_node: ~p passed, ~p failed~n", [length(Results) - Failed, Failed]),
    halt(if Failed =:= 0, Results =/= [] -> 0; true -> 1 end);
main(_) ->
    io:format("usage: dist_node.escript HELPER COOKIE short|long~n"),
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

get_cnodes() ->
    case get(cnodes) of undefined -> []; L -> L end.

%% Starts a C node; returns {Node, Port, OsPid}.
cnode(Alive, Args) ->
    cnode(Alive, get(cookie), Args).
cnode(Alive0, Cookie, Args) ->
    Alive = Alive0 ++ "_" ++ os:getpid(),
    Name = case get(long) of true -> Alive ++ "@127.0.0.1"; false -> Alive ++ "@" ++ get(host) end,
    Extra = case get(long) of true -> ["--long"]; false -> [] end,
    Port = open_port({spawn_executable, get(helper)},
                     [{args, [Name, Cookie] ++ Extra ++ Args},
                      {line, 8192}, exit_status, use_stdio, stderr_to_stdout]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    put(cnodes, [{Port, OsPid} | get_cnodes()]),
    case wait_line(Port, "READY ", 15000) of
        {ok, Rest} -> {list_to_atom(Rest), Port, OsPid};
        Other -> throw({stop, {no_ready, Alive, Other}})
    end.

%% The next line of Port starting with Prefix (earlier ones are dropped).
wait_line(Port, Prefix, Timeout) ->
    receive
        {Port, {data, {eol, Line}}} ->
            case lists:prefix(Prefix, Line) of
                true -> {ok, lists:nthtail(length(Prefix), Line)};
                false -> wait_line(Port, Prefix, Timeout)
            end;
        {Port, {exit_status, S}} -> {exited, S}
    after Timeout -> timeout
    end.

stop_cnode({Port, OsPid}) ->
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    receive {Port, {exit_status, _}} -> ok after 5000 -> ok end.

%% Asks the C node's agent; waits for the answer.
ask(Node, Cmd) -> ask(Node, Cmd, 30000).
ask(Node, Cmd, Timeout) ->
    Ref = make_ref(),
    {agent, Node} ! {self(), Ref, Cmd},
    receive {Ref, R} -> R
    after Timeout -> {no_answer, Cmd}
    end.

worker(Node, Name, Trap) ->
    {ok, W} = ask(Node, {spawn, Name, Trap}),
    W.

%% The oldest message matching the fun, within Timeout; others are kept
%% (in arrival order) for later recv calls.
recv(Fun, Timeout) ->
    Stash = case get(stash) of undefined -> []; S -> S end,
    case lists:splitwith(fun(M) -> not Fun(M) end, Stash) of
        {Before, [M | After]} -> put(stash, Before ++ After), M;
        {_, []} -> recv_new(Fun, erlang:monotonic_time(millisecond) + Timeout)
    end.
recv_new(Fun, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive M ->
        case Fun(M) of
            true -> M;
            false -> put(stash, get(stash) ++ [M]), recv_new(Fun, Deadline)
        end
    after Left -> timeout
    end.

%% A process that waits for {die, R} and ends with R; traps if asked.
victim(Trap, Report) ->
    spawn(fun() ->
        process_flag(trap_exit, Trap),
        victim_loop(Report)
    end).
victim_loop(Report) ->
    receive
        {die, R} -> exit(R);
        M -> Report ! {victim, self(), M}, victim_loop(Report)
    end.

%% An Erlang gen_server-protocol server registered as calc: {add, A, B}.
calc() ->
    receive
        {'$gen_call', From, {add, A, B}} -> gen_server:reply(From, A + B), calc();
        {'$gen_call', From, {echo, X}} -> gen_server:reply(From, {ok_from_erl, X}), calc();
        _ -> calc()
    end.

blob(N) -> list_to_binary([I rem 251 || I <- lists:seq(0, N - 1)]).

%% ---------------------------------------------------------------------------
%% The checks
%% ---------------------------------------------------------------------------

all() ->
    {C, _Port, _} = cnode("c", []),
    basics(C),
    links_and_monitors(C),
    calls_from_c(C),
    exits(C),
    big(C),
    rpc_into_c(C),
    rpc_from_c(C),
    interleaved(C),
    fair(C),
    reconnect(C),
    killed(),
    erl_killed(),
    ticks(),
    visible(),
    c_first(),
    wrong_cookie().

%% rpc:call, erpc:call and spawn/spawn_link/spawn_monitor/spawn_request of
%% functions the C node registered (cnode:add/raise/sleep/wait).
rpc_into_c(C) ->
    check("rpc:call into C", rpc:call(C, cnode, add, [1, 2, 3]) =:= 6),
    check("erpc:call into C", erpc:call(C, cnode, add, [40, 2], 5000) =:= 42),
    check("erpc:call into C: error",
          catch_exception(fun() -> erpc:call(C, cnode, raise, [error, boom], 5000) end)
              =:= {error, {exception, boom, [{cnode, raise, 2, []}]}}),
    check("erpc:call into C: throw",
          catch_exception(fun() -> erpc:call(C, cnode, raise, [throw, ball], 5000) end) =:= {throw, ball}),
    check("erpc:call into C: exit",
          catch_exception(fun() -> erpc:call(C, cnode, raise, [exit, bye], 5000) end)
              =:= {exit, {exception, bye}}),
    check("erpc:call into C: undef",
          catch_exception(fun() -> erpc:call(C, cnode, nope, [1], 5000) end)
              =:= {error, {exception, undef, [{cnode, nope, [1], []}]}}),
    check("erpc:call into C: timeout",
          catch_exception(fun() -> erpc:call(C, cnode, sleep, [3000], 200) end)
              =:= {error, {erpc, timeout}}),
    check("rpc:call into C: a crash is badrpc",
          rpc:call(C, cnode, raise, [error, boom]) =:= {badrpc, {'EXIT', {boom, [{cnode, raise, 2, []}]}}}),
    check("rex: gen_server call {call, M, F, A, GL}",
          gen_server:call({rex, C}, {call, cnode, add, [5, 6], user}) =:= 11),
    {rex, C} ! {self(), {call, cnode, add, [7, 8], user}},
    check("rex: {From, {call, ...}} as ei_rpc sends it",
          recv(fun(M) -> element(1, M) =:= rex end, 5000) =:= {rex, 15}),
    {rex, C} ! {self(), features_request},
    check("rex: features_request",
          recv(fun(M) -> element(1, M) =:= features_reply end, 5000)
              =:= {features_reply, C, [erpc]}),
    check("erpc:call into C: its process ends (exit by signal)",
          catch_exception(fun() -> erpc:call(C, cnode, die, [oops], 5000) end)
              =:= {exit, {signal, oops}}),
    check("rpc:call into C: its process ends",
          rpc:call(C, cnode, die, [oops]) =:= {badrpc, {'EXIT', oops}}),
    check("erpc:multicall and rpc:multicall into C",
          {erpc:multicall([C], cnode, add, [1, 2], 5000), rpc:multicall([C], cnode, add, [1, 2], 5000)}
              =:= {[{ok, 3}], {[3], []}}),
    Req0 = erpc:send_request(C, cnode, add, [2, 3]),
    check("erpc:send_request into C", erpc:receive_response(Req0, 5000) =:= 5),
    Self = self(),
    ok = erpc:cast(C, cnode, wait, [Self]),
    check("erpc:cast into C runs the function",
          case recv(fun(M) -> element(1, M) =:= ready end, 5000) of
              {ready, Pc} -> Pc ! {die, normal}, true;
              Other0 -> Other0
          end),
    true = rpc:cast(C, cnode, wait, [Self]),
    check("rpc:cast into C runs the function",
          case recv(fun(M) -> element(1, M) =:= ready end, 5000) of
              {ready, Pr} -> Pr ! {die, normal}, true;
              Other1 -> Other1
          end),
    P1 = spawn(C, cnode, wait, [Self]),
    check("spawn/4 on C", recv(fun(M) -> M =:= {ready, P1} end, 5000) =:= {ready, P1}),
    P1 ! {die, normal},
    {P2, R2} = spawn_monitor(C, cnode, wait, [Self]),
    recv(fun(M) -> M =:= {ready, P2} end, 5000),
    P2 ! {die, oops},
    check("spawn_monitor/4 on C: DOWN with the reason",
          recv(fun(M) -> element(1, M) =:= 'DOWN' andalso element(2, M) =:= R2 end, 5000)
              =:= {'DOWN', R2, process, P2, oops}),
    P3 = spawn_link(C, cnode, wait, [Self]),
    recv(fun(M) -> M =:= {ready, P3} end, 5000),
    P3 ! {die, linked_bye},
    check("spawn_link/4 on C: EXIT with the reason",
          recv(fun(M) -> M =:= {'EXIT', P3, linked_bye} end, 5000) =:= {'EXIT', P3, linked_bye}),
    Req = spawn_request(C, cnode, wait, [Self], [monitor, link, {reply_tag, tagged}]),
    check("spawn_request on C: the reply",
          case recv(fun(M) -> element(1, M) =:= tagged end, 5000) of
              {tagged, Req, ok, P} -> put(p4, P), true;
              Other -> Other
          end),
    P4 = get(p4),
    recv(fun(M) -> M =:= {ready, P4} end, 5000),
    {links, Links} = process_info(self(), links),
    check("spawn_request on C: linked", lists:member(P4, Links)),
    P4 ! {die, req_bye},
    check("spawn_request on C: EXIT and DOWN",
          {recv(fun(M) -> M =:= {'EXIT', P4, req_bye} end, 5000),
           recv(fun(M) -> M =:= {'DOWN', Req, process, P4, req_bye} end, 5000)}
              =:= {{'EXIT', P4, req_bye}, {'DOWN', Req, process, P4, req_bye}}),
    ReqBad = spawn_request(C, cnode, wait, [Self], [{bogus, 1}]),
    check("spawn_request on C: badopt",
          recv(fun(M) -> element(1, M) =:= spawn_reply andalso element(2, M) =:= ReqBad end, 5000)
              =:= {spawn_reply, ReqBad, error, badopt}).

catch_exception(F) ->
    try F() of V -> {value, V} catch Class:Reason -> {Class, Reason} end.

%% erpc and spawn_request from C into this node.
rpc_from_c(C) ->
    check("C erpc into erl",
          ask(C, {erpc, node(), lists, sum, [[1, 2, 3]], 5000}) =:= {'AMB_OK', 6}),
    check("C erpc into erl: error",
          ask(C, {erpc, node(), erlang, error, [boom], 5000})
              =:= {'AMB_EEXIT', {error, {exception, boom, [{erlang, error, [boom], []}]}}}),
    check("C erpc into erl: throw",
          ask(C, {erpc, node(), erlang, throw, [ball], 5000}) =:= {'AMB_EEXIT', {throw, ball}}),
    check("C erpc into erl: exit",
          ask(C, {erpc, node(), erlang, exit, [bye], 5000})
              =:= {'AMB_EEXIT', {exit, {exception, bye}}}),
    check("C erpc into erl: timeout",
          ask(C, {erpc, node(), timer, sleep, [1000], 200})
              =:= {'AMB_ETIMEDOUT', {error, {erpc, timeout}}}),
    check("C erpc into erl: io has a group leader",
          ask(C, {erpc, node(), io, format, ["", []], 5000}) =:= {'AMB_OK', ok}),
    check("C erpc into its own node", ask(C, {erpc, C, cnode, add, [4, 5], 5000}) =:= {'AMB_OK', 9}),
    Me = self(),
    Fun = fun() -> Me ! {child, self()}, receive X -> exit(X) end end,
    ok = ask(C, {spawn_request, node(), erlang, apply, [Fun, []], true, true}),
    {requested, Rq, ReqId} = recv(fun(M) -> element(1, M) =:= requested end, 5000),
    {requester, Rq, {spawn_reply, ReqId, ok, Pid}} =
        recv(fun(M) -> element(1, M) =:= requester end, 5000),
    recv(fun(M) -> M =:= {child, Pid} end, 5000),
    check("C spawn_request into erl: linked and monitored",
          process_info(Pid, [links, monitored_by]) =:= [{links, [Rq]}, {monitored_by, [Rq]}]),
    Pid ! boom_reason,
    check("C spawn_request into erl: EXIT then DOWN with the reason",
          {recv(fun(M) -> element(1, M) =:= requester end, 5000),
           recv(fun(M) -> element(1, M) =:= requester end, 5000)}
              =:= {{requester, Rq, {'EXIT', Pid, boom_reason}},
                   {requester, Rq, {'DOWN', ReqId, process, Pid, boom_reason}}}).

long_names() ->
    {C, _Port, _} = cnode("c", []),
    check("long names: ping", net_adm:ping(C) =:= pong),
    check("long names: gen_server:call", gen_server:call({cgs, C}, {add, 20, 22}) =:= 42),
    check("long names: C calls an Erlang server",
          begin register(calc, spawn(fun calc/0)), ask(C, {call, {calc, node()}, {add, 1, 2}}) =:= {ok, 3} end).

basics(C) ->
    check("ping C -> pong", net_adm:ping(C) =:= pong),
    %% We offer DIST_HDR_ATOM_CACHE: erl's headers refer to its cache, and
    %% every check below decodes through it.
    Cached = ask(C, {cached_messages, node()}),
    check(io_lib:format("erl uses the atom cache toward C (~p messages so far)", [Cached]),
          is_integer(Cached) andalso Cached > 0),
    check("C is in nodes(hidden), not nodes()",
          lists:member(C, nodes(hidden)) andalso not lists:member(C, nodes())),
    W = worker(C, w1, false),
    {w1, C} ! {self(), hello},
    check("send to a registered name on C, answer to our pid",
          recv(fun({echo, P, hello}) -> P =:= W; (_) -> false end, 5000) =/= timeout),
    check("gen_server:call to a C server", gen_server:call({cgs, C}, {add, 2, 3}) =:= 5),
    check("gen_server:call echoes terms of every type",
          begin
              T = {1, -7, 1 bsl 70, 3.5, <<"bin">>, <<1:3>>, [a, "str"], #{k => v}, self(),
                   make_ref(), 'ünïcödé', fun erlang:node/0},
              gen_server:call({cgs, C}, {echo, T}) =:= {ok_from_c, T}
          end),
    check("gen_server:call to a name C does not have: noproc",
          case catch gen_server:call({nosuch, C}, x, 5000) of
              {'EXIT', {noproc, _}} -> true;
              Other -> Other
          end),
    MR = monitor(process, {nosuch, C}),
    check("monitor of {nosuch, C}: DOWN noproc naming it",
          recv(fun({'DOWN', R, process, {nosuch, N}, noproc}) -> R =:= MR andalso N =:= C;
                  (_) -> false end, 5000) =/= timeout).

links_and_monitors(C) ->
    W2 = worker(C, none, false),
    link(W2),
    W2 ! {die, boom},
    check("link to a C process: EXIT with its real reason",
          recv(fun({'EXIT', P, boom}) -> P =:= W2; (_) -> false end, 5000) =/= timeout),
    W3 = worker(C, w3, false),
    M3 = monitor(process, W3),
    M4 = monitor(process, {w3, C}),
    W3 ! {die, {shutdown, x}},
    check("monitor by pid: DOWN with its real reason",
          recv(fun({'DOWN', R, process, P, {shutdown, x}}) -> R =:= M3 andalso P =:= W3;
                  (_) -> false end, 5000) =/= timeout),
    check("monitor by {Name, C}: DOWN names it",
          recv(fun({'DOWN', R, process, {w3, N}, {shutdown, x}}) -> R =:= M4 andalso N =:= C;
                  (_) -> false end, 5000) =/= timeout),
    %% Unlink protocol: after unlink the C process's end reaches us as a
    %% DOWN only.
    W5 = worker(C, none, false),
    link(W5),
    unlink(W5),
    W5 ! {die, later},
    M5 = monitor(process, W5),
    recv(fun({'DOWN', R, _, _, _}) -> R =:= M5; (_) -> false end, 5000),
    check("unlink (UNLINK_ID): no EXIT after it",
          recv(fun({'EXIT', P, _}) -> P =:= W5; (_) -> false end, 300) =:= timeout),
    %% A C process links to and monitors Erlang processes.
    W7 = worker(C, none, true),
    P1 = victim(false, self()),
    W7 ! {link, P1},
    recv(fun({linked, 0}) -> true; (_) -> false end, 5000),
    P1 ! {die, r1},
    check("C links to an Erlang process: EXIT with its real reason",
          recv(fun({worker, X, {'EXIT', P, r1}}) -> X =:= W7 andalso P =:= P1; (_) -> false end,
               5000) =/= timeout),
    P2 = victim(false, self()),
    W7 ! {monitor, P2},
    {monitored, Ref2} = recv(fun({monitored, _}) -> true; (_) -> false end, 5000),
    P2 ! {die, r2},
    check("C monitors an Erlang process: DOWN with its real reason",
          recv(fun({worker, _, {'DOWN', R, process, P, r2}}) -> R =:= Ref2 andalso P =:= P2;
                  (_) -> false end, 5000) =/= timeout),
    P3 = victim(false, self()),
    register(ename, P3),
    W7 ! {monitor, {ename, node()}},
    {monitored, Ref3} = recv(fun({monitored, _}) -> true; (_) -> false end, 5000),
    P3 ! {die, r3},
    check("C monitors {Name, Node} of Erlang: DOWN names it",
          recv(fun({worker, _, {'DOWN', R, process, {ename, N}, r3}}) -> R =:= Ref3 andalso N =:= node();
                  (_) -> false end, 5000) =/= timeout),
    W7 ! {monitor, {nosuch, node()}},
    {monitored, Ref4} = recv(fun({monitored, _}) -> true; (_) -> false end, 5000),
    check("C monitors a name Erlang does not have: DOWN noproc",
          recv(fun({worker, _, {'DOWN', R, process, {nosuch, _}, noproc}}) -> R =:= Ref4;
                  (_) -> false end, 5000) =/= timeout),
    W7 ! {die, normal}.

calls_from_c(C) ->
    register(calc, spawn(fun calc/0)),
    check("C gen_server:call to an Erlang server", ask(C, {call, {calc, node()}, {add, 1, 2}}) =:= {ok, 3}),
    check("C gen_server:call to a name Erlang does not have: noproc",
          case ask(C, {call, {nosuch, node()}, x}) of
              {error, 'AMB_ENOPROC', _} -> true;
              Other -> Other
          end),
    check("C pings Erlang -> pong", ask(C, {ping, node()}) =:= pong),
    register(inbox, self()),
    ask(C, {send, {inbox, node()}, hello_from_c}),
    check("C sends to a registered name of Erlang",
          recv(fun(hello_from_c) -> true; (_) -> false end, 5000) =/= timeout),
    unregister(inbox).

exits(C) ->
    W9 = worker(C, none, true),
    M9 = monitor(process, W9),
    exit(W9, kill),
    check("exit(CPid, kill) is untrappable: DOWN killed",
          recv(fun({'DOWN', R, _, _, killed}) -> R =:= M9; (_) -> false end, 5000) =/= timeout),
    W10 = worker(C, none, true),
    exit(W10, custom),
    check("exit(CPid, custom) to a trapping C process: {'EXIT', Us, custom}",
          recv(fun({worker, X, {'EXIT', P, custom}}) -> X =:= W10 andalso P =:= self(); (_) -> false end,
               5000) =/= timeout),
    P4 = victim(true, self()),
    W10 ! {exit, P4, bye},
    check("exit/2 from C to a trapping Erlang process",
          recv(fun({victim, X, {'EXIT', W, bye}}) -> X =:= P4 andalso W =:= W10; (_) -> false end,
               5000) =/= timeout),
    W10 ! {die, normal}.

big(C) ->
    W = worker(C, none, false),
    lists:foreach(
      fun(N) ->
              B = blob(N),
              W ! {self(), B},
              check(io_lib:format("~p MB to C and back (BEAM fragments)", [N bsr 20]),
                    recv(fun({echo, _, B2}) -> B2 =:= B; (_) -> false end, 60000) =/= timeout),
              check(io_lib:format("~p MB from C", [N bsr 20]), ask(C, {blob, N}, 60000) =:= B)
      end, [4 bsl 20, 100 bsl 20]),
    W ! {die, normal}.

%% Fragment sequences interleaved both ways: BEAM interleaves the
%% fragments of several processes sending large messages at once (the C
%% reader saw at least two sequences in flight together); the C node's
%% writer interleaves its senders' fragments round robin, which erl
%% reassembles.
interleaved(C) ->
    W = worker(C, none, false),
    Self = self(),
    N = 8 bsl 20,
    Bs = [{K, binary:copy(<<K, 7, 42, 251>>, N div 4)} || K <- lists:seq(1, 4)],
    %% BEAM's schedulers decide whether the senders' encodings overlap: a
    %% round in which they did not is tried again (at most 3 rounds).
    Round = fun() ->
                    [spawn(fun() -> W ! {Self, {K, B}} end) || {K, B} <- Bs],
                    lists:all(fun({K, B}) ->
                                      recv(fun({echo, _, {K2, B2}}) -> K2 =:= K andalso B2 =:= B;
                                              (_) -> false end, 60000) =/= timeout
                              end, Bs)
            end,
    Rounds = fun Go(0, Ok) -> Ok;
                 Go(I, Ok) ->
                     R = Round(),
                     case ask(C, {peak_sequences, node()}) of
                         P when is_integer(P), P >= 2 -> Ok andalso R;
                         _ -> Go(I - 1, Ok andalso R)
                     end
             end,
    check("4 x 8 MB from 4 Erlang processes at once reach C whole and come back",
          Rounds(3, true)),
    Peak = ask(C, {peak_sequences, node()}),
    check(io_lib:format("BEAM's fragment sequences arrived interleaved (~p at once)", [Peak]),
          is_integer(Peak) andalso Peak >= 2),
    B = blob(N),
    check("4 x 8 MB from 4 C processes at once: erl reassembles the interleaved sequences",
          ask(C, {blobs, Self, N, 4}) =:= ok andalso
          lists:all(fun(K) ->
                            recv(fun({blob, K2, B2}) -> K2 =:= K andalso B2 =:= B;
                                    (_) -> false end, 60000) =/= timeout
                    end, lists:seq(1, 4))),
    W ! {die, normal}.

%% A C process sending 100 MB waits in its send (over its budget) while
%% another C process's sends to the same node return, and those small
%% messages reach erl before the 100 MB message is through.
fair(C) ->
    N = 100 bsl 20,
    R = ask(C, {fair, self(), N, 10}, 60000),
    check("C sender over budget waits, another C sender on the connection goes on",
          R =:= {ok, true}),
    First = recv(fun({small, _}) -> true; ({bulk, _}) -> true; (_) -> false end, 60000),
    check("its small messages reach erl before the 100 MB message",
          First =:= {small, 1}),
    Rest = [recv(fun({small, I2}) -> I2 =:= I; (_) -> false end, 10000) || I <- lists:seq(2, 10)],
    check("all 10 in order", lists:all(fun(M) -> M =/= timeout end, Rest)),
    check("the 100 MB message arrives whole",
          case recv(fun({bulk, _}) -> true; (_) -> false end, 60000) of
              {bulk, Bin} -> Bin =:= blob(N);
              Other -> Other
          end).

reconnect(C) ->
    monitor_node(C, true),
    check("disconnect_node", erlang:disconnect_node(C) =:= true),
    check("nodedown after disconnect",
          recv(fun({nodedown, N}) -> N =:= C; (_) -> false end, 5000) =/= timeout),
    check("reconnect: ping again -> pong", net_adm:ping(C) =:= pong),
    check("reconnect: a call works", gen_server:call({cgs, C}, {add, 1, 1}) =:= 2).

%% The C node's OS process is killed: noconnection everywhere.
killed() ->
    {K, Port, OsPid} = cnode("k", []),
    pong = net_adm:ping(K),
    W1 = worker(K, none, false),
    W2 = worker(K, wk, false),
    link(W1),
    M1 = monitor(process, W2),
    M2 = monitor(process, {wk, K}),
    monitor_node(K, true),
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    check("killed C node: link EXIT noconnection",
          recv(fun({'EXIT', P, noconnection}) -> P =:= W1; (_) -> false end, 10000) =/= timeout),
    check("killed C node: DOWN noconnection (pid)",
          recv(fun({'DOWN', R, _, _, noconnection}) -> R =:= M1; (_) -> false end, 10000) =/= timeout),
    check("killed C node: DOWN noconnection ({Name, Node})",
          recv(fun({'DOWN', R, _, _, noconnection}) -> R =:= M2; (_) -> false end, 10000) =/= timeout),
    check("killed C node: nodedown",
          recv(fun({nodedown, N}) -> N =:= K; (_) -> false end, 10000) =/= timeout),
    receive {Port, {exit_status, _}} -> ok after 5000 -> ok end.

%% An Erlang node watched by C processes is killed.
erl_killed() ->
    {C, _, _} = cnode("w", []),
    pong = net_adm:ping(C),
    Erl = os:find_executable("erl"),
    E2 = "e2_" ++ os:getpid(),
    EP = open_port({spawn_executable, Erl},
                   [{args, ["-noshell", "-sname", E2, "-setcookie", get(cookie),
                            "-eval", "register(sleeper, self()), io:format(\"UP~n\"), receive stop -> ok end"]},
                    {line, 8192}, exit_status, use_stdio, stderr_to_stdout]),
    {os_pid, EOs} = erlang:port_info(EP, os_pid),
    {ok, _} = wait_line(EP, "UP", 20000),
    E2Node = list_to_atom(E2 ++ "@" ++ get(host)),
    W = worker(C, none, true),
    W ! {monitor, {sleeper, E2Node}},
    {monitored, R} = recv(fun({monitored, _}) -> true; (_) -> false end, 10000),
    check("C monitors a process of another Erlang node", is_reference(R)),
    os:cmd("kill -9 " ++ integer_to_list(EOs)),
    check("that Erlang node killed: the C monitor gets DOWN noconnection",
          recv(fun({worker, _, {'DOWN', R2, process, _, noconnection}}) -> R2 =:= R; (_) -> false end,
               15000) =/= timeout),
    receive {EP, {exit_status, _}} -> ok after 5000 -> ok end.

%% A frozen C node is dropped after net_ticktime (4 s here).
ticks() ->
    {T, Port, OsPid} = cnode("t", ["--tick", "4000"]),
    pong = net_adm:ping(T),
    monitor_node(T, true),
    %% Quiet but ticking: still up after more than the tick time.
    check("an idle C node keeps ticking (no nodedown in 6 s)",
          recv(fun({nodedown, N}) -> N =:= T; (_) -> false end, 6000) =:= timeout),
    os:cmd("kill -STOP " ++ integer_to_list(OsPid)),
    T0 = erlang:monotonic_time(millisecond),
    Down = recv(fun({nodedown, N}) -> N =:= T; (_) -> false end, 20000),
    Took = erlang:monotonic_time(millisecond) - T0,
    check(io_lib:format("a frozen C node is dropped after the tick time (~p ms)", [Took]),
          Down =/= timeout andalso Took >= 2000),
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    receive {Port, {exit_status, _}} -> ok after 5000 -> ok end.

visible() ->
    {V, _, _} = cnode("v", ["--visible"]),
    pong = net_adm:ping(V),
    check("a visible C node is in nodes()", lists:member(V, nodes())),
    check("the C node lists us as visible", lists:member(node(), ask(V, {nodes, visible}))).

%% The C node connects first (it is the initiator).
c_first() ->
    net_kernel:monitor_nodes(true, [{node_type, all}]),
    {F, _, _} = cnode("f", ["--connect", atom_to_list(node())]),
    check("a C node that connects first appears (nodeup)",
          recv(fun({nodeup, N, _}) -> N =:= F; (_) -> false end, 10000) =/= timeout),
    check("and answers a call", gen_server:call({cgs, F}, {add, 3, 4}) =:= 7),
    net_kernel:monitor_nodes(false, [{node_type, all}]).

wrong_cookie() ->
    {B, Port, _} = cnode("b", "not-the-cookie", []),
    check("a C node with another cookie: ping -> pang", net_adm:ping(B) =:= pang),
    check("the C node logged the refusal",
          case wait_line(Port, "distribution: connection from node", 10000) of
              {ok, Rest} -> string:find(Rest, "refused") =/= nomatch;
              Other -> Other
          end).
