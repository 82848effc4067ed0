#!/usr/bin/env escript
%% -*- erlang -*-
%%! -noshell
-mode(compile).
%%
%% etf_fuzz_corpus.escript - writes the seed corpus of the fuzz_etf_decode
%% target (tests/fuzz/corpus/etf_decode/): erl's own encodings of every tag
%% (minor versions 0, 1 and 2, compressed), the legacy forms by hand, and
%% truncated or corrupted copies of some of them. Run it from anywhere:
%%     escript tests/interop/etf_fuzz_corpus.escript tests/fuzz/corpus/etf_decode
%% The files are committed; rerun only to refresh them.

main([Dir]) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Terms = terms(),
    Encoded =
        [{Name ++ "_v2", term_to_binary(T, [{minor_version, 2}])} || {Name, T} <- Terms] ++
        [{Name ++ "_v1", term_to_binary(T)} || {Name, T} <- Terms] ++
        [{Name ++ "_v0", term_to_binary(T, [{minor_version, 0}])} || {Name, T} <- Terms,
                                                                      is_float(T)] ++
        [{Name ++ "_z", term_to_binary(T, [compressed, {minor_version, 2}])}
         || {Name, T} <- Terms, is_compressible(T)],
    Legacy = legacy(),
    Broken = broken(Encoded),
    lists:foreach(fun({Name, Bin}) ->
                          ok = file:write_file(filename:join(Dir, Name), Bin)
                  end, Encoded ++ Legacy ++ Broken),
    io:format("wrote ~p files to ~s~n", [length(Encoded ++ Legacy ++ Broken), Dir]);
main(_) ->
    io:format("usage: etf_fuzz_corpus.escript DIR~n"),
    halt(2).

is_compressible(T) -> byte_size(term_to_binary(T, [compressed])) < byte_size(term_to_binary(T)).

adder(X) -> fun(Y) -> X + Y end.

%% Keys of every kind for large maps.
mixed_key(I) ->
    case I rem 6 of
        0 -> I;
        1 -> float(I);
        2 -> list_to_atom("k" ++ integer_to_list(I));
        3 -> <<I:16>>;
        4 -> {I, "s"};
        5 -> (1 bsl 70) + I
    end.

