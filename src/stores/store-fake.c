/* SPDX-License-Identifier: MIT */
/* The fake provider (ESO's "fake"): static values from the configuration, for demos and
 * tests. It is a real provider: fetches complete asynchronously from the event loop, like
 * a network store's would. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stores/store.h"
#include "util/list.h"

#define FAKE_VALUE_MAX (1024U * 1024U)

typedef struct FakeEntry {
        char *key;
        char *version;
        SecBuf *value;
        size_t index; /* position in the configuration: later ones are newer */
        unsigned line;
} FakeEntry;

static int entry_cmp(const void *a, const void *b) {
        const FakeEntry *x = a, *y = b;
        int c = strcmp(x->key, y->key);
        return c ? c : (x->index > y->index) - (x->index < y->index);
}

typedef struct FakeRequest FakeRequest;

typedef struct FakeStore {
        Store base;
        FakeEntry *entries;
        size_t n_entries;
        sd_event *event;
        FakeRequest *pending;
} FakeStore;

struct FakeRequest {
        FakeStore *store;
        sd_event_source *source;
        const FakeEntry *entry;
        char *key;
        char *version;
        store_fetch_cb cb;
        void *userdata;
        FakeRequest *prev, *next;
};

static int fake_parse_config(Store *s, ConfigParser *p, const config_setting_t *g) {
        static const char *const keys[] = { "type", "data", NULL };
        static const char *const ekeys[] = { "key", "value", "version", NULL };
        FakeStore *f = (FakeStore *) s;

        config_check_keys(p, g, keys);
        const config_setting_t *l = config_setting_get_member(g, "data");
        if (!l)
                return 0;
        if (config_setting_type(l) != CONFIG_TYPE_LIST) {
                config_error(p, l, "store '%s': 'data' must be a list ( { key = \"...\"; value = \"...\"; }, ... )",
                             s->name);
                return -EINVAL;
        }
        int n = config_setting_length(l);
        f->entries = calloc((size_t) n + 1, sizeof(FakeEntry));
        if (!f->entries)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(l, (unsigned) i);
                _cleanup_free_ char *value = NULL;
                FakeEntry *fe = &f->entries[f->n_entries];

                if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
                        config_error(p, e, "store '%s': each 'data' entry must be a group { key = ...; value = ...; }",
                                     s->name);
                        continue;
                }
                config_check_keys(p, e, ekeys);
                if (config_get_string(p, e, "key", true, &fe->key) <= 0)
                        continue;
                config_get_string(p, e, "version", false, &fe->version);
                if (config_get_string(p, e, "value", false, &value) < 0 || !value) {
                        if (!value)
                                config_error(p, e, "store '%s': entry '%s' needs a 'value'", s->name, fe->key);
                        free(fe->key);
                        free(fe->version);
                        *fe = (FakeEntry) { 0 };
                        continue;
                }
                if (strlen(value) > FAKE_VALUE_MAX) {
                        config_error(p, e, "store '%s': the value of '%s' is over %u bytes", s->name, fe->key,
                                     FAKE_VALUE_MAX);
                        explicit_bzero(value, strlen(value));
                        free(fe->key);
                        free(fe->version);
                        *fe = (FakeEntry) { 0 };
                        continue;
                }
                fe->value = secbuf_new_from(value, strlen(value));
                explicit_bzero(value, strlen(value));
                if (!fe->value)
                        return -ENOMEM;
                fe->index = f->n_entries;
                fe->line = config_setting_source_line(e);
                f->n_entries++;
        }
        /* Sorted by key, then in the order listed, for binary search on fetch. */
        qsort(f->entries, f->n_entries, sizeof(FakeEntry), entry_cmp);
        for (size_t j = 1; j < f->n_entries; j++)
                if (streq(f->entries[j].key, f->entries[j - 1].key) &&
                    streq_ptr(f->entries[j].version, f->entries[j - 1].version))
                        config_error(p, g, "store '%s': key '%s'%s%s appears twice (line %u)", s->name,
                                     f->entries[j].key, f->entries[j].version ? " version " : "",
                                     f->entries[j].version ? f->entries[j].version : "", f->entries[j].line);
        return 0;
}

