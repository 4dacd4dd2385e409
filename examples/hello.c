/* The first program from weft's README: a task spawns a child that sleeps
 * for a millisecond and doubles its argument; main checks the answer. */
#include <stdio.h>
#include <weft.h>

static int child(void *arg)
{
	weft_sleep(1000000);
	return *(int *)arg * 2;
}

static int main_task(void *arg)
{
	int x = 21;
	weft_task *t;
	int r;

	(void)arg;
	if (weft_spawn(&t, child, &x) < 0 || weft_join(t, &r) < 0)
		return -1;
	return r; /* 42 */
}

int main(void)
{
	int r, rc;

	rc = weft_run(NULL, main_task, NULL, &r);
	if (rc < 0) {
		fprintf(stderr, "hello: cannot start the runtime: %s\n",
			weft_strerror(rc));
		return 2;
	}
	printf("hello: the child answered %d\n", r);
	return r == 42 ? 0 : 1;
}
