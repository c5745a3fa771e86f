/* lib/list.h: intrusive linked lists. An item carries its own links; the
 * list is a pointer to its first item (NULL when empty), kept in whatever
 * owns the list. Nothing is allocated.
 *
 *   doubly linked, by the fields `prev` and `next`:
 *     LIST_PREPEND(s->conns, c)     c becomes the first item
 *     LIST_REMOVE(s->conns, c)      c leaves the list, its links cleared;
 *                                   removing an item that is in no list
 *                                   (both links NULL, not the head) does
 *                                   nothing
 *   singly linked with a tail, first in first out, by a field you name:
 *     QUEUE_PUSH(s->pend, s->pend_tail, c, pend_next)
 *
 * The arguments are evaluated more than once: pass plain lvalues. A loop
 * that removes the item it stands on must take `next` first. */
#pragma once

#define LIST_PREPEND(head, item)                                \
        do {                                                    \
                (item)->prev = NULL;                            \
                (item)->next = (head);                          \
                if (head)                                       \
                        (head)->prev = (item);                  \
                (head) = (item);                                \
        } while (0)

#define LIST_REMOVE(head, item)                                 \
        do {                                                    \
                if ((item)->prev)                               \
                        (item)->prev->next = (item)->next;      \
                else if ((head) == (item))                      \
                        (head) = (item)->next;                  \
                if ((item)->next)                               \
                        (item)->next->prev = (item)->prev;      \
                (item)->prev = (item)->next = NULL;             \
        } while (0)

#define QUEUE_PUSH(head, tail, item, link)                      \
        do {                                                    \
                (item)->link = NULL;                            \
                if (tail)                                       \
                        (tail)->link = (item);                  \
                else                                            \
                        (head) = (item);                        \
                (tail) = (item);                                \
        } while (0)
