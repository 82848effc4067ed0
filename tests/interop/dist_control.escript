#!/usr/bin/env escript
%% -*- erlang -*-
%%! -noshell
-mode(compile).
%%
%% dist_control.escript - the Erlang side of dist_control.sh.
%%
%%   escript dist_control.escript HELPER DIR SEED COUNT
%%
%% Builds COUNT random control messages of every op (plus fixed edge cases:
%% unlink ids at 1, 2^31 and 2^64-1, UTF-8 names, every exit form), encodes
%% each control tuple and the term after it with term_to_binary(T,
%% [{minor_version, 2}]) - the bytes an OTP node puts on a connection - and
%% hands the batch to HELPER, which decodes and re-encodes every message.
%% Checks, per message:
%%   decode   our decoder took erl's bytes (and the bytes without 131s);
%%   bytes    our re-encoding equals erl's bytes, in both forms;
%%   term     binary_to_term of our control bytes =:= the tuple;
%%   op       the helper named the op erl's tuple carries.
%% Then a batch of tuples our decoder must refuse (wrong types, arities,
%% unknown ops, missing or extra payloads). Prints the first failures and
%% exits 1 on any.

main([Helper, Dir, SeedStr, CountStr]) ->
    Seed = list_to_integer(SeedStr),
    _ = rand:seed(exsss, {Seed, Seed bxor 16#2545f491, 777}),
    Count = list_to_integer(CountStr),
    Good = fixed() ++ [random_message() || _ <- lists:seq(1, Count)],
    Bad = bad(),
    All = [{good, C, M} || {C, M} <- Good] ++ [{bad, C, M} || {C, M} <- Bad],
    In = filename:join(Dir, "in.bin"),
    Out = filename:join(Dir, "out.bin"),
    ok = file:write_file(In, [[blob(enc(C)), blob(case M of none -> <<>>; _ -> enc(M) end)]
                              || {_, C, M} <- All]),
    case run(Helper, [In, Out]) of
        0 -> ok;
        Status ->
            io:format("dist_control: helper exited with status ~p~n", [Status]),
            halt(1)
    end,
    {ok, Results} = file:read_file(Out),
    Failures = check(All, Results, []),
    report(length(Good), length(Bad), Seed, Failures);
main(_) ->
    io:format("usage: dist_control.escript HELPER DIR SEED COUNT~n"),
    halt(2).

enc(T) -> term_to_binary(T, [{minor_version, 2}]).
bare(T) -> <<131, B/binary>> = enc(T), B.
blob(B) -> [<<(byte_size(B)):32>>, B].

run(Helper, Args) ->
    Port = open_port({spawn_executable, Helper}, [{args, Args}, exit_status, binary]),
    wait(Port).

wait(Port) ->
    receive
        {Port, {exit_status, S}} -> S;
        {Port, {data, D}} -> io:format("~s", [D]), wait(Port)
    after 120000 -> timeout
    end.

%% ---- what we send ------------------------------------------------------

node_name() ->
    element(rand:uniform(4), {'erl@localhost', 'c_node@host.example', 'λ@ünï', 'a@b'}).

pid() ->
    N = atom_to_binary(node_name(), utf8),
    binary_to_term(<<131, 88, 119, (byte_size(N)), N/binary,
                     (rand:uniform(1 bsl 32) - 1):32, (rand:uniform(1 bsl 32) - 1):32,
                     (rand:uniform(1 bsl 32) - 1):32>>).

ref() ->
    N = atom_to_binary(node_name(), utf8),
    W = rand:uniform(5),
    Words = << <<(rand:uniform(1 bsl 32) - 1):32>> || _ <- lists:seq(1, W) >>,
    binary_to_term(<<131, 90, W:16, 119, (byte_size(N)), N/binary,
                     (rand:uniform(1 bsl 32) - 1):32, Words/binary>>).

name() -> element(rand:uniform(5), {net_kernel, rex, global_name_server, 'nämé', ''}).

token() -> {rand:uniform(16), label, rand:uniform(1000), pid(), 0}.

uint64() ->
    case rand:uniform(4) of
        1 -> rand:uniform(255);
        2 -> rand:uniform(1 bsl 31);
        3 -> rand:uniform(1 bsl 64) - 1;
        4 -> (1 bsl 64) - 1
    end.

%% A term of at most depth D. Map keys are atoms, integers and strings:
%% OTP writes maps above 32 keys in hash order, and orders integer against
%% float keys and pid or reference keys differently from us
%% (docs/design/etf.md), which is the ETF codec's business, not this test's.
term(0) -> leaf();
term(D) ->
    case rand:uniform(7) of
        1 -> list_to_tuple([term(D - 1) || _ <- lists:seq(1, rand:uniform(4) - 1)]);
        2 -> [term(D - 1) || _ <- lists:seq(1, rand:uniform(4) - 1)];
        3 -> maps:from_list([{key(), term(D - 1)} || _ <- lists:seq(1, rand:uniform(4) - 1)]);
        4 -> [term(D - 1) | leaf()];
        _ -> leaf()
    end.

key() -> element(rand:uniform(3), {name(), rand:uniform(100), "k"}).

leaf() ->
    case rand:uniform(12) of
        1 -> rand:uniform(256) - 1;
        2 -> rand:uniform(1 bsl 40) - (1 bsl 39);
        3 -> -(rand:uniform(1 bsl 100));
        4 -> rand:uniform() * 1.0e10;
        5 -> name();
        6 -> pid();
        7 -> ref();
        8 -> list_to_binary([rand:uniform(256) - 1 || _ <- lists:seq(1, rand:uniform(80))]);
        9 -> <<7:3>>;
        10 -> "a string";
        11 -> fun lists:map/2;
        12 -> []
    end.

reason() ->
    element(rand:uniform(5), {normal, kill, noproc, {shutdown, term(2)}, term(3)}).

random_message() ->
    case rand:uniform(30) of
        1 -> {{1, pid(), pid()}, none};
        2 -> {{2, '', pid()}, term(4)};
        3 -> {{3, pid(), pid(), reason()}, none};
        4 -> {{4, pid(), pid()}, none};
        5 -> {{5}, none};
        6 -> {{6, pid(), '', name()}, term(4)};
        7 -> {{7, pid(), pid()}, none};
        8 -> {{8, pid(), pid(), reason()}, none};
        9 -> {{12, '', pid(), token()}, term(3)};
        10 -> {{13, pid(), pid(), token(), reason()}, none};
        11 -> {{16, pid(), '', name(), token()}, term(3)};
        12 -> {{18, pid(), pid(), token(), reason()}, none};
        13 -> {{19, pid(), either(pid(), name()), ref()}, none};
        14 -> {{20, pid(), either(pid(), name()), ref()}, none};
        15 -> {{21, either(pid(), name()), pid(), ref(), reason()}, none};
        16 -> {{22, pid(), pid()}, term(4)};
        17 -> {{23, pid(), pid(), token()}, term(3)};
        18 -> {{24, pid(), pid()}, reason()};
        19 -> {{25, pid(), pid(), token()}, reason()};
        20 -> {{26, pid(), pid()}, reason()};
        21 -> {{27, pid(), pid(), token()}, reason()};
        22 -> {{28, either(pid(), name()), pid(), ref()}, reason()};
        23 ->
            Args = [term(2) || _ <- lists:seq(1, rand:uniform(4) - 1)],
            {{29, ref(), pid(), pid(), {name(), name(), length(Args)}, opts()}, Args};
        24 ->
            {{30, ref(), pid(), pid(), {erlang, node, 0}, opts(), token()}, []};
        25 -> {{31, ref(), pid(), rand:uniform(4) - 1, either(pid(), name())}, none};
        26 -> {{32, ref(), pid(), uint64(), either(pid(), name()), token()}, none};
        27 -> {{33, pid(), ref()}, term(4)};
        28 -> {{34, pid(), ref(), token()}, term(3)};
        29 -> {{35, uint64(), pid(), pid()}, none};
        30 -> {{36, uint64(), pid(), pid()}, none}
    end.

either(A, B) -> case rand:uniform(2) of 1 -> A; 2 -> B end.
opts() -> element(rand:uniform(3), {[], [link, monitor], [{priority, high}, link]}).

fixed() ->
    P = pid(), R = ref(),
    [{{35, 1, P, P}, none}, {{35, 1 bsl 31, P, P}, none}, {{36, (1 bsl 64) - 1, P, P}, none},
     {{6, P, '', 'ñämé_λ'}, {'$gen_call', {P, [alias | R]}, {is_auth, node()}}},
     {{2, '', P}, binary:copy(<<"x">>, 70000)},
     {{21, 'ñämé_λ', P, R, noproc}, none},
     {{28, net_kernel, P, R}, {shutdown, big}},
     {{31, R, P, 0, system_limit}, none},
     {{5}, none}].

%% ---- what the decoder must refuse ---------------------------------------

bad() ->
    P = pid(), R = ref(),
    [{{1, a, P}, none},                     % From not a pid
     {{1, P, P, P}, none},                  % arity
     {{1, P, P}, extra},                    % a payload LINK has not
     {{2, '', P}, none},                    % SEND without its message
     {{6, P, '', "name"}, x},               % ToName not an atom
     {{9, P, P}, none},                     % no op 9
     {{37, P, P}, none},
     {{0}, none},
     {{link, P, P}, none},
     {[1, P, P], none},
     {{19, P, 42, R}, none},                % ToProc neither pid nor name
     {{19, P, foo, not_a_ref}, none},
     {{35, 0, P, P}, none},                 % Id 0
     {{35, 1 bsl 64, P, P}, none},          % Id above 2^64-1
     {{29, R, P, P, {m, f, 2}, []}, [a]},   % Args not of length Arity
     {{29, R, P, P, {m, f, 1}, [a | b]}, [a]},
     {{31, R, P, -1, ok}, none},
     {{33, P, P}, x}].                      % Alias not a ref

%% ---- judging -------------------------------------------------------------

check([], <<>>, Acc) -> lists:reverse(Acc);
check([{good, C, M} | T], <<0:32, Bin/binary>>, Acc) ->
    {V, Rest1} = take(Bin),
    {H, Rest2} = take(Rest1),
    {Name, Rest3} = take(Rest2),
    Want = <<(enc(C))/binary, (case M of none -> <<>>; _ -> enc(M) end)/binary>>,
    WantH = <<(bare(C))/binary, (case M of none -> <<>>; _ -> bare(M) end)/binary>>,
    Ctl = enc(C),
    Term = case V of
               Want -> binary_to_term(binary:part(V, 0, byte_size(Ctl)));
               _ -> C
           end,
    F = [{bytes, C} || V =/= Want] ++ [{bytes_bare, C} || H =/= WantH] ++
        [{term, C} || Term =/= C] ++
        [{op, C, Name} || not op_name_ok(element(1, C), Name)],
    check(T, Rest3, lists:reverse(F) ++ Acc);
check([{good, C, _} | T], <<Rc:32/signed, Rest/binary>>, Acc) ->
    check(T, Rest, [{decode, C, Rc} | Acc]);
check([{bad, _, _} | T], <<Rc:32/signed, Rest/binary>>, Acc) when Rc =/= 0 ->
    check(T, Rest, Acc);
check([{bad, C, M} | T], <<0:32, Bin/binary>>, Acc) ->
    {_, R1} = take(Bin),
    {_, R2} = take(R1),
    {_, R3} = take(R2),
    check(T, R3, [{accepted_bad, C, M} | Acc]).

take(<<Len:32, B:Len/binary, Rest/binary>>) -> {B, Rest}.

op_name_ok(Op, Name) ->
    Names = #{1 => <<"LINK">>, 2 => <<"SEND">>, 3 => <<"EXIT">>, 4 => <<"UNLINK">>,
              5 => <<"NODE_LINK">>, 6 => <<"REG_SEND">>, 7 => <<"GROUP_LEADER">>,
              8 => <<"EXIT2">>, 12 => <<"SEND_TT">>, 13 => <<"EXIT_TT">>,
              16 => <<"REG_SEND_TT">>, 18 => <<"EXIT2_TT">>, 19 => <<"MONITOR_P">>,
              20 => <<"DEMONITOR_P">>, 21 => <<"MONITOR_P_EXIT">>, 22 => <<"SEND_SENDER">>,
              23 => <<"SEND_SENDER_TT">>, 24 => <<"PAYLOAD_EXIT">>,
              25 => <<"PAYLOAD_EXIT_TT">>, 26 => <<"PAYLOAD_EXIT2">>,
              27 => <<"PAYLOAD_EXIT2_TT">>, 28 => <<"PAYLOAD_MONITOR_P_EXIT">>,
              29 => <<"SPAWN_REQUEST">>, 30 => <<"SPAWN_REQUEST_TT">>,
              31 => <<"SPAWN_REPLY">>, 32 => <<"SPAWN_REPLY_TT">>, 33 => <<"ALIAS_SEND">>,
              34 => <<"ALIAS_SEND_TT">>, 35 => <<"UNLINK_ID">>, 36 => <<"UNLINK_ID_ACK">>},
    maps:get(Op, Names, none) =:= Name.

report(NGood, NBad, Seed, []) ->
    io:format("dist_control: ~p messages decoded and encoded byte for byte, "
              "~p bad ones refused (seed ~p)~n", [NGood, NBad, Seed]),
    halt(0);
report(_, _, Seed, Failures) ->
    io:format("dist_control: ~p failures (seed ~p); first ones:~n", [length(Failures), Seed]),
    [io:format("  ~P~n", [F, 30]) || F <- lists:sublist(Failures, 10)],
    halt(1).
