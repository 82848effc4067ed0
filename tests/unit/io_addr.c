/*
 * io_addr.c - socket addresses (src/io/addr.h) and the errno mapping
 * (src/io/oserr.h): every text form read and written back unchanged, the
 * literals that must be refused (and with which code), names told apart
 * from literals, ports at and past their range, the kernel's sockaddr both
 * ways (a real bind/getsockname for each family), and errno values mapped
 * to the codes and Erlang names a caller acts on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "amb_test.h"
#include "io/addr.h"
#include "io/oserr.h"

static amb__addr parse_ok(const char *text, bool port_optional)
{
    amb__addr a;
    int rc = amb__addr_parse(text, strlen(text), port_optional, &a);
    if (rc != 0)
        fail_msg("parse(%s) returned %s", text, amb_err_name(rc));
    return a;
}

static void assert_parse_rc(int want, const char *text, bool port_optional)
{
    amb__addr a;
    memset(&a, 0xab, sizeof a);
    amb__addr before = a;
    int rc = amb__addr_parse(text, strlen(text), port_optional, &a);
    if (rc != want)
        fail_msg("parse(%s) returned %s, expected %s", text, amb_err_name(rc),
                 amb_err_name(want));
    assert_memory_equal(&a, &before, sizeof a); /* a failed call did nothing */
}

static void assert_format(const amb__addr *a, const char *want)
{
    char buf[AMB__ADDR_TEXT_MAX + 1];
    size_t len = 0;
    assert_ok(amb__addr_format(a, buf, sizeof buf, &len));
    assert_string_equal(buf, want);
    assert_int_equal(len, strlen(want));
}

/* text parses, formats back to canon, and canon parses to the same value. */
static void assert_round_trip(const char *text, const char *canon)
{
    amb__addr a = parse_ok(text, false);
    assert_format(&a, canon);
    amb__addr b = parse_ok(canon, false);
    assert_memory_equal(&a, &b, sizeof a);
}

AMB_TEST(ipv4_ipv6_and_unix_text_round_trips)
{
    assert_round_trip("127.0.0.1:80", "127.0.0.1:80");
    assert_round_trip("0.0.0.0:0", "0.0.0.0:0");
    assert_round_trip("255.255.255.255:65535", "255.255.255.255:65535");
    assert_round_trip("[::1]:8080", "[::1]:8080");
    assert_round_trip("[::]:0", "[::]:0");
    assert_round_trip("[2001:DB8:0:0:0:0:0:1]:443", "[2001:db8::1]:443");
    assert_round_trip("[::ffff:192.0.2.1]:1", "[::ffff:192.0.2.1]:1");
    assert_round_trip("[fe80::1%2]:9", "[fe80::1%2]:9");
    assert_round_trip("unix:/run/app.sock", "unix:/run/app.sock");
    assert_round_trip("unix:relative/path", "unix:relative/path");
    assert_round_trip("unix:@abstract-name", "unix:@abstract-name");

    amb__addr a = parse_ok("10.1.2.3:4567", false);
    assert_int_equal(a.family, AMB__ADDR_INET);
    assert_int_equal(a.port, 4567);
    assert_int_equal(a.ip[0], 10);
    assert_int_equal(a.ip[3], 3);
    a = parse_ok("[fe80::1%7]:9", false);
    assert_int_equal(a.family, AMB__ADDR_INET6);
    assert_int_equal(a.scope_id, 7);
    a = parse_ok("unix:@x", false);
    assert_int_equal(a.family, AMB__ADDR_UNIX);
    assert_int_equal(a.path_len, 2);
    assert_int_equal(a.path[0], '\0'); /* abstract: the '@' is a NUL byte */
    assert_int_equal(a.path[1], 'x');
}

AMB_TEST(zone_names_resolve_to_interface_indices)
{
    unsigned lo = if_nametoindex("lo");
    if (lo == 0)
        skip(); /* a sandbox without a loopback interface */
    amb__addr a = parse_ok("[fe80::1%lo]:1", false);
    assert_int_equal(a.scope_id, lo);
    assert_parse_rc(AMB_EADDRNOTAVAIL, "[fe80::1%no-such-if0]:1", false);
    assert_parse_rc(AMB_ESYNTAX, "[fe80::1%]:1", false);
    assert_parse_rc(AMB_ESYNTAX, "[fe80::1%99999999999]:1", false);
}

