/*
 * nodename.c - a node's full name as net_kernel makes it (lib/kernel
 * net_kernel.erl create_name/create_hostpart, read, not copied):
 *
 *   alive@host   kept; with short names the host may not hold a dot
 *   alive        short names: alive@ + this host's name up to its first dot
 *                long names: alive@ + host.domain (the host name when it is
 *                dotted already, else the resolver's domain: the `domain`
 *                or first `search` entry of /etc/resolv.conf)
 *
 * The alive part is [0-9A-Za-z_-]+ (valid_name_head); a host is printable
 * (validate_hostname: no control characters, no space); the whole is a node
 * name the handshake accepts (amb__handshake_name_valid).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dist.h"

static bool alive_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
              (c >= 'a' && c <= 'z') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool host_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] == 0x7f || s[i] == '@')
            return false;
    return true;
}

/* The resolver's domain (resolv.conf's `domain`, else its first `search`
 * entry) into buf; false when there is none. */
static bool resolver_domain(char *buf, size_t cap)
{
    FILE *f = fopen("/etc/resolv.conf", "re");
    if (f == NULL)
        return false;
    char line[512], search[256] = "";
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        char key[16], val[256];
        if (sscanf(line, "%15s %255s", key, val) != 2)
            continue;
        if (strcmp(key, "domain") == 0) {
            found = snprintf(buf, cap, "%s", val) < (int)cap;
        } else if (strcmp(key, "search") == 0 && search[0] == '\0') {
            snprintf(search, sizeof search, "%s", val);
        }
    }
    fclose(f);
    if (!found && search[0] != '\0')
        found = snprintf(buf, cap, "%s", search) < (int)cap;
    return found;
}

int amb__nodename_make(const char *name, bool long_names, char *out, size_t cap)
{
    if (name == NULL || out == NULL)
        return AMB_EBADARG;
    const char *at = strchr(name, '@');
    size_t alive_len = at != NULL ? (size_t)(at - name) : strlen(name);
    if (!alive_ok(name, alive_len))
        return AMB_EBADARG;
    char host[256];
    if (at != NULL) {
        const char *h = at + 1;
        size_t n = strlen(h);
        if (!host_ok(h, n) || n >= sizeof host || (!long_names && memchr(h, '.', n)))
            return AMB_EBADARG;
        memcpy(host, h, n + 1);
    } else {
        if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
            return AMB_ENOHOST;
        host[sizeof host - 1] = '\0';
        char *dot = strchr(host, '.');
        if (!long_names && dot != NULL) {
            *dot = '\0';
        } else if (long_names && dot == NULL) {
            char domain[200];
            size_t hl = strlen(host);
            if (!resolver_domain(domain, sizeof domain) ||
                hl + 1 + strlen(domain) >= sizeof host)
                return AMB_ENOHOST;
            host[hl] = '.';
            strcpy(host + hl + 1, domain);
        }
        if (!host_ok(host, strlen(host)))
            return AMB_ENOHOST;
    }
    int n = snprintf(out, cap, "%.*s@%s", (int)alive_len, name, host);
    if (n < 0 || (size_t)n >= cap || !amb__handshake_name_valid(out, (size_t)n, false))
        return AMB_EBADARG;
    return 0;
}
