#!/usr/bin/env escript
%% -*- erlang -*-
%%! -noshell +pc unicode
-mode(compile).
%%
%% etf_roundtrip.escript - the Erlang side of etf_roundtrip.sh.
%%
%%   escript etf_roundtrip.escript HELPER DIR SEED COUNT
%%
%% Generates COUNT random terms of every type (plus a fixed set of edge
%% cases), encodes each with term_to_binary in five ways (minor_version 2,
%% the OTP 25 default, both compressed, and minor_version 0), writes them as
%% length-prefixed records to DIR/in.bin, runs HELPER once over the batch,
%% and checks every result record from DIR/out.bin:
%%   decode   our decoder took erl's bytes;
%%   direct   binary_to_term(our re-encoding) =:= the term, and is the same
%%            float bits (term_to_binary of both agree);
%%   bytes    our re-encoding equals erl's bytes with the same options
%%            (skipped for terms holding maps above 32 keys, whose order OTP
%%            takes from hashes);
%%   text     for terms without pids, refs, ports or funs, our printed text
%%            equals io_lib:format("~w", [T]) (not for maps above 32 keys,
%%            which OTP 25 prints in its internal hash order);
%%   parse    parsing our printed text and encoding it gives the term back;
%%   pretty   our AMB_PRINT_PRETTY text equals io_lib:format("~999999tp", [T])
%%            with erl's printable range set to unicode (+pc unicode): ~tp
%%            on one line (not for maps above 32 keys, printed in hash
%%            order, nor for pids, ports and references of other nodes,
%%            whose first number is an index of erl's own).
%% Large maps (33, 100 and 10,000 keys, nested, as keys) go both ways: erl's
%% encoding is decoded here and ours is decoded by erl, =:= each time.
%% Prints the first failures of each check and exits 1 on any.

main([Helper, Dir, SeedStr, CountStr]) ->
    Seed = list_to_integer(SeedStr),
    Count = list_to_integer(CountStr),
    _ = rand:seed(exsss, {Seed, Seed bxor 16#5bd1e995, 12345}),
    Ctx = context(),
    Terms = fixed(Ctx) ++ [term(Ctx, 5) || _ <- lists:seq(1, Count)] ++ deep(),
    Records = [{I, Kind, T, term_to_binary(T, opts(Kind))}
               || {I, T} <- lists:zip(lists:seq(1, length(Terms)), Terms),
                  Kind <- [0, 1, 2, 3, 4]],
    In = filename:join(Dir, "in.bin"),
    Out = filename:join(Dir, "out.bin"),
    ok = file:write_file(In, [[Kind, <<(byte_size(B)):32>>, B] || {_, Kind, _, B} <- Records]),
    case run(Helper, [In, Out]) of
        0 -> ok;
        Status ->
            io:format("etf_roundtrip: helper exited with status ~p~n", [Status]),
            halt(1)
    end,
    {ok, Results} = file:read_file(Out),
    Failures = check(Records, Results, []),
    Skipped = [skip_reason(T) || T <- Terms],
    Pretty = length([T || T <- Terms, not has_big_map(T), local_ids(T), ascii_funs(T)]),
    io:format("etf_roundtrip: ~p terms compared with erl's ~~tp text~n", [Pretty]),
    [io:format("etf_roundtrip: bytes/text checks skipped on ~p terms: ~p "
               "(a term-order difference, see the escript)~n",
               [N, R]) || R <- [int_float_key_order, identifier_key_order],
                          N <- [length([x || R1 <- Skipped, R1 =:= R])], N > 0],
    report(length(Terms), length(Records), Seed, Failures);
main(_) ->
    io:format("usage: etf_roundtrip.escript HELPER DIR SEED COUNT~n"),
    halt(2).

opts(0) -> [{minor_version, 2}];
opts(1) -> [];
opts(2) -> [compressed, {minor_version, 2}];
opts(3) -> [compressed];
opts(4) -> [{minor_version, 0}].

%% What our re-encoding of kind K must equal byte for byte.
expected_opts(4) -> [];
expected_opts(K) -> opts(K).

run(Exe, Args) ->
    Port = open_port({spawn_executable, Exe}, [{args, Args}, exit_status, stderr_to_stdout]),
    wait(Port).

%% The bound is only for a helper that hangs: ctest's TIMEOUT (600 s) is
%% the real one. Under TSan, beside the suite's stress tests, the helper
%% took over 120 s for the 3000 terms (61 s alone).
wait(Port) ->
    receive
        {Port, {data, D}} -> io:format("helper: ~s", [D]), wait(Port);
        {Port, {exit_status, S}} -> S
    after 540000 -> timeout
    end.

%% ---------------------------------------------------------------------------
%% Checking

check([], <<>>, Acc) -> lists:reverse(Acc);
check([{I, Kind, T, Bin} | Rest], Results, Acc) ->
    <<Rc:32/signed, L1:32, Direct:L1/binary, L2:32, Text:L2/binary,
      Prc:32/signed, L3:32, Parsed:L3/binary, L4:32, Pretty:L4/binary,
      More/binary>> = Results,
    Fail = fun(Check, Detail) -> {I, Kind, Check, T, Bin, Text, Detail} end,
    F1 = if Rc =/= 0 -> [Fail(decode, {rc, Rc})];
            true -> same(direct, Direct, T, Fail) ++ bytes(Kind, T, Direct, Fail)
         end,
    F2 = case Rc =:= 0 andalso printable(T) andalso not has_big_map(T) andalso
              skip_reason(T) =:= none of
             true ->
                 Want = unicode:characters_to_binary(lists:flatten(io_lib:format("~w", [T]))),
                 [Fail(text, {expected, Want}) || Text =/= Want];
             false -> []
         end,
    F3 = if Rc =/= 0 -> [];
            Prc =/= 0 -> [Fail(parse, {rc, Prc})];
            true -> same(parse, Parsed, T, Fail)
         end,
    F4 = case Rc =:= 0 andalso not has_big_map(T) andalso local_ids(T) andalso
              ascii_funs(T) of
             true ->
                 WantP = unicode:characters_to_binary(io_lib:format("~999999tp", [T])),
                 [Fail(pretty, {expected, WantP, got, Pretty}) || Pretty =/= WantP];
             false -> []
         end,
    check(Rest, More, lists:reverse(F1 ++ F2 ++ F3 ++ F4, Acc)).

same(Check, Ours, T, Fail) ->
    try binary_to_term(Ours) of
        Back ->
            Exact = term_to_binary(Back, [{minor_version, 2}]) =:=
                    term_to_binary(T, [{minor_version, 2}]),
            case Back =:= T andalso (Exact orelse has_big_map(T)) of
                true -> [];
                false -> [Fail(Check, {got, Back})]
            end
    catch error:badarg -> [Fail(Check, {bad_etf, Ours})]
    end.

bytes(Kind, T, Direct, Fail) ->
    case has_big_map(T) orelse skip_reason(T) =/= none orelse
         (Kind =:= 4 andalso has_closure(T)) of
        true -> [];
        false ->
            Want = term_to_binary(T, expected_opts(Kind)),
            [Fail(bytes, {ours, Direct, erl, Want}) || Direct =/= Want]
    end.

%% Maps above 32 keys: OTP writes them in hash order, we in key order.
has_big_map(T) when is_map(T) ->
    map_size(T) > 32 orelse lists:any(fun has_big_map/1, maps:keys(T) ++ maps:values(T));
has_big_map(T) when is_tuple(T) -> has_big_map(tuple_to_list(T));
has_big_map([H | R]) -> has_big_map(H) orelse has_big_map(R);
has_big_map(_) -> false.

%% Closures travel as their NEW_FUN bytes, verbatim: one that came with
%% minor_version 0 keeps its FLOAT_EXT floats inside.
has_closure(T) when is_function(T) -> erlang:fun_info(T, type) =:= {type, local};
has_closure(T) when is_map(T) -> has_closure(maps:keys(T) ++ maps:values(T));
has_closure(T) when is_tuple(T) -> has_closure(tuple_to_list(T));
has_closure([H | R]) -> has_closure(H) orelse has_closure(R);
has_closure(_) -> false.

%% A map holding an integer key above a float key: OTP orders all integers
%% before all floats there, amb_compare_exact by value (1.0 < 2), so our key
%% order (bytes and ~w text) differs from erl's. Reported to the lead; the checks
%% on such maps come back when the two orders agree.
mixed_number_keys(T) when is_map(T) ->
    Ks = maps:keys(T),
    Ints = [K || K <- Ks, is_integer(K)],
    Floats = [K || K <- Ks, is_float(K)],
    (Ints =/= [] andalso Floats =/= [] andalso lists:max(Ints) > lists:min(Floats)) orelse
        mixed_number_keys(Ks ++ maps:values(T));
mixed_number_keys(T) when is_tuple(T) -> mixed_number_keys(tuple_to_list(T));
mixed_number_keys([H | R]) -> mixed_number_keys(H) orelse mixed_number_keys(R);
mixed_number_keys(_) -> false.

%% A map with two or more keys holding pids, references, ports or funs: the
%% order amb_compare_exact gives these differs from OTP's (reported to the
%% lead: OTP orders pids by serial, id, node, creation; ports by node,
%% creation, id; references by node, creation, then id words from the most
%% significant; closures before export funs, closures by module, index,
%% uniq, free variables). Our bytes then list such keys in another order.
identifier_keys(T) when is_map(T) ->
    length([K || K <- maps:keys(T), not printable(K)]) >= 2 orelse
        identifier_keys(maps:keys(T) ++ maps:values(T));
identifier_keys(T) when is_tuple(T) -> identifier_keys(tuple_to_list(T));
identifier_keys([H | R]) -> identifier_keys(H) orelse identifier_keys(R);
identifier_keys(_) -> false.

%% Checks skipped for the known differences above, counted for the report.
skip_reason(_T) ->
    none.

%% Terms whose export funs have ASCII names: erlang:fun_to_list/1 gives
%% other names as UTF-8 bytes taken for characters, which ~tp encodes again
%% (fun 'λ':f/1 prints as fun 'Î»':f/1); we print the name.
ascii_funs(T) when is_function(T) ->
    case erlang:fun_info(T, type) of
        {type, external} ->
            {module, M} = erlang:fun_info(T, module),
            {name, N} = erlang:fun_info(T, name),
            lists:all(fun(C) -> C < 128 end, atom_to_list(M) ++ atom_to_list(N));
        _ -> true
    end;
ascii_funs(T) when is_map(T) -> lists:all(fun ascii_funs/1, maps:keys(T) ++ maps:values(T));
ascii_funs(T) when is_tuple(T) -> ascii_funs(tuple_to_list(T));
ascii_funs([H | R]) -> ascii_funs(H) andalso ascii_funs(R);
ascii_funs(_) -> true.

%% Terms whose pids, ports and references are all of this node.
local_ids(T) when is_pid(T); is_port(T); is_reference(T) -> node(T) =:= node();
local_ids(T) when is_map(T) -> lists:all(fun local_ids/1, maps:keys(T) ++ maps:values(T));
local_ids(T) when is_tuple(T) -> local_ids(tuple_to_list(T));
local_ids([H | R]) -> local_ids(H) andalso local_ids(R);
local_ids(_) -> true.

%% Terms whose ~w text Erlang can read back (no pids, refs, ports, funs).
printable(T) when is_pid(T); is_reference(T); is_port(T); is_function(T) -> false;
printable(T) when is_map(T) -> lists:all(fun printable/1, maps:keys(T) ++ maps:values(T));
printable(T) when is_tuple(T) -> printable(tuple_to_list(T));
printable([H | R]) -> printable(H) andalso printable(R);
printable(_) -> true.

report(NTerms, NRecords, Seed, []) ->
    io:format("etf_roundtrip: ~p terms, ~p records (seed ~p): all checks agree with erl~n",
              [NTerms, NRecords, Seed]),
    halt(0);
report(NTerms, NRecords, Seed, Failures) ->
    Checks = [decode, direct, bytes, text, parse, pretty],
    io:format("etf_roundtrip: ~p terms, ~p records (seed ~p): ~p mismatches~n",
              [NTerms, NRecords, Seed, length(Failures)]),
    [io:format("  ~p: ~p~n", [C, length([x || {_, _, C1, _, _, _, _} <- Failures, C1 =:= C])])
     || C <- Checks],
    lists:foreach(
      fun(C) ->
              Of = [F || {_, _, C1, _, _, _, _} = F <- Failures, C1 =:= C],
              [show(F) || F <- lists:sublist(Of, 5)]
      end, Checks),
    halt(1).

show({I, Kind, Check, T, Bin, Text, Detail}) ->
    io:format("--- ~p failed: term #~p, encoding kind ~p (~w)~n", [Check, I, Kind, opts(Kind)]),
    io:format("  term:     ~ts~n", [cut(io_lib:format("~w", [T]))]),
    io:format("  erl ETF:  ~ts~n", [cut(io_lib:format("~w", [Bin]))]),
    io:format("  our text: ~ts~n", [cut(unicode:characters_to_list(Text))]),
    io:format("  detail:   ~ts~n", [cut(io_lib:format("~w", [Detail]))]).

cut(Chars) ->
    S = lists:flatten(Chars),
    case length(S) > 400 of
        true -> lists:sublist(S, 400) ++ "...";
        false -> S
    end.

%% ---------------------------------------------------------------------------
%% Terms

%% Pids, ports and references of this node, made once.
context() ->
    Port = open_port({spawn, "cat"}, []),
    Dead = spawn(fun() -> ok end),
    #{pids => [self(), Dead], ports => [Port], refs => [make_ref(), make_ref()]}.

%% Edge cases every run checks, whatever the seed.
fixed(Ctx) ->
    Ints = [0, 255, 256, -1, -256, (1 bsl 31) - 1, -(1 bsl 31), 1 bsl 31, -(1 bsl 31) - 1,
            (1 bsl 62) - 1, -(1 bsl 62), 1 bsl 62, -(1 bsl 62) - 1, (1 bsl 63) - 1,
            -(1 bsl 63), 1 bsl 64, -(1 bsl 64), (1 bsl 2032) - 1, 1 bsl 2040,
            -(1 bsl 2040), 1 bsl 4000, -(1 bsl 4000) + 1],
    Floats = [0.0, -0.0, 1.0, -1.0, 0.1, 5.0e-324, -5.0e-324, 2.2250738585072014e-308,
              1.7976931348623157e308, -1.7976931348623157e308, 1.0e15, 1.0e16, 1.0e-5,
              123456789.0, 3.0e100, 0.5, 2.5e-10],
    Atoms = ['', a, 'A', 'hello world', '[]', 'end', 'a.b', 'a@b', 'é', 'ÿ', 'åäö', 'λ',
             '日本語', '😀', '\'', '\\', '\n', '\t', 'a\'b', list_to_atom([0]),
             list_to_atom(lists:duplicate(255, $x)), list_to_atom(lists:duplicate(255, 955))],
    Big = list_to_binary(lists:duplicate(300, 7)),
    Bins = [<<>>, <<1, 2, 3>>, <<1:1>>, <<5:3>>, <<1, 2, 3:4>>, Big,
            binary:part(Big, 10, 100), binary:part(Big, 1, 3), <<"text">>,
            <<255, 0, 128>>],
    Lists = [[], "abc", [0], [255], [256], [-1], [a | b], [1, 2 | 3], [[]], [a | "bc"],
             lists:seq(0, 255), lists:duplicate(65535, 1), lists:duplicate(65536, 1),
             [1.0, 1], "λ", [$a | <<"b">>]],
    Maps = [#{}, #{a => 1}, #{1 => a, 1.0 => b}, #{2 => a, 1.0 => b, -1 => c, 0.5 => d},
            #{#{} => [], [] => #{}},
            maps:from_list([{I, I} || I <- lists:seq(1, 33)]),
            maps:from_list([{integer_to_list(I), #{I => <<I>>}} || I <- lists:seq(1, 50)]),
            #{{a, b} => #{c => #{d => e}}}],
    Ids = maps:get(pids, Ctx) ++ maps:get(ports, Ctx) ++ maps:get(refs, Ctx) ++
          [remote_pid(N) || N <- [0, 1, 16#7fff, 16#ffffffff]] ++
          [remote_port(N) || N <- [0, 5, 16#ffffffff, 16#100000000, 16#ffffffffffffffff]] ++
          [remote_ref(W) || W <- [1, 2, 3, 4, 5]],
    Funs = [fun erlang:abs/1, fun lists:map/2, erlang:make_fun(nomod, 'Weird fun', 255),
            closure(0), closure({a, [1, 2], <<"x">>}), closure(closure(1)),
            closure(self()), closure(#{k => v}), closure(1.5, 2)],
    Ints ++ Floats ++ Atoms ++ Bins ++ Lists ++ Maps ++ Ids ++ Funs ++ large_maps(Ctx) ++
        pretty_cases() ++
        [{}, {a}, list_to_tuple(lists:seq(1, 300)), {Ints, Floats, Atoms}].

%% Maps above 32 keys (a trie here, a HAMT in erl): sizes around the
%% boundary, 100 and 10,000 keys, keys of every kind, large maps nested in
%% values and used as keys.
large_maps(Ctx) ->
    Seq = fun(N) -> lists:seq(1, N) end,
    Mixed = fun(N) -> maps:from_list([{mixed_key(Ctx, I), I} || I <- Seq(N)]) end,
    [maps:from_list([{I, I} || I <- Seq(N)]) || N <- [31, 32, 33, 34, 64, 100]] ++
        [Mixed(33), Mixed(100),
         maps:from_list([{I, <<I:32>>} || I <- Seq(10000)]),
         maps:from_list([{integer_to_binary(I), [I]} || I <- Seq(10000)]),
         #{nested => Mixed(40), Mixed(35) => as_key},
         maps:from_list([{I, Mixed(33 + I)} || I <- Seq(40)]),
         [Mixed(50), {Mixed(33)}],
         maps:remove(1, maps:from_list([{I, x} || I <- Seq(33)]))].

mixed_key(Ctx, I) ->
    case I rem 9 of
        0 -> I;
        1 -> float(I);
        2 -> list_to_atom("k" ++ integer_to_list(I));
        3 -> <<I:16>>;
        4 -> {I, "s"};
        5 -> (1 bsl 70) + I;
        6 -> [I | tail];
        7 -> lists:nth(1 + I rem length(maps:get(pids, Ctx)), maps:get(pids, Ctx));
        8 -> binary:copy(<<I>>, 70)
    end.

%% Terms whose ~tp text has a case of its own: printable lists and
%% binaries, escapes, Unicode, the edges of the printable ranges.
pretty_cases() ->
    ["abc", "a\"b\\c'd", "tab\there\nnew\rret\vvt\bbs\fff\eesc", [955, $x], [7],
     [127], [159], [160], [255], [256], [16#D7FF], [16#D7FF, 16#E000], [16#FFFD],
     [16#FFFE], [16#10000], [16#10FFFF], [0], "", [[]], ["ab", "cd"], [["a"]], [$a | b],
     [$a, $b | "c"], [$a | <<"b">>], {"x", <<"y">>}, #{"k" => <<"v">>}, [a, "b", <<"c">>],
     <<"abc">>, <<"a\"b\\c">>, <<"tab\tnl\n">>, <<233>>, <<"é"/utf8>>, <<"λ"/utf8>>,
     <<"😀 ok"/utf8>>, <<1, 2>>, <<"ab", 1>>, <<"ab", 0>>, <<255, 254>>, <<160, 255>>,
     <<127>>, <<"\e">>, <<"x", 200>>, <<195, 40>>, <<"é"/utf8, 255>>, <<1:1>>,
     <<"abc", 1:3>>, binary:copy(<<"long text ">>, 20), lists:duplicate(300, $z),
     'hello world', 'Cap', '日本語', 'é', 'a\nb', '\x{1F600}', [100, 255, 256],
     {[], <<>>, #{}, {}}, [<<"λ"/utf8>> | <<"t">>], "λλ" ++ [0]].

%% Deeply nested terms (within the default depth limit of 10000).
deep() ->
    Nest = fun(F, N) -> lists:foldl(fun(_, A) -> F(A) end, [], lists:seq(1, N)) end,
    [Nest(fun(A) -> [A] end, 3000), Nest(fun(A) -> {A} end, 3000),
     Nest(fun(A) -> #{k => A} end, 1000), Nest(fun(A) -> [1, A, 2] end, 2000),
     Nest(fun(A) -> [A | a] end, 2000), Nest(fun(A) -> {x, A, [A]} end, 10)].

closure(X) -> fun() -> X end.
closure(X, Y) -> fun(Z) -> {X, Y, Z} end.

node_atom() ->
    lists:nth(rand:uniform(4), ['remote@host', 'n1@127.0.0.1', 'λ@h', 'a@b']).

atom_ext(A) ->
    B = atom_to_binary(A, utf8),
    <<119, (byte_size(B)), B/binary>>.

remote_pid(Id) ->
    binary_to_term(<<131, 88, (atom_ext(node_atom()))/binary, Id:32,
                     (rand:uniform(1 bsl 32) - 1):32, (rand:uniform(1 bsl 32) - 1):32>>).

remote_port(Id) when Id > 16#ffffffff ->
    binary_to_term(<<131, 120, (atom_ext(node_atom()))/binary, Id:64,
                     (rand:uniform(1 bsl 32) - 1):32>>);
remote_port(Id) ->
    binary_to_term(<<131, 89, (atom_ext(node_atom()))/binary, Id:32,
                     (rand:uniform(1 bsl 32) - 1):32>>).

remote_ref(NWords) ->
    Words = << <<(rand:uniform(1 bsl 32) - 1):32>> || _ <- lists:seq(1, NWords) >>,
    binary_to_term(<<131, 90, NWords:16, (atom_ext(node_atom()))/binary,
                     (rand:uniform(1 bsl 32) - 1):32, Words/binary>>).

pick(L) -> lists:nth(rand:uniform(length(L)), L).

term(Ctx, Depth) when Depth =< 0 -> leaf(Ctx);
term(Ctx, Depth) ->
    case rand:uniform(17) of
        N when N =< 6 -> leaf(Ctx);
        7 -> list_to_tuple([term(Ctx, Depth - 1) || _ <- lists:seq(1, rand:uniform(5) - 1)]);
        8 -> [term(Ctx, Depth - 1) || _ <- lists:seq(1, rand:uniform(5))];
        9 -> [term(Ctx, Depth - 1) || _ <- lists:seq(1, rand:uniform(3))] ++ leaf(Ctx);
        10 -> maps:from_list([{term(Ctx, Depth - 2), term(Ctx, Depth - 1)}
                              || _ <- lists:seq(1, rand:uniform(6) - 1)]);
        11 -> maps:from_list([{leaf(Ctx), leaf(Ctx)} || _ <- lists:seq(1, 30 + rand:uniform(20))]);
        17 -> maps:from_list([{leaf(Ctx), pick([leaf(Ctx), {leaf(Ctx)}])}
                              || _ <- lists:seq(1, 32 + rand:uniform(68))]);
        12 -> closure(term(Ctx, Depth - 1));
        13 -> [rand:uniform(256) - 1 || _ <- lists:seq(1, rand:uniform(40))];
        14 -> [rand:uniform(16#10ffff) || _ <- lists:seq(1, rand:uniform(5))];
        15 -> #{term(Ctx, Depth - 1) => #{leaf(Ctx) => term(Ctx, Depth - 1)}};
        16 -> {leaf(Ctx), [leaf(Ctx) | leaf(Ctx)]}
    end.

leaf(Ctx) ->
    case rand:uniform(12) of
        1 -> rand:uniform(512) - 256;
        2 -> rand:uniform(1 bsl 40) - (1 bsl 39);
        3 -> big();
        4 -> float();
        5 -> atom();
        6 -> atom();
        7 -> binary();
        8 -> pick(maps:get(pids, Ctx) ++ [remote_pid(rand:uniform(1 bsl 32) - 1)]);
        9 -> pick(maps:get(refs, Ctx) ++ maps:get(ports, Ctx) ++
                  [remote_ref(2 + rand:uniform(3)), remote_port(rand:uniform(1 bsl 40))]);
        10 -> pick([fun erlang:abs/1, fun lists:seq/3, erlang:make_fun(atom(), atom(), 2)]);
        11 -> pick([[], {}, #{}, <<>>, "", 0]);
        12 -> rand:uniform(1 bsl 62) * pick([1, -1])
    end.

big() ->
    Bytes = rand:bytes(rand:uniform(400)),
    N = binary:decode_unsigned(Bytes, little),
    pick([N, -N, N + (1 bsl 64), -N - (1 bsl 62)]).

float() ->
    case rand:uniform(3) of
        1 -> (rand:uniform() - 0.5) * math:pow(10, rand:uniform(40) - 20);
        2 -> float_bits();
        3 -> float(rand:uniform(1 bsl 53)) * pick([1, -1, 0.5, 1.0e-300, 1.0e290])
    end.

float_bits() ->
    case rand:bytes(8) of
        <<F:64/float>> -> F;
        _ -> float_bits() % NaN or infinity: try again
    end.

atom() ->
    Pools = [lists:seq($a, $z) ++ "_@0123456789", lists:seq($A, $Z) ++ " -.'\\",
             lists:seq(160, 255), [955, 8364, 26085, 128512, 0, 10, 127]],
    Pool = pick(Pools),
    Len = pick([0, 1, 3, 8, 20, rand:uniform(255)]),
    list_to_atom([pick(Pool) || _ <- lists:seq(1, Len)]).

binary() ->
    B = rand:bytes(pick([0, 1, 5, 64, 65, 200, 1000])),
    case rand:uniform(3) of
        1 -> B;
        2 when byte_size(B) > 2 -> binary:part(B, 1, byte_size(B) - 2);
        _ -> Bits = rand:uniform(7), <<B/binary, (rand:uniform(1 bsl Bits) - 1):Bits>>
    end.
