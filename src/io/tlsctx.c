/*
 * tlsctx.c - public TLS contexts (amb_tls_ctx, socket.h) over the engine's
 * (tls.h): reference counted, so that a listener keeps the context of what
 * it accepts alive after its maker freed it, and built on the blocking pool
 * when they name files (docs/design/sockets.md §8: reading certificate,
 * key and CA files may block).
 *
 * A build on the pool is a request shared by the caller and the pool
 * thread, like a name lookup's (resolve.c): it holds its own copy of every
 * string (the caller may be killed meanwhile, its memory gone), and the
 * last of the two to drop it frees it, with the context when the caller
 * never took it.
 */
#include <string.h>

#include "io/socket.h"

struct amb_tls_ctx {
    _Atomic size_t refs;
    amb__tls_ctx *engine;
    bool server;
};

_Static_assert(AMB_TLS_VERIFY_DEFAULT == AMB__TLS_VERIFY_DEFAULT &&
                   AMB_TLS_VERIFY_NONE == AMB__TLS_VERIFY_NONE &&
                   AMB_TLS_VERIFY_PEER == AMB__TLS_VERIFY_PEER &&
                   AMB_TLS_VERIFY_REQUIRE == AMB__TLS_VERIFY_REQUIRE,
               "one set of verify modes");

amb__tls_ctx *amb__tlsctx_engine(struct amb_tls_ctx *c)
{
    return c->engine;
}

bool amb__tlsctx_server(const struct amb_tls_ctx *c)
{
    return c->server;
}

void amb__tlsctx_ref(struct amb_tls_ctx *c)
{
    /* relaxed: the caller holds a reference already. */
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void amb_tls_ctx_free(amb_tls_ctx *c)
{
    if (c == NULL)
        return;
    /* acq_rel: the last holder sees every other holder's use first. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    amb__tls_ctx_free(c->engine);
    amb__free(c);
}

/* A build on the pool: the configuration with its strings copied. */
typedef struct request {
    _Atomic int refs;
    amb__tls_config cfg;
    char *strings[7];
    amb__tls_ctx *engine; /* the result, until the caller takes it */
    int rc;
} request;

static void drop(request *r)
{
    /* acq_rel: as in amb_tls_ctx_free. */
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    amb__tls_ctx_free(r->engine);
    for (size_t i = 0; i < AMB_COUNTOF(r->strings); i++)
        amb__free(r->strings[i]);
    amb__free(r);
}

static intptr_t build(void *arg)
{
    request *r = arg;
    r->rc = amb__tls_ctx_new(&r->cfg, &r->engine);
    drop(r);
    return 0;
}

static void build_cleanup(amb_proc *p, void *ctx)
{
    (void)p;
    drop(ctx);
}

/* *to = a copy of from (NULL stays NULL), kept in slot for the free. */
static bool copy_string(const char *from, const char **to, char **slot)
{
    *to = NULL;
    if (from == NULL)
        return true;
    size_t n = strlen(from) + 1;
    *slot = amb__malloc(n);
    if (*slot == NULL)
        return false;
    memcpy(*slot, from, n);
    *to = *slot;
    return true;
}

int amb_tls_ctx_new(amb_proc *self, const amb_tls_opts *opts, amb_tls_ctx **out)
{
    if (self == NULL || opts == NULL || out == NULL ||
        opts->verify > AMB_TLS_VERIFY_REQUIRE)
        return AMB_EBADARG;
    amb__tls_config cfg = {
        .server = opts->server,
        .cert_pem = opts->cert_pem,
        .cert_file = opts->cert_file,
        .key_pem = opts->key_pem,
        .key_file = opts->key_file,
        .ca_pem = opts->ca_pem,
        .ca_file = opts->ca_file,
        .ca_dir = opts->ca_dir,
        .verify = (amb__tls_verify)opts->verify,
    };
    amb_tls_ctx *c = amb__malloc(sizeof *c);
    if (c == NULL)
        return AMB_ENOMEM;
    int rc;
    amb__tls_ctx *engine = NULL;
    bool files = cfg.cert_file != NULL || cfg.key_file != NULL || cfg.ca_file != NULL ||
                 cfg.ca_dir != NULL;
    if (!files) {
        rc = amb__tls_ctx_new(&cfg, &engine); /* memory and CPU only */
    } else if (!amb__proc_may_wait(self)) {
        rc = AMB_ESTATE;
    } else {
        amb__pio *io = amb__pio_of(self);
        request *r = amb__calloc(1, sizeof *r);
        rc = io == NULL || r == NULL ? AMB_ENOMEM : 0;
        if (rc == 0) {
            r->cfg = cfg;
            const char *const *from[] = {&cfg.cert_pem, &cfg.cert_file, &cfg.key_pem,
                                         &cfg.key_file, &cfg.ca_pem,    &cfg.ca_file,
                                         &cfg.ca_dir};
            const char **to[] = {&r->cfg.cert_pem, &r->cfg.cert_file, &r->cfg.key_pem,
                                 &r->cfg.key_file, &r->cfg.ca_pem,    &r->cfg.ca_file,
                                 &r->cfg.ca_dir};
            for (size_t i = 0; i < AMB_COUNTOF(from) && rc == 0; i++)
                if (!copy_string(*from[i], to[i], &r->strings[i]))
                    rc = AMB_ENOMEM;
        }
        if (rc == 0) {
            atomic_init(&r->refs, 2);
            amb__pio_call_begin(io, build_cleanup, r);
            rc = amb_blocking_call(self, build, r, NULL);
            amb__pio_call_end(io);
            if (rc != 0) {
                drop(r); /* never posted: both references are ours */
            } else {
                rc = r->rc;
                engine = r->engine;
                r->engine = NULL;
            }
        } else if (r != NULL) {
            atomic_init(&r->refs, 1);
        }
        if (r != NULL)
            drop(r);
    }
    if (rc != 0) {
        amb__free(c);
        return rc;
    }
    atomic_init(&c->refs, 1);
    c->engine = engine;
    c->server = opts->server;
    *out = c;
    return 0;
}