terms() ->
    Pid = binary_to_term(<<131,88,119,5,"x@y.z",0,0,1,2,0,0,0,3,1,2,3,4>>),
    [{"small_int", 42}, {"int", -70000}, {"small_big", 1 bsl 70}, {"neg_big", -(1 bsl 100)},
     {"large_big", 1 bsl 2100}, {"float", 3.14159}, {"neg_zero", -0.0},
     {"atom", hello}, {"atom_latin1", 'åäö'}, {"atom_utf8", 'λ_ünï'},
     {"atom_long", list_to_atom(lists:duplicate(255, $z))},
     {"small_tuple", {a, 1, "x"}}, {"large_tuple", list_to_tuple(lists:seq(1, 300))},
     {"nil", []}, {"string", "hello world"}, {"list", [a, 1.5, {b}]},
     {"improper", [1, 2 | c]}, {"long_list", lists:duplicate(100, a)},
     {"binary", <<"bytes">>}, {"big_binary", binary:copy(<<"ab">>, 600)},
     {"bitstring", <<5:3>>}, {"map", #{a => 1, "k" => [v]}},
     {"big_map", maps:from_list([{I, I * I} || I <- lists:seq(1, 40)])},
     {"map33", maps:from_list([{I, I} || I <- lists:seq(1, 33)])},
     {"map100_mixed", maps:from_list([{mixed_key(I), I} || I <- lists:seq(1, 100)])},
     {"map_large_nested",
      #{inner => maps:from_list([{I, {I}} || I <- lists:seq(1, 35)]),
        maps:from_list([{[I], I} || I <- lists:seq(1, 34)]) => key_is_a_large_map}},
     {"nested", {[#{x => {y, [<<1>>]}}], [[[[]]]]}},
     {"pid", self()}, {"remote_pid", Pid}, {"ref", make_ref()},
     {"port", hd(erlang:ports())},
     {"v4_port", binary_to_term(<<131,120,119,3,"a@b",0,0,1,0,0,0,0,5,0,0,0,7>>)},
     {"export", fun erlang:abs/1}, {"closure", adder(7)},
     {"closure_nested", {adder(adder(1)), [fun lists:map/2]}}].

legacy() ->
    Node = <<100,0,3,"a@b">>,
    [{"legacy_atom_ext", <<131,100,0,3,"abc">>},
     {"legacy_small_atom_ext", <<131,115,2,228,246>>},
     {"legacy_pid_ext", <<131,103,Node/binary,0,0,0,1,0,0,0,2,3>>},
     {"legacy_port_ext", <<131,102,Node/binary,0,0,0,5,3>>},
     {"legacy_new_port_ext", <<131,89,Node/binary,0,0,0,5,0,0,0,3>>},
     {"legacy_reference_ext", <<131,101,Node/binary,0,0,0,1,3>>},
     {"legacy_new_reference_ext", <<131,114,0,3,Node/binary,3,0:32,1:32,2:32>>},
     {"legacy_float_ext", <<131,99,"1.50000000000000000000e+00",0,0,0,0,0>>},
     {"legacy_export_int_arity", <<131,113,100,0,1,"m",100,0,1,"f",98,0,0,0,2>>},
     {"list_len0_tail", <<131,108,0,0,0,0,97,1>>},
     {"bit_binary_8", <<131,77,0,0,0,1,8,5>>},
     {"map_unsorted", <<131,116,0,0,0,2,119,1,"b",97,2,119,1,"a",97,1>>},
     {"list_tail_chain", list_to_binary([131, lists:duplicate(50, [108,0,0,0,1,97,1]), 106])},
     {"bad_dup_map", <<131,116,0,0,0,2,97,1,97,2,97,1,97,3>>},
     {"bad_dup_large_map", list_to_binary([131, 116, <<34:32>>,
                                           [[97, K, 97, K] || K <- lists:seq(1, 33)],
                                           97, 7, 97, 0])},
     {"bad_nan", <<131,70,127,248,0,0,0,0,0,0>>},
     {"bad_atom_utf8", <<131,119,2,192,128>>},
     {"bad_atom_cache_ref", <<131,82,0>>},
     {"bad_huge_tuple", <<131,105,255,255,255,255,97,1>>},
     {"bad_huge_list", <<131,108,255,255,255,255,106>>},
     {"bad_huge_map", <<131,116,127,255,255,255,97,1>>},
     {"bad_bits0", <<131,77,0,0,0,1,0,5>>},
     {"bad_zip_size", <<131,80,255,255,255,255,120,156,3,0,0,0,0,1>>},
     {"bad_zip_bomb", <<131,80,0,0,3,232,(zlib:compress(<<109,0,16,0,0,(binary:copy(<<0>>, 1048576))/binary>>))/binary>>},
     {"bad_deep", list_to_binary([131, lists:duplicate(100, [104,1]), 106])},
     {"bad_trailing", <<131,97,1,2>>},
     {"bad_version", <<130,97,1>>},
     {"empty", <<>>}].

%% Every eighth cut of a few encodings, and single-byte corruptions.
broken(Encoded) ->
    Pick = [E || {N, _} = E <- Encoded,
                 lists:member(N, ["nested_v2", "closure_v2", "map_v2", "large_big_v2",
                                  "long_list_z", "remote_pid_v1", "ref_v2",
                                  "map_large_nested_v2"])],
    Cuts = [{N ++ "_cut" ++ integer_to_list(K), binary:part(B, 0, K)}
            || {N, B} <- Pick, K <- lists:seq(1, byte_size(B) - 1, 8)],
    Flips = [{N ++ "_flip" ++ integer_to_list(K), flip(B, K)}
             || {N, B} <- Pick, K <- lists:seq(1, byte_size(B) - 1, 11)],
    Cuts ++ Flips.

flip(B, K) ->
    <<Pre:K/binary, X, Post/binary>> = B,
    <<Pre/binary, (X bxor 16#5a), Post/binary>>.
