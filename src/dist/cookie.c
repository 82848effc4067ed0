/*
 * cookie.c - the node's cookie as erl reads it (lib/kernel auth.erl, read,
 * not copied): $HOME/.erlang.cookie, which must be a regular file that
 * only its owner may access; made with 20 random capital letters and mode
 * 0400 when it does not exist. Its contents are printable ASCII (space
 * included), then nothing but newlines, returns and spaces.
 *
 * Invariants: nothing here keeps a cookie; the caller's buffer gets it. A
 * file is read with one bounded read (a cookie file larger than the
 * caller's buffer is refused, never read in part). The random letters come
 * from OpenSSL's CSPRNG (erl's come from the clock; a guessable cookie is
 * no better than none).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "dist.h"

#define COOKIE_LETTERS 20

/* Says why in the caller's why buffer (may be NULL), returns rc. */
#define FAIL(rc, ...) \
    ((why != NULL && why_cap > 0 ? snprintf(why, why_cap, __VA_ARGS__) : 0), (rc))

int amb__cookie_check(const uint8_t *data, size_t n, size_t *len)
{
    size_t i = 0;
    while (i < n && data[i] >= ' ' && data[i] <= '~')
        i++;
    size_t cookie = i;
    for (; i < n; i++)
        if (data[i] != '\n' && data[i] != '\r' && data[i] != ' ')
            return AMB_EFORMAT;
    if (cookie == 0)
        return AMB_EFORMAT;
    *len = cookie;
    return 0;
}

/* Writes a fresh cookie into path (which does not exist): mode 0400. */
static int create(const char *path, char *why, size_t why_cap)
{
    uint8_t r[COOKIE_LETTERS];
    char text[COOKIE_LETTERS];
    if (RAND_bytes(r, sizeof r) != 1)
        return FAIL(AMB_EACCES, "no random bytes for the cookie file %s", path);
    for (size_t i = 0; i < COOKIE_LETTERS; i++)
        text[i] = (char)('A' + r[i] % 26);
    /* O_EXCL: another node starting at the same moment keeps its own. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
    if (fd < 0)
        return errno == EEXIST
                   ? 0
                   : FAIL(AMB_EACCES, "cannot create the cookie file %s", path);
    ssize_t n = write(fd, text, sizeof text);
    close(fd);
    if (n != (ssize_t)sizeof text)
        return FAIL(AMB_EACCES, "cannot write the cookie file %s", path);
    return 0;
}

int amb__cookie_read(uint8_t *buf, size_t cap, size_t *len, char *why, size_t why_cap)
{
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0')
        return FAIL(AMB_EACCES, "no home for the cookie file%s", "");
    char path[4096];
    if (snprintf(path, sizeof path, "%s/.erlang.cookie", home) >= (int)sizeof path)
        return FAIL(AMB_EACCES, "home too long for the cookie file%s", "");
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            return FAIL(AMB_EACCES, "cannot read the cookie file %s", path);
        int rc = create(path, why, why_cap);
        if (rc != 0)
            return rc;
        if (lstat(path, &st) != 0)
            return FAIL(AMB_EACCES, "cannot read the cookie file %s", path);
    }
    if (!S_ISREG(st.st_mode))
        return FAIL(AMB_EACCES, "cookie file %s is not a regular file", path);
    if (st.st_mode & 077)
        return FAIL(AMB_EACCES, "cookie file %s must be accessible by owner only", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return FAIL(AMB_EACCES, "cannot read the cookie file %s", path);
    uint8_t data[AMB__HS_COOKIE_MAX + 64];
    ssize_t n = read(fd, data, sizeof data);
    close(fd);
    if (n < 0)
        return FAIL(AMB_EACCES, "cannot read the cookie file %s", path);
    if ((size_t)n == sizeof data)
        return FAIL(AMB_EFORMAT, "cookie file %s is too long", path);
    size_t clen;
    if (amb__cookie_check(data, (size_t)n, &clen) != 0)
        return FAIL(AMB_EFORMAT, "cookie file %s is empty or holds bad characters", path);
    if (clen > cap)
        return FAIL(AMB_EBUFSIZE, "cookie in %s is too long", path);
    memcpy(buf, data, clen);
    *len = clen;
    return 0;
}
