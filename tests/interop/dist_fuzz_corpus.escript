#!/usr/bin/env escript
%% -*- erlang -*-
%%! -noshell
-mode(compile).
%%
%% dist_fuzz_corpus.escript - writes the seed corpora of the distribution
%% fuzz targets from erl's own encodings:
%%   dist_control    every control message, term_to_binary'd by erl, in both
%%                   term forms (with 131: pass-through; without: header)
%%   dist_frame      streams of whole frames, ticks and interleaved fragments
%%                   in both modes, built from the same messages
%%   dist_handshake  scripts that walk the state machine down each path
%%                   with the packets an OTP 25 node sends
%%   dist_epmd       requests and answers as erl and epmd write them
%% (tests/fuzz/fuzz_dist_*.c say how each target reads its input.) The live
%% capture of dist_wire.sh adds real traffic to the same folders. Run:
%%     escript tests/interop/dist_fuzz_corpus.escript tests/fuzz/corpus
%% The files are committed; rerun only to refresh them.

main([Root]) ->
    Sets = [{"dist_control", control_seeds()},
            {"dist_frame", frame_seeds()},
            {"dist_handshake", handshake_seeds()},
            {"dist_epmd", epmd_seeds()}],
    lists:foreach(
      fun({Dir, Seeds}) ->
              Path = filename:join(Root, Dir),
              ok = filelib:ensure_dir(filename:join(Path, "x")),
              [ok = file:write_file(filename:join(Path, "erl_" ++ Name), Bin)
               || {Name, Bin} <- Seeds],
              io:format("wrote ~p files to ~s~n", [length(Seeds), Path])
      end, Sets);
main(_) ->
    io:format("usage: dist_fuzz_corpus.escript CORPUS_ROOT~n"),
    halt(2).

pid(Node, Id) ->
    N = atom_to_binary(Node, utf8),
    binary_to_term(<<131, 88, 119, (byte_size(N)), N/binary, Id:32, 0:32, 1:32>>).

ref(Node) ->
    N = atom_to_binary(Node, utf8),
    binary_to_term(<<131, 90, 0, 3, 119, (byte_size(N)), N/binary, 7:32, 1:32, 2:32, 3:32>>).

