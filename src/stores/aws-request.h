/* SPDX-License-Identifier: MIT */
#pragma once

#include "stores/aws-credentials.h"
#include "util/http.h"

/* One AWS API request, signed with Signature Version 4 by libcurl (CURLOPT_AWS_SIGV4):
 * the JSON 1.1 protocol (X-Amz-Target) of Secrets Manager, or the query protocol of STS. */
typedef struct AwsRequest {
        const char *url;
        const char *region;
        const char *service;      /* "secretsmanager", "sts" */
        const char *target;       /* "secretsmanager.GetSecretValue"; NULL: none */
        const char *content_type; /* NULL: none */
        const SecBuf *body;       /* NULL: GET */
        const AwsCredentials *creds; /* NULL: unsigned (AssumeRoleWithWebIdentity) */
        const char *host;     /* tests only: the Host header (the URL's host otherwise) */
        const char *amz_date; /* tests only: a fixed X-Amz-Date (now otherwise) */
} AwsRequest;

int aws_send(HttpPool *p, const AwsRequest *r, http_done_cb cb, void *userdata, HttpCall **ret);

/* An AWS error reply: the code (after any "prefix#") and message, from a JSON body
 * ({"__type", "message"}) or an XML one (<Code>, <Message>); "" when there is none. The
 * message is shortened; AWS's messages name actions and resources, not secret values. */
#define AWS_ERROR_CODE_MAX 64
#define AWS_ERROR_MESSAGE_MAX 300
void aws_error_parse(const HttpResponse *r, char code[static AWS_ERROR_CODE_MAX], char message[static AWS_ERROR_MESSAGE_MAX]);

/* When AWS refused a signature and the server's clock (its Date header) is more than 5
 * minutes from ours, a sentence saying so into buf; "" otherwise. */
void aws_clock_skew_text(const HttpResponse *r, char *buf, size_t size);