static void fake_dump_config(const Store *s, ConfigDump *d) {
        const FakeStore *f = (const FakeStore *) s;
        for (int i = 0; i < d->indent; i++)
                fputs("  ", d->f);
        fputs("data = (\n", d->f);
        d->indent++;
        for (size_t i = 0; i < f->n_entries; i++) {
                for (int k = 0; k < d->indent; k++)
                        fputs("  ", d->f);
                fputs("{ key = ", d->f);
                config_dump_quoted(d->f, f->entries[i].key);
                if (f->entries[i].version) {
                        fputs("; version = ", d->f);
                        config_dump_quoted(d->f, f->entries[i].version);
                }
                fputs("; value = ", d->f);
                config_dump_quoted(d->f, d->redact ? "<redacted>" : secbuf_str(f->entries[i].value));
                fputs(i + 1 < f->n_entries ? "; },\n" : "; }\n", d->f);
        }
        d->indent--;
        for (int i = 0; i < d->indent; i++)
                fputs("  ", d->f);
        fputs(");\n", d->f);
}

static int fake_start(Store *s, const StoreContext *ctx) {
        FakeStore *f = (FakeStore *) s;
        f->event = sd_event_ref(ctx->event);
        return 0;
}

static void request_free(FakeRequest *r) {
        FakeStore *f = r->store;
        LIST_REMOVE(f->pending, r);
        sd_event_source_disable_unref(r->source);
        free(r->key);
        free(r->version);
        free(r);
}

static int on_defer(sd_event_source *es, void *userdata) {
        FakeRequest *r = userdata;
        FakeStore *f = r->store;
        const FakeEntry *e = NULL;
        _cleanup_free_ char *msg = NULL;
        StoreResult res = { 0 };

        /* The first entry with this key, then every later one with it. */
        size_t lo = 0, hi = f->n_entries;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (strcmp(f->entries[mid].key, r->key) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (size_t i = lo; i < f->n_entries && streq(f->entries[i].key, r->key); i++)
                if (!r->version || streq_ptr(f->entries[i].version, r->version))
                        e = &f->entries[i]; /* without a version the last one listed is the latest */
        if (e) {
                res.value = e->value;
                res.version = e->version;
        } else {
                res.error = -ENOENT;
                if (asprintf(&msg, "key '%s'%s%s not found in fake store '%s'", r->key, r->version ? " version " : "",
                             r->version ? r->version : "", f->base.name) < 0)
                        msg = NULL;
                res.message = msg ? msg : "not found";
        }
        store_fetch_cb cb = r->cb;
        void *ud = r->userdata;
        request_free(r);
        cb(&f->base, &res, ud);
        return 0;
}

static int fake_fetch(Store *s, const RemoteRef *ref, store_fetch_cb cb, void *userdata) {
        FakeStore *f = (FakeStore *) s;
        FakeRequest *r = calloc(1, sizeof(FakeRequest));
        int ret;
        if (!r)
                return -ENOMEM;
        r->store = f;
        r->cb = cb;
        r->userdata = userdata;
        r->key = strdup(ref->key);
        r->version = ref->version ? strdup(ref->version) : NULL;
        LIST_PREPEND(f->pending, r);
        if (!r->key || (ref->version && !r->version)) {
                request_free(r);
                return -ENOMEM;
        }
        ret = sd_event_add_defer(f->event, &r->source, on_defer, r);
        if (ret < 0) {
                request_free(r);
                return ret;
        }
        return 0;
}

static void fake_stop(Store *s) {
        FakeStore *f = (FakeStore *) s;
        StoreResult res = { .error = -ECANCELED, .message = "cancelled" };
        while (f->pending) {
                FakeRequest *r = f->pending;
                store_fetch_cb cb = r->cb;
                void *ud = r->userdata;
                request_free(r);
                cb(s, &res, ud);
        }
        f->event = sd_event_unref(f->event);
}

static void fake_done(Store *s) {
        FakeStore *f = (FakeStore *) s;
        for (size_t i = 0; i < f->n_entries; i++) {
                free(f->entries[i].key);
                free(f->entries[i].version);
                secbuf_free(f->entries[i].value);
        }
        free(f->entries);
}

const StoreVTable store_fake_vtable = {
        .name = "fake",
        .object_size = sizeof(FakeStore),
        .parse_config = fake_parse_config,
        .dump_config = fake_dump_config,
        .start = fake_start,
        .fetch = fake_fetch,
        .stop = fake_stop,
        .done = fake_done,
};