AMB_TEST(malformed_literals_are_refused_with_esyntax)
{
    static const char *bad[] = {
        "1.2.3.256:80",  "1.2.3:80",       "01.2.3.4:80",  "1.2.3.4.5:80", "1..2.3:80",
        "[::1:80",       "::1]:80",        "[::1]80",      "[1.2.3.4]:80", "[]:80",
        "[::g]:80",      "[:::1]:80",      "1.2.3.4:",     "1.2.3.4:-1",   "1.2.3.4:+1",
        "1.2.3.4:65536", "1.2.3.4:123456", "1.2.3.4:8x",   "::1:80",       "unix:",
        "unix:@",        "-bad.host:80",   "bad-.host:80", "a..b:80",      "",
        ":80",           "host name:80",
    };
    for (size_t i = 0; i < AMB_COUNTOF(bad); i++)
        assert_parse_rc(AMB_ESYNTAX, bad[i], false);
    assert_parse_rc(AMB_ESYNTAX, "1.2.3.4", false); /* a port is required */
}

AMB_TEST(names_are_told_apart_from_literals)
{
    assert_parse_rc(AMB_ENOTFOUND, "localhost:80", false);
    assert_parse_rc(AMB_ENOTFOUND, "example.com.:443", false);
    assert_parse_rc(AMB_ENOTFOUND, "my_service:80", false);
    assert_true(amb__addr_is_name("a-b.c0", 6));
    assert_true(amb__addr_is_name("x", 1));
    assert_false(amb__addr_is_name("1.2.3.4", 7));
    assert_false(amb__addr_is_name("123", 3));
    assert_false(amb__addr_is_name("", 0));
    assert_false(amb__addr_is_name(".", 1));
    char label[70];
    memset(label, 'a', sizeof label);
    assert_true(amb__addr_is_name(label, 63));
    assert_false(amb__addr_is_name(label, 64));
    char longname[300];
    for (size_t i = 0; i < sizeof longname; i++)
        longname[i] = i % 4 == 3 ? '.' : 'a'; /* aaa.aaa.aaa... */
    assert_true(amb__addr_is_name(longname, 251));
    assert_false(amb__addr_is_name(longname, 255));

    /* a host alone: literals and names */
    amb__addr a;
    assert_ok(amb__addr_from_host("::1", 3, 7, &a));
    assert_int_equal(a.family, AMB__ADDR_INET6);
    assert_int_equal(a.port, 7);
    assert_ok(amb__addr_from_host("[::1]", 5, 7, &a));
    assert_rc(AMB_ENOTFOUND, amb__addr_from_host("db.internal", 11, 5432, &a));
    assert_rc(AMB_ESYNTAX, amb__addr_from_host("", 0, 1, &a));
    assert_rc(AMB_EBADARG, amb__addr_from_host(NULL, 0, 1, &a));
}

AMB_TEST(split_takes_hosts_ports_and_optional_ports)
{
    const char *h;
    size_t hl;
    uint16_t port;
    const char *t = "example.com:443";
    assert_ok(amb__addr_split(t, strlen(t), false, &h, &hl, &port));
    assert_int_equal(hl, 11);
    assert_memory_equal(h, "example.com", 11);
    assert_int_equal(port, 443);

    t = "[::1]:9";
    assert_ok(amb__addr_split(t, strlen(t), false, &h, &hl, &port));
    assert_int_equal(hl, 3);
    assert_memory_equal(h, "::1", 3);

    t = ":8080"; /* Go's "every interface" */
    assert_ok(amb__addr_split(t, strlen(t), false, &h, &hl, &port));
    assert_int_equal(hl, 0);
    assert_int_equal(port, 8080);

    t = "::1"; /* a bare IPv6 literal is a host only when the port may be left out */
    assert_rc(AMB_ESYNTAX, amb__addr_split(t, strlen(t), false, &h, &hl, &port));
    assert_ok(amb__addr_split(t, strlen(t), true, &h, &hl, &port));
    assert_int_equal(hl, 3);
    assert_int_equal(port, 0);

    amb__addr a = parse_ok("192.0.2.7", true);
    assert_int_equal(a.port, 0);
    a = parse_ok("[2001:db8::2]", true);
    assert_int_equal(a.family, AMB__ADDR_INET6);
    a = parse_ok("unix:/tmp/s", true);
    assert_int_equal(a.path_len, 6);

    uint16_t p;
    assert_ok(amb__addr_parse_port("0", 1, &p));
    assert_int_equal(p, 0);
    assert_ok(amb__addr_parse_port("65535", 5, &p));
    assert_int_equal(p, 65535);
    assert_ok(amb__addr_parse_port("00080", 5, &p));
    assert_int_equal(p, 80);
    assert_rc(AMB_ESYNTAX, amb__addr_parse_port("65536", 5, &p));
    assert_rc(AMB_ESYNTAX, amb__addr_parse_port("", 0, &p));
    assert_rc(AMB_ESYNTAX, amb__addr_parse_port("1 ", 2, &p));
    assert_int_equal(p, 80); /* failed calls left it alone */
}

