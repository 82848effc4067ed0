%% maps_bench.erl - the Erlang twin of `amb-bench maps N` (bench/amb_bench.c):
%% N distinct integer keys 1..N put into one map starting empty, then N gets
%% (each value checked), then N removes, each phase timed on its own.
%% scripts/perf.sh compiles it beside peer-bench's bench.erl and runs
%%
%%     erl -noshell -pa EBIN -run maps_bench main N
%%
%% which prints one line, as the peer benchmarks do:
%%
%%     RESULT bench=maps impl=erl n=N put_ns=.. get_ns=.. remove_ns=.. from_list_ns=..
%%
%% (ns per operation of each phase; from_list_ns: maps:from_list of the same
%% N pairs, the list made beforehand, per pair: how BEAM builds a map in
%% place, beside ours in an amb_map_edit). A wrong value or a map that is not
%% empty at the end exits with status 1 and no RESULT line.
-module(maps_bench).
-export([main/1]).

main([NStr]) ->
    N = list_to_integer(NStr),
    T0 = erlang:monotonic_time(nanosecond),
    M = put_loop(1, N, #{}),
    T1 = erlang:monotonic_time(nanosecond),
    ok = get_loop(1, N, M),
    T2 = erlang:monotonic_time(nanosecond),
    Empty = remove_loop(1, N, M),
    T3 = erlang:monotonic_time(nanosecond),
    Pairs = [{I, I} || I <- lists:seq(1, N)],
    T4 = erlang:monotonic_time(nanosecond),
    M2 = maps:from_list(Pairs),
    T5 = erlang:monotonic_time(nanosecond),
    case map_size(M) =:= N andalso map_size(Empty) =:= 0 andalso M2 =:= M of
        true ->
            io:format("RESULT bench=maps impl=erl n=~p put_ns=~.1f get_ns=~.1f "
                      "remove_ns=~.1f from_list_ns=~.1f~n",
                      [N, (T1 - T0) / N, (T2 - T1) / N, (T3 - T2) / N, (T5 - T4) / N]),
            halt(0);
        false ->
            io:format(standard_error, "maps_bench: wrong sizes ~p ~p~n",
                      [map_size(M), map_size(Empty)]),
            halt(1)
    end.

put_loop(I, N, M) when I > N -> M;
put_loop(I, N, M) -> put_loop(I + 1, N, maps:put(I, I, M)).

get_loop(I, N, _M) when I > N -> ok;
get_loop(I, N, M) ->
    case maps:get(I, M) of
        I -> get_loop(I + 1, N, M);
        V ->
            io:format(standard_error, "maps_bench: ~p => ~p~n", [I, V]),
            halt(1)
    end.

remove_loop(I, N, M) when I > N -> M;
remove_loop(I, N, M) -> remove_loop(I + 1, N, maps:remove(I, M)).
