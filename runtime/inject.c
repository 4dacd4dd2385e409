/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>
#include "inject.h"
#include "internal.h"

#define SEG_CAP 254 /* a segment is 2 KiB */

struct inject_seg {
	struct inject_seg *next;
	uint32_t head, tail;	/* live entries are v[head, tail) */
	struct weft_task *v[SEG_CAP];
};

void inject_init(struct inject *q)
{
	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->lock, NULL);
}

void inject_destroy(struct inject *q)
{
	struct inject_seg *s, *next;

	for (s = q->head; s; s = next) {
		next = s->next;
		free(s);
	}
	free(q->spare);
	pthread_mutex_destroy(&q->lock);
}

static struct inject_seg *new_seg(struct inject *q)
{
	struct inject_seg *s = q->spare;

	if (s)
		q->spare = NULL;
	else if (!(s = malloc(sizeof(*s))))
		return NULL;
	s->next = NULL;
	s->head = s->tail = 0;
	return s;
}

void inject_push_many(struct inject *q, struct weft_task *const *v, size_t n)
{
	size_t i = 0;

	pthread_mutex_lock(&q->lock);
	while (i < n) {
		struct inject_seg *s = q->tail;

		if (!s || s->tail == SEG_CAP) {
			s = new_seg(q);
			if (!s)
				break;
			if (q->tail)
				q->tail->next = s;
			else
				q->head = s;
			q->tail = s;
		}
		size_t k = SEG_CAP - s->tail;

		if (k > n - i)
			k = n - i;
		memcpy(&s->v[s->tail], &v[i], k * sizeof(*v));
		s->tail += (uint32_t)k;
		i += k;
	}
	for (; i < n; i++) {
		/* Out of memory: link the rest through the tasks. */
		v[i]->next = NULL;
		if (q->chain_tail)
			q->chain_tail->next = v[i];
		else
			q->chain = v[i];
		q->chain_tail = v[i];
	}
	STORE(&q->len, LOAD(&q->len, relaxed) + n, relaxed);
	pthread_mutex_unlock(&q->lock);
}

void inject_push(struct inject *q, struct weft_task *t)
{
	inject_push_many(q, &t, 1);
}

size_t inject_pop_many(struct inject *q, struct weft_task **v, size_t max)
{
	size_t n = 0;

	if (inject_empty(q))
		return 0;
	pthread_mutex_lock(&q->lock);
	while (n < max && q->head) {
		struct inject_seg *s = q->head;
		size_t k = s->tail - s->head;

		if (k > max - n)
			k = max - n;
		memcpy(&v[n], &s->v[s->head], k * sizeof(*v));
		s->head += (uint32_t)k;
		n += k;
		if (s->head == s->tail && (s->next || s->tail == SEG_CAP)) {
			q->head = s->next;
			if (!q->head)
				q->tail = NULL;
			if (q->spare)
				free(s);
			else
				q->spare = s;
		} else if (s->head == s->tail) {
			s->head = s->tail = 0; /* reuse the lone segment */
			break;
		}
	}
	while (n < max && q->chain) {
		v[n++] = q->chain;
		q->chain = q->chain->next;
		if (!q->chain)
			q->chain_tail = NULL;
	}
	STORE(&q->len, LOAD(&q->len, relaxed) - n, relaxed);
	pthread_mutex_unlock(&q->lock);
	return n;
}