AMB_TEST(unix_paths_have_a_length_limit)
{
    char text[5 + 200];
    memcpy(text, "unix:/", 6);
    memset(text + 6, 'p', sizeof text - 6);
    /* "unix:" + 107 bytes fits, 108 does not */
    amb__addr a;
    assert_ok(amb__addr_parse(text, 5 + AMB__ADDR_PATH_MAX, false, &a));
    assert_int_equal(a.path_len, AMB__ADDR_PATH_MAX);
    assert_rc(AMB_ERANGE, amb__addr_parse(text, 5 + AMB__ADDR_PATH_MAX + 1, false, &a));
    const char nul[] = "unix:/a\0b";
    assert_rc(AMB_ESYNTAX, amb__addr_parse(nul, sizeof nul - 1, false, &a));
}

AMB_TEST(format_reports_a_small_buffer_with_the_size_needed)
{
    amb__addr a = parse_ok("[2001:db8::1]:443", false);
    char buf[8];
    size_t len = 0;
    assert_rc(AMB_EBUFSIZE, amb__addr_format(&a, buf, sizeof buf, &len));
    assert_int_equal(len, strlen("[2001:db8::1]:443"));
    assert_string_equal(buf, "[2001:d"); /* cut, and still a C string */
    assert_rc(AMB_EBUFSIZE, amb__addr_format(&a, NULL, 0, &len));
    amb__addr none;
    memset(&none, 0, sizeof none);
    assert_rc(AMB_EBADARG, amb__addr_format(&none, buf, sizeof buf, &len));
}

/* Binds a socket of a's family to a, reads the bound name back through
 * getsockname and returns it. */
static amb__addr bound_name(const amb__addr *a, int type)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    assert_ok(amb__addr_to_sockaddr(a, &ss, &sl));
    int fd = socket(ss.ss_family, type, 0);
    if (fd < 0 && a->family == AMB__ADDR_INET6)
        skip(); /* no IPv6 in this sandbox */
    assert_true(fd >= 0);
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        int e = errno;
        close(fd);
        if (a->family == AMB__ADDR_INET6 && e == EADDRNOTAVAIL)
            skip();
        fail_msg("bind: %s", strerror(e));
    }
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&got, &gl), 0);
    close(fd);
    amb__addr out;
    assert_ok(amb__addr_from_sockaddr((struct sockaddr *)&got, gl, &out));
    return out;
}

AMB_TEST(sockaddr_conversions_agree_with_the_kernel)
{
    amb__addr a = parse_ok("127.0.0.1:0", false);
    amb__addr b = bound_name(&a, SOCK_DGRAM);
    assert_int_equal(b.family, AMB__ADDR_INET);
    assert_memory_equal(b.ip, a.ip, 4);
    assert_true(b.port != 0); /* the kernel chose one */

    char path[64];
    snprintf(path, sizeof path, "unix:/tmp/amb-addr-%d", (int)getpid());
    unlink(path + 5);
    a = parse_ok(path, false);
    b = bound_name(&a, SOCK_STREAM);
    unlink(path + 5);
    assert_memory_equal(&a, &b, sizeof a);

    snprintf(path, sizeof path, "unix:@amb-addr-%d", (int)getpid());
    a = parse_ok(path, false);
    b = bound_name(&a, SOCK_STREAM);
    assert_memory_equal(&a, &b, sizeof a); /* abstract: no NUL added to the name */

    a = parse_ok("[::1]:0", false);
    b = bound_name(&a, SOCK_DGRAM);
    assert_int_equal(b.family, AMB__ADDR_INET6);
    assert_memory_equal(b.ip, a.ip, 16);
}

AMB_TEST(sockaddr_of_an_unknown_family_or_short_length_is_refused)
{
    struct sockaddr_in in;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    amb__addr a;
    assert_rc(AMB_EBADARG,
              amb__addr_from_sockaddr((struct sockaddr *)&in, sizeof in - 1, &a));
    struct sockaddr sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_family = AF_PACKET;
    assert_rc(AMB_ENOTSUP, amb__addr_from_sockaddr(&sa, sizeof sa, &a));

    /* an unbound Unix peer has no name: "unix:", and it cannot be connected to */
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    assert_ok(amb__addr_from_sockaddr((struct sockaddr *)&un, sizeof(sa_family_t), &a));
    assert_int_equal(a.path_len, 0);
    assert_format(&a, "unix:");
    struct sockaddr_storage ss;
    socklen_t sl;
    assert_rc(AMB_EBADARG, amb__addr_to_sockaddr(&a, &ss, &sl));
}

