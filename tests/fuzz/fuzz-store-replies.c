/* SPDX-License-Identifier: MIT */
/* libFuzzer: the stores' servers' answers, as a hostile or broken server might send them:
 * the secret reads of Vault (KV 1 and 2), AWS, Key Vault and Secret Manager, the OAuth token
 * answers of Entra ID, Google and the metadata servers, and their error bodies. The first
 * byte picks the parser, the rest is the body. Oracle: a success has a value within the
 * store's limit; a failure says why; an error text stays on one line, within its size. */
#include <stdlib.h>
#include <string.h>

#include "stores/oauth.h"
#include "stores/store-replies.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reply(int r, SecBuf *value, char *version, const char *why, size_t max) {
        if (r >= 0 && (!value || value->len > max))
                abort();
        if (r < 0 && (!why || value))
                abort();
        secbuf_free(value);
        free(version);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        SecBuf *body = secbuf_new_from(data + 1, size - 1);
        if (!body)
                return 0;
        SecBuf *value = NULL;
        char *version = NULL;
        const char *why = NULL, *aws_version = NULL;
        int r;

        switch (data[0] % 6) {
        case 0:
        case 1:
                r = vault_reply_secret(body, 1 + data[0] % 2, &value, &version, &why);
                check_reply(r, value, version, why, HTTP_BODY_MAX);
                break;
        case 2: {
                json_object *o = NULL;
                if (json_parse_strict(body->data, body->len, &o) >= 0) {
                        r = aws_reply_secret(o, &value, &aws_version, &why);
                        check_reply(r, value, NULL, why, 64 * 1024);
                }
                json_put_wiped(o);
                break;
        }
        case 3:
                r = azure_reply_secret(body, &value, &version, &why);
                check_reply(r, value, version, why, 25 * 1024);
                break;
        case 4:
                r = gcp_reply_secret(body, &value, &version, &why);
                check_reply(r, value, version, why, 64 * 1024);
                break;
        case 5: {
                HttpResponse resp = { .status = 200, .body = body };
                OAuthToken t = { 0 };
                char text[OAUTH_ERROR_SHOWN_MAX + 64], code[64];
                r = oauth_token_parse(&resp, &t, &why);
                if ((r >= 0 && (!t.access_token || t.refresh_at > t.expires_at)) || (r < 0 && !why))
                        abort();
                oauth_token_clear(&t);
                resp.status = 400;
                oauth_error_text(&resp, text, sizeof(text), code, sizeof(code));
                if (strchr(text, '\n') || strlen(text) >= sizeof(text))
                        abort();
                break;
        }
        }
        secbuf_free(body);
        return 0;
}
