/* SPDX-License-Identifier: MIT */
#include "inject.h"
#include "internal.h"

void inject_init(struct inject *q)
{
	pthread_mutex_init(&q->lock, NULL);
	q->head = q->tail = NULL;
	STORE(&q->len, 0, relaxed);
}

void inject_destroy(struct inject *q)
{
	pthread_mutex_destroy(&q->lock);
}

void inject_push_batch(struct inject *q, struct weft_task *first,
		       struct weft_task *last, size_t n)
{
	last->next = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->tail)
		q->tail->next = first;
	else
		q->head = first;
	q->tail = last;
	STORE(&q->len, LOAD(&q->len, relaxed) + n, relaxed);
	pthread_mutex_unlock(&q->lock);
}

void inject_push(struct inject *q, struct weft_task *t)
{
	inject_push_batch(q, t, t, 1);
}

struct weft_task *inject_pop_batch(struct inject *q, size_t max, size_t *n)
{
	struct weft_task *first, *t;
	size_t k = 0;

	*n = 0;
	if (inject_empty(q))
		return NULL;
	pthread_mutex_lock(&q->lock);
	first = t = q->head;
	if (!t) {
		pthread_mutex_unlock(&q->lock);
		return NULL;
	}
	for (k = 1; k < max && t->next; k++)
		t = t->next;
	q->head = t->next;
	if (!q->head)
		q->tail = NULL;
	t->next = NULL;
	STORE(&q->len, LOAD(&q->len, relaxed) - k, relaxed);
	pthread_mutex_unlock(&q->lock);
	*n = k;
	return first;
}
