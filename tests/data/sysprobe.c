/* sysprobe: make raw system calls and print how each ended, so that a test can check the exact
 * errno a seccomp filter returns (busybox applets mostly print strerror text, and cannot make
 * calls like add_key or vmsplice at all).
 *
 * Usage: sysprobe NR[,ARG...] ...   numbers in C syntax (decimal or 0x...), up to 6 arguments.
 * Prints one line per call: "NR ok RESULT" or "NR errno N". Built static by the tests
 * (tests/exec_profiles.rs) and bind-mounted into a box. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		long a[7] = { 0 };
		int n = 0;
		char *save = NULL;
		for (char *t = strtok_r(argv[i], ",", &save); t && n < 7; t = strtok_r(NULL, ",", &save))
			a[n++] = (long)strtoul(t, NULL, 0);
		errno = 0;
		long r = syscall(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
		if (r == -1)
			printf("%ld errno %d\n", a[0], errno);
		else
			printf("%ld ok %ld\n", a[0], r);
	}
	return 0;
}