%% {Name, ControlTuple, Payload | none}
messages() ->
    P1 = pid('erl@localhost', 90), P2 = pid('c@localhost', 1), R = ref('erl@localhost'),
    Tok = {0, label, 1, P1, 0},
    Msg = {'$gen_call', {P1, [alias | R]}, {is_auth, 'erl@localhost'}},
    Big = {data, binary:copy(<<"0123456789">>, 200), #{k => 1.5, "s" => [1, 2]}},
    Reason = {shutdown, {failed, "why", 42}},
    [{"link", {1, P1, P2}, none},
     {"send", {2, '', P2}, Msg},
     {"send_big", {2, '', P2}, Big},
     {"exit", {3, P1, P2, Reason}, none},
     {"unlink", {4, P1, P2}, none},
     {"node_link", {5}, none},
     {"reg_send", {6, P1, '', net_kernel}, Msg},
     {"group_leader", {7, P1, P2}, none},
     {"exit2", {8, P1, P2, kill}, none},
     {"send_tt", {12, '', P2, Tok}, Msg},
     {"exit_tt", {13, P1, P2, Tok, Reason}, none},
     {"reg_send_tt", {16, P1, '', rex, Tok}, Msg},
     {"exit2_tt", {18, P1, P2, Tok, normal}, none},
     {"monitor_p_name", {19, P1, net_kernel, R}, none},
     {"monitor_p_pid", {19, P1, P2, R}, none},
     {"demonitor_p", {20, P1, net_kernel, R}, none},
     {"monitor_p_exit", {21, net_kernel, P1, R, noproc}, none},
     {"monitor_p_exit_pid", {21, P2, P1, R, Reason}, none},
     {"send_sender", {22, P1, P2}, Msg},
     {"send_sender_tt", {23, P1, P2, Tok}, Big},
     {"payload_exit", {24, P1, P2}, Reason},
     {"payload_exit_tt", {25, P1, P2, Tok}, noconnection},
     {"payload_exit2", {26, P1, P2}, kill},
     {"payload_exit2_tt", {27, P1, P2, Tok}, shutdown},
     {"payload_monitor_p_exit", {28, net_kernel, P1, R}, Reason},
     {"spawn_request", {29, R, P1, P2, {lists, seq, 2}, [link, monitor]}, [1, 10]},
     {"spawn_request_tt", {30, R, P1, P2, {erlang, node, 0}, [], Tok}, []},
     {"spawn_reply", {31, R, P1, 3, P2}, none},
     {"spawn_reply_tt", {32, R, P1, 0, badarg, Tok}, none},
     {"alias_send", {33, P1, R}, {[alias | R], yes}},
     {"alias_send_tt", {34, P1, R, Tok}, hello},
     {"unlink_id", {35, 16#123456789abcdef0, P1, P2}, none},
     {"unlink_id_ack", {36, 7, P2, P1}, none}].

enc(T) -> term_to_binary(T, [{minor_version, 2}]).
bare(T) -> <<131, B/binary>> = enc(T), B.

body(Ctl, none, V) -> if V -> enc(Ctl); true -> bare(Ctl) end;
body(Ctl, Msg, V) ->
    if V -> <<(enc(Ctl))/binary, (enc(Msg))/binary>>;
       true -> <<(bare(Ctl))/binary, (bare(Msg))/binary>>
    end.

control_seeds() ->
    [{Name ++ "_v", <<1, (body(C, M, true))/binary>>} || {Name, C, M} <- messages()] ++
    [{Name ++ "_h", <<0, (body(C, M, false))/binary>>} || {Name, C, M} <- messages()].

frame(Data) -> <<(byte_size(Data)):32, Data/binary>>.
tick() -> <<0:32>>.
pt_frame(C, M) -> frame(<<112, (body(C, M, true))/binary>>).
hdr_frame(C, M) -> frame(<<131, 68, 0, (body(C, M, false))/binary>>).

%% The message as fragments of at most Max data bytes (131 69, then 131 70).
fragments(Seq, C, M, Max) ->
    Ctl = bare(C),
    Rest = case M of none -> <<>>; _ -> bare(M) end,
    First = Max - 19 - byte_size(Ctl),
    Cont = Max - 18,
    Parts = split(Rest, First, Cont),
    N = length(Parts),
    [frame(case I of
               N -> <<131, 69, Seq:64, I:64, 0, Ctl/binary, P/binary>>;
               _ -> <<131, 70, Seq:64, I:64, P/binary>>
           end)
     || {I, P} <- lists:zip(lists:seq(N, 1, -1), Parts)].

split(Bin, First, _Cont) when byte_size(Bin) =< First -> [Bin];
split(Bin, First, Cont) ->
    <<H:First/binary, T/binary>> = Bin,
    [H | split(T, Cont, Cont)].

%% Two lists of frames interleaved, one frame of each in turn.
interleave([], B) -> B;
interleave(A, []) -> A;
interleave([A | As], [B | Bs]) -> [A, B | interleave(As, Bs)].

frame_seeds() ->
    Ms = messages(),
    PT = [{"pt_" ++ Name, <<0, (tick())/binary, (pt_frame(C, M))/binary, (tick())/binary>>}
          || {Name, C, M} <- Ms],
    HD = [{"hd_" ++ Name, <<1, (hdr_frame(C, M))/binary>>} || {Name, C, M} <- Ms],
    {_, C1, M1} = lists:keyfind("send_big", 1, Ms),
    {_, C2, M2} = lists:keyfind("send_sender_tt", 1, Ms),
    {_, C3, M3} = lists:keyfind("link", 1, Ms),
    Frag = fragments(1, C1, M1, 300),
    Both = interleave(Frag, fragments(2, C2, M2, 500)),
    AllPT = << <<(pt_frame(C, M))/binary>> || {_, C, M} <- Ms >>,
    AllHD = << <<(hdr_frame(C, M))/binary>> || {_, C, M} <- Ms >>,
    PT ++ HD ++
        [{"frag_one", <<1, (iolist_to_binary(Frag))/binary>>},
         {"frag_two_interleaved",
          <<(1 + 2 * 16), (iolist_to_binary(interleave(Both, [hdr_frame(C3, M3), tick()])))/binary>>},
         {"frag_single", <<1, (iolist_to_binary(fragments(9, C3, M3, 1000)))/binary>>},
         {"all_pt_chunk7", <<(2 * 6), AllPT/binary>>},
         {"all_hd_chunk64", <<(1 + 2 * 63), AllHD/binary>>}].

-define(OTP25_FLAGS, 16#d07df7fbd).

pkt(Body) -> <<(byte_size(Body)):16, Body/binary>>.
rec(Op, Bin) -> <<Op, (byte_size(Bin)), Bin/binary>>.

handshake_seeds() ->
    Name = <<"erl@localhost">>,
    NameN = <<$N, ?OTP25_FLAGS:64, 16#12345678:32, (byte_size(Name)):16, Name/binary>>,
    Chal = fun(N) -> <<$N, ?OTP25_FLAGS:64, 16#0badcafe:32, 16#01020304:32,
                       (byte_size(N)):16, N/binary>> end,
    Named = <<"snamed:", 9:16, "dyn@host", 0, 42:32>>,
    NamedOk = <<"snamed:", 8:16, "dyn@host", 42:32>>,
    [%% acceptor: erl's name, we say ok, erl's right reply
     {"acc_ok", <<1, (rec(0, pkt(NameN)))/binary, (rec(3, <<1>>))/binary,
                  (rec(1, <<1, 2, 3, 4>>))/binary>>},
     %% acceptor: the name in two pieces, alive, true, reply
     {"acc_alive", <<1, (rec(0, binary:part(pkt(NameN), 0, 5)))/binary,
                     (rec(0, binary:part(pkt(NameN), 5, byte_size(NameN) - 3)))/binary,
                     (rec(3, <<5>>))/binary, (rec(0, pkt(<<"strue">>)))/binary,
                     (rec(1, <<9, 9, 9, 9>>))/binary>>},
     {"acc_not_allowed", <<1, (rec(0, pkt(NameN)))/binary, (rec(3, <<4>>))/binary>>},
     {"acc_bad_cookie", <<1, (rec(0, pkt(NameN)))/binary, (rec(3, <<1>>))/binary,
                          (rec(0, pkt(<<$r, 1:32, 0:128>>)))/binary>>},
     {"acc_old_version", <<1, (rec(0, pkt(<<$n, 5:16, 16#7fffd:32, Name/binary>>)))/binary>>},
     %% initiator: ok, the challenge of peer@host, the right ack
     {"ini_ok", <<4, (rec(0, pkt(<<"sok">>)))/binary,
                  (rec(0, pkt(Chal(<<"peer@host">>))))/binary, (rec(2, <<>>))/binary>>},
     {"ini_alive", <<0, (rec(0, pkt(<<"salive">>)))/binary, (rec(3, <<1>>))/binary,
                     (rec(0, pkt(Chal(<<"b@host">>))))/binary, (rec(2, <<>>))/binary>>},
     {"ini_nok", <<0, (rec(0, pkt(<<"snok">>)))/binary>>},
     {"ini_named", <<2, (rec(0, pkt(NamedOk)))/binary,
                     (rec(0, pkt(Chal(<<"b@host">>))))/binary, (rec(2, <<>>))/binary>>},
     {"ini_named_extra", <<2, (rec(0, pkt(Named)))/binary>>},
     {"ini_mismatch", <<4, (rec(0, pkt(<<"sok_simultaneous">>)))/binary,
                        (rec(0, pkt(Chal(<<"other@host">>))))/binary>>},
     {"ini_eof", <<0, (rec(5, <<>>))/binary, (rec(4, <<>>))/binary>>}].

epmd_seeds() ->
    Alive = fun(Name, Type) ->
                    Req = <<120, 40000:16, Type, 0, 6:16, 6:16, (byte_size(Name)):16,
                            Name/binary, 0:16>>,
                    <<(byte_size(Req)):16, Req/binary>>
            end,
    Port2 = <<0, 4, 122, "foo">>,
    [{"req_alive_normal", <<0, (Alive(<<"foo">>, 77))/binary>>},
     {"req_alive_hidden", <<0, (Alive(<<"c_node">>, 72))/binary>>},
     {"req_three", <<0, (Alive(<<"foo">>, 77))/binary, Port2/binary, 0, 1, 110>>},
     {"req_port2_nul", <<0, 0, 5, 122, "foo", 0>>},
     {"req_kill", <<0, 0, 1, 107>>},
     {"alive2_x", <<1, 118, 0, 16#12345678:32>>},
     {"alive2_old", <<1, 121, 1, 99:16>>},
     {"port2_ok", <<2, 119, 0, 40000:16, 77, 0, 6:16, 6:16, 3:16, "foo", 2:16, "xy">>},
     {"port2_none", <<2, 119, 1>>},
     {"names", <<3, 4369:32, "name foo at port 40000\nname erl_1 at port 1234\n">>},
     {"names_partial", <<3, 4369:32, "name foo at port 40000\nname ba">>}].
