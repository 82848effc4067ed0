/*
 * tests/unit/dist_config.c - a node's cookie and name as erl makes them
 * (src/dist/cookie.c, nodename.c).
 *
 * What is proved: the cookie file is $HOME/.erlang.cookie; a missing one is
 * made with 20 capital letters and mode 0400 and read back the same; a file
 * others may read, a directory, an empty file and bad characters are
 * refused (AMB_EACCES, AMB_EFORMAT), each with a line that says why;
 * trailing newlines, returns and spaces are not part of the cookie, inner
 * spaces are; no $HOME is AMB_EACCES. Names: alive@host kept, a dotted host
 * refused with short names and kept with long ones, an alive part outside
 * [0-9A-Za-z_-] refused, a name without a host gets this machine's (short:
 * up to the first dot).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amb_test.h"
#include "dist/dist.h"

/* A fresh $HOME; returns its path (static buffer). */
static const char *fresh_home(void)
{
    static char dir[64];
    strcpy(dir, "/tmp/amb_cookie_XXXXXX");
    assert_non_null(mkdtemp(dir));
    setenv("HOME", dir, 1);
    return dir;
}

static void write_cookie(const char *home, const char *text, mode_t mode)
{
    char path[128];
    snprintf(path, sizeof path, "%s/.erlang.cookie", home);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
}

static void cleanup(const char *home)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    assert_int_equal(system(cmd), 0);
}

AMB_TEST(dist_config_a_missing_cookie_file_is_made_owner_only)
{
    const char *home = fresh_home();
    uint8_t c1[64], c2[64];
    size_t n1, n2;
    assert_int_equal(amb__cookie_read(c1, sizeof c1, &n1, NULL, 0), 0);
    assert_int_equal(n1, 20);
    for (size_t i = 0; i < n1; i++)
        assert_true(c1[i] >= 'A' && c1[i] <= 'Z');
    char path[128];
    snprintf(path, sizeof path, "%s/.erlang.cookie", home);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0400);
    assert_int_equal(amb__cookie_read(c2, sizeof c2, &n2, NULL, 0), 0);
    assert_int_equal(n2, n1);
    assert_memory_equal(c1, c2, n1);
    cleanup(home);
}

AMB_TEST(dist_config_cookie_file_rules_are_erls)
{
    const char *home = fresh_home();
    uint8_t c[64];
    size_t n;
    char why[256];
    write_cookie(home, "secret cookie\n\r \n", 0400);
    assert_int_equal(amb__cookie_read(c, sizeof c, &n, why, sizeof why), 0);
    assert_int_equal(n, 13);
    assert_memory_equal(c, "secret cookie", 13);
    write_cookie(home, "secret", 0644);
    assert_int_equal(amb__cookie_read(c, sizeof c, &n, why, sizeof why), AMB_EACCES);
    assert_non_null(strstr(why, "accessible by owner only"));
    write_cookie(home, "", 0400);
    assert_int_equal(amb__cookie_read(c, sizeof c, &n, why, sizeof why), AMB_EFORMAT);
    write_cookie(home, "bad\tchar", 0400);
    assert_int_equal(amb__cookie_read(c, sizeof c, &n, why, sizeof why), AMB_EFORMAT);
    write_cookie(home, "abc\nmore", 0400);
    assert_int_equal(amb__cookie_read(c, sizeof c, &n, why, sizeof why), AMB_EFORMAT);
    char path[128];
    snprintf(path, sizeof path, "%s/.erlang.cookie", home);
    unlink(path);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(amb__cookie_read(c, sizeof c, &n, why, sizeof why), AMB_EACCES);
    assert_non_null(strstr(why, "not a regular file"));
    rmdir(path);
    unsetenv("HOME");
    assert_int_equal(amb__cookie_read(c, sizeof c, &n, why, sizeof why), AMB_EACCES);
    cleanup(home);
}

AMB_TEST(dist_config_cookie_check_is_auths)
{
    size_t n;
    assert_int_equal(amb__cookie_check((const uint8_t *)"a b~", 4, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(amb__cookie_check((const uint8_t *)"ab \n", 4, &n), 0);
    assert_int_equal(n, 3); /* printable, space included, then the trailer */
    assert_int_equal(amb__cookie_check((const uint8_t *)"\n", 1, &n), AMB_EFORMAT);
    assert_int_equal(amb__cookie_check((const uint8_t *)"a\x01", 2, &n), AMB_EFORMAT);
}

AMB_TEST(dist_config_node_names_follow_net_kernel)
{
    char out[300];
    assert_int_equal(amb__nodename_make("a@localhost", false, out, sizeof out), 0);
    assert_string_equal(out, "a@localhost");
    assert_int_equal(amb__nodename_make("a_b-1@h", false, out, sizeof out), 0);
    assert_int_equal(amb__nodename_make("a@host.example.com", false, out, sizeof out),
                     AMB_EBADARG);
    assert_int_equal(amb__nodename_make("a@127.0.0.1", true, out, sizeof out), 0);
    assert_string_equal(out, "a@127.0.0.1");
    assert_int_equal(amb__nodename_make("a.b@h", false, out, sizeof out), AMB_EBADARG);
    assert_int_equal(amb__nodename_make("@h", false, out, sizeof out), AMB_EBADARG);
    assert_int_equal(amb__nodename_make("a@", false, out, sizeof out), AMB_EBADARG);
    assert_int_equal(amb__nodename_make("a@h h", false, out, sizeof out), AMB_EBADARG);
    /* No host: this machine's name, up to its first dot with short names. */
    char host[256];
    assert_int_equal(gethostname(host, sizeof host), 0);
    char *dot = strchr(host, '.');
    if (dot != NULL)
        *dot = '\0';
    assert_int_equal(amb__nodename_make("solo", false, out, sizeof out), 0);
    char want[300];
    snprintf(want, sizeof want, "solo@%s", host);
    assert_string_equal(out, want);
}

AMB_TEST_MAIN(AMB_TEST_ENTRY(dist_config_a_missing_cookie_file_is_made_owner_only),
              AMB_TEST_ENTRY(dist_config_cookie_file_rules_are_erls),
              AMB_TEST_ENTRY(dist_config_cookie_check_is_auths),
              AMB_TEST_ENTRY(dist_config_node_names_follow_net_kernel))
