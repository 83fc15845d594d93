/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/secbuf.h"

/* The small outside formats the AWS store reads besides JSON: STS's XML replies, the SDKs'
 * shared credentials file (INI), ISO 8601 timestamps. */

#define AWS_XML_BODY_MAX (64U * 1024U)  /* an STS reply */
#define AWS_XML_VALUE_MAX (8U * 1024U)  /* one element's text (a session token is ~1 KiB) */
#define AWS_INI_FILE_MAX (256U * 1024U) /* a shared credentials file */

/* The text of the first <tag>...</tag> in an XML document, entities decoded. -ENOENT if
 * absent, -EBADMSG if malformed (nested markup, bad entity), -E2BIG over AWS_XML_VALUE_MAX. */
int aws_xml_value(const void *xml, size_t len, const char *tag, SecBuf **ret);

/* The value of `key` in section [profile] (or [profile <profile>]) of an INI document.
 * -ENOENT if the profile or key is absent. */
int aws_ini_value(const SecBuf *ini, const char *profile, const char *key, SecBuf **ret);

/* "2026-01-02T03:04:05Z" (fraction and numeric offsets allowed) -> seconds since the epoch. */
int aws_parse_time(const char *s, int64_t *ret);

