/* SPDX-License-Identifier: MIT */
#pragma once

/* Intrusive doubly-linked lists: an item has `prev` and `next` members; the list is a
 * pointer to its first item. */

#define LIST_PREPEND(head, item)                                                        \
        do {                                                                            \
                (item)->prev = NULL;                                                    \
                (item)->next = (head);                                                  \
                if (head)                                                               \
                        (head)->prev = (item);                                          \
                (head) = (item);                                                        \
        } while (0)

#define LIST_REMOVE(head, item)                                                         \
        do {                                                                            \
                if ((item)->prev)                                                       \
                        (item)->prev->next = (item)->next;                              \
                else                                                                    \
                        (head) = (item)->next;                                          \
                if ((item)->next)                                                       \
                        (item)->next->prev = (item)->prev;                              \
                (item)->prev = (item)->next = NULL;                                     \
        } while (0)