AMB_TEST(errno_values_map_to_the_codes_callers_act_on)
{
    static const struct {
        int err, code;
        const char *name;
    } cases[] = {
        {ECONNREFUSED, AMB_ECONNREFUSED, "econnrefused"},
        {ECONNRESET, AMB_ECONNRESET, "econnreset"},
        {ECONNABORTED, AMB_ECONNRESET, "econnaborted"},
        {EPIPE, AMB_ECLOSED, "epipe"},
        {EADDRINUSE, AMB_EADDRINUSE, "eaddrinuse"},
        {EADDRNOTAVAIL, AMB_EADDRNOTAVAIL, "eaddrnotavail"},
        {EHOSTUNREACH, AMB_EHOSTUNREACH, "ehostunreach"},
        {ENETUNREACH, AMB_ENETUNREACH, "enetunreach"},
        {ETIMEDOUT, AMB_ETIMEDOUT, "etimedout"},
        {EMSGSIZE, AMB_EMSGSIZE, "emsgsize"},
        {EACCES, AMB_EACCES, "eacces"},
        {EMFILE, AMB_ESYSLIMIT, "emfile"},
        {ENFILE, AMB_ESYSLIMIT, "enfile"},
        {ENOBUFS, AMB_ENOMEM, "enobufs"},
        {ENOTCONN, AMB_ENOTCONN, "enotconn"},
        {EAGAIN, AMB_EAGAIN, "eagain"},
        {EINVAL, AMB_EBADARG, "einval"},
        {EAFNOSUPPORT, AMB_ENOTSUP, "eafnosupport"},
        {ENOENT, AMB_ENOTFOUND, "enoent"},
        {EIO, AMB_EIO, "eio"},
    };
    for (size_t i = 0; i < AMB_COUNTOF(cases); i++) {
        assert_int_equal(amb__oserr_code(cases[i].err), cases[i].code);
        assert_string_equal(amb__oserr_name(cases[i].err), cases[i].name);
    }
    assert_int_equal(amb__oserr_code(EWOULDBLOCK), AMB_EAGAIN);
    assert_int_equal(amb__oserr_code(EDOM), AMB_EIO); /* no entry: an I/O error */
    assert_string_equal(amb__oserr_name(EDOM), "unknown");
    assert_int_equal(amb__oserr_code(0), AMB_EBADARG);
    assert_string_equal(amb__oserr_name(-1), "unknown");

    assert_int_equal(amb__oserr_gai(EAI_NONAME, 0), AMB_ENOHOST);
    assert_int_equal(amb__oserr_gai(EAI_AGAIN, 0), AMB_EAGAIN);
    assert_int_equal(amb__oserr_gai(EAI_MEMORY, 0), AMB_ENOMEM);
    assert_int_equal(amb__oserr_gai(EAI_FAMILY, 0), AMB_ENOTSUP);
    assert_int_equal(amb__oserr_gai(EAI_SYSTEM, EMFILE), AMB_ESYSLIMIT);
    assert_int_equal(amb__oserr_gai(EAI_SYSTEM, 0), AMB_EIO);
    assert_int_equal(amb__oserr_gai(EAI_FAIL, 0), AMB_EIO);

    /* the real thing: a connection to a port nobody listens on is refused */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in in;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&in, sizeof in), 0);
    socklen_t sl = sizeof in;
    assert_int_equal(getsockname(l, (struct sockaddr *)&in, &sl), 0);
    close(l); /* bound, never listening, now free: nobody answers there */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&in, sizeof in), -1);
    assert_int_equal(amb__oserr_code(errno), AMB_ECONNREFUSED);
    close(c);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(ipv4_ipv6_and_unix_text_round_trips),
              AMB_TEST_ENTRY(zone_names_resolve_to_interface_indices),
              AMB_TEST_ENTRY(malformed_literals_are_refused_with_esyntax),
              AMB_TEST_ENTRY(names_are_told_apart_from_literals),
              AMB_TEST_ENTRY(split_takes_hosts_ports_and_optional_ports),
              AMB_TEST_ENTRY(unix_paths_have_a_length_limit),
              AMB_TEST_ENTRY(format_reports_a_small_buffer_with_the_size_needed),
              AMB_TEST_ENTRY(sockaddr_conversions_agree_with_the_kernel),
              AMB_TEST_ENTRY(sockaddr_of_an_unknown_family_or_short_length_is_refused),
              AMB_TEST_ENTRY(errno_values_map_to_the_codes_callers_act_on))
